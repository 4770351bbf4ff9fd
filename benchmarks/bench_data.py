"""The seed's data path against the clip store, on the same videos in one run; prints a markdown table.

Seed (re-implemented): decode with cv2.VideoCapture, keep frames by the 4/3/2/1 rule, resize to
height 128, one ``cv2.imwrite`` JPEG per kept frame, one video after the other; loading reads every
kept frame of the video with ``cv2.imread`` and converts it to float per frame, then cuts the
random window and crop, flips and divides by 255 (as the seed's loader does). "seed, window only"
reads only the clip's 32 frames, a lower bound for any one-file-per-frame loader.
Store: ``stts.data.prepare_dataset`` over all cores; loading is ``ClipDataset(train=True)`` in one
process (one DataLoader worker's work), uint8 out. Loader rates are the best of ``--rounds``
alternating rounds.

    .venv/bin/python benchmarks/bench_data.py [--videos 24] [--clips 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from stts.clip import ClipSpec
from stts.data import ClipDataset, prepare_dataset

CLIP, CROP, SIZE = 32, 112, 128


def write_source_video(path: Path, frames: int, seed: int) -> None:
    """320x240 25 fps MPEG-4 AVI with textured, moving content (UCF101's format and size)."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 2.0)
    texture = cv2.addWeighted(texture, 2.5, np.full_like(texture, 128), -1.5, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 320, 240, "yuv420p", 1_200_000
        for i in range(frames):
            x, y = int(80 + 60 * np.sin(i / 30)), int(60 + 40 * np.cos(i / 45))
            frame = texture[y:y + 240, x:x + 320].copy()
            cv2.circle(frame, (160 + int(80 * np.sin(i / 10)), 120), 30, (20, 200, 240), -1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode(None))


def seed_prepare(video: Path, out: Path) -> None:
    capture = cv2.VideoCapture(str(video))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    step = ClipSpec(min_kept=CLIP).keep_step(count)
    out.mkdir(parents=True, exist_ok=True)
    index = kept = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            height, width = frame.shape[:2]
            frame = cv2.resize(frame, (int(width * SIZE / height), SIZE))
            cv2.imwrite(str(out / f"{kept:05d}.jpg"), frame)
            kept += 1
        index += 1
    capture.release()


def seed_load(folder: Path, rng: np.random.Generator, window_only: bool = False) -> np.ndarray:
    names = sorted(os.listdir(folder))
    start = int(rng.integers(0, max(len(names) - CLIP, 0) + 1))
    chosen = names[start:start + CLIP] if window_only else names
    first = cv2.imread(str(folder / chosen[0]))
    buffer = np.empty((len(chosen), *first.shape), np.float32)
    for i, name in enumerate(chosen):
        buffer[i] = cv2.imread(str(folder / name)).astype(np.float64)
    clip = buffer if window_only else buffer[start:start + CLIP]
    top, left = int(rng.integers(0, clip.shape[1] - CROP + 1)), int(rng.integers(0, clip.shape[2] - CROP + 1))
    clip = clip[:, top:top + CROP, left:left + CROP]
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    return (clip / 255.0).transpose(3, 0, 1, 2)


def disk_bytes(root: Path) -> tuple[int, int]:
    """(file bytes, allocated bytes: what ``du`` counts, including each small file's block rounding)."""
    files = [p.stat() for p in root.rglob("*") if p.is_file()]
    return sum(s.st_size for s in files), sum(s.st_blocks * 512 for s in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stts-bench-"))
    try:
        rng = np.random.default_rng(0)
        lengths = rng.integers(100, 260, args.videos)  # 4-10 s at 25 fps, UCF101's typical range
        videos = work / "videos"
        for i, frames in enumerate(lengths):
            write_source_video(videos / f"class{i % 4}" / f"video{i:03d}.avi", int(frames), i)
        sources = sorted(videos.rglob("*.avi"))

        start = time.perf_counter()
        for video in sources:
            seed_prepare(video, work / "seed" / video.parent.name / video.stem)
        seed_prepare_s = time.perf_counter() - start
        start = time.perf_counter()
        prepare_dataset("folder", [videos], work / "store", height=SIZE, hflip=True, progress=False)
        (work / "store" / "manifests" / "train.tsv").write_text(
            "".join(f"{v.relative_to(videos).as_posix()}\t0\n" for v in sources))
        store_prepare_s = time.perf_counter() - start

        folders = sorted((work / "seed").glob("*/*"))
        dataset = ClipDataset(work / "store", "train", ClipSpec(height=SIZE, clip_len=CLIP, crop_size=CROP), train=True)
        loaders = {
            "seed": lambda i, r: seed_load(folders[i % len(folders)], r),
            "seed, window only": lambda i, r: seed_load(folders[i % len(folders)], r, True),
            "store": lambda i, r: dataset[i % len(dataset)],
        }
        # rounds alternate between the loaders and each keeps its best round, so that other
        # work on the machine slows every loader alike instead of whichever ran at the time
        rows = dict.fromkeys(loaders, 0.0)
        per_round = max(args.clips // args.rounds, 1)
        for round_number in range(args.rounds):
            for name, load in loaders.items():
                r = np.random.default_rng(round_number)
                start = time.perf_counter()
                for i in range(per_round):
                    load(round_number * per_round + i, r)
                rows[name] = max(rows[name], per_round / (time.perf_counter() - start))

        seed_bytes = disk_bytes(work / "seed")
        store_bytes = disk_bytes(work / "store" / "store")
        n = len(sources)
        print(f"{n} videos, 320x240 MPEG-4, {int(lengths.mean())} frames on average; {os.cpu_count()} cores; "
              f"clips {CLIP}x{CROP}x{CROP}, one process\n")
        print("| | prepare videos/s | loader clips/s | bytes/video (files) | bytes/video (on disk) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(f"| seed (one JPEG a frame, all frames read) | {n / seed_prepare_s:.1f} | {rows['seed']:.0f} | "
              f"{seed_bytes[0] // n:,} | {seed_bytes[1] // n:,} |")
        print(f"| seed, window only | | {rows['seed, window only']:.0f} | | |")
        print(f"| store (JPEG shards) | {n / store_prepare_s:.1f} | {rows['store']:.0f} | "
              f"{store_bytes[0] // n:,} | {store_bytes[1] // n:,} |")
        print(f"| store / seed | {seed_prepare_s / store_prepare_s:.1f}x | {rows['store'] / rows['seed']:.1f}x "
              f"(window only: {rows['store'] / rows['seed, window only']:.1f}x) | "
              f"{store_bytes[0] / seed_bytes[0]:.2f} | {store_bytes[1] / seed_bytes[1]:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
