"""Which action when: sliding-window probabilities merged into labelled time intervals, and their files.

A video's windows overlap (by default each starts a quarter of a clip after the previous one),
so one window's argmax flickers with the noise of a single clip. :func:`video_segments` decides
in three steps, all in windows (the resolution of the evidence), not seconds:

1. smoothing: each window's probabilities are replaced by their centred moving average over
   ``smooth`` windows (3 by default; fewer at the ends), so a one-window spike must be about
   twice as probable as its neighbours' class to survive;
2. each window gets its smoothed argmax, and runs of equal labels become segments;
3. minimum length: while a segment spans fewer than ``min_windows`` windows (2 by default) and
   there is more than one, the shortest is merged into the neighbour whose class is the more
   probable over it (smoothed), and equal neighbours fuse.

Boundaries lie half-way between the centres of the last window of one segment and the first of
the next; the first segment starts where the first window starts, the last ends where the last
window ends, so the segments tile the video without gaps. A segment's probability is the mean
over its windows of its class's (unsmoothed) window probability.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SttsError
from ..files import atomic_open, atomic_path

if TYPE_CHECKING:  # matplotlib is imported by the timeline alone (~0.4 s that stts infer --outputs json skips)
    from matplotlib.figure import Figure

SEGMENT_KEYS = ("class", "start_time", "end_time", "probability")
TIMELINE_SIZE = (10.0, 3.6)  # inches
TIMELINE_DPI = 100  # -> 1000 x 360 pixels


def window_times(window_frames: Sequence[tuple[int, int]], fps: float) -> list[tuple[float, float]]:
    """Each window's (start, end) in seconds from its first and last decoded frame, as ``<name>.json`` gives them."""
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise SttsError(f"frame rate must be a positive number, got {fps!r}")
    return [(first / fps, (last + 1) / fps) for first, last in window_frames]


def smooth_probabilities(window_probs: np.ndarray, smooth: int = 3) -> np.ndarray:
    """(W, C) -> (W, C): the centred moving average over ``smooth`` windows (fewer at the ends)."""
    if smooth < 1 or smooth % 2 == 0:
        raise SttsError(f"smoothing must be an odd number of windows (1 for none), got {smooth}")
    half = smooth // 2
    sums = np.concatenate([np.zeros((1, window_probs.shape[1])), np.cumsum(window_probs, axis=0, dtype=np.float64)])
    index = np.arange(len(window_probs))
    low, high = np.maximum(index - half, 0), np.minimum(index + half + 1, len(window_probs))
    return (sums[high] - sums[low]) / (high - low)[:, None]


def label_runs(labels: np.ndarray) -> list[list[int]]:
    """[first, last, label] of each run of equal labels, windows inclusive."""
    runs: list[list[int]] = []
    for index, label in enumerate(labels.tolist()):
        if runs and runs[-1][2] == label:
            runs[-1][1] = index
        else:
            runs.append([index, index, label])
    return runs


def merge_short_runs(runs: list[list[int]], smoothed: np.ndarray, min_windows: int) -> list[list[int]]:
    """Runs of fewer than ``min_windows`` windows merged, shortest first, into the neighbour more probable over them."""
    runs = [list(run) for run in runs]
    while len(runs) > 1:
        lengths = [last - first + 1 for first, last, _ in runs]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_windows:
            break
        first, last, _ = runs[shortest]
        neighbours = [i for i in (shortest - 1, shortest + 1) if 0 <= i < len(runs)]
        target = max(neighbours, key=lambda i: smoothed[first:last + 1, runs[i][2]].mean())
        runs[target][0], runs[target][1] = min(runs[target][0], first), max(runs[target][1], last)
        del runs[shortest]
        fused: list[list[int]] = []
        for run in runs:
            if fused and fused[-1][2] == run[2]:
                fused[-1][1] = run[1]
            else:
                fused.append(run)
        runs = fused
    return runs


def video_segments(window_probs: np.ndarray, times: Sequence[tuple[float, float]], classes: Sequence[str],
                   smooth: int = 3, min_windows: int = 2) -> list[dict[str, Any]]:
    """Window probabilities (W, C) and each window's (start, end) seconds -> the video's segments.

    Each segment is ``{"class", "start_time", "end_time", "probability"}`` (seconds rounded to the
    millisecond, probability to 6 places), in time order, tiling the windows' extent; how they
    are found is in this module's docstring.
    """
    probs = np.asarray(window_probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise SttsError(f"window probabilities must be (windows, classes) with at least one window, got shape {probs.shape}")
    if probs.shape[1] != len(classes):
        raise SttsError(f"window probabilities have {probs.shape[1]} classes but {len(classes)} class names were given")
    if len(times) != len(probs):
        raise SttsError(f"{len(times)} window times for {len(probs)} windows")
    if min_windows < 1:
        raise SttsError(f"the minimum segment length must be at least 1 window, got {min_windows}")
    bounds = np.asarray(times, dtype=np.float64).reshape(len(probs), 2)
    if np.any(bounds[:, 1] < bounds[:, 0]) or np.any(np.diff(bounds[:, 0]) < 0):
        raise SttsError("window times must be (start, end) pairs with start <= end, in start order")
    smoothed = smooth_probabilities(probs, smooth)
    runs = merge_short_runs(label_runs(smoothed.argmax(1)), smoothed, min_windows)
    return [segment_of(run, probs[run[0]:run[1] + 1], bounds, classes, index == 0, index == len(runs) - 1)
            for index, run in enumerate(runs)]


def segment_of(run: Sequence[int], run_probs: np.ndarray, bounds: Sequence[Sequence[float]], classes: Sequence[str],
               first_segment: bool, last_segment: bool) -> dict[str, Any]:
    """The segment of the windows ``run`` = [first, last, label] (inclusive), ``run_probs`` their (windows, classes)
    probabilities: its bounds lie half-way between the centres of the windows either side, or at the windows'
    extent at the video's ends; its probability is the mean of its class's."""
    first, last, label = run

    def centre(index: int) -> float:
        return (float(bounds[index][0]) + float(bounds[index][1])) / 2

    start = float(bounds[first][0]) if first_segment else (centre(first - 1) + centre(first)) / 2
    end = float(bounds[last][1]) if last_segment else (centre(last) + centre(last + 1)) / 2
    return {"class": str(classes[label]), "start_time": round(start, 3), "end_time": round(end, 3),
            "probability": round(float(run_probs[:, label].mean()), 6)}


class SegmentTracker:
    """:func:`video_segments` of windows that come one at a time, giving each segment as soon as no later window
    can change it: the segments given, in order, are those of :func:`video_segments` over all the windows.

    Why a segment closes: a window's smoothed label is final once the ``smooth // 2`` windows after it
    are in. A run of ``min_windows`` or more final equal labels (a *barrier*) is never merged away, and
    merging a short run looks only at its own windows and its neighbours' classes, so the merges left of
    a barrier are decided by what lies left of it: every segment before the barrier's is final. The
    work a window costs is bounded by the windows after the last barrier, not by the video's length.
    """

    def __init__(self, classes: Sequence[str], smooth: int = 3, min_windows: int = 2):
        if smooth < 1 or smooth % 2 == 0:
            raise SttsError(f"smoothing must be an odd number of windows (1 for none), got {smooth}")
        if min_windows < 1:
            raise SttsError(f"the minimum segment length must be at least 1 window, got {min_windows}")
        self.classes, self.smooth, self.min_windows = list(classes), smooth, min_windows
        self.probs: list[np.ndarray] = []  # each window's (classes,) probabilities
        self.bounds: list[tuple[float, float]] = []  # each window's (start, end) seconds
        self.anchor = 0  # segmentation restarts here: the first window of a barrier's final run
        self.open_start = 0  # the first window of the first segment not yet given
        self.given = 0  # segments given

    def add(self, probs: np.ndarray, times: tuple[float, float]) -> list[dict[str, Any]]:
        """One more window, (classes,) probabilities and (start, end) seconds; the segments it closes."""
        if self.bounds and (times[0] < self.bounds[-1][0] or times[1] < times[0]):
            raise SttsError("window times must be (start, end) pairs with start <= end, in start order")
        self.probs.append(np.asarray(probs, dtype=np.float64).reshape(len(self.classes)))
        self.bounds.append((float(times[0]), float(times[1])))
        return self._close(ended=False)

    def finish(self) -> list[dict[str, Any]]:
        """The video ended: the segments still open."""
        return self._close(ended=True) if self.probs else []

    def _close(self, ended: bool) -> list[dict[str, Any]]:
        count, half, anchor = len(self.probs), self.smooth // 2, self.anchor
        low = max(0, anchor - half)  # the smoothing of the anchor's window reaches back this far
        probs = np.asarray(self.probs[low:])
        smoothed = smooth_probabilities(probs, self.smooth)[anchor - low:]
        labels = smoothed.argmax(1)
        final = labels if ended else labels[:max(0, count - half - anchor)]
        # the last run of at least min_windows final labels, its start a final boundary (or the anchor)
        barrier = next((run for run in reversed(label_runs(final)) if run[1] - run[0] + 1 >= self.min_windows), None)
        if barrier is None and not ended:
            return []
        runs = merge_short_runs(label_runs(labels), smoothed, self.min_windows)
        closing = len(runs) if ended else next(i for i, (first, last, _) in enumerate(runs)
                                                if first <= barrier[0] <= last)
        segments = []
        for index, (first, last, label) in enumerate(runs[:closing]):
            first = self.open_start if index == 0 else first + anchor
            run = (first, last + anchor, label)
            last_segment = ended and index == len(runs) - 1
            segments.append(segment_of(run, np.asarray(self.probs[first:run[1] + 1]), self.bounds, self.classes,
                                       self.given == 0, last_segment))
            self.given += 1
        if not ended:
            if closing:
                self.open_start = runs[closing][0] + anchor
            # the barrier's run cannot be merged away: from a min_windows stretch of its end on, what follows
            # segments the same (merging looks only at a neighbour's class, never at its length)
            self.anchor = anchor + max(barrier[0], barrier[1] - self.min_windows + 1)
        return segments


def frame_classes(segments: Sequence[dict[str, Any]], num_frames: int, fps: float) -> list[str]:
    """The segment class of every decoded frame (by the frame's middle), e.g. to label an annotated copy alike."""
    if not segments:
        raise SttsError("no segments")
    ends = np.array([segment["end_time"] for segment in segments])
    middles = (np.arange(num_frames) + 0.5) / fps
    which = np.minimum(np.searchsorted(ends, middles, side="right"), len(segments) - 1)
    return [segments[i]["class"] for i in which]


# --- files ----------------------------------------------------------------------------------------------------------

def write_segments_csv(segments: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``<name>.segments.csv``: one row per segment, columns class, start_time, end_time, probability."""
    with atomic_open(path, "w") as file:
        writer = csv.writer(file)
        writer.writerow(SEGMENT_KEYS)
        for segment in segments:
            writer.writerow([segment[key] for key in SEGMENT_KEYS])
    return Path(path)


def vtt_time(seconds: float) -> str:
    """Seconds -> WebVTT's ``HH:MM:SS.mmm``."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def write_vtt(segments: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``<name>.vtt``: WebVTT subtitles, one cue per segment reading e.g. ``MoveLeft 0.93``, for any player."""
    lines = ["WEBVTT", ""]
    for number, segment in enumerate(segments, 1):
        # a cue's text may not hold "-->" nor a blank line; class names come from users' folders
        text = " ".join(str(segment["class"]).replace("-->", "->").split())
        lines += [str(number), f"{vtt_time(segment['start_time'])} --> {vtt_time(segment['end_time'])}",
                  f"{text} {segment['probability']:.2f}", ""]
    with atomic_open(path, "w") as file:
        file.write("\n".join(lines))
    return Path(path)


def class_colour(index: int) -> tuple[float, float, float]:
    """A class's colour, the same in every timeline (matplotlib's tab10, then around again)."""
    from matplotlib import colormaps

    return colormaps["tab10"](index % 10)[:3]


def timeline_figure(window_probs: np.ndarray, times: Sequence[tuple[float, float]], classes: Sequence[str],
                    segments: Sequence[dict[str, Any]], top: int = 5, title: str = "") -> Figure:
    """The ``top`` classes' window probabilities against time (at window centres), segments shaded in their colour.

    The segments' classes come first, then the classes of highest mean probability.
    """
    probs = np.asarray(window_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(classes) or len(times) != len(probs) or len(probs) == 0:
        raise SttsError(f"timeline: {len(times)} window times and probabilities of shape {probs.shape} "
                        f"for {len(classes)} classes do not fit together")
    if top < 1:
        raise SttsError(f"timeline: top must be at least 1, got {top}")
    index_of = {str(name): i for i, name in enumerate(classes)}
    shown: list[int] = []
    for segment in segments:
        if segment["class"] not in index_of:
            raise SttsError(f"timeline: segment class {segment['class']!r} is not one of the classes")
        if index_of[segment["class"]] not in shown:
            shown.append(index_of[segment["class"]])
    shown = shown[:top]
    shown += [int(i) for i in np.argsort(-probs.mean(0), kind="stable") if i not in shown][:top - len(shown)]
    from matplotlib.figure import Figure

    centres = np.asarray(times, dtype=np.float64).reshape(len(probs), 2).mean(1)
    figure = Figure(figsize=TIMELINE_SIZE, dpi=TIMELINE_DPI, layout="constrained")
    axes = figure.subplots()
    for segment in segments:
        colour = class_colour(index_of[segment["class"]])
        axes.axvspan(segment["start_time"], segment["end_time"], color=colour, alpha=0.18, linewidth=0)
        axes.text((segment["start_time"] + segment["end_time"]) / 2, 1.02, segment["class"], ha="center",
                  va="bottom", fontsize=8, color=colour, clip_on=False)
    for index in shown:
        axes.plot(centres, probs[:, index], marker="o", markersize=3, color=class_colour(index), label=str(classes[index]))
    start = min(float(np.asarray(times)[:, 0].min()), segments[0]["start_time"] if segments else np.inf)
    end = max(float(np.asarray(times)[:, 1].max()), segments[-1]["end_time"] if segments else -np.inf)
    axes.set_xlim(start, end if end > start else start + 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("time (s), window centres")
    axes.set_ylabel("probability")
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    if title:
        axes.set_title(title, pad=16)
    return figure


def write_timeline(window_probs: np.ndarray, times: Sequence[tuple[float, float]], classes: Sequence[str],
                   segments: Sequence[dict[str, Any]], path: str | Path, top: int = 5, title: str = "") -> Path:
    """``<name>.timeline.png`` (1000 x 360 pixels): see :func:`timeline_figure`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = timeline_figure(window_probs, times, classes, segments, top, title)
    FigureCanvasAgg(figure)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=TIMELINE_DPI)
    return Path(path)
