"""Data sets: archives, split lists, decoding, the clip store, the torch Dataset and the built-in sets."""

from .dataset import ClipDataset, dataset_root, read_classes, read_info, read_spec
from .prepare import prepare_dataset, verify_prepared
from .registry import get_dataset, list_datasets
from .synthetic import prepare_synthetic_motion
from .video import read_video

__all__ = [
    "ClipDataset",
    "dataset_root",
    "get_dataset",
    "list_datasets",
    "prepare_dataset",
    "prepare_synthetic_motion",
    "read_classes",
    "read_info",
    "read_spec",
    "read_video",
    "verify_prepared",
]
