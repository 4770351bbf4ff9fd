"""Decoding with PyAV (FFmpeg): frames upright, kept and resized as the clip spec says."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..clip import ClipSpec
from ..errors import SttsError


def not_a_video(container) -> str | None:
    """Why an opened container is no video, before decoding (None when it may be one): no video stream (an
    audio-only file), or a picture, which FFmpeg reads as a one-frame video (image2, png_pipe, jpeg_pipe...)."""
    if not container.streams.video:
        return "has no video stream"
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        return f"is an image ({container.streams.video[0].codec_context.name}), not a video"
    return None


def video_frames(container, label: str, frames: Iterable) -> Iterator:
    """The one door of every entry point (stts prepare, infer and serve): ``frames``, the caller's own decode of
    ``container``, passed on as they come, when it is a video: one with a video stream that decodes to more
    than one frame. Otherwise a one-line SttsError naming ``label``: no video stream, a picture (also one
    named .mp4), or a decode that ends before its second frame (a 1-frame file, a stream that stops). Nothing
    is read ahead, so a live stream is checked as it plays."""
    problem = not_a_video(container)
    if problem:
        raise SttsError(f"{label}: {problem}")
    count = 0
    for frame in frames:
        count += 1
        yield frame
    if count < 2:
        raise SttsError(f"{label}: " + ("decodes to a single frame: a still picture, not a video" if count
                                        else "no decodable video frames"))


def _open(path: Path):
    path = Path(path)
    if not path.is_file():
        raise SttsError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise SttsError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise SttsError(f"{path}: not a readable video ({error})") from None
    problem = not_a_video(container)
    if problem:
        container.close()
        raise SttsError(f"{path}: {problem}")
    return container


def _to_array(frame, shape: tuple[int, int] | None, reformatter: VideoReformatter) -> np.ndarray:
    rotation = getattr(frame, "rotation", 0) or 0
    if shape is not None and rotation % 180:
        shape = shape[::-1]  # resize before rotating, so the rotated frame has the asked height
    height, width = shape or (frame.height, frame.width)
    # one reformatter a video keeps FFmpeg's scaler context instead of building one per frame (4x faster)
    array = reformatter.reformat(frame, width, height, "rgb24", interpolation="BILINEAR").to_ndarray()
    if rotation % 360:
        array = np.ascontiguousarray(np.rot90(array, k=(rotation // 90) % 4))
    return array


def _target_shape(frame, spec: ClipSpec | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    rotation = getattr(frame, "rotation", 0) or 0
    h, w = (frame.width, frame.height) if rotation % 180 else (frame.height, frame.width)
    return spec.stored_shape(h, w)


class FrameConverter:
    """Decoded PyAV frames -> uint8 (H, W, 3) RGB, upright: at the spec's stored size (fixed by the first
    frame, as the store does), or at full size without a spec. One scaler context for all frames."""

    def __init__(self, spec: ClipSpec | None = None):
        self.spec, self.shape, self.reformatter = spec, None, VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        if self.shape is None:
            self.shape = _target_shape(frame, self.spec)
        return _to_array(frame, self.shape, self.reformatter)


def iter_frames(path: Path, threads: int = 0):
    """Yield decoded PyAV frames; ``threads`` 0 lets FFmpeg choose. SttsError names the file on failure,
    and on a file that is no video (:func:`video_frames`)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        yield from video_frames(container, str(path), container.decode(stream))
    except av.FFmpegError as error:
        raise SttsError(f"{path}: corrupt video ({error})") from None
    finally:
        container.close()


def header_frame_count(path: Path) -> int:
    """Frames announced by the container (0 when unknown); cheap, no decoding."""
    container = _open(path)
    try:
        return max(container.streams.video[0].frames, 0)
    finally:
        container.close()


def read_video(path: str | Path, spec: ClipSpec | None = None, threads: int = 0) -> tuple[np.ndarray, float]:
    """All frames of a video as uint8 (T, H, W, 3) RGB, and its frame rate.

    With ``spec``, frames are resized to its stored size (see ``ClipSpec.stored_shape``); rotation
    metadata is applied. Raises SttsError naming the file when it is missing, empty or not decodable.
    """
    container = _open(path)
    fps = float(container.streams.video[0].average_rate or 25)
    container.close()
    frames, shape, reformatter = [], None, VideoReformatter()
    for frame in iter_frames(path, threads):
        if shape is None:
            shape = _target_shape(frame, spec)
        frames.append(_to_array(frame, shape, reformatter))
    if not frames:
        raise SttsError(f"{path}: no decodable video frames")
    return np.stack(frames), fps


@dataclass
class KeptFrames:
    """The frames a video keeps under a clip spec, as stts prepare stores them."""

    frames: list[np.ndarray]  # uint8 (H, W, 3) at the spec's stored size
    step: int  # one kept frame every ``step`` decoded frames
    decoded: int  # frames decoded
    announced: int  # frames the container announced (0: unknown)
    fps: float

    @property
    def partial(self) -> bool:
        """Decoding stopped well before the announced end (a truncated file)."""
        return self.announced > 0 and self.decoded < self.announced * 0.9


def read_kept_frames(path: Path, spec: ClipSpec, threads: int = 1,
                     full: list[np.ndarray] | None = None) -> KeptFrames:
    """The frames the store keeps, converting only kept frames.

    The step comes from the container's frame count when it announces one (AVI does), else from
    the decoded count after converting every frame; a file that decodes to fewer frames than it
    announced is decoded again with the step of the frames it really has. Every decoded frame is
    also appended to ``full`` at its own size, upright, when a list is given (one decode for a
    caller that needs both).
    """
    container = _open(path)
    fps = float(container.streams.video[0].average_rate or 25)
    announced = max(container.streams.video[0].frames, 0)
    container.close()
    kept, count = _decode_kept(path, spec, spec.keep_step(announced) if announced else 1, threads, full)
    if not announced:
        step = spec.keep_step(count)
        return KeptFrames(kept[::step], step, count, announced, fps)
    step = spec.keep_step(announced)
    if spec.keep_step(count) != step:
        step = spec.keep_step(count)
        kept, count = _decode_kept(path, spec, step, threads, None)
    return KeptFrames(kept, step, count, announced, fps)


def _decode_kept(path: Path, spec: ClipSpec, step: int, threads: int,
                 full: list[np.ndarray] | None) -> tuple[list[np.ndarray], int]:
    kept, shape, count, reformatter, full_reformatter = [], None, 0, VideoReformatter(), VideoReformatter()
    for index, frame in enumerate(iter_frames(path, threads)):
        count += 1
        if full is not None:
            full.append(_to_array(frame, None, full_reformatter))
        if index % step == 0:
            if shape is None:
                shape = _target_shape(frame, spec)
            kept.append(_to_array(frame, shape, reformatter))
    if not kept:
        raise SttsError(f"{path}: no decodable video frames")
    return kept, count


def resize_to_stored(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """(T, H, W, 3) uint8 frames already decoded at full size -> the spec's stored size, with FFmpeg's
    bilinear scaler as the store's frames are made (frames decoded elsewhere, e.g. in memory)."""
    height, width = spec.stored_shape(*frames.shape[1:3])
    if (height, width) == frames.shape[1:3]:
        return frames
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for index, frame in enumerate(frames):
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out[index] = image.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
    return out
