"""Which decoded frames each sliding window covers, and each frame's probabilities: pure functions of sizes.

Windows are counted in kept (stored) frames; a window starting at kept frame ``start`` covers
``span`` kept frames (see ``ClipSpec.span``), one every ``step`` decoded frames.
"""

from __future__ import annotations

import numpy as np


def frame_slots(num_frames: int, step: int, num_kept: int) -> np.ndarray:
    """For every decoded frame, the kept frame it belongs to: frame i -> i // step, clamped.

    Frames after the last kept one (when ``step`` does not divide the count) belong to it.
    """
    return np.minimum(np.arange(num_frames) // step, num_kept - 1)


def window_frame_range(start: int, span: int, step: int, num_frames: int) -> tuple[int, int]:
    """The decoded frames [first, last] a window starting at kept frame ``start`` covers."""
    first = start * step
    last = min((start + span) * step, num_frames) - 1
    return first, max(first, last)


def frame_probabilities(window_probs: np.ndarray, starts: list[int], span: int, slots: np.ndarray) -> np.ndarray:
    """(num_frames, classes): each frame's mean class probabilities over the windows covering it."""
    num_kept = int(slots[-1]) + 1
    total = np.zeros((num_kept, window_probs.shape[1]), dtype=np.float64)
    count = np.zeros(num_kept, dtype=np.int64)
    for start, probs in zip(starts, window_probs, strict=True):
        total[start : start + span] += probs
        count[start : start + span] += 1
    # the last window ends on the last kept frame, so every slot has count >= 1
    return (total / np.maximum(count, 1)[:, None])[slots].astype(np.float32)
