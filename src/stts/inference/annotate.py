"""The annotated copy of a video: the current class and probability drawn on every frame, written as H.264 mp4.

Decoded frames are drawn on and encoded as they come, in yuv420p, the encoder's own format: no
conversion to RGB and back (at 1080p those two cost more than the drawing). A label is rendered
once per text (:class:`LabelPainter`) and applied to the few rows and columns of its box; the
encoder runs on its own thread (:class:`H264Writer`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageDraw, ImageFont

from ..errors import SttsError
from ..files import atomic_path

BOX_ALPHA = 170  # the label box's opacity, of 255
# labels kept rendered per video: a text is "class 0.87", so a video shows a few hundred at most; at 1080p one
# takes ~0.7 MB, at 320x240 ~70 KB
LABEL_CACHE_BYTES = 32 * 2**20


def label_font(frame_height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    size = max(10, frame_height // 14)
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def label_margin(frame_height: int) -> int:
    return max(2, frame_height // 60)


def draw_label(frame: np.ndarray, text: str, font) -> np.ndarray:
    """Draw ``text`` in white on a dark box in the frame's top-left corner; returns a new (H, W, 3) array."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    margin = label_margin(frame.shape[0])
    left, top, right, bottom = draw.textbbox((2 * margin, 2 * margin), text, font=font)
    draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=(0, 0, 0, BOX_ALPHA))
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


@dataclass
class _Overlay:
    """What one label does to a yuv420p frame's planes over its box, (top, left) even: value * keep + add."""

    top: int
    left: int
    keep: np.ndarray  # (h, w) float32, luma
    add: np.ndarray
    keep_chroma: np.ndarray  # (h / 2, w / 2) float32
    add_chroma: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.keep.nbytes + self.add.nbytes + self.keep_chroma.nbytes + self.add_chroma.nbytes


def plane_array(plane) -> np.ndarray:
    """A writable (height, width) uint8 view of a frame's plane (its rows' padding left out)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]


class LabelPainter:
    """Labels drawn on the yuv420p frames of one video as :func:`draw_label` draws them on RGB ones: white text on
    a dark box in the top-left corner. Each text is rendered once (those last used kept, up to
    ``LABEL_CACHE_BYTES``), as what it does to the planes over its box; a frame then costs a multiply-add over
    the box's pixels.

    Over a pixel of value v (RGB), the box and the text (coverage c) give v * (1 - a) * (1 - c) + 255 * c; black
    and white being grey, that is the same mix in video-range luma around 16 (plus 219 c) and in chroma around
    128, the chroma taking the mean of its 2x2 pixels' factors.
    """

    def __init__(self, frame_height: int, frame_width: int):
        self.height, self.width = frame_height, frame_width
        self.font, self.margin = label_font(frame_height), label_margin(frame_height)
        self.overlays: OrderedDict[str, _Overlay | None] = OrderedDict()
        self.cached_bytes = 0

    def overlay(self, text: str) -> _Overlay | None:
        if text in self.overlays:
            self.overlays.move_to_end(text)
            return self.overlays[text]
        found = self.overlays[text] = self._render(text)
        self.cached_bytes += found.nbytes if found else 0
        while self.cached_bytes > LABEL_CACHE_BYTES and len(self.overlays) > 1:
            _, dropped = self.overlays.popitem(last=False)
            self.cached_bytes -= dropped.nbytes if dropped else 0
        return found

    def _render(self, text: str) -> _Overlay | None:
        margin, origin = self.margin, 2 * self.margin
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        left, top, right, bottom = probe.textbbox((origin, origin), text, font=self.font)
        box = (left - margin, top - margin, right + margin + 1, bottom + margin + 1)  # PIL's box includes its corner
        x0, y0 = max(0, box[0]) // 2 * 2, max(0, box[1]) // 2 * 2
        x1, y1 = min(self.width, box[2] + box[2] % 2), min(self.height, box[3] + box[3] % 2)
        if x1 <= x0 or y1 <= y0:
            return None
        coverage = Image.new("L", (x1 - x0, y1 - y0))
        ImageDraw.Draw(coverage).text((origin - x0, origin - y0), text, font=self.font, fill=255)
        c = np.asarray(coverage, np.float32) / 255
        inside = np.zeros_like(c)
        inside[max(0, box[1] - y0):box[3] - y0, max(0, box[0] - x0):box[2] - x0] = BOX_ALPHA / 255
        keep = (1 - inside) * (1 - c)
        keep_chroma = keep.reshape(keep.shape[0] // 2, 2, keep.shape[1] // 2, 2).mean(axis=(1, 3))
        return _Overlay(y0, x0, keep, 16 * (1 - keep) + 219 * c + 0.5, keep_chroma, 128 * (1 - keep_chroma) + 0.5)

    def paint(self, frame: av.VideoFrame, text: str) -> av.VideoFrame:
        """Draw ``text`` on a writable yuv420p ``frame`` of this painter's size, in place; returns it."""
        overlay = self.overlay(text)
        if overlay is None:
            return frame
        height, width = overlay.keep.shape
        for index, (keep, add, top, left, rows, columns) in enumerate((
                (overlay.keep, overlay.add, overlay.top, overlay.left, height, width),
                (overlay.keep_chroma, overlay.add_chroma, overlay.top // 2, overlay.left // 2, height // 2, width // 2),
                (overlay.keep_chroma, overlay.add_chroma, overlay.top // 2, overlay.left // 2, height // 2, width // 2))):
            region = plane_array(frame.planes[index])[top:top + rows, left:left + columns]
            np.copyto(region, region * keep + add, casting="unsafe")
        return frame


class EncoderFrames:
    """Decoded frames -> what :class:`H264Writer` encodes: writable yuv420p frames, upright and of even sizes.

    yuv420p frames of even sizes without rotation (most videos) are used as they are (copied only when the
    decoder still holds them); other formats are converted once by FFmpeg's scaler; a rotated or odd-sized
    frame goes through RGB (rotated, one replicated edge column or row), which is rare.
    """

    def __init__(self):
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        rotation = getattr(frame, "rotation", 0) or 0
        if rotation % 360 or frame.width % 2 or frame.height % 2:
            image = frame.to_ndarray(format="rgb24")
            if rotation % 360:
                image = np.rot90(image, k=(rotation // 90) % 4)
            return rgb_frame(image).reformat(format="yuv420p")
        frame = self.reformatter.reformat(frame, format="yuv420p")
        frame.make_writable()  # a copy only when the decoder still references it (a frame it predicts from)
        return frame


def rgb_frame(image: np.ndarray) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB -> a VideoFrame of even sizes (one replicated edge column or row where odd)."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")


def frame_rate(fps: float) -> Fraction:
    """A float rate as the fraction a container stores: 25.0 -> 25, 29.97002997 -> 30000/1001."""
    if not fps or fps <= 0 or not np.isfinite(fps):
        return Fraction(25)
    return Fraction(fps).limit_denominator(1001)


# frames larger than 720p are encoded without look-ahead or B-frames (x264's zerolatency): at 1080p its
# frame pool then takes 75 MB instead of 179 MB, for files about 1.7x larger (measured with PyAV's libx264)
LOW_LATENCY_PIXELS = 1280 * 720
# frames waiting for the encoder's thread, in bytes of RGB (a yuv420p frame takes half): labels come a batch of
# windows at a time, some 200 frames of a 320x240 video at once, which the encoder then works through while the
# network runs the next batch; at 1080p the budget holds 8 frames
ENCODER_QUEUE_BYTES = 48 * 2**20


class H264Writer:
    """Frames written one by one as H.264 (yuv420p) at ``rate``, one output frame per input frame, encoded on a
    thread of its own so that decoding and the network go on meanwhile; the stream's size is the first frame's.
    A frame is an (H, W, 3) uint8 RGB array (odd sizes get one replicated edge column or row: yuv420p needs even
    ones) or a yuv420p VideoFrame of even sizes (see :class:`EncoderFrames`). Frames over ``LOW_LATENCY_PIXELS``
    are encoded without look-ahead, to bound memory."""

    def __init__(self, container, rate: Fraction, crf: int):
        self.container, self.rate, self.crf = container, rate, crf
        self.stream, self.count, self.error = None, 0, None
        self.busy = 0.0  # seconds the encoder's thread spent encoding and muxing (benchmarks/bench_infer.py)
        self.queue: queue.Queue | None = None
        self.thread: threading.Thread | None = None

    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
        if isinstance(frame, np.ndarray):
            frame = rgb_frame(frame)
        if self.stream is None:
            self._open(frame.width, frame.height)
        if self.error is not None:
            raise self.error
        frame.pts, frame.time_base, frame.duration = self.count, self.stream.codec_context.time_base, 1
        frame.pict_type = PictureType.NONE  # the encoder decides, not the source's frame types
        self.count += 1
        self.queue.put(frame)

    def _open(self, width: int, height: int) -> None:
        options = {"crf": str(self.crf), "preset": "veryfast"}
        if width * height > LOW_LATENCY_PIXELS:
            options["tune"] = "zerolatency"
        self.stream = self.container.add_stream("libx264", rate=self.rate, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.codec_context.time_base = 1 / self.rate
        self.queue = queue.Queue(maxsize=max(2, ENCODER_QUEUE_BYTES // (3 * width * height)))
        self.thread = threading.Thread(target=self._encode, name="stts-encoder", daemon=True)
        self.thread.start()

    def _encode(self) -> None:
        while (frame := self.queue.get()) is not None:
            if self.error is None:  # after an error, frames are taken and dropped so that write never blocks
                begin = time.perf_counter()
                try:
                    self.container.mux(self.stream.encode(frame))
                except Exception as error:  # raised in the writing thread by the next write or close
                    self.error = error
                self.busy += time.perf_counter() - begin

    def close(self) -> None:
        """Encode the frames waiting, then flush the encoder (raising what encoding raised)."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
            if self.error is not None:
                raise self.error
            self.container.mux(self.stream.encode())

    def abandon(self) -> None:
        """Stop the encoder's thread without flushing (the file is discarded)."""
        if self.thread is not None:
            self.error = self.error or SttsError("abandoned")
            self.queue.put(None)
            self.thread.join()
            self.thread = None


@contextlib.contextmanager
def mp4_writer(path: str | Path, fps: float, crf: int = 20) -> Iterator[H264Writer]:
    """An :class:`H264Writer` to a temporary file beside ``path``, renamed to ``path`` when the block ends
    without error (a video streamed for hours is complete or absent, never half-written)."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=path.suffix) as temporary, av.open(str(temporary), "w") as container:
            writer = H264Writer(container, frame_rate(fps), crf)
            try:
                yield writer
            except BaseException:
                writer.abandon()
                raise
            if writer.stream is None:
                raise SttsError(f"{path}: no frames to write")
            writer.close()
    except (av.FFmpegError, OSError) as error:
        raise SttsError(f"{path}: could not write the video ({error})") from None


def write_mp4(frames: np.ndarray, fps: float, path: str | Path, crf: int = 20) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p) at ``fps``: see :class:`H264Writer`."""
    with mp4_writer(path, fps, crf) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
