"""One video's predictions as a JSON record and a CSV table of windows."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..files import atomic_open
from .predict import VideoPrediction
from .segments import video_segments, window_times


def video_record(video: str, prediction: VideoPrediction, k: int, fps: float, num_frames: int) -> dict[str, Any]:
    """The per-video JSON: ``video``, ``top1``, ``probability``, ``topk``, ``windows``, ``segments`` (which action
    when, see :mod:`stts.inference.segments`) and how the windows were sampled."""
    topk = prediction.topk(prediction.probabilities, k)
    times = window_times(prediction.window_frames, fps)
    windows = []
    for index, (probs, (first, last), (start, end)) in enumerate(
            zip(prediction.window_probs, prediction.window_frames, times, strict=True)):
        windows.append({
            "index": index,
            "start_frame": first,
            "end_frame": last,
            "start_time": round(start, 3),
            "end_time": round(end, 3),
            "topk": prediction.topk(probs, k),
        })
    return {
        "video": video,
        "top1": topk[0]["class"],
        "probability": topk[0]["probability"],
        "topk": topk,
        "windows": windows,
        "segments": video_segments(prediction.window_probs, times, prediction.classes),
        "frames": num_frames,
        "fps": round(fps, 6),
        "frame_step": prediction.step,
        "stride": prediction.stride,
    }


def _atomic_write(path: Path, write) -> Path:
    with atomic_open(path, "w") as file:
        write(file)
    return path


def write_json(record: dict[str, Any], path: Path) -> Path:
    return _atomic_write(path, lambda file: json.dump(record, file, indent=1))


def write_csv(record: dict[str, Any], path: Path) -> Path:
    """One row per window: its frames, times and the top-k classes with their probabilities."""
    k = len(record["topk"])
    header = ["window", "start_frame", "end_frame", "start_time", "end_time"]
    for rank in range(1, k + 1):
        header += [f"class_{rank}", f"probability_{rank}"]

    def write(file):
        writer = csv.writer(file)
        writer.writerow(header)
        for window in record["windows"]:
            row = [window["index"], window["start_frame"], window["end_frame"], window["start_time"], window["end_time"]]
            for entry in window["topk"]:
                row += [entry["class"], entry["probability"]]
            writer.writerow(row)

    return _atomic_write(path, write)
