"""Class probabilities for windows sliding over a video: frames prepared as in evaluation, windows batched.

A checkpoint's network was trained on clips of ``clip_len`` frames kept every
``frame_step`` decoded frames, resized to the training height and centre-cropped;
the windows here sample the video the same way, ``stride`` kept frames apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.transforms import centre_crop_offset, crop, window_indices
from ..engine.checkpoint import load_checkpoint, model_from_checkpoint
from ..engine.precision import autocast, resolve_precision, to_model_input
from ..errors import SttsError
from .preprocess import resize_frames, resolve_preprocessing
from .windows import frame_probabilities, frame_slots, window_frame_range, window_starts


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SttsError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SttsError(f"--device {name}: no CUDA GPU is available; use cpu")
    return device


@dataclass
class VideoPrediction:
    """Window and frame probabilities of one video; windows are in decoded-frame indices."""

    classes: list[str]
    probabilities: np.ndarray  # (classes,) the mean over windows
    window_probs: np.ndarray  # (windows, classes)
    window_frames: list[tuple[int, int]]  # each window's first and last decoded frame
    frame_probs: np.ndarray  # (frames, classes), each frame's mean over the windows covering it
    step: int
    stride: int

    def topk(self, probs: np.ndarray, k: int) -> list[dict[str, Any]]:
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"class": self.classes[i], "probability": round(float(probs[i]), 6)} for i in order]

    def frame_labels(self) -> list[str]:
        best = self.frame_probs.argmax(1)
        return [f"{self.classes[i]} {self.frame_probs[t, i]:.2f}" for t, i in enumerate(best)]


class Predictor:
    """A checkpoint's network in eval mode, with its preprocessing, ready for videos.

    ``precision`` 'auto' runs bf16 autocast where the hardware has it natively;
    ``batch_size`` windows go through the network at once. ``height`` overrides the frame
    height the training data was resized to (see ``resolve_preprocessing``).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", precision: str = "auto", batch_size: int = 8,
                 height: int | None = None):
        if batch_size < 1:
            raise SttsError(f"--batch-size must be at least 1, got {batch_size}")
        self.path = Path(checkpoint)
        self.state = load_checkpoint(self.path)
        self.config = self.state["config"]
        for key in ("model_type", "clip_len", "crop_size"):
            if key not in self.config:
                raise SttsError(f"{self.path}: checkpoint config lacks {key!r}; not a stts training checkpoint")
        self.classes = [str(name) for name in self.state["classes"]]
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.autocast = autocast(self.precision, self.device)
        self.batch_size = batch_size
        self.clip_len = int(self.config["clip_len"])
        self.prep = resolve_preprocessing(self.config, height)
        model: nn.Module = model_from_checkpoint(self.state, self.path).eval()
        self.model = model.to(self.device, memory_format=torch.channels_last_3d)

    def prepare(self, kept: np.ndarray) -> np.ndarray:
        """(K, h, w, 3) uint8 frames at the training height -> (K, crop, crop, 3): centre-cropped as in evaluation."""
        size = self.prep.crop_size
        kept = resize_frames(kept, None, size)  # only when a side is under the crop (an odd --height)
        return np.ascontiguousarray(crop(kept, centre_crop_offset(*kept.shape[1:3], size), size))

    @torch.inference_mode()
    def logits(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W, 3) uint8 clips -> (N, classes) float32 logits."""
        x = to_model_input(clips.permute(0, 4, 1, 2, 3), self.device, self.prep.mean, self.prep.std)
        with self.autocast():
            return self.model(x).float().cpu()

    def predict(self, frames: np.ndarray, stride: int | None = None, progress: bool = False, name: str = "") -> VideoPrediction:
        """Probabilities for all (T, H, W, 3) uint8 decoded frames of a video held in memory."""
        if len(frames) == 0:
            raise SttsError(f"{name or 'video'}: no frames decoded")
        step = self.prep.step(len(frames))
        kept = resize_frames(frames[::step], self.prep.height)
        return self.predict_kept(kept, step, len(frames), stride, progress, name)

    def predict_kept(self, kept: np.ndarray, step: int, num_frames: int, stride: int | None = None, progress: bool = False,
                     name: str = "") -> VideoPrediction:
        """Probabilities from a video's kept frames, (K, h, w, 3) uint8 at the training height, one every ``step``
        of its ``num_frames`` decoded frames; ``stride`` in kept frames (default clip_len // 4)."""
        stride = stride or max(1, self.clip_len // 4)
        kept = torch.from_numpy(self.prepare(kept))  # (K, crop, crop, 3)
        num_kept = len(kept)
        starts = window_starts(num_kept, self.clip_len, stride)
        chunks = []
        bar = tqdm(total=len(starts), desc=name or "windows", unit="window", leave=False, disable=not progress or None)
        for first in range(0, len(starts), self.batch_size):
            batch = torch.stack([window(kept, s, self.clip_len) for s in starts[first : first + self.batch_size]])
            chunks.append(torch.softmax(self.logits(batch), dim=1))
            bar.update(len(batch))
        bar.close()
        window_probs = torch.cat(chunks).numpy()
        slots = frame_slots(num_frames, step, num_kept)
        return VideoPrediction(
            classes=self.classes,
            probabilities=window_probs.mean(0),
            window_probs=window_probs,
            window_frames=[window_frame_range(s, self.clip_len, step, num_frames) for s in starts],
            frame_probs=frame_probabilities(window_probs, starts, self.clip_len, slots),
            step=step,
            stride=stride,
        )


def window(kept: torch.Tensor, start: int, clip_len: int) -> torch.Tensor:
    """``clip_len`` kept frames from ``start``; a video shorter than a clip is padded as in training."""
    return kept[torch.from_numpy(window_indices(start, len(kept), clip_len))]
