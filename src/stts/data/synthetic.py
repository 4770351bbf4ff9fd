"""synthetic-motion: the built-in dataset whose class shows only in how a shape moves over time.

Each video is one random polygon (colour, size, position, speed, start angle) on a random
textured background with noise; its class is the motion alone (left, right, up, down, growing,
shrinking, clockwise, anticlockwise), so no single frame tells it. The videos are written as MPEG-4
AVIs in UCF101's layout (``UCF-101/<Class>/v_<Class>_gGG_cCC.avi``, ``ucfTrainTestlist/`` with
``classInd.txt``, ``trainlist01.txt``, ``testlist01.txt``; test = groups 1-7) and prepared by the
same code as UCF101.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..errors import SttsError
from ..files import atomic_path, write_text

MOTIONS = ("MoveLeft", "MoveRight", "MoveUp", "MoveDown", "Grow", "Shrink", "RotateClockwise", "RotateAnticlockwise")
# a horizontal flip turns one of these motions into the other
FLIP_PAIRS = (("MoveLeft", "MoveRight"), ("RotateClockwise", "RotateAnticlockwise"))
TEST_GROUPS = 7
GROUPS = 25
RADIUS = (0.12, 0.2)  # the shape's size range, a fraction of the frame height
# one corner this much further out, so that a turn is visible: at 1.6 the two turning classes made
# almost all of the demo's errors (its test top-1 88.7 % with --seed 1); at 2.5, 99.4 %
CORNER_STRETCH = 2.5
TURNS = 2.0  # full turns over a video at the highest speed


def motion_path(motion: str, frames: int, width: int, height: int, rng: np.random.Generator):
    """Per-frame (x, y, radius, angle) of the shape: where it starts is random, how it moves is the class."""
    radius = rng.uniform(*RADIUS) * height
    # fast enough that a 16-frame window shows a shift of several pixels a frame: slower motion is
    # lost in the noise, and a network from scratch then learns appearance, which tells nothing
    speed = rng.uniform(0.6, 1.0)  # fraction of the largest travel, growth or turn
    progress = np.linspace(-0.5, 0.5, frames)
    x = np.full(frames, rng.uniform(0.35, 0.65) * width)
    y = np.full(frames, rng.uniform(0.35, 0.65) * height)
    angle = np.full(frames, rng.uniform(0, 2 * math.pi))
    scale = np.ones(frames)
    sign = 1 if motion in ("MoveRight", "MoveDown", "Grow", "RotateAnticlockwise") else -1
    if motion in ("MoveLeft", "MoveRight"):
        x = rng.uniform(0.45, 0.55) * width + sign * speed * 0.8 * width * progress
    elif motion in ("MoveUp", "MoveDown"):
        y = rng.uniform(0.45, 0.55) * height + sign * speed * 0.8 * height * progress
    elif motion in ("Grow", "Shrink"):
        scale = np.exp(sign * speed * 2.0 * progress)
    else:
        angle = angle + sign * speed * TURNS * 2 * math.pi * progress
    return x, y, radius * scale, angle


def render_video(motion: str, frames: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of one video of class ``motion``."""
    return render_video_and_masks(motion, frames, width, height, rng)[0]


def render_video_and_masks(motion: str, frames: int, width: int, height: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_video`'s frames (the same for the same ``rng``) and bool (T, H, W) masks of where the shape is."""
    yy, xx = np.mgrid[0:height, 0:width]
    # any hue for both, but the shape is always the brighter: a network from scratch then finds
    # motion in a few epochs; with random contrast polarity it needs many times longer
    base, tilt = rng.uniform(10, 100, 3), rng.uniform(-25, 25, (2, 3))
    background = base + tilt[0] * (xx / width)[..., None] + tilt[1] * (yy / height)[..., None]
    background += rng.normal(0, 10, (height // 4 + 1, width // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:height, :width]
    colour = tuple(int(c) for c in rng.uniform(150, 255, 3))
    sides = int(rng.integers(3, 6))
    x, y, radius, angle = motion_path(motion, frames, width, height, rng)
    corners = np.linspace(0, 2 * math.pi, sides, endpoint=False)
    stretch = np.where(np.arange(sides) == 0, CORNER_STRETCH, 1.0)
    video = np.empty((frames, height, width, 3), np.uint8)
    masks = np.empty((frames, height, width), bool)
    still = np.clip(background, 0, 255).astype(np.uint8)
    for i in range(frames):
        image, mask = Image.fromarray(still), Image.new("1", (width, height))
        points = [(x[i] + r * math.cos(a), y[i] - r * math.sin(a))
                  for a, r in zip(corners + angle[i], radius[i] * stretch, strict=True)]
        ImageDraw.Draw(image).polygon(points, fill=colour)
        ImageDraw.Draw(mask).polygon(points, fill=1)
        masks[i] = np.asarray(mask)
        noisy = np.asarray(image, np.int16) + rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
        video[i] = np.clip(noisy, 0, 255)
    return video, masks


def write_avi(path: Path, video: np.ndarray, fps: int = 25, bit_rate: int = 300_000) -> None:
    """MPEG-4 part 2 in AVI, as UCF101's XviD files; written to a temporary name, then renamed."""
    with atomic_path(path, suffix=".avi") as temporary, av.open(str(temporary), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps))
        stream.height, stream.width = video.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bit_rate
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def _write_one(task) -> None:
    path, motion, frames, width, height, seed = task
    if not Path(path).exists():
        write_avi(Path(path), render_video(motion, frames, width, height, np.random.default_rng(seed)))


def generate_synthetic_motion(videos: Path, seed: int = 0, train_per_class: int = 60, test_per_class: int = 21,
                              frames: int = 32, width: int = 128, height: int = 96, classes: int = 8,
                              workers: int | None = None, progress: bool = True) -> Path:
    """Write the UCF101-like tree under ``videos``; skips videos already written. Returns ``videos``.

    Deterministic for a seed and options; ``videos/synthetic.json`` records them, and a folder
    made with other options is refused rather than mixed.
    """
    if not 2 <= classes <= len(MOTIONS):
        raise SttsError(f"classes must be 2..{len(MOTIONS)}, got {classes}")
    options = {"seed": seed, "train_per_class": train_per_class, "test_per_class": test_per_class,
               "frames": frames, "width": width, "height": height, "classes": classes}
    stamp = videos / "synthetic.json"
    if stamp.exists() and json.loads(stamp.read_text()) != options:
        raise SttsError(f"{videos} holds synthetic-motion made with other options ({stamp}); choose another --out")
    videos.mkdir(parents=True, exist_ok=True)
    write_text(stamp, json.dumps(options, indent=2) + "\n")
    names = MOTIONS[:classes]
    lists = videos / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    tasks, train, test = [], [], []
    for label, motion in enumerate(names):
        (videos / "UCF-101" / motion).mkdir(parents=True, exist_ok=True)
        for split, count, groups in (("test", test_per_class, range(1, TEST_GROUPS + 1)),
                                     ("train", train_per_class, range(TEST_GROUPS + 1, GROUPS + 1))):
            for i in range(count):
                group, clip = groups[i % len(groups)], i // len(groups) + 1
                relative = f"{motion}/v_{motion}_g{group:02d}_c{clip:02d}.avi"
                (train if split == "train" else test).append(f"{relative} {label + 1}" if split == "train"
                                                              else relative)
                tasks.append((str(videos / "UCF-101" / relative), motion, frames, width, height,
                              [seed, label, group, clip]))
    crlf = "\r\n"
    write_text(lists / "classInd.txt", "".join(f"{i + 1} {n}{crlf}" for i, n in enumerate(names)))
    write_text(lists / "trainlist01.txt", "".join(line + crlf for line in train))
    write_text(lists / "testlist01.txt", "".join(line + crlf for line in test))
    write_videos(_write_one, tasks, workers, "generate synthetic-motion", progress, chunksize=4)
    return videos


def write_videos(write_one, tasks: list, workers: int | None, desc: str, progress: bool, chunksize: int = 2) -> None:
    """``write_one(task)`` for every task (a video each) in ``workers`` forked processes (default: one per CPU this
    process may use), with a progress bar."""
    workers = workers or len(os.sched_getaffinity(0))
    with tqdm(total=len(tasks), unit="video", desc=desc, disable=not progress) as bar:
        if workers > 1 and len(tasks) > 1:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for _ in pool.imap_unordered(write_one, tasks, chunksize=chunksize):
                    bar.update()
        else:
            for task in tasks:
                write_one(task)
                bar.update()


def prepare_synthetic_motion(out: str | Path = "data/synthetic-motion", seed: int = 0, size: int | None = None,
                             workers: int | None = None, progress: bool = True, **options) -> Path:
    """Generate synthetic-motion under ``out/videos`` and prepare it into ``out``; returns ``out``.

    ``options`` (train_per_class, test_per_class, frames, width, height, classes) default to the
    registry's: 8 classes, 60 train + 21 test videos each, 32 frames of 128x96 at 25 fps, stored
    at height 64. The test videos stay in ``out/videos/UCF-101`` for inference.
    """
    from .prepare import prepare_dataset

    prepare_dataset("synthetic-motion", [], out, height=size, seed=seed, workers=workers, options=options,
                    progress=progress)
    return Path(out)
