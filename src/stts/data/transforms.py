"""Clip sampling and cropping as pure functions of sizes and a random generator."""

from __future__ import annotations

import numpy as np


def clip_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one clip: depends on (seed, epoch, index) only, never on the worker that loads it."""
    return np.random.default_rng([seed, epoch, index])


def window_indices(start: int, num_frames: int, clip_len: int) -> np.ndarray:
    """Frame indices of the window of ``clip_len`` from ``start``.

    A video shorter than the clip is stretched by repeating frames in order (0,0,1,1,2,...),
    so it is padded, never dropped, and its motion keeps its direction.
    """
    if num_frames >= clip_len:
        return np.arange(start, start + clip_len)
    return np.arange(clip_len) * num_frames // clip_len


def random_window_start(num_frames: int, clip_len: int, rng: np.random.Generator) -> int:
    return int(rng.integers(0, max(num_frames - clip_len, 0) + 1))


def middle_window_start(num_frames: int, clip_len: int) -> int:
    return max(num_frames - clip_len, 0) // 2


def spaced_window_starts(num_frames: int, clip_len: int, windows: int) -> list[int]:
    """``windows`` starts evenly spaced from the first to the last full window; one window is the middle one."""
    if windows == 1:
        return [middle_window_start(num_frames, clip_len)]
    last = max(num_frames - clip_len, 0)
    return [round(i * last / (windows - 1)) for i in range(windows)]


def random_crop_offset(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def centre_crop_offset(height: int, width: int, size: int) -> tuple[int, int]:
    return (height - size) // 2, (width - size) // 2


def three_crop_offsets(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Start, centre and end crops along the longer side (left/centre/right for landscape video)."""
    top, left = centre_crop_offset(height, width, size)
    if width >= height:
        return [(top, 0), (top, left), (top, width - size)]
    return [(0, left), (top, left), (height - size, left)]


def crop(frames: np.ndarray, offset: tuple[int, int], size: int, flip: bool = False) -> np.ndarray:
    """(T, H, W, C) -> (T, size, size, C) view at ``offset``, mirrored left-right if ``flip``."""
    top, left = offset
    out = frames[:, top:top + size, left:left + size]
    return out[:, :, ::-1] if flip else out
