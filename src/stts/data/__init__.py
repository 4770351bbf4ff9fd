"""Datasets: archives, split lists, decoding, the clip store, the torch Dataset and synthetic-motion."""

from .dataset import ClipDataset, dataset_root, read_classes, read_info
from .prepare import prepare_dataset, verify_prepared
from .synthetic import prepare_synthetic_motion
from .video import frame_step, read_video

__all__ = [
    "ClipDataset",
    "dataset_root",
    "frame_step",
    "prepare_dataset",
    "prepare_synthetic_motion",
    "read_classes",
    "read_info",
    "read_video",
    "verify_prepared",
]
