"""Where the sliding windows fall on a video and which frames each covers: pure functions of sizes."""

from __future__ import annotations

import numpy as np


def window_starts(num_kept: int, clip_len: int, stride: int) -> list[int]:
    """First kept-frame index of every window of ``clip_len`` kept frames, ``stride`` apart.

    The last window always ends on the last kept frame, so every frame is covered;
    a video with no more kept frames than a clip gets one (padded) window.
    """
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")
    if num_kept <= clip_len:
        return [0]
    starts = list(range(0, num_kept - clip_len + 1, stride))
    if starts[-1] != num_kept - clip_len:
        starts.append(num_kept - clip_len)
    return starts


def frame_slots(num_frames: int, step: int, num_kept: int) -> np.ndarray:
    """For every decoded frame, the kept frame it belongs to: frame i -> i // step, clamped.

    Frames after the last kept one (when ``step`` does not divide the count) belong to it.
    """
    return np.minimum(np.arange(num_frames) // step, num_kept - 1)


def window_frame_range(start: int, clip_len: int, step: int, num_frames: int) -> tuple[int, int]:
    """The decoded frames [first, last] a window starting at kept frame ``start`` covers."""
    first = start * step
    last = min((start + clip_len) * step, num_frames) - 1
    return first, max(first, last)


def frame_probabilities(window_probs: np.ndarray, starts: list[int], clip_len: int, slots: np.ndarray) -> np.ndarray:
    """(num_frames, classes): each frame's mean class probabilities over the windows covering it."""
    num_kept = int(slots[-1]) + 1
    total = np.zeros((num_kept, window_probs.shape[1]), dtype=np.float64)
    count = np.zeros(num_kept, dtype=np.int64)
    for start, probs in zip(starts, window_probs, strict=True):
        total[start : start + clip_len] += probs
        count[start : start + clip_len] += 1
    # the last window ends on the last kept frame, so every slot has count >= 1
    return (total / count[:, None])[slots].astype(np.float32)
