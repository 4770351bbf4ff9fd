"""The torch Dataset over a prepared split, and where prepared data sets live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..clip import ClipSpec
from ..errors import SttsError
from .prepare import CLASSES, INFO, MANIFESTS, STORE
from .registry import get_dataset, kind_of
from .store import open_store


def dataset_root(data_type: str, data_root: str | Path = "data") -> Path:
    """A registered built-in name ('ucf101', 'synthetic-motion', ...) -> ``data_root/<name>``; anything
    else is a prepared folder's path. SttsError with the ``stts prepare`` command to run when it is not prepared.
    """
    kind = kind_of(data_type)
    root = Path(data_root) / data_type if kind else Path(data_type)
    if not (root / INFO).is_file() or not (root / MANIFESTS).is_dir():
        command = (kind or get_dataset("folder")).prepare_command(root)
        raise SttsError(f"{root} is not a prepared dataset (no {INFO}); run `{command}`")
    return root


def read_classes(root: str | Path) -> list[str]:
    path = Path(root) / CLASSES
    if not path.is_file():
        raise SttsError(f"{root}: no {CLASSES}; run `stts prepare` for this dataset first")
    return path.read_text(encoding="utf-8").splitlines()


def read_info(root: str | Path) -> dict[str, Any]:
    path = Path(root) / INFO
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SttsError(f"{path}: unreadable ({error}); run `stts prepare` for this dataset again") from None


def read_spec(root: str | Path) -> ClipSpec:
    """The clip spec ``stts prepare`` wrote: how this data set's frames are stored."""
    return ClipSpec.from_dict(read_info(root).get("spec"), str(Path(root) / INFO))


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
    """Clips of one split of a prepared data set, as uint8 (3, T, H, W) tensors, made as ``spec`` says.

    ``train``: one random clip (``ClipSpec.train_sample``) drawn from (seed, epoch, index), so that
    it differs every epoch (call ``set_epoch``; the epoch lives in shared memory, so loader workers
    that outlive an epoch read the new one) and does not depend on the number of workers; a
    flipped clip of a class in the data set's flip pairs takes its partner's label. Otherwise
    ``windows`` evenly spaced windows x ``crops`` views (``ClipSpec.eval_samples``), stacked as
    (views, 3, T, H, W) when there is more than one. ``spec`` defaults to the data set's own.
    """

    def __init__(self, root: str | Path, split: str, spec: ClipSpec | None = None, train: bool = False,
                 windows: int = 1, crops: int = 1, seed: int = 0):
        if windows < 1 or crops not in (1, 3):
            raise SttsError(f"windows must be at least 1 and crops 1 or 3, got {windows} and {crops}")
        self.root = Path(root)
        stored = read_spec(self.root)
        self.spec = spec or stored
        if self.spec.storage() != stored.storage():
            raise SttsError(f"{self.root}: its frames are stored as {stored.storage()}, the clips asked for "
                            f"expect {self.spec.storage()}; prepare the data as the checkpoint's was")
        self.split, self.train, self.windows, self.crops, self.seed = split, train, windows, crops, seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.classes = read_classes(self.root)
        self.videos, self.labels = read_manifest(self.root, split)
        self.flipped_label = flipped_labels(self.classes, read_info(self.root).get("flip_pairs", []))
        self.store = open_store(self.root / STORE)
        for video in self.videos:
            entry = self.store.entries.get(video)
            if entry is None:
                raise SttsError(f"{self.root}: {video} is in the {split} manifest but not in the store; "
                                "rerun `stts prepare` for this dataset")
            if entry.get("source_frames", len(entry["sizes"])) < 2:  # what stts.data.video.video_frames refuses
                raise SttsError(f"{self.root}: {video} is stored as a single frame: a still picture, not a video; "
                                "prepare the data set again with this stts (it skips such files)")
            self.spec.check_frame_size(entry["height"], entry["width"], str(self.root))

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def frame_counts(self) -> list[int]:
        """Stored frames of every video of the split."""
        return [self.store.num_frames(video) for video in self.videos]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        video = self.videos[index]
        entry = self.store.entries[video]
        shape = (len(entry["sizes"]), entry["height"], entry["width"])
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            sample = self.spec.train_sample(*shape, rng)
            clip = self.spec.to_crop(self.store.read_frames(video, sample.indices, sample.box, sample.flip))
            label = self.flipped_label[self.labels[index]] if sample.flip else self.labels[index]
            return torch.from_numpy(clip).permute(3, 0, 1, 2), label  # (3, T, H, W)
        samples = self.spec.eval_samples(*shape, self.windows, self.crops)
        wanted = np.unique(np.concatenate([s.indices for s in samples]))
        frames = self.store.read_frames(video, wanted)
        position = np.searchsorted(wanted, np.arange(wanted.max() + 1))
        views = []
        for sample in samples:
            top, left, height, width = sample.box
            views.append(self.spec.to_crop(frames[position[sample.indices], top:top + height, left:left + width]))
        clips = torch.from_numpy(np.stack(views)).permute(0, 4, 1, 2, 3)  # (views, 3, T, H, W)
        return (clips[0] if len(views) == 1 else clips), self.labels[index]
