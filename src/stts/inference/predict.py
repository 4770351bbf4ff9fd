"""Class probabilities for windows sliding over a video, made by the checkpoint's clip spec, windows batched.

The frames a checkpoint sees are decided by its clip spec alone (see :mod:`stts.clip`): the
frames kept and their stored size as ``stts prepare`` made them, then the evaluation view of
each window of ``spec.clip_len`` frames, ``stride`` kept frames apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.video import resize_to_stored
from ..errors import SttsError
from ..runtime import load_model
from .windows import frame_probabilities, frame_slots, window_frame_range

# activations of a pass on a CPU: a window takes about ACTIVATION_FACTOR times its largest fp32 tensor (measured:
# full-width STTS-A at 32x112x112, largest 44 MB, 220-330 MB a window; width 16 there, 60-90 MB a window)
CPU_PASS_BYTES = 384 * 2**20
ACTIVATION_FACTOR = 8


@dataclass
class VideoPrediction:
    """Window and frame probabilities of one video; windows are in decoded-frame indices."""

    classes: list[str]
    probabilities: np.ndarray  # (classes,) the mean over windows
    window_probs: np.ndarray  # (windows, classes)
    window_frames: list[tuple[int, int]]  # each window's first and last decoded frame
    # (frames, classes), each frame's mean over the windows covering it; None from streaming, which labels
    # frames as it goes and keeps nothing that grows with the video's length
    frame_probs: np.ndarray | None
    step: int
    stride: int

    @classmethod
    def from_windows(cls, classes: list[str], window_probs: np.ndarray, starts: list[int], *, span: int, step: int,
                     stride: int, num_frames: int, num_kept: int | None = None) -> VideoPrediction:
        """A video's prediction from its windows' probabilities (W, classes), in the order of ``starts`` (each
        window's first kept frame): the video's probabilities are their mean, each window's decoded frames
        follow from ``span``, ``step`` and ``num_frames``. With ``num_kept`` (the video's kept frames) every
        decoded frame also gets its probabilities (``frame_probs``); without, they are left out (None)."""
        window_probs = np.asarray(window_probs).reshape(len(starts), len(classes))
        frame_probs = None
        if num_kept is not None:
            frame_probs = frame_probabilities(window_probs, starts, span, frame_slots(num_frames, step, num_kept))
        return cls(
            classes=classes,
            probabilities=window_probs.mean(0) if len(starts) else np.zeros(len(classes), np.float32),
            window_probs=window_probs,
            window_frames=[window_frame_range(s, span, step, num_frames) for s in starts],
            frame_probs=frame_probs,
            step=step,
            stride=stride,
        )

    def topk(self, probs: np.ndarray, k: int) -> list[dict[str, Any]]:
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"class": self.classes[i], "probability": round(float(probs[i]), 6)} for i in order]

    def frame_labels(self) -> list[str]:
        best = self.frame_probs.argmax(1)
        return [f"{self.classes[i]} {self.frame_probs[t, i]:.2f}" for t, i in enumerate(best)]


class Predictor:
    """A checkpoint loaded for use (see :func:`stts.runtime.load_model`), ready for videos.

    ``precision`` 'auto' runs the precision the network was trained in where the hardware runs
    it natively; ``batch_size`` windows go through the network at once. None: 8 on a GPU; on a CPU as many
    (1 to 8) as keep a pass's activations under ``CPU_PASS_BYTES``: a batch of 8 full-width 32x112x112 windows
    held 2.7 GB and ran no faster than one at a time, while small networks gain from batching
    (``benchmarks/bench_infer.py``).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", precision: str = "auto",
                 batch_size: int | None = 8):
        if batch_size is not None and batch_size < 1:
            raise SttsError(f"--batch-size must be at least 1, got {batch_size}")
        self.loaded = load_model(checkpoint, device, precision)
        self.path, self.spec, self.classes = self.loaded.path, self.loaded.spec, self.loaded.classes
        self.config, self.precision, self.device = self.loaded.config, self.loaded.precision, self.loaded.device
        self.batch_size = batch_size or (self.cpu_batch_size() if self.device.type == "cpu" else 8)

    def cpu_batch_size(self) -> int:
        """Windows a pass on a CPU: as many (1 to 8) as keep its activations within ``CPU_PASS_BYTES``. Full-width
        32x112x112 windows: 1 (a batch of 8 held 2.7 GB and ran no faster); width 16 there: 4 (faster than 1);
        ``--preset small``'s 16x48x48 clips: 8."""
        window_bytes = ACTIVATION_FACTOR * 4 * self.loaded.largest_activation()
        return int(min(8, max(1, CPU_PASS_BYTES // window_bytes)))

    def default_stride(self) -> int:
        """A quarter of a clip's span, in kept frames."""
        return max(1, self.spec.span // 4)

    def predict(self, frames: np.ndarray, stride: int | None = None, progress: bool = False, name: str = "") -> VideoPrediction:
        """Probabilities for all (T, H, W, 3) uint8 decoded frames of a video held in memory."""
        if len(frames) == 0:
            raise SttsError(f"{name or 'video'}: no frames decoded")
        step = self.spec.keep_step(len(frames))
        kept = resize_to_stored(frames[::step], self.spec)
        return self.predict_kept(kept, step, len(frames), stride, progress, name)

    def predict_kept(self, kept: np.ndarray, step: int, num_frames: int, stride: int | None = None, progress: bool = False,
                     name: str = "") -> VideoPrediction:
        """Probabilities from a video's kept frames, (K, h, w, 3) uint8 at the stored size, one every ``step``
        of its ``num_frames`` decoded frames; ``stride`` in kept frames (default a quarter of a clip)."""
        stride = stride or self.default_stride()
        views = torch.from_numpy(self.spec.centre_view(kept))  # (K, crop, crop, 3)
        num_kept = len(views)
        starts = self.spec.window_starts(num_kept, stride)
        chunks = []
        bar = tqdm(total=len(starts), desc=name or "windows", unit="window", leave=False, disable=not progress or None)
        for first in range(0, len(starts), self.batch_size):
            batch = torch.stack([views[torch.from_numpy(self.spec.window_indices(s, num_kept))]
                                 for s in starts[first : first + self.batch_size]])  # (N, T, H, W, 3)
            chunks.append(self.loaded.probabilities(batch.permute(0, 4, 1, 2, 3)))
            bar.update(len(batch))
        bar.close()
        return VideoPrediction.from_windows(self.classes, torch.cat(chunks).numpy(), starts, span=self.spec.span,
                                            step=step, stride=stride, num_frames=num_frames, num_kept=num_kept)
