"""The torch Dataset over a prepared split, and where prepared datasets live."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import SttsError
from . import transforms
from .prepare import CLASSES, INFO, MANIFESTS, STORE
from .store import open_store

BUILT_IN = ("ucf101", "hmdb51", "synthetic-motion")


def dataset_root(data_type: str, data_root: str | Path = "data") -> Path:
    """'ucf101', 'hmdb51' or 'synthetic-motion' -> ``data_root/<name>``; anything else is a prepared folder's path.

    Raises SttsError with the ``stts prepare`` command to run when the folder is not prepared.
    """
    root = Path(data_root) / data_type if data_type in BUILT_IN else Path(data_type)
    if not (root / INFO).is_file() or not (root / MANIFESTS).is_dir():
        command = {
            "ucf101": f"stts prepare ucf101 UCF101.rar UCF101TrainTestSplits-RecognitionTask.zip --out {root}",
            "hmdb51": f"stts prepare hmdb51 hmdb51_org.rar test_train_splits.rar --out {root}",
            "synthetic-motion": f"stts prepare synthetic-motion --out {root}",
        }.get(data_type, f"stts prepare folder VIDEOS_ROOT --out {root}")
        raise SttsError(f"{root} is not a prepared dataset (no {INFO}); run `{command}`")
    return root


def read_classes(root: str | Path) -> list[str]:
    path = Path(root) / CLASSES
    if not path.is_file():
        raise SttsError(f"{root}: no {CLASSES}; run `stts prepare` for this dataset first")
    return path.read_text(encoding="utf-8").splitlines()


def read_info(root: str | Path) -> dict:
    return json.loads((Path(root) / INFO).read_text(encoding="utf-8"))


def flipped_labels(classes: list[str], flip_pairs: list[list[str]]) -> list[int]:
    """Each label's label after a horizontal flip: itself, or its partner in ``flip_pairs``."""
    mapping = list(range(len(classes)))
    for a, b in flip_pairs:
        mapping[classes.index(a)], mapping[classes.index(b)] = classes.index(b), classes.index(a)
    return mapping


def read_manifest(root: str | Path, split: str) -> tuple[list[str], list[int]]:
    path = Path(root) / MANIFESTS / f"{split}.tsv"
    if not path.is_file():
        raise SttsError(f"{root}: no {split} split ({path} is missing); choose train, val or test")
    rows = [line.rsplit("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [video for video, _ in rows], [int(label) for _, label in rows]


class ClipDataset(Dataset):
    """Clips of one split of a prepared dataset, as uint8 (C, T, H, W) tensors; float conversion is the device's.

    ``train``: a random window of ``clip_len`` stored frames, one random ``crop_size`` crop for the
    clip and a random horizontal flip, drawn from (seed, epoch, index) so that they differ every
    epoch (call ``set_epoch``) and do not depend on the number of workers. Otherwise ``windows``
    evenly spaced windows x ``crops`` (1: centre, 3: along the longer side) views, stacked as
    (views, C, T, H, W) when there is more than one. Videos shorter than the clip are padded by
    repeating frames.
    """

    def __init__(self, root: str | Path, split: str, clip_len: int = 32, crop_size: int = 112, train: bool = False,
                 windows: int = 1, crops: int = 1, seed: int = 0):
        if crops not in (1, 3):
            raise SttsError(f"crops must be 1 or 3, got {crops}")
        if windows < 1 or clip_len < 1:
            raise SttsError(f"windows and clip_len must be positive, got {windows} and {clip_len}")
        self.root = Path(root)
        self.split, self.clip_len, self.crop_size, self.train = split, clip_len, crop_size, train
        self.windows, self.crops, self.seed, self.epoch = windows, crops, seed, 0
        self.classes = read_classes(self.root)
        self.videos, self.labels = read_manifest(self.root, split)
        self.flipped_label = flipped_labels(self.classes, read_info(self.root).get("flip_pairs", []))
        self.store = open_store(self.root / STORE)
        for video in self.videos:
            entry = self.store.entries.get(video)
            if entry is None:
                raise SttsError(f"{self.root}: {video} is in the {split} manifest but not in the store; "
                                "rerun `stts prepare` for this dataset")
            if min(entry["height"], entry["width"]) < crop_size:
                raise SttsError(f"{self.root}: frames are {entry['width']}x{entry['height']}, smaller than crop "
                                f"{crop_size}; prepare again with a larger --size or use a smaller crop")

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        video = self.videos[index]
        entry = self.store.entries[video]
        num_frames, height, width = len(entry["sizes"]), entry["height"], entry["width"]
        size = self.crop_size
        if self.train:
            rng = transforms.clip_rng(self.seed, self.epoch, index)
            start = transforms.random_window_start(num_frames, self.clip_len, rng)
            offset = transforms.random_crop_offset(height, width, size, rng)
            flip = bool(rng.integers(0, 2))
            indices = transforms.window_indices(start, num_frames, self.clip_len)
            clip = self.store.read_frames(video, indices, (*offset, size, size), flip)  # (T, H, W, C)
            label = self.flipped_label[self.labels[index]] if flip else self.labels[index]
            return torch.from_numpy(clip).permute(3, 0, 1, 2), label
        starts = transforms.spaced_window_starts(num_frames, self.clip_len, self.windows)
        offsets = ([transforms.centre_crop_offset(height, width, size)] if self.crops == 1
                   else transforms.three_crop_offsets(height, width, size))
        windows = [transforms.window_indices(s, num_frames, self.clip_len) for s in starts]
        wanted = np.unique(np.concatenate(windows))
        frames = self.store.read_frames(video, wanted)
        position = {int(f): i for i, f in enumerate(wanted)}
        views = [transforms.crop(frames[[position[int(f)] for f in w]], o, size) for w in windows for o in offsets]
        clips = torch.from_numpy(np.stack(views)).permute(0, 4, 1, 2, 3)  # (views, C, T, H, W)
        return (clips[0] if len(views) == 1 else clips), self.labels[index]
