"""The annotated copy of a video: the current class and probability drawn on every frame, written as H.264 mp4."""

from __future__ import annotations

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


def write_mp4(frames: np.ndarray, fps: float, path: str | Path, crf: int = 20) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p) at ``fps``, one output frame per input frame.

    yuv420p needs even sizes, so an odd width or height gets one replicated edge column or row.
    """
    path = Path(path)
    num_frames, height, width, _ = frames.shape
    pad_h, pad_w = height % 2, width % 2
    rate = frame_rate(fps)
    try:
        with atomic_path(path, suffix=path.suffix) as temporary, av.open(str(temporary), "w") as container:
            stream = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "veryfast"})
            stream.width, stream.height, stream.pix_fmt = width + pad_w, height + pad_h, "yuv420p"
            stream.codec_context.time_base = 1 / rate
            for index in range(num_frames):
                frame = frames[index]
                if pad_h or pad_w:
                    frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                video_frame.pts = index
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode())
    except (av.FFmpegError, OSError) as error:
        raise SttsError(f"{path}: could not write the annotated video ({error})") from None
    return path
