"""The one place ``stts serve`` touches the prediction code: load, windows, forward, record.

The server (``app.py``, ``batcher.py``) sees only what this module returns: a ``Model``
with its classes and clip description, ``VideoWindows`` whose ``items`` are opaque
per-window tokens, ``forward(model, items)`` giving class probabilities, and
``video_record`` giving the JSON of ``stts infer --json``. When the inference code
changes, this module alone follows it.

Today it is built on the Python API's ``stts.load`` (the checkpoint loaded as ``stts infer`` loads it,
with its clip spec), ``stts.data.video.read_kept_frames`` (decoding with the spec's frame rule), the
spec's windows and evaluation view, ``VideoPrediction.from_windows`` and ``stts.Prediction``'s record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from .. import api
from ..data.video import read_kept_frames
from ..errors import SttsError
from ..inference.predict import VideoPrediction
from ..inference.report import video_record as inference_record

MAX_FPS = 120  # frames a second counted against --max-duration: a 1000 fps header cannot hide a long video
MAX_PIXELS = 4096 * 4096  # one decoded frame; a tiny file may announce any size


class VideoTooLong(SttsError):
    """The video is longer (or larger) than the server accepts: the client's to fix, HTTP 413."""


@dataclass
class Model:
    name: str
    path: Path
    classes: list[str]
    clip: dict[str, Any]  # what a client needs to know about the windows the network sees
    device: str
    precision: str
    network: Any  # opaque to the server: today a stts.Model


@dataclass
class VideoWindows:
    """One uploaded video, decoded and cut into windows, waiting for the network."""

    items: list[Any]  # one opaque token per window, handed back to forward()
    fps: float
    frames: int  # decoded frames
    duration: float  # seconds
    state: Any  # what video_record needs besides the probabilities


@dataclass
class _Window:
    kept: np.ndarray  # (K, crop, crop, 3) uint8, shared by the video's windows
    start: int


def load_model(path: str | Path, name: str, device: str = "auto", precision: str = "auto", max_batch: int = 1) -> Model:
    """Read a checkpoint once and run one forward pass per batch size up to ``max_batch``.

    oneDNN builds (and caches) its kernels per input shape: warmed up this way, the first
    requests are not slow and the memory at rest already holds every batch size's kernels,
    so that it comes back to that level after a burst.
    """
    # the batcher decides the batches: the network takes each in one pass
    loaded = api.load(path, device, precision, batch_size=max(1, max_batch))
    spec = loaded.spec
    clip = {"spec": spec.to_dict(), "description": spec.describe(), "stride": loaded.default_stride(),
            "model_type": loaded.config["model_type"]}
    model = Model(name, Path(path), loaded.classes, clip, str(loaded.device), loaded.precision, loaded)
    channels, frames, height, width = spec.input_shape()
    blank = np.zeros((frames, height, width, channels), np.uint8)
    for size in range(1, max_batch + 1):
        forward(model, [_Window(blank, 0)] * size)
    return model


def probe(path: Path, max_duration: float) -> tuple[float, int, float]:
    """(fps, frames, seconds) from the container's packets, without decoding; refuses what is over the limits.

    Packets are counted rather than the header believed: a truncated file has fewer than it
    announces and a hostile one may announce anything.
    """
    if path.stat().st_size == 0:
        raise SttsError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise SttsError(f"{path}: not a readable video ({error})") from None
    try:
        if not container.streams.video:
            raise SttsError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_PIXELS:
            raise VideoTooLong(f"{path}: frames of {width}x{height}, over the {MAX_PIXELS} pixels this server decodes")
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        limit = int(max_duration * MAX_FPS)
        frames = 0
        for packet in container.demux(stream):
            frames += packet.size > 0
            if frames > limit:
                raise VideoTooLong(f"{path}: more than {limit} frames, over --max-duration {max_duration:g} s")
    except av.FFmpegError as error:
        raise SttsError(f"{path}: corrupt video ({error})") from None
    finally:
        container.close()
    if frames == 0:
        raise SttsError(f"{path}: no video frames")
    duration = frames / fps
    if duration > max_duration:
        raise VideoTooLong(f"{path}: {duration:.1f} s of video, over --max-duration {max_duration:g} s")
    return fps, frames, duration


def video_windows(model: Model, path: Path, max_duration: float, stride: int | None = None) -> VideoWindows:
    """Decode a video file as ``stts infer`` does and cut it into the network's windows (CPU, no torch threads)."""
    loaded: api.Model = model.network
    probe(path, max_duration)
    try:
        decoded = read_kept_frames(path, loaded.spec)
    except av.FFmpegError as error:  # read_kept_frames names most failures; a few come through from FFmpeg
        raise SttsError(f"{path}: corrupt video ({error})") from None
    kept = loaded.spec.centre_view(np.stack(decoded.frames))  # (K, crop, crop, 3)
    stride = stride or loaded.default_stride()
    starts = loaded.spec.window_starts(len(kept), stride)
    return VideoWindows(
        items=[_Window(kept, start) for start in starts],
        fps=decoded.fps,
        frames=decoded.decoded,
        duration=decoded.decoded / decoded.fps,
        state={"starts": starts, "step": decoded.step, "stride": stride},
    )


def forward(model: Model, items: list[Any]) -> np.ndarray:
    """One forward pass over windows (of any videos): (N, classes) float32 probabilities."""
    spec = model.network.spec
    clips = np.stack([item.kept[spec.window_indices(item.start, len(item.kept))] for item in items])  # (N, T, H, W, 3)
    return model.network.predict_clips(torch.from_numpy(clips).permute(0, 4, 1, 2, 3)).numpy()


def video_record(model: Model, name: str, video: VideoWindows, probabilities: np.ndarray, k: int) -> dict[str, Any]:
    """The JSON record of ``stts infer --json`` for one video, from its windows' probabilities in order."""
    prediction = VideoPrediction.from_windows(model.classes, probabilities, video.state["starts"],
                                              span=model.network.spec.span, step=video.state["step"],
                                              stride=video.state["stride"], num_frames=video.frames)
    record = inference_record(name, prediction, min(k, len(model.classes)), video.fps, video.frames)
    return api.Prediction.from_record(record, prediction, video.fps).to_dict()
