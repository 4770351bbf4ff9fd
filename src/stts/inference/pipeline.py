"""``stts infer`` end to end for one source: stream its frames through the network, write the files asked for
(:data:`OUTPUTS`: JSON, CSV, segments, subtitles, timeline, annotated mp4). A run that writes no video neither
decodes a file twice nor draws nor encodes. :func:`infer_whole_video` is the earlier whole-video path, kept as
the reference the streaming one is tested against and the benchmark's baseline."""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data.video import FrameConverter, read_kept_frames
from ..errors import SttsError
from .annotate import EncoderFrames, LabelPainter, annotate_frames, mp4_writer, write_mp4
from .explain import explain_clips, heat_on_frame, kept_frame_heat, write_explain_video
from .predict import Predictor, VideoPrediction
from .report import video_record, write_csv, write_json
from .segments import window_times, write_segments_csv, write_timeline, write_vtt
from .sources import Source, decoded_frames, open_source
from .stream import BatchHook, LiveRunner, StreamState, WindowRunner, frame_label, open_feed
from .windows import frame_slots

# what stts infer can write for a source, and each file's name after the source's
OUTPUTS = ("json", "csv", "segments", "vtt", "timeline", "video")
SUFFIXES = {"json": ".json", "csv": ".csv", "segments": ".segments.csv", "vtt": ".vtt", "timeline": ".timeline.png",
            "video": ".annotated.mp4"}

# frames held for their labels (streams, not files) past this many bytes: the windows ready go through the
# network without waiting for a full batch (at 1080p one window span of frames alone is ~400 MB)
PENDING_BUDGET = 256 * 2**20


@dataclass
class VideoResult:
    record: dict[str, Any]
    prediction: VideoPrediction  # every window's probabilities and frames, for what is computed at the end
    fps: float
    duration: float  # video seconds
    wall: float  # seconds spent on it, decoding to writing
    files: list[Path]
    warnings: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # live: seconds from a window's last frame to its label
    skipped: int = 0  # live: windows skipped while the network was busy
    dropped: int = 0  # live: frames dropped while stts fell behind the source
    interrupted: bool = False

    @property
    def realtime_factor(self) -> float:
        return self.duration / self.wall if self.wall > 0 else float("inf")


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Median, 95th percentile and maximum, in seconds."""
    if not latencies:
        return {}
    values = np.asarray(latencies)
    return {"median": round(float(np.median(values)), 4), "p95": round(float(np.percentile(values, 95)), 4),
            "max": round(float(values.max()), 4)}


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) instead of KeyboardInterrupt, so a stream ends between frames with its
    files closed and valid; a second Ctrl-C interrupts at once. Outside the main thread (where no handler can
    be set) the event is never set."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    def interrupt(*_) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now, whatever is left unwritten
            raise KeyboardInterrupt
        stop.set()

    # SIGTERM ends the run as cleanly as Ctrl-C; a SIGINT the process was started ignoring (a background job of a
    # non-interactive shell) stays ignored, as Unix programs leave it
    numbers = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {number: signal.signal(number, interrupt) for number in numbers}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def parse_outputs(text: str) -> tuple[str, ...]:
    """'json,csv' -> ('json', 'csv'); 'none' -> (); 'all' -> :data:`OUTPUTS`. A one-line SttsError otherwise."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return ()
    if names == ["all"]:
        return OUTPUTS
    unknown = [name for name in names if name not in OUTPUTS]
    if unknown or not names:
        raise SttsError(f"--outputs {text!r}: expected some of {','.join(OUTPUTS)} (comma-separated), all or none")
    return tuple(name for name in OUTPUTS if name in names)


def _labelled_away(labelled) -> None:
    """Frames whose labels are final, when none is drawn: taken from the stream state, which then frees them."""
    for _ in labelled:
        pass


class _Annotator:
    """Draws each labelled frame at full size and writes it (and shows it); a frame whose windows were all
    skipped keeps the label before it. Frames not held come from ``replay``, a second decoding of the source."""

    def __init__(self, writer, classes: list[str], show: Callable[[np.ndarray], bool] | None,
                 replay: Iterator | None, label: str):
        self.writer, self.classes, self.show, self.replay, self.source = writer, classes, show, replay, label
        self.frames, self.painter, self.label = EncoderFrames(), None, None

    def __call__(self, labelled) -> None:
        for frame, _, probs in labelled:
            if frame is None:
                frame = next(self.replay, None)
                if frame is None:
                    raise SttsError(f"{self.source}: decoded to fewer frames the second time; the file changed?")
            frame = self.frames(frame)
            if self.painter is None:
                self.painter = LabelPainter(frame.height, frame.width)
            self.label = frame_label(self.classes, probs) or self.label
            if self.label is not None:
                self.painter.paint(frame, self.label)
            if self.show is not None and not self.show(frame.to_ndarray(format="rgb24")):
                self.show = None
            if self.writer is not None:
                self.writer.write(frame)  # the encoder's thread owns it from here


class Explainer:
    """The batch hook of ``--explain``: Grad-CAM of every window's predicted class, kept at the crop size
    (float16: a window of 16x48x48 is 74 KB) until the video ends and its frames are drawn again."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.heats: list[np.ndarray] = []
        self.starts: list[int] = []

    def __call__(self, clips, starts: list[int], probs: np.ndarray) -> None:
        self.heats.append(explain_clips(self.predictor.loaded, clips, target=probs.argmax(1).tolist()).heat
                          .astype(np.float16))
        self.starts += list(starts)

    def write(self, source: Source, state: StreamState, fps: float, path: Path) -> Path:
        """``<name>.explain.mp4``: a third decoding of the file, each frame with its kept frame's heat."""
        spec = self.predictor.spec
        kept_heat = kept_frame_heat(np.concatenate(self.heats).astype(np.float32), self.starts, spec, state.kept)
        slots = frame_slots(state.decoded, state.step, state.kept)
        container, converter = open_source(source), FrameConverter()
        try:
            images = (converter(frame) for frame in decoded_frames(container, source.label))
            first = next(images, None)
            if first is None:
                raise SttsError(f"{source.label}: decoded to no frames the third time; the file changed?")
            height, width = first.shape[:2]
            heats = (heat_on_frame(kept_heat[slot], spec, height, width) for slot in slots)
            return write_explain_video(itertools.chain([first], images), heats, fps, path)
        finally:
            container.close()


def infer_source(source: Source, name: str, predictor: Predictor, out: Path, stride: int | None = None, k: int = 5,
                 progress: bool = True, stop: threading.Event | None = None,
                 show: Callable[[np.ndarray], bool] | None = None, on_batch: BatchHook | None = None,
                 notify: Callable[[str], None] | None = None, explain: bool = False,
                 outputs: Collection[str] = OUTPUTS) -> VideoResult:
    """Stream one source through the network; write the ``outputs`` asked for (default all): ``<name>.json``,
    ``<name>.csv``, the segments (``<name>.segments.csv``, ``<name>.vtt``, ``<name>.timeline.png``) and
    ``<name>.annotated.mp4``.

    ``stop`` set (Ctrl-C) ends the stream as if the source had ended. ``show`` gets every annotated
    frame as RGB (False: no more). ``on_batch`` gets every batch of window clips (see :data:`stream.BatchHook`).
    ``notify`` gets lines for people while a live source runs. ``explain`` (a file only) also writes
    ``<name>.explain.mp4``, the Grad-CAM of each window's predicted class over the frames. Frames are drawn
    only for the video or ``show``: without them a file is decoded once and nothing is drawn or encoded.
    """
    begin = time.perf_counter()
    out = Path(out)
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise SttsError(f"unknown output(s) {', '.join(sorted(unknown))}; choose from {', '.join(OUTPUTS)}")
    draw = "video" in outputs or show is not None
    explainer = None
    if explain:
        if source.kind != "file" or source.live:
            raise SttsError(f"{source.label}: --explain needs a video file (it decodes the file again to draw the heat)")
        explainer = Explainer(predictor)
        on_batch = _both(on_batch, explainer)
    feed = open_feed(open_source(source), source, predictor, stride)
    replay_container = None
    try:
        # to draw, a file is decoded twice, the second time behind the first to draw the labelled frames, so that
        # no full-size frame waits in memory; a stream's frames (and a live file's, some of which may be dropped)
        # wait for their labels: one window span of them
        if draw and source.kind == "file" and not source.live:
            replay_container = open_source(source)
        fps, announced, state = feed.fps, feed.announced, feed.state
        runner = (LiveRunner if source.live else WindowRunner)(predictor, on_batch)
        interrupted = told = False
        try:
            video = mp4_writer(out / f"{name}{SUFFIXES['video']}", fps) if "video" in outputs else None
            with video or contextlib.nullcontext() as writer:
                replay = decoded_frames(replay_container, source.label) if replay_container else None
                annotate = (_Annotator(writer, predictor.classes, show, replay, source.label) if draw
                            else _labelled_away)
                waiting = []
                bar = tqdm(total=announced, desc=name, unit="frame", leave=False, disable=not progress or None)
                for frame, captured in feed.items:
                    bar.update()
                    waiting += state.add(frame, captured, hold=draw and replay is None)
                    if waiting and (source.live or len(waiting) >= predictor.batch_size
                                    or state.pending_bytes > PENDING_BUDGET):
                        runner.submit(waiting)
                        waiting = []
                    state.resolve(*runner.collect())
                    annotate(state.labelled())
                    if source.live and notify is not None and state.latencies and not told:
                        told = True
                        notify(f"{source.label}: live; the first label came {state.latencies[0]:.2f} s after its "
                               "frame; Ctrl-C ends it with its files written")
                    if stop is not None and stop.is_set():
                        interrupted = True
                        break
                bar.close()
                if state.decoded == 0:
                    raise SttsError(f"{source.label}: " + ("interrupted before its first frame" if interrupted
                                                           else "no decodable video frames"))
                waiting += state.finish(time.perf_counter())
                if waiting:
                    runner.submit(waiting)
                state.resolve(*runner.drain())
                annotate(state.labelled())
        finally:
            runner.close()
    finally:
        feed.close()
        if replay_container is not None:
            replay_container.close()

    prediction = state.prediction(predictor.classes)
    record = video_record(source.label, prediction, min(k, len(predictor.classes)), fps, state.decoded)
    result = VideoResult(record, prediction, fps, state.decoded / fps, 0.0, [], interrupted=interrupted,
                         skipped=state.skipped, dropped=feed.dropped)
    if source.live:
        result.latencies = state.latencies
        record["live"] = {"skipped_windows": result.skipped, "dropped_frames": result.dropped,
                          "latency_s": latency_summary(result.latencies)}
    if interrupted:
        record["interrupted"] = True
    result.warnings = stream_warnings(source, state, announced, result.dropped)
    result.files = write_outputs(record, prediction, fps, out / name, outputs)
    if explainer is not None and not interrupted:
        result.files.append(explainer.write(source, state, fps, out / f"{name}.explain.mp4"))
    result.wall = time.perf_counter() - begin
    return result


def write_outputs(record: dict[str, Any], prediction: VideoPrediction, fps: float, stem: Path,
                  outputs: Collection[str] = OUTPUTS) -> list[Path]:
    """The files of ``outputs`` but the video (written as the frames go), named ``<stem><suffix>``; all the paths
    of ``outputs``, the video's included, in :data:`OUTPUTS`' order."""
    def path(output: str) -> Path:
        return stem.with_name(stem.name + SUFFIXES[output])

    segments = record["segments"]
    writers = {
        "json": lambda: write_json(record, path("json")),
        "csv": lambda: write_csv(record, path("csv")),
        "segments": lambda: write_segments_csv(segments, path("segments")),
        "vtt": lambda: write_vtt(segments, path("vtt")),
        "timeline": lambda: write_timeline(prediction.window_probs, window_times(prediction.window_frames, fps),
                                           prediction.classes, segments, path("timeline"), title=record["video"]),
        "video": lambda: path("video"),
    }
    if outputs:
        stem.parent.mkdir(parents=True, exist_ok=True)
    return [writers[output]() for output in OUTPUTS if output in outputs]


def _both(first: BatchHook | None, second: BatchHook) -> BatchHook:
    if first is None:
        return second

    def hook(clips, starts, probs) -> None:
        first(clips, starts, probs)
        second(clips, starts, probs)

    return hook


def stream_warnings(source: Source, state: StreamState, announced: int | None, dropped: int) -> list[str]:
    warnings = []
    if state.kept < state.span:
        warnings.append(f"{source.label}: {state.kept} kept frame(s), fewer than the {state.span} a clip spans: "
                        "padded (stretched) to the clip by repeating frames")
    if announced and source.kind == "file" and state.decoded < announced * 0.9:
        warnings.append(f"{source.label}: {state.decoded} of the {announced} frames it announces decoded "
                        "(truncated?); windows cover the frames decoded")
    if dropped:
        warnings.append(f"{source.label}: {dropped} frame(s) dropped while stts fell behind the source")
    return warnings


def infer_whole_video(video: Path, name: str, predictor: Predictor, out: Path, stride: int | None, k: int,
                      progress: bool = True) -> VideoResult:
    """The whole-video path: every frame decoded and held at full size, then predicted and written. Memory
    grows with the video (a 4-minute 320x240 video peaks at 3.1 GB); the reference for :func:`infer_source`."""
    begin = time.perf_counter()
    if not video.is_file():
        raise SttsError(f"{video}: no such video file")
    full: list[np.ndarray] = []
    kept = read_kept_frames(video, predictor.spec, threads=0, full=full)
    count, fps = kept.decoded, kept.fps
    prediction = predictor.predict_kept(np.stack(kept.frames), kept.step, count, stride, progress=progress,
                                        name=video.name)
    del kept
    frames = np.stack(full)
    del full
    record = video_record(str(video), prediction, min(k, len(predictor.classes)), fps, count)
    files = write_outputs(record, prediction, fps, out / name, [o for o in OUTPUTS if o != "video"])
    annotate_frames(frames, prediction.frame_labels())
    files.append(write_mp4(frames, fps, out / f"{name}.annotated.mp4"))
    return VideoResult(record, prediction, fps, len(frames) / fps, time.perf_counter() - begin, files)
