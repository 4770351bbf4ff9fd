"""The annotated copy of a video: the current class and probability drawn on every frame, written as H.264 mp4."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import SttsError
from ..files import atomic_path


def label_font(frame_height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    size = max(10, frame_height // 14)
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def draw_label(frame: np.ndarray, text: str, font) -> np.ndarray:
    """Draw ``text`` in white on a dark box in the frame's top-left corner; returns a new (H, W, 3) array."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    margin = max(2, frame.shape[0] // 60)
    left, top, right, bottom = draw.textbbox((2 * margin, 2 * margin), text, font=font)
    draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=(0, 0, 0, 170))
    draw.text((2 * margin, 2 * margin), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(image)


def annotate_frames(frames: np.ndarray, labels: list[str]) -> np.ndarray:
    """(T, H, W, 3) uint8 frames with ``labels[t]`` drawn on frame t, in place when writable; returned."""
    if not frames.flags.writeable:
        frames = frames.copy()
    font = label_font(frames.shape[1])
    for index, (frame, text) in enumerate(zip(frames, labels, strict=True)):
        frames[index] = draw_label(frame, text, font)
    return frames


def frame_rate(fps: float) -> Fraction:
    """A float rate as the fraction a container stores: 25.0 -> 25, 29.97002997 -> 30000/1001."""
    if not fps or fps <= 0 or not np.isfinite(fps):
        return Fraction(25)
    return Fraction(fps).limit_denominator(1001)


# frames larger than 720p are encoded without look-ahead or B-frames (x264's zerolatency): at 1080p its
# frame pool then takes 75 MB instead of 179 MB, for files about 1.7x larger (measured with PyAV's libx264)
LOW_LATENCY_PIXELS = 1280 * 720


class H264Writer:
    """Frames written one by one as H.264 (yuv420p) at ``rate``, one output frame per input frame; the stream's
    size is the first frame's. yuv420p needs even sizes, so an odd width or height gets one replicated edge
    column or row. Frames over ``LOW_LATENCY_PIXELS`` are encoded without look-ahead, to bound memory."""

    def __init__(self, container, rate: Fraction, crf: int):
        self.container, self.rate, self.crf = container, rate, crf
        self.stream, self.count = None, 0

    def write(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        pad_h, pad_w = height % 2, width % 2
        if self.stream is None:
            options = {"crf": str(self.crf), "preset": "veryfast"}
            if width * height > LOW_LATENCY_PIXELS:
                options["tune"] = "zerolatency"
            self.stream = self.container.add_stream("libx264", rate=self.rate, options=options)
            self.stream.width, self.stream.height, self.stream.pix_fmt = width + pad_w, height + pad_h, "yuv420p"
            self.stream.codec_context.time_base = 1 / self.rate
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.count
        self.count += 1
        self.container.mux(self.stream.encode(video_frame))

    def flush(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode())


@contextlib.contextmanager
def mp4_writer(path: str | Path, fps: float, crf: int = 20) -> Iterator[H264Writer]:
    """An :class:`H264Writer` to a temporary file beside ``path``, renamed to ``path`` when the block ends
    without error (a video streamed for hours is complete or absent, never half-written)."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=path.suffix) as temporary, av.open(str(temporary), "w") as container:
            writer = H264Writer(container, frame_rate(fps), crf)
            yield writer
            if writer.stream is None:
                raise SttsError(f"{path}: no frames to write")
            writer.flush()
    except (av.FFmpegError, OSError) as error:
        raise SttsError(f"{path}: could not write the video ({error})") from None


def write_mp4(frames: np.ndarray, fps: float, path: str | Path, crf: int = 20) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p) at ``fps``: see :class:`H264Writer`."""
    with mp4_writer(path, fps, crf) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
