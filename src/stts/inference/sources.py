"""Where ``stts infer`` reads frames: video files, folders of them, URLs FFmpeg opens, stdin and cameras.

A live source (a camera, or any source with ``--live``) is read on its own thread at the source's
pace, so that a slow network never holds the source back: see :class:`LiveReader`.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import av

from ..data.video import not_a_video, video_frames
from ..errors import SttsError

VIDEO_EXTENSIONS = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv",
                    ".ts"}
URL_SCHEMES = {"http", "https", "rtsp", "rtsps", "rtmp", "rtp", "udp", "tcp", "srt", "ftp"}
NETWORK_TIMEOUT = 15.0  # seconds an unreachable URL may take to say so
CAMERA_PREFIX = "/dev/video"


@dataclass(frozen=True)
class Source:
    """One input: ``kind`` is file, url, stdin or camera; ``location`` the path, URL, ``-`` or device."""

    kind: str
    location: str
    live: bool = False

    @property
    def label(self) -> str:
        """How messages and the JSON name it."""
        return "stdin" if self.kind == "stdin" else self.location

    def stem(self) -> str:
        """Its output name before collisions are resolved: the file's stem, stdin, camera0, the URL's last part."""
        if self.kind == "stdin":
            return "stdin"
        if self.kind == "camera":
            return "camera" + self.location.removeprefix(CAMERA_PREFIX)
        if self.kind == "url":
            url = urlparse(self.location)
            return Path(url.path).stem or url.hostname or "stream"
        return Path(self.location).stem


def collect_sources(inputs: list[str], cameras: list[int] = (), live: bool = False) -> list[Source]:
    """The sources named: ``-`` is stdin, ``scheme://...`` a URL, ``/dev/videoN`` a camera, a folder its video
    files (recursively, sorted), anything else a file (one that does not exist is kept, to be reported)."""
    sources: list[Source] = []
    for item in map(str, inputs):
        scheme = urlparse(item).scheme.lower() if "://" in item else ""
        if item == "-":
            sources.append(Source("stdin", "-", live))
        elif scheme:
            if scheme not in URL_SCHEMES:
                raise SttsError(f"{item}: {scheme}:// is not a stream stts reads ({', '.join(sorted(URL_SCHEMES))})")
            sources.append(Source("url", item, live))
        elif item.startswith(CAMERA_PREFIX):
            sources.append(Source("camera", item, True))
        elif Path(item).is_dir():
            found = sorted(p for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise SttsError(f"{item}: folder holds no videos ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            sources += [Source("file", str(path), live) for path in found]
        else:
            sources.append(Source("file", str(Path(item)), live))
    sources += [Source("camera", f"{CAMERA_PREFIX}{index}", True) for index in cameras]
    if sum(source.kind == "stdin" for source in sources) > 1:
        raise SttsError("- (stdin) is named more than once")
    return sources


def output_names(videos: list[Path]) -> list[str]:
    """A file-name stem per video: its own stem, with parent folders prepended while stems collide."""
    names = [v.stem for v in videos]
    for depth in range(1, 32):
        repeated = {name for name in names if names.count(name) > 1}
        if not repeated:
            break
        names = ["_".join([*v.parent.parts[-depth:], v.stem]) if n in repeated else n
                 for v, n in zip(videos, names, strict=True)]
    return names


def source_names(sources: list[Source]) -> list[str]:
    """A unique output stem per source: files as :func:`output_names` makes them, the rest numbered on collision."""
    files = iter(output_names([Path(s.location) for s in sources if s.kind == "file"]))
    names: list[str] = []
    for source in sources:
        name = next(files) if source.kind == "file" else source.stem()
        base, number = name, 2
        while name in names:
            name, number = f"{base}_{number}", number + 1
        names.append(name)
    return names


def open_source(source: Source):
    """The source's PyAV container, its first stream a video; a one-line SttsError naming it otherwise."""
    label = source.label
    if source.kind == "file":
        path = Path(source.location)
        if not path.is_file():
            raise SttsError(f"{label}: no such video file")
        if path.stat().st_size == 0:
            raise SttsError(f"{label}: empty file (0 bytes)")
    if source.kind == "camera" and not Path(source.location).exists():
        raise SttsError(f"{label}: no such camera (the device does not exist)")
    try:
        if source.kind == "stdin":
            container = av.open(sys.stdin.buffer, "r")
        elif source.kind == "camera":
            container = av.open(source.location, format="v4l2")
        elif source.kind == "url":
            container = av.open(source.location, timeout=NETWORK_TIMEOUT)
        else:
            container = av.open(source.location)
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as error:
        what = "cannot open the stream" if source.kind in ("url", "camera") else "not a readable video"
        raise SttsError(f"{label}: {what} ({error})") from None
    problem = not_a_video(container)
    if problem:
        container.close()
        raise SttsError(f"{label}: {problem}")
    return container


def frame_rate_of(container) -> float:
    """Frames a second the source announces, 25 when it says nothing."""
    return float(container.streams.video[0].average_rate or 25)


def announced_frames(container, source: Source) -> int | None:
    """Frames the source will give, as far as known before decoding: the header's count, else for a file its
    packets (demuxed, not decoded); None for a stream that does not say (stdin, a camera, most URLs)."""
    count = max(container.streams.video[0].frames, 0)
    if count or source.kind != "file":
        return count or None
    with av.open(source.location) as counting:
        stream = counting.streams.video[0]
        try:
            count = sum(packet.size > 0 for packet in counting.demux(stream))
        except av.FFmpegError:
            return None
    return count or None


def decoded_frames(container, label: str, threads: int = 0) -> Iterator:
    """The container's video frames, decoded, through the door every entry point shares (a video decodes to
    more than one frame: stts.data.video.video_frames); an error after some frames ends the stream (a
    truncated file keeps what it has), one before the first is a one-line SttsError."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.thread_count = threads

    def frames() -> Iterator:
        count = 0
        try:
            for frame in container.decode(stream):
                count += 1
                yield frame
        except av.FFmpegError as error:
            if not count:
                raise SttsError(f"{label}: corrupt video ({error})") from None

    yield from video_frames(container, label, frames())


class LiveReader:
    """Decoded frames of a live source, read on a thread at the source's pace, with the time each was read.

    A camera gives frames at its own pace; a file or stream read ``--live`` is paced by its frames'
    timestamps. When the consumer falls ``capacity`` frames behind, new frames are dropped (counted
    in ``dropped``): the queue never grows without bound.
    """

    def __init__(self, frames: Iterator, capacity: int, pace: bool):
        self.frames, self.pace = frames, pace
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, capacity))
        self.stop, self.finished = threading.Event(), threading.Event()
        self.dropped, self.error = 0, None
        self.thread = threading.Thread(target=self._read, name="stts-live-reader", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        origin = None  # (first frame's time, when it was read)
        try:
            for frame in self.frames:
                if self.stop.is_set():
                    break
                if self.pace and frame.time is not None:
                    if origin is None:
                        origin = (frame.time, time.perf_counter())
                    self.stop.wait(origin[1] + frame.time - origin[0] - time.perf_counter())
                try:
                    self.queue.put_nowait((frame, time.perf_counter()))
                except queue.Full:
                    self.dropped += 1
        except SttsError as error:
            self.error = error
        finally:
            self.finished.set()

    def __iter__(self) -> Iterator:
        while not self.stop.is_set():
            try:
                yield self.queue.get(timeout=0.05)
            except queue.Empty:
                if self.finished.is_set() and self.queue.empty():
                    break
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop reading; the source may then be closed (a reader blocked on a device is left to end with it)."""
        self.stop.set()
        self.thread.join(timeout=5)
