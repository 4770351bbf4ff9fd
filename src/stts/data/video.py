"""Decoding with PyAV (FFmpeg): the seed's frame-step rule and its resize to a fixed height."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import SttsError

MAX_STEP = 4


def frame_step(num_frames: int, clip_len: int) -> int:
    """The seed's rule: keep every 4th frame, or every 3rd/2nd/1st when fewer than ``clip_len`` would be kept."""
    step = MAX_STEP
    while step > 1 and len(range(0, num_frames, step)) < clip_len:
        step -= 1
    return step


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the height ``size`` and the width in proportion (320x240 -> 170x128).

    As in the seed, a frame whose width would fall under 7/8 of ``size`` (112 for 128) gets the
    width ``size`` and the height in proportion instead, so a square crop still fits.
    """
    new_width = int(width * size / height)
    if new_width < size * 7 // 8:
        return int(height * size / width), size
    return size, new_width


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
    if not container.streams.video:
        container.close()
        raise SttsError(f"{path}: has no video stream")
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


def _target_shape(frame, height: int | None) -> tuple[int, int] | None:
    if height is None:
        return None
    rotation = getattr(frame, "rotation", 0) or 0
    h, w = (frame.width, frame.height) if rotation % 180 else (frame.height, frame.width)
    return resized_shape(h, w, height)


def iter_frames(path: Path, threads: int = 0):
    """Yield decoded PyAV frames; ``threads`` 0 lets FFmpeg choose. SttsError names the file on failure."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        yield from container.decode(stream)
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


def read_video(path: str | Path, height: int | None = None, threads: int = 0) -> tuple[np.ndarray, float]:
    """All frames of a video as uint8 (T, H, W, 3) RGB, and its frame rate.

    ``height`` resizes to that height keeping the aspect ratio (see ``resized_shape``); rotation
    metadata is applied. Raises SttsError naming the file when it is missing, empty or not decodable.
    """
    container = _open(path)
    fps = float(container.streams.video[0].average_rate or 25)
    container.close()
    frames, shape, reformatter = [], None, VideoReformatter()
    for frame in iter_frames(path, threads):
        if shape is None:
            shape = _target_shape(frame, height)
        frames.append(_to_array(frame, shape, reformatter))
    if not frames:
        raise SttsError(f"{path}: no decodable video frames")
    return np.stack(frames), fps


def read_kept_frames(path: Path, height: int, clip_len: int, threads: int = 1,
                     full: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], int, int, float]:
    """The frames the store keeps: (frames, step, decoded frame count, fps), converting only kept frames.

    The step comes from the container's frame count when it announces one (AVI does), else from
    the decoded count after converting every frame. Every decoded frame is also appended to
    ``full`` at its own size, upright, when a list is given: one decode for a caller that needs
    both (``stts infer`` predicts on the kept frames and annotates all of them).
    """
    container = _open(path)
    fps = float(container.streams.video[0].average_rate or 25)
    announced = max(container.streams.video[0].frames, 0)
    container.close()
    step = frame_step(announced, clip_len) if announced else 1
    kept, shape, count, reformatter, full_reformatter = [], None, 0, VideoReformatter(), VideoReformatter()
    for index, frame in enumerate(iter_frames(path, threads)):
        count += 1
        if full is not None:
            full.append(_to_array(frame, None, full_reformatter))
        if index % step == 0:
            if shape is None:
                shape = _target_shape(frame, height)
            kept.append(_to_array(frame, shape, reformatter))
    if not kept:
        raise SttsError(f"{path}: no decodable video frames")
    if not announced:
        step = frame_step(count, clip_len)
        kept = kept[::step]
    return kept, step, count, fps
