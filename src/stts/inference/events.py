"""A source read as a sequence of events: each window's prediction as it comes, each segment once it is final.

What :meth:`stts.Model.stream` and :meth:`stts.Model.predict` run on. The frames, windows and
batches are those of ``stts infer`` (:class:`stream.StreamState`, :class:`stream.WindowRunner`,
:class:`stream.LiveRunner`, :mod:`sources`), without the files: no frame is held for drawing,
and the record at the end is :func:`report.video_record`'s, the one ``stts infer --json`` prints.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SttsError
from .pipeline import stream_warnings
from .predict import Predictor, VideoPrediction
from .report import video_record
from .segments import SegmentTracker, window_times
from .sources import Source, open_source
from .stream import LiveRunner, StreamState, WindowRunner, open_feed
from .windows import window_frame_range

# the keys of each record in the list `stts infer --json` prints
RECORD_KEYS = ("video", "top1", "probability", "topk", "windows", "segments")


def ranked(classes: list[str], probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable classes, most probable first (ties in class order), as (class, probability)."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


@dataclass(frozen=True)
class WindowPrediction:
    """One window's class probabilities: a clip of the video from ``start_frame`` to ``end_frame`` (decoded frames,
    inclusive), ``start_time`` to ``end_time`` seconds (to the millisecond)."""

    index: int  #: its place among the video's windows (live sources skip some; those are not counted)
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    probabilities: np.ndarray  #: (classes,) float32, in the order of ``classes``
    classes: list[str]

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.classes[int(np.argmax(self.probabilities))]

    @property
    def probability(self) -> float:
        """The most probable class's probability."""
        return float(self.probabilities.max())

    def topk(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes as (class, probability), most probable first."""
        return ranked(self.classes, self.probabilities, k)

    def to_dict(self, k: int = 5) -> dict[str, Any]:
        """The window as an element of ``windows`` in ``stts infer --json``'s record (``--topk k``)."""
        return {"index": self.index, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "start_time": self.start_time, "end_time": self.end_time,
                "topk": [{"class": name, "probability": round(p, 6)} for name, p in self.topk(k)]}


@dataclass(frozen=True)
class Segment:
    """A stretch of the video given one class: windows merged as :mod:`stts.inference.segments` explains."""

    label: str  #: the class
    start_time: float  #: seconds, to the millisecond
    end_time: float
    probability: float  #: the mean over its windows of its class's probability

    @classmethod
    def from_dict(cls, segment: dict[str, Any]) -> Segment:
        return cls(segment["class"], segment["start_time"], segment["end_time"], segment["probability"])

    def to_dict(self) -> dict[str, Any]:
        """The segment as an element of ``segments`` in ``stts infer --json``'s record."""
        return {"class": self.label, "start_time": self.start_time, "end_time": self.end_time,
                "probability": self.probability}


def window_predictions(prediction: VideoPrediction, fps: float) -> list[WindowPrediction]:
    """Every window of a video's prediction, in order."""
    times = window_times(prediction.window_frames, fps)
    return [WindowPrediction(index, first, last, round(start, 3), round(end, 3), probs, prediction.classes)
            for index, (probs, (first, last), (start, end)) in
            enumerate(zip(prediction.window_probs, prediction.window_frames, times, strict=True))]


class SourceEvents:
    """Windows and segments of one source as they come (iterate once); the video's record when it ends.

    A live source (a camera, or ``live``) is read on its own thread at its own pace and the network on
    another: windows it cannot keep up with are skipped, as ``stts infer --live`` does. ``stop`` set
    ends the source as if it had ended.
    """

    def __init__(self, predictor: Predictor, source: Source, stride: int | None = None, k: int = 5,
                 stop: threading.Event | None = None):
        self.predictor, self.source, self.stride, self.k, self.stop = predictor, source, stride, k, stop
        self.record: dict[str, Any] | None = None  # the full record (files' keys too) once the source has ended
        self.prediction: VideoPrediction | None = None
        self.windows: list[WindowPrediction] = []
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[WindowPrediction | Segment]:
        predictor, source = self.predictor, self.source
        feed = open_feed(open_source(source), source, predictor, self.stride)
        try:
            fps, announced, state = feed.fps, feed.announced, feed.state
            runner = (LiveRunner if source.live else WindowRunner)(predictor)
            done = _Done(state, fps, predictor.classes)
            try:
                waiting = []
                for frame, captured in feed.items:
                    waiting += state.add(frame, captured, hold=False)
                    if waiting and (source.live or len(waiting) >= predictor.batch_size):
                        runner.submit(waiting)
                        waiting = []
                    yield from done.resolve(*runner.collect())
                    if self.stop is not None and self.stop.is_set():
                        break
                if state.decoded == 0:
                    stopped = self.stop is not None and self.stop.is_set()
                    raise SttsError(f"{source.label}: " + ("stopped before its first frame" if stopped
                                                           else "no decodable video frames"))
                waiting += state.finish(time.perf_counter())
                if waiting:
                    runner.submit(waiting)
                yield from done.resolve(*runner.drain())
                yield from done.finish()
            finally:
                runner.close()
        finally:
            feed.close()
        self.prediction = state.prediction(predictor.classes)
        self.windows = done.given
        self.record = video_record(source.label, self.prediction, min(self.k, len(predictor.classes)), fps,
                                   state.decoded)
        self.warnings = stream_warnings(source, state, announced, feed.dropped)


class _Done:
    """Windows handed out once their frames are known (a window's last decoded frame is known when the frame after
    its last kept one is read, or the video ends), and segments once final."""

    def __init__(self, state: StreamState, fps: float, classes: list[str]):
        self.state, self.fps, self.classes = state, fps, classes
        self.waiting: deque[tuple[int, np.ndarray]] = deque()  # (start, probabilities) of windows done
        self.given: list[WindowPrediction] = []
        self.segments = SegmentTracker(classes)

    def resolve(self, done, skipped) -> Iterator[WindowPrediction | Segment]:
        state = self.state
        before = len(state.starts)
        state.resolve(done, skipped)
        for _ in state.labelled():  # frames are not drawn here: their places in the queue go
            pass
        self.waiting.extend(zip(state.starts[before:], state.probabilities[before:], strict=True))
        yield from self._release(ended=False)

    def finish(self) -> Iterator[WindowPrediction | Segment]:
        yield from self._release(ended=True)
        for segment in self.segments.finish():
            yield Segment.from_dict(segment)

    def _release(self, ended: bool) -> Iterator[WindowPrediction | Segment]:
        state, span = self.state, self.state.span
        while self.waiting and (ended or (self.waiting[0][0] + span) * state.step <= state.decoded):
            start, probs = self.waiting.popleft()
            first, last = window_frame_range(start, span, state.step, state.decoded)
            (begin, end), = window_times([(first, last)], self.fps)
            window = WindowPrediction(len(self.given), first, last, round(begin, 3), round(end, 3), probs,
                                      self.classes)
            self.given.append(window)
            yield window
            for segment in self.segments.add(probs, (begin, end)):
                yield Segment.from_dict(segment)
