"""Streaming inference: decoded frames -> kept frames -> sliding windows -> probabilities -> labelled frames.

Memory does not grow with a video's length: the kept frames the open windows need (a ring of one
window span, at crop size) and the frames waiting for their labels (one window span, plus the
windows waiting to fill a batch) are all that is held; a file's frames are not held at all but
decoded a second time when their labels are final (a window span of 1080p frames is 400 MB). A frame's label is final when every
window covering it is done; it is the mean over those windows, as :func:`windows.frame_probabilities`
computes it for a whole video, in the same order, so that both give the same numbers.

Windows start every ``stride`` kept frames; the last one ends on the last kept frame. The
step between kept frames is decided before the first frame (from the announced count, or the
step for a long video when nothing is announced), so a stream that ends early keeps that step
and its windows close over what was kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..clip import ClipSpec
from ..data.video import FrameConverter
from ..runtime import release_free_memory
from .predict import Predictor, VideoPrediction
from .sources import LiveReader, Source, announced_frames, decoded_frames, frame_rate_of

# called with each batch: uint8 clips (N, 3, T, crop, crop), their kept-frame starts, probabilities (N, classes)
BatchHook = Callable[[torch.Tensor, list[int], np.ndarray], None]


@dataclass
class Window:
    start: int  # first kept frame
    clip: np.ndarray  # (T, crop, crop, 3) uint8
    captured: float  # perf_counter time the frame completing it was read


@dataclass
class Done:
    windows: list[Window]
    probabilities: np.ndarray  # (N, classes) float32
    finished: float  # perf_counter time the probabilities were there


class WindowRunner:
    """The network over batches of windows, in the caller's thread: every window is run, none skipped."""

    def __init__(self, predictor: Predictor, on_batch: BatchHook | None = None):
        self.predictor, self.on_batch = predictor, on_batch
        self.done: list[Done] = []

    def run(self, windows: list[Window]) -> Done:
        clips = torch.from_numpy(np.stack([w.clip for w in windows])).permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W)
        probabilities = self.predictor.loaded.probabilities(clips).numpy()
        release_free_memory()
        if self.on_batch is not None:
            self.on_batch(clips, [w.start for w in windows], probabilities)
        return Done(windows, probabilities, time.perf_counter())

    def submit(self, windows: list[Window]) -> None:
        self.done.append(self.run(windows))

    def collect(self) -> tuple[list[Done], list[Window]]:
        """Batches finished since the last call, and windows skipped."""
        done, self.done = self.done, []
        return done, []

    def drain(self) -> tuple[list[Done], list[Window]]:
        """Wait for every window submitted; what :meth:`collect` gives."""
        return self.collect()

    def close(self) -> None:
        pass


class LiveRunner(WindowRunner):
    """The network on a worker thread, for sources that do not wait. While it is busy, only the newest
    ``batch_size`` windows wait for it; older ones are skipped, so that labels stay close to the source."""

    def __init__(self, predictor: Predictor, on_batch: BatchHook | None = None):
        super().__init__(predictor, on_batch)
        self.waiting: list[Window] = []
        self.skipped: list[Window] = []
        self.busy, self.closing, self.error = False, False, None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._work, name="stts-network", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.waiting or self.closing)
                if not self.waiting:
                    return
                batch, self.waiting, self.busy = self.waiting, [], True
            try:
                result = self.run(batch)
            except BaseException as error:  # handed to the main thread, which raises it
                result, self.error = None, error
            with self.changed:
                if result is not None:
                    self.done.append(result)
                self.busy = False
                self.changed.notify_all()

    def submit(self, windows: list[Window]) -> None:
        with self.changed:
            self.waiting += windows
            excess = len(self.waiting) - self.predictor.batch_size
            if excess > 0:
                self.skipped += self.waiting[:excess]
                self.waiting = self.waiting[excess:]
            self.changed.notify_all()

    def collect(self) -> tuple[list[Done], list[Window]]:
        if self.error is not None:
            raise self.error
        with self.changed:
            done, skipped, self.done, self.skipped = self.done, self.skipped, [], []
        return done, skipped

    def drain(self) -> tuple[list[Done], list[Window]]:
        with self.changed:
            self.changed.wait_for(lambda: not (self.waiting or self.busy) or self.error is not None)
        return self.collect()

    def close(self) -> None:
        with self.changed:
            self.closing = True
            self.waiting = []
            self.changed.notify_all()
        self.thread.join(timeout=60)


@dataclass
class StreamState:
    """One video's streaming state: the ring of kept frames, the per-slot sums and the frames awaiting labels.

    Slot j holds kept frame j; decoded frame i belongs to slot i // step (the last slot, past the end).
    """

    spec: ClipSpec
    step: int
    stride: int
    converter: FrameConverter = field(init=False)
    decoded: int = 0
    kept: int = 0
    ring: dict[int, np.ndarray] = field(default_factory=dict)  # kept index -> (crop, crop, 3) view
    sums: dict[int, np.ndarray] = field(default_factory=dict)  # slot -> float64 (classes,) sum of probabilities
    counts: dict[int, int] = field(default_factory=dict)
    pending: deque = field(default_factory=deque)  # (decoded index, PyAV frame, captured) awaiting labels
    pending_bytes: int = 0
    resolved: set[int] = field(default_factory=set)  # regular windows (start // stride) done or skipped
    resolved_upto: int = 0  # regular windows 0..resolved_upto-1 are all resolved
    starts: list[int] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    skipped: int = 0
    ended: bool = False

    def __post_init__(self) -> None:
        self.converter = FrameConverter(self.spec)

    @property
    def span(self) -> int:
        return self.spec.span

    def add(self, frame, captured: float, hold: bool = True) -> list[Window]:
        """A decoded frame; the windows it completes. ``hold`` False: the frame is not kept for drawing (the
        caller decodes it again when its label is final), only its place in the queue."""
        index = self.decoded
        self.decoded += 1
        self.pending.append((index, frame if hold else None, captured))
        if hold:
            self.pending_bytes += sum(plane.buffer_size for plane in frame.planes)
        if index % self.step:
            return []
        self.ring[self.kept] = self.spec.centre_view(self.converter(frame)[None])[0]
        self.kept += 1
        self.ring.pop(self.kept - self.span - 1, None)  # the last span kept frames are all a window can need
        start = self.kept - self.span
        if start >= 0 and start % self.stride == 0:
            return [self._window(start, captured)]
        return []

    def _window(self, start: int, captured: float) -> Window:
        indices = self.spec.window_indices(start, self.kept)
        return Window(start, np.stack([self.ring[int(i)] for i in indices]), captured)

    def finish(self, captured: float) -> list[Window]:
        """End of the stream: the window ending on the last kept frame, unless a regular one does."""
        self.ended = True
        last = self.kept - self.span
        if self.kept == 0 or (last >= 0 and last % self.stride == 0):
            return []
        return [self._window(max(last, 0), captured)]

    def resolve(self, done: list[Done], skipped: list[Window]) -> None:
        for window in skipped:
            self._mark(window.start)
        self.skipped += len(skipped)
        for batch in done:
            for window, probs in zip(batch.windows, batch.probabilities, strict=True):
                wide = probs.astype(np.float64)  # summed in float64 in window order, as frame_probabilities does
                for slot in range(window.start, min(window.start + self.span, self.kept)):
                    self.sums[slot] = self.sums[slot] + wide if slot in self.sums else wide
                    self.counts[slot] = self.counts.get(slot, 0) + 1
                self.starts.append(window.start)
                self.probabilities.append(probs)
                self.latencies.append(batch.finished - window.captured)
                self._mark(window.start)

    def _mark(self, start: int) -> None:
        if start % self.stride == 0:
            self.resolved.add(start // self.stride)
            while self.resolved_upto in self.resolved:
                self.resolved.discard(self.resolved_upto)
                self.resolved_upto += 1

    def labelled(self) -> Iterator[tuple[object, float, np.ndarray | None]]:
        """Frames whose label is final, in order: (PyAV frame or None when not held, captured, float32
        probabilities or None when every window covering it was skipped)."""
        while self.pending:
            index, frame, captured = self.pending[0]
            slot = min(index // self.step, self.kept - 1)
            # no window yet to come can cover the slot: the end's window starts after it, regular ones are resolved
            if not self.ended and not (self.kept > slot + self.span and self.resolved_upto > slot // self.stride):
                return
            self.pending.popleft()
            if frame is not None:
                self.pending_bytes -= sum(plane.buffer_size for plane in frame.planes)
            count = self.counts.get(slot, 0)
            probs = (self.sums[slot] / count).astype(np.float32) if count else None
            for old in [s for s in self.sums if s < slot]:
                del self.sums[old], self.counts[old]
            yield frame, captured, probs

    def prediction(self, classes: list[str]) -> VideoPrediction:
        """The windows' probabilities (sorted by start) as a VideoPrediction, frame_probs left out (frames are
        labelled as they go; the record needs windows only)."""
        order = np.argsort(self.starts, kind="stable")
        starts = [self.starts[i] for i in order]
        window_probs = np.stack([self.probabilities[i] for i in order]) if starts else np.zeros((0, len(classes)),
                                                                                                 np.float32)
        return VideoPrediction.from_windows(classes, window_probs, starts, span=self.span, step=self.step,
                                            stride=self.stride, num_frames=self.decoded)


def frame_label(classes: list[str], probs: np.ndarray | None) -> str | None:
    """What is drawn on a frame: its most probable class and that probability (as VideoPrediction.frame_labels)."""
    if probs is None:
        return None
    best = int(probs.argmax())
    return f"{classes[best]} {probs[best]:.2f}"


@dataclass
class Feed:
    """An opened source's decoded frames as the window code takes them: (frame, capture time) ``items``, the
    ``state`` that makes them into windows, and the live reader that paces and drops them (live sources only).
    :meth:`close` closes the reader and the container."""

    container: Any
    fps: float
    announced: int | None  # the frames the container says it has (None: unknown, a stream)
    state: StreamState
    items: Iterator[tuple[np.ndarray, float]]
    reader: LiveReader | None

    @property
    def dropped(self) -> int:
        return self.reader.dropped if self.reader is not None else 0

    def close(self) -> None:
        try:
            if self.reader is not None:
                self.reader.close()
        finally:
            self.container.close()


def open_feed(container, source: Source, predictor: Predictor, stride: int | None) -> Feed:
    """``source``, opened as ``container``, for ``predictor``'s windows ``stride`` kept frames apart (None: its
    default): what ``stts infer`` and :meth:`stts.Model.stream` both read. The feed owns the container: close it
    with :meth:`Feed.close`."""
    try:
        fps = frame_rate_of(container)
        announced = announced_frames(container, source)
        state = StreamState(predictor.spec, predictor.spec.keep_step(announced), stride or predictor.default_stride())
        frames = decoded_frames(container, source.label)
    except BaseException:
        container.close()
        raise
    if source.live:
        reader = LiveReader(frames, capacity=round(fps), pace=source.kind != "camera")
        return Feed(container, fps, announced, state, iter(reader), reader)
    return Feed(container, fps, announced, state, ((frame, time.perf_counter()) for frame in frames), None)
