"""Shared fixtures: a small in-memory clip dataset of the same shapes and dtype as stts.data.ClipDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset


class MovingSquares(Dataset):
    """uint8 clips (3, T, H, W) of a bright square moving right, left, down or up (the label).

    Start position and colour come from (seed, epoch, index), like ClipDataset's augmentation.
    """

    classes = ["right", "left", "down", "up"]

    def __init__(self, size: int = 16, clip_len: int = 8, crop_size: int = 32, seed: int = 0, train: bool = False):
        self.size, self.clip_len, self.crop_size, self.seed, self.train, self.epoch = size, clip_len, crop_size, seed, train, 0
        self.labels = [i % len(self.classes) for i in range(size)]
        self.videos = [f"{self.classes[label]}/{i:03d}" for i, label in enumerate(self.labels)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, index])
        label, t, s = self.labels[index], self.clip_len, self.crop_size
        side = s // 4
        dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][label]
        y, x = rng.integers(side, s - 2 * side, size=2)
        clip = rng.integers(0, 40, size=(3, t, s, s), dtype=np.uint8)
        colour = rng.integers(150, 256, size=3, dtype=np.uint8)
        for frame in range(t):
            top, left = (y + dy * frame * 2) % (s - side), (x + dx * frame * 2) % (s - side)
            clip[:, frame, top:top + side, left:left + side] = colour[:, None, None]
        return torch.from_numpy(clip), label


def moving_squares(sizes=(16, 8, 8), **options) -> dict[str, Dataset]:
    return {split: MovingSquares(size, seed=seed, train=split == "train", **options)
            for seed, (split, size) in enumerate(zip(("train", "val", "test"), sizes, strict=True))}


@pytest.fixture
def tiny_data() -> dict[str, Dataset]:
    return moving_squares()
