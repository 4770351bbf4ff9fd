"""An H.264 mp4 written a frame at a time (frames that come from a stream need not all be held), atomically."""

from __future__ import annotations

import contextlib
from pathlib import Path

import av
import numpy as np

from ..errors import SttsError
from ..files import atomic_path
from .annotate import frame_rate


class Mp4Writer:
    """``with Mp4Writer(path, fps) as writer: writer.write(frame)`` for (H, W, 3) uint8 RGB frames of one size.

    The same encoding as :func:`stts.inference.annotate.write_mp4`: H.264 yuv420p, one output frame
    per input frame, an odd width or height padded by one replicated edge column or row. The
    file appears at ``path`` only when the block ends without error.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 20, what: str = "video"):
        self.path, self.rate, self.crf, self.what = Path(path), frame_rate(fps), crf, what
        self.size: tuple[int, int] | None = None
        self.count = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Mp4Writer:
        try:
            temporary = self._stack.enter_context(atomic_path(self.path, suffix=self.path.suffix))
            self.container = self._stack.enter_context(av.open(str(temporary), "w"))
        except (av.FFmpegError, OSError) as error:
            self._stack.close()
            raise SttsError(f"{self.path}: could not write the {self.what} ({error})") from None
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise SttsError(f"{self.path}: frames must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        if self.size is None:
            self.size = (height, width)
            self.stream = self.container.add_stream("libx264", rate=self.rate,
                                                    options={"crf": str(self.crf), "preset": "veryfast"})
            self.stream.width, self.stream.height, self.stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
            self.stream.codec_context.time_base = 1 / self.rate
        elif self.size != (height, width):
            raise SttsError(f"{self.path}: frame {self.count} is {width}x{height}, the first was {self.size[1]}x{self.size[0]}")
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.count
        try:
            self.container.mux(self.stream.encode(video_frame))
        except (av.FFmpegError, OSError) as error:
            raise SttsError(f"{self.path}: could not write the {self.what} ({error})") from None
        self.count += 1

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None:
                if self.count == 0:
                    raise SttsError(f"{self.path}: no frames to write")
                self.container.mux(self.stream.encode())
        except (av.FFmpegError, OSError) as failure:
            self._stack.__exit__(type(failure), failure, failure.__traceback__)
            raise SttsError(f"{self.path}: could not write the {self.what} ({failure})") from None
        except BaseException as failure:
            self._stack.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._stack.__exit__(kind, error, traceback)
