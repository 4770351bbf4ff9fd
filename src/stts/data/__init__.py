"""Data sets: archives, split lists, decoding, the clip store, the torch Dataset and the built-in sets.

The names below are imported on first use, so that ``stts infer`` (which reads videos through ``stts.data.video``)
does not import the data sets' generators and torch's Dataset machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "ClipDataset": "stts.data.dataset",
    "dataset_root": "stts.data.dataset",
    "read_classes": "stts.data.dataset",
    "read_info": "stts.data.dataset",
    "read_spec": "stts.data.dataset",
    "prepare_dataset": "stts.data.prepare",
    "verify_prepared": "stts.data.prepare",
    "get_dataset": "stts.data.registry",
    "list_datasets": "stts.data.registry",
    "prepare_synthetic_motion": "stts.data.synthetic",
    "read_video": "stts.data.video",
}

__all__ = ["ClipDataset", "dataset_root", "get_dataset", "list_datasets", "prepare_dataset", "prepare_synthetic_motion",
           "read_classes", "read_info", "read_spec", "read_video", "verify_prepared"]

if TYPE_CHECKING:
    from .dataset import ClipDataset, dataset_root, read_classes, read_info, read_spec
    from .prepare import prepare_dataset, verify_prepared
    from .registry import get_dataset, list_datasets
    from .synthetic import prepare_synthetic_motion
    from .video import read_video

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
