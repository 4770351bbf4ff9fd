"""How a checkpoint's frames become network input, as its training data was made.

``stts prepare`` keeps every ``frame_step(num_frames, rule_clip_len)``-th frame (the seed's
4/3/2/1 rule, with the clip length given to prepare, 32 by default) resized to a height (128
by default, 80 for synthetic-motion); training then centre-crops ``crop_size`` in evaluation
and divides by 255. Inference samples and resizes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from ..data.dataset import dataset_root, read_info
from ..data.video import frame_step, resized_shape
from ..errors import SttsError

DEFAULT_HEIGHT = 128  # the seed's, and stts prepare's default
DEFAULT_RULE_CLIP_LEN = 32  # stts prepare's default clip length for the frame-step rule


def clip_shape(config: dict[str, Any]) -> tuple[int, int, int, int]:
    """(C, T, H, W) of one clip the checkpoint's network takes."""
    crop = int(config["crop_size"])
    return 3, int(config["clip_len"]), crop, crop


@dataclass(frozen=True)
class Preprocessing:
    height: int  # frames resized to this height (width in proportion) before the crop
    crop_size: int
    rule_clip_len: int  # the clip length prepare's frame-step rule used
    mean: float = 0.0
    std: float = 255.0
    source: str = "default"  # where height and rule came from: checkpoint, dataset.json or default

    def step(self, num_frames: int) -> int:
        return frame_step(num_frames, self.rule_clip_len)

    def as_dict(self) -> dict[str, Any]:
        return {"height": self.height, "crop_size": self.crop_size, "frame_rule_clip_len": self.rule_clip_len,
                "mean": self.mean, "std": self.std}


def dataset_info(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The training data's dataset.json: stored in the checkpoint (``data_info``), or read from the
    dataset folder the config names when it is still at hand; else empty."""
    if isinstance(config.get("data_info"), dict):
        return config["data_info"], "checkpoint"
    try:
        return read_info(dataset_root(config["data_type"], config.get("data_root", "data"))), "dataset.json"
    except (SttsError, KeyError, TypeError, ValueError, OSError):
        return {}, "default"


def resolve_preprocessing(config: dict[str, Any], height: int | None = None) -> Preprocessing:
    """The checkpoint's preprocessing; ``height`` (--height) overrides the resize height."""
    info, source = dataset_info(config)
    stored = config.get("frame_height") or info.get("size")
    return Preprocessing(
        height=int(height or stored or DEFAULT_HEIGHT),
        crop_size=int(config["crop_size"]),
        rule_clip_len=int(config.get("frame_rule_clip_len") or info.get("clip_len") or DEFAULT_RULE_CLIP_LEN),
        mean=float(config.get("mean", 0.0)),
        std=float(config.get("std", 255.0)),
        source="checkpoint" if config.get("frame_height") else source,
    )


def resize_frames(frames: np.ndarray, height: int | None, min_side: int = 0) -> np.ndarray:
    """(K, H, W, 3) uint8 -> (K, h, w, 3): the data pipeline's size (height ``height``, width in
    proportion, see ``resized_shape``; None keeps the size) with FFmpeg's bilinear scaler, as the
    store's frames are made; grown so that neither side is under ``min_side`` (the crop).
    """
    h, w = resized_shape(frames.shape[1], frames.shape[2], height) if height else frames.shape[1:3]
    if min(h, w) < min_side:
        scale = min_side / min(h, w)
        h, w = max(min_side, round(h * scale)), max(min_side, round(w * scale))
    if (h, w) == frames.shape[1:3]:
        return frames
    out = np.empty((len(frames), h, w, 3), np.uint8)
    for index, frame in enumerate(frames):
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out[index] = image.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
    return out
