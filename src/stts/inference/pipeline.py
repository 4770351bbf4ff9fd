"""``stts infer`` end to end for one video: decode, predict, write the JSON, CSV and annotated mp4."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.video import read_kept_frames
from ..errors import SttsError
from .annotate import annotate_frames, write_mp4
from .predict import Predictor
from .report import video_record, write_csv, write_json

VIDEO_EXTENSIONS = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}


def collect_videos(inputs: list[str | Path]) -> list[Path]:
    """The videos named, with a folder standing for the video files under it (recursively, sorted).

    A path that does not exist is kept, so that processing it reports it like any bad video.
    """
    videos: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise SttsError(f"{item}: folder holds no videos ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            videos += found
        else:
            videos.append(item)
    return videos


def output_names(videos: list[Path]) -> list[str]:
    """A file-name stem per video: its own stem, with parent folders prepended while stems collide."""
    names = [v.stem for v in videos]
    for depth in range(1, 32):
        repeated = {name for name in names if names.count(name) > 1}
        if not repeated:
            break
        names = ["_".join([*v.parent.parts[-depth:], v.stem]) if n in repeated else n for v, n in zip(videos, names, strict=True)]
    return names


@dataclass
class VideoResult:
    record: dict[str, Any]
    frames: np.ndarray  # the annotated frames, for --show
    fps: float
    duration: float  # video seconds
    wall: float  # seconds spent on it, decoding to writing
    files: list[Path]

    @property
    def realtime_factor(self) -> float:
        return self.duration / self.wall if self.wall > 0 else float("inf")


def infer_video(
    video: Path, name: str, predictor: Predictor, out: Path, stride: int | None, k: int, progress: bool = True
) -> VideoResult:
    """Predict one video and write ``<name>.json``, ``<name>.csv`` and ``<name>.annotated.mp4`` under ``out``."""
    begin = time.perf_counter()
    if not video.is_file():
        raise SttsError(f"{video}: no such video file")
    # the kept frames exactly as stts prepare stores them (same step rule, resized while decoding),
    # and from the same decode every frame at full size for the annotated copy
    full: list[np.ndarray] = []
    kept = read_kept_frames(video, predictor.spec, threads=0, full=full)
    count, fps = kept.decoded, kept.fps
    prediction = predictor.predict_kept(np.stack(kept.frames), kept.step, count, stride, progress=progress,
                                        name=video.name)
    del kept
    frames = np.stack(full)
    del full
    record = video_record(str(video), prediction, min(k, len(predictor.classes)), fps, count)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_json(record, out / f"{name}.json"), write_csv(record, out / f"{name}.csv")]
    annotate_frames(frames, prediction.frame_labels())
    files.append(write_mp4(frames, fps, out / f"{name}.annotated.mp4"))
    wall = time.perf_counter() - begin
    return VideoResult(record, frames, fps, len(frames) / fps, wall, files)
