"""Segments: window probabilities merged into which action when, and the CSV, WebVTT and timeline files."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
from PIL import Image

from stts.errors import SttsError
from stts.inference.segments import (
    SEGMENT_KEYS,
    SegmentTracker,
    frame_classes,
    video_segments,
    vtt_time,
    window_times,
    write_segments_csv,
    write_timeline,
    write_vtt,
)

CLASSES = ["Walk", "Run", "Jump", "Sit"]
STEP, SPAN = 0.32, 1.28  # windows every 0.32 s, each 1.28 s long, over 10 s


def a_then_b(spikes=(5, 20)) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Walk while a window's centre is before 4 s, Run after, with one-window spikes of other classes."""
    rng = np.random.default_rng(0)
    starts = np.arange(0, 10 - SPAN + 1e-9, STEP)
    times = [(s, s + SPAN) for s in starts]
    probs = rng.uniform(0, 0.1, (len(starts), len(CLASSES)))
    for index, (start, end) in enumerate(times):
        probs[index, 0 if (start + end) / 2 < 4 else 1] = rng.uniform(0.6, 0.9)
    for index in spikes:  # one window each, confidently wrong
        probs[index] = [0.02, 0.02, 0.94, 0.02] if index % 2 else [0.02, 0.02, 0.02, 0.94]
    return probs / probs.sum(1, keepdims=True), times


def test_two_actions_with_noise_spikes_give_exactly_two_segments():
    probs, times = a_then_b(spikes=(5, 20))
    assert probs[5].argmax() == 2 and probs[20].argmax() == 3  # the raw argmax flickers
    segments = video_segments(probs, times, CLASSES)
    assert [s["class"] for s in segments] == ["Walk", "Run"]
    assert list(segments[0]) == list(SEGMENT_KEYS)
    assert segments[0]["start_time"] == 0 and segments[1]["end_time"] == pytest.approx(times[-1][1], abs=1e-3)
    assert segments[0]["end_time"] == segments[1]["start_time"]
    assert abs(segments[0]["end_time"] - 4.0) <= STEP  # within one window step of the truth
    walk = [i for i, (s, e) in enumerate(times) if (s + e) / 2 < 4 and i != 5]
    assert segments[0]["probability"] == pytest.approx(probs[[*walk, 5], 0].mean(), abs=1e-6)
    # without smoothing and minimum length, the spikes are segments of their own
    raw = video_segments(probs, times, CLASSES, smooth=1, min_windows=1)
    assert [s["class"] for s in raw] == ["Walk", "Jump", "Walk", "Run", "Sit", "Run"]


def test_a_short_run_that_survives_smoothing_merges_into_its_more_probable_neighbour():
    probs = np.array([[0.9, 0.1, 0.0, 0.0]] * 4 + [[0.0, 0.1, 0.9, 0.0]] * 1 + [[0.1, 0.9, 0.0, 0.0]] * 4)
    times = [(i * 1.0, i * 1.0 + 2.0) for i in range(len(probs))]
    segments = video_segments(probs, times, CLASSES, smooth=1, min_windows=2)
    # Jump (window 4) is more Run (0.1) than Walk (0.0): it joins Run
    assert [s["class"] for s in segments] == ["Walk", "Run"]
    assert segments[0]["end_time"] == 4.5  # half-way between the centres of windows 3 and 4


def test_a_single_window_video_is_one_segment():
    segments = video_segments(np.array([[0.1, 0.7, 0.1, 0.1]]), [(0.0, 1.28)], CLASSES)
    assert segments == [{"class": "Run", "start_time": 0.0, "end_time": 1.28, "probability": 0.7}]


def test_window_times_and_frame_classes_follow_the_json_record():
    assert window_times([(0, 31), (8, 39)], 16.0) == [(0.0, 2.0), (0.5, 2.5)]
    segments = [{"class": "Walk", "start_time": 0.0, "end_time": 1.0, "probability": 0.9},
                {"class": "Run", "start_time": 1.0, "end_time": 2.0, "probability": 0.8}]
    assert frame_classes(segments, 8, 4.0) == ["Walk"] * 4 + ["Run"] * 4
    assert frame_classes(segments, 10, 4.0)[-1] == "Run"  # past the last segment: its class


@pytest.mark.parametrize("probs, times, options, message", [
    (np.zeros((0, 4)), [], {}, "at least one window"),
    (np.ones((2, 3)) / 3, [(0, 1), (1, 2)], {}, "3 classes but 4"),
    (np.ones((2, 4)) / 4, [(0, 1)], {}, "1 window times for 2"),
    (np.ones((2, 4)) / 4, [(0, 1), (1, 2)], {"smooth": 2}, "odd"),
    (np.ones((2, 4)) / 4, [(0, 1), (1, 2)], {"min_windows": 0}, "at least 1 window"),
    (np.ones((2, 4)) / 4, [(1, 2), (0, 1)], {}, "start order"),
])
def test_bad_arguments_are_one_line_errors(probs, times, options, message):
    with pytest.raises(SttsError, match=message):
        video_segments(probs, times, CLASSES, **options)


def test_vtt_is_webvtt_with_monotone_cues(tmp_path):
    probs, times = a_then_b()
    segments = video_segments(probs, times, CLASSES)
    segments.append({"class": "Sit --> down\nnow", "start_time": segments[-1]["end_time"], "end_time": 3725.5,
                     "probability": 0.5})
    text = write_vtt(segments, tmp_path / "v.vtt").read_text()
    blocks = text.split("\n\n")
    assert blocks[0] == "WEBVTT"
    cue = re.compile(r"^(\d+)\n(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})\n(.+) (\d\.\d\d)$")
    seconds = []
    for number, block in enumerate(filter(None, blocks[1:]), 1):
        match = cue.match(block)
        assert match, block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups()[1:9])
        start, end = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert int(match.group(1)) == number and start < end
        seconds += [start, end]
        assert "-->" not in match.group(10)
    assert seconds == sorted(seconds) and len(seconds) == 2 * len(segments)
    assert seconds[-1] == 3725.5 and vtt_time(3725.5) == "01:02:05.500"
    assert "Walk 0." in text and "Run 0." in text


def test_csv_rows_equal_the_segments(tmp_path):
    probs, times = a_then_b()
    segments = video_segments(probs, times, CLASSES)
    with open(write_segments_csv(segments, tmp_path / "v.segments.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [{"class": r["class"], "start_time": float(r["start_time"]), "end_time": float(r["end_time"]),
             "probability": float(r["probability"])} for r in rows] == segments


def test_timeline_is_a_png_of_the_expected_size(tmp_path):
    probs, times = a_then_b()
    segments = video_segments(probs, times, CLASSES)
    path = write_timeline(probs, times, CLASSES, segments, tmp_path / "v.timeline.png", top=3)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1000, 360)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # something is drawn
    with pytest.raises(SttsError, match="top"):
        write_timeline(probs, times, CLASSES, segments, tmp_path / "x.png", top=0)


# --- segments as the windows come --------------------------------------------------------------------------------

def tracked(probs: np.ndarray, times, smooth: int = 3, min_windows: int = 2) -> tuple[list, list[int]]:
    """The segments a SegmentTracker gives, and after how many windows each came (len(probs) + 1: at the end)."""
    tracker, segments, when = SegmentTracker(CLASSES[:probs.shape[1]], smooth, min_windows), [], []
    for index, (row, span) in enumerate(zip(probs, times, strict=True)):
        closed = tracker.add(row, span)
        segments += closed
        when += [index + 1] * len(closed)
    closed = tracker.finish()
    return segments + closed, when + [len(probs) + 1] * len(closed)


def test_a_segment_is_given_a_few_windows_after_its_action_ends():
    probs = np.full((40, 2), 0.1)
    probs[:20, 0] = probs[20:, 1] = 0.9
    times = [(i * STEP, i * STEP + SPAN) for i in range(40)]
    segments, when = tracked(probs, times)
    assert segments == video_segments(probs, times, CLASSES[:2])
    assert len(segments) == 2 and when[0] <= 23 and when[1] == 41  # the first as soon as two windows of the next are final


@pytest.mark.parametrize("seed", range(4))
def test_the_segments_given_as_windows_come_are_those_of_the_whole_video(seed):
    # noisy runs of random classes, every smoothing and minimum length: closing early never changes a segment
    rng = np.random.default_rng(seed)
    for _ in range(150):
        classes, count = int(rng.integers(2, 5)), int(rng.integers(1, 50))
        smooth, min_windows = int(rng.choice([1, 3, 5])), int(rng.integers(1, 4))
        labels = np.repeat(rng.integers(0, classes, count), rng.integers(1, 5, count))[:count]
        probs = rng.dirichlet(np.full(classes, 0.5), count)
        probs[np.arange(count), labels] += rng.uniform(0, 1, count)
        probs /= probs.sum(1, keepdims=True)
        starts = np.cumsum(rng.uniform(0.1, 1.0, count))
        times = [(start, start + SPAN) for start in starts]
        segments, _ = tracked(probs.astype(np.float32), times, smooth, min_windows)
        assert segments == video_segments(probs.astype(np.float32), times, CLASSES[:classes], smooth, min_windows)
