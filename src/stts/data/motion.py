"""The public motion suite: task families whose classes differ only in how the target object(s) move.

In eight families (``FAMILIES``) six classes of shapes move left, right, up or down, grow or shrink;
in the ninth, ``body`` (see ``motion_body``), jointed figures do eight whole-body actions. ``SUITE``
holds all nine, and ``generate_family`` writes any of them.

Each family is hard in one way real video is: either contrast polarity, sub-pixel or fast motion,
distractors, occlusion, a moving camera, clutter and noise, or varying length, frame rate and size.
Video ``i`` of class ``c`` of family ``f`` is drawn from ``np.random.default_rng([seed, f, c, i])``, so
it is the same every time.

Speeds are per second for a 160x120 frame and scale with the frame's short side. The target's
whole path stays mostly inside the frame (its centre at least half its half-size from the edge, so
at most about a fifth of it is outside). Where a drawn speed would carry it further (the longest
videos at the highest speeds; a camera panning against the motion), the speed is drawn again from
the part of its range that fits (or, if none does, set to the largest that fits); in ``fast``
the target crosses the frame instead. The class decides only how the targets move: the camera,
sizes, colours and everything else are drawn the same way for every class (the occluders are
placed where the target passes, whatever its path).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import SttsError
from ..files import write_text
from . import motion_body
from .drawing import (
    LUMA,
    camera_views,
    colour_of_luma,
    coverage,
    draw_clutter,
    random_outline,
    random_tint,
    rotation,
    textured_background,
)
from .synthetic import write_avi, write_videos

MOTIONS = ("MoveLeft", "MoveRight", "MoveUp", "MoveDown", "Grow", "Shrink")
# a horizontal flip turns one of these motions into the other
FLIP_PAIRS = (("MoveLeft", "MoveRight"),)
DIRECTIONS = {"MoveLeft": (-1, 0), "MoveRight": (1, 0), "MoveUp": (0, -1), "MoveDown": (0, 1)}
REFERENCE = 120  # the short side of the frame that speeds and sizes are given for
RADIUS = (0.08, 0.15)  # object size (radius of the disc of equal area), a fraction of the short side
CONTRAST = (25.0, 90.0)  # luma difference between a target and the background behind it
SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}  # video index = offset + number in the split


@dataclass(frozen=True)
class Family:
    about: str
    speed: tuple[float, float] = (25.0, 75.0)  # target speed, px/s (1..3 px/frame at 25 fps)
    growth: tuple[float, float] = (1.5, 2.5)  # target size, last frame over first (Grow) or first over last
    frames: tuple[int, int] = (40, 56)
    fps: tuple[int, int] = (25, 25)
    sizes: tuple[tuple[int, int], ...] = ((160, 120),)  # (width, height), one drawn per video
    seconds: float | None = None  # longest video, if shorter than frames allow
    targets: tuple[int, int] = (1, 1)
    distractors: tuple[int, int] = (0, 0)
    occluded: tuple[float, float] = (0.0, 0.0)  # fraction of the frame behind static occluders
    clutter: tuple[int, int] = (0, 0)  # static shapes in the background
    grain: tuple[float, float] = (0.0, 0.0)  # high-frequency background texture, luma
    noise: tuple[float, float] = (2.0, 6.0)  # sensor noise sigma, drawn per video, new every frame
    pan: tuple[float, float] = (0.0, 0.0)  # camera pan, px/s
    zoom: float = 0.0  # largest camera zoom rate, log size per second
    inside: float = 0.5  # the target's centre keeps this fraction of its half-size inside the frame
    leaves: bool = False  # a path longer than the frame crosses it instead of being slowed down
    # MPEG-4 bits a pixel of every frame: UCF101's XviD files have about 0.3 (UCF101.rar holds 6.5 GB for
    # 13,320 videos of 7 s on average, 320x240 at 25 fps: about 560 kbit/s)
    bits_per_pixel: float = 0.25


SPECS = {
    "polarity": Family("one object, darker or brighter than the background, 1..3 px/frame, growth x1.5..2.5"),
    "slow": Family("sub-pixel motion: 0.15..0.5 px/frame, growth x1.15..1.4, 64..96 frames",
                   speed=(3.75, 12.5), growth=(1.15, 1.4), frames=(64, 96)),
    "fast": Family("5..9 px/frame over 24..40 frames; the object leaves and enters the frame",
                   speed=(125.0, 225.0), frames=(24, 40), inside=0.0, leaves=True),
    "crowd": Family("1..3 targets moving alike among 2..4 jittering, flickering distractors",
                    targets=(1, 3), distractors=(2, 4)),
    "occlusion": Family("static opaque bars and blobs over 20..35 % of the frame hide the target part of the time",
                        occluded=(0.20, 0.35)),
    "camera": Family("the camera pans 0.5..2 px/frame and zooms 0..1.5 %/frame; the class is motion relative to the scene",
                     pan=(12.5, 50.0), zoom=25 * math.log1p(0.015)),
    "clutter": Family("20..40 static shapes, fine texture and strong sensor noise (sigma 12)",
                      clutter=(20, 40), grain=(8.0, 16.0), noise=(11.0, 13.0), bits_per_pixel=0.08),
    # 3.8 s: the slowest motion still fits the short side of the frame
    "varied": Family("10..60 fps, 20..150 frames (at most 3.8 s), 96x72 to 320x240 and portrait 120x160",
                     frames=(20, 150), fps=(10, 60), seconds=3.8,
                     sizes=((96, 72), (160, 120), (320, 240), (120, 160), (256, 144))),
}
FAMILIES = {name: spec.about for name, spec in SPECS.items()}  # the moving-shape families


class SuiteFamily(NamedTuple):
    about: str
    classes: tuple[str, ...]
    flip_pairs: tuple[tuple[str, str], ...]  # what a horizontal flip turns into each other
    render: Callable[[str, np.random.Generator], tuple[np.ndarray, np.ndarray, int]]  # (class, rng) -> video
    bits_per_pixel: float
    videos: tuple[int, int, int]  # train, val and test videos a class by default


class Scene(NamedTuple):
    """A rendered video; frame point = (scene point - centre[t]) * zoom[t] + (W/2, H/2), in pixels."""

    frames: np.ndarray  # uint8 (T, H, W, 3)
    masks: np.ndarray  # bool (T, H, W): the visible pixels of the target(s)
    fps: int
    zoom: np.ndarray  # (T,)
    centre: np.ndarray  # (T, 2) the scene point (x, y) at the centre of the frame


@dataclass
class _Thing:
    outline: np.ndarray  # (K, 2) corners of an object of unit size
    centre: np.ndarray  # (T, 2) scene px
    size: np.ndarray  # (T,) scene px
    target: bool
    contrast: float = 0.0  # signed luma difference to the background behind it
    flicker: np.ndarray | None = None  # (T,) luma offsets


def _drawn(patches):
    return ((i, patch) for i, patch in enumerate(patches) if patch is not None)


def _window(zoom, centre, half_size, frame_side, axis, inside):
    """Per frame, the scene range the centre of an object of half-size ``half_size`` may take on ``axis``."""
    half = frame_side / 2 / zoom - inside * half_size
    return centre[:, axis] - half, centre[:, axis] + half


def _largest(room, top: float) -> float:
    """The largest speed in [0, top] with room(speed) >= 0; room is concave with room(0) >= 0."""
    if room(top) >= 0:
        return top
    low, high = 0.0, top
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if room(middle) >= 0 else (low, middle)
    return low


def _room(lo, hi, steps, velocity: float) -> float:
    """How far a path of this velocity (scene px a frame) can shift and stay in [lo, hi]; negative: it cannot."""
    return np.min(hi - velocity * steps) - np.max(lo - velocity * steps)


def _path(lo, hi, steps, direction: int, speeds, leaves: bool, rng: np.random.Generator) -> np.ndarray:
    """Positions x_mid + v * steps, v = direction * speed, inside [lo, hi] where the speed allows."""
    speed = 0.0
    if direction:
        fits = speeds[1] if leaves else _largest(lambda s: _room(lo, hi, steps, direction * s), speeds[1])
        speed = rng.uniform(speeds[0], fits) if fits > speeds[0] else fits
    velocity = direction * speed
    # when the path is longer than [lo, hi], the range below makes it cross the whole of it
    a, b = np.max(lo - velocity * steps), np.min(hi - velocity * steps)
    return rng.uniform(min(a, b), max(a, b)) + velocity * steps


def _camera(spec: Family, steps, fps: int, width: int, height: int, half_size, slowest: float,
            rng: np.random.Generator):
    """Zoom (T,) and centre (T, 2) of the camera, with room in view for every class's path.

    The room is checked for an object of ``half_size`` (2,) standing still and moving at the
    ``slowest`` speed each way on both axes, so that the camera does not depend on the class.
    """
    middle = np.array([width / 2, height / 2])
    if not spec.pan[1]:
        return np.ones(len(steps)), np.tile(middle, (len(steps), 1))
    for _ in range(1000):
        speed, angle = rng.uniform(*spec.pan) / fps, rng.uniform(0, 2 * math.pi)
        zoom = np.exp(rng.choice((-1, 1)) * rng.uniform(0, spec.zoom) / fps * steps)
        centre = middle + np.outer(steps, (speed * math.cos(angle), speed * math.sin(angle)))
        windows = [_window(zoom, centre, half_size[axis], side, axis, spec.inside) for axis, side in enumerate((width, height))]
        if all(_room(lo, hi, steps, velocity) >= 0 for lo, hi in windows for velocity in (0, slowest, -slowest)):
            break
    return zoom, centre


def _targets(spec: Family, motion: str, steps, fps: int, width: int, height: int, unit: float,
             rng: np.random.Generator):
    count = int(rng.integers(spec.targets[0], spec.targets[1] + 1))
    outlines = [random_outline(rng) for _ in range(count)]
    radii = rng.uniform(*RADIUS, count) * REFERENCE * unit
    growths = rng.uniform(*spec.growth, count)
    # the largest any class could make them
    largest = np.max([np.abs(o).max(0) * r * math.sqrt(g) for o, r, g in zip(outlines, radii, growths, strict=True)], 0)
    speeds = (spec.speed[0] * unit / fps, spec.speed[1] * unit / fps)  # scene px a frame
    zoom, centre = _camera(spec, steps, fps, width, height, largest, speeds[0], rng)
    sign = {"Grow": 1, "Shrink": -1}.get(motion, 0)
    things = []
    for outline, radius, growth in zip(outlines, radii, growths, strict=True):
        size = radius * growth ** (sign * steps / max(len(steps) - 1, 1))
        path = [_path(*_window(zoom, centre, np.abs(outline[:, axis]).max() * size, side, axis, spec.inside), steps,
                      DIRECTIONS.get(motion, (0, 0))[axis], speeds, spec.leaves, rng)
                for axis, side in enumerate((width, height))]
        things.append(_Thing(outline, np.stack(path, 1), size, True))
    return things, zoom, centre


def _distractor(spec: Family, steps, fps: int, width: int, height: int, unit: float, rng: np.random.Generator):
    """Random walk with no drift (1..2 px/frame steps at 25 fps, reflected at the frame) and a flickering luma."""
    outline, radius = random_outline(rng), rng.uniform(*RADIUS) * REFERENCE * unit
    step = rng.uniform(25, 50) * unit / fps
    lo = np.abs(outline).max(0) * radius * spec.inside
    hi = np.array([width, height]) - lo
    position = rng.uniform(lo, hi)
    centre = np.empty((len(steps), 2))
    for t in range(len(steps)):
        centre[t] = position
        angle = rng.uniform(0, 2 * math.pi)
        position = position + step * np.array([math.cos(angle), math.sin(angle)])
        position = np.where(position < lo, 2 * lo - position, np.where(position > hi, 2 * hi - position, position))
    contrast = rng.choice((-1, 1)) * rng.uniform(*CONTRAST)
    flicker = rng.uniform(-1, 1, len(steps)) * rng.uniform(10, 30)
    return _Thing(outline, centre, np.full(len(steps), radius), False, contrast, flicker)


def _hidden(alpha: np.ndarray, target_alphas) -> np.ndarray:
    """(T,) the fraction of the targets' area under ``alpha`` in each frame."""
    covered, area = np.zeros(len(target_alphas[0])), np.full(len(target_alphas[0]), 1e-6)
    for patches in target_alphas:
        for i, (x0, y0, a) in _drawn(patches):
            covered[i] += (alpha[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] * a).sum()
            area[i] += a.sum()
    return covered / area


def _occluders(spec: Family, width: int, height: int, target_alphas, rng: np.random.Generator):
    """(alpha (H, W), texture (H, W, 3)) of 1..3 static bars or blobs hiding the target part of the time."""
    texture = textured_background(width, height, rng.uniform(20, 235), 8 * min(width, height) / REFERENCE, rng)
    for _ in range(50):
        goal = rng.uniform(*spec.occluded)
        shapes = []  # (corners, the power of the coverage's scale each axis grows with)
        for part in rng.dirichlet(np.ones(int(rng.integers(1, 4)))) * goal * width * height:
            if rng.random() < 0.5:  # a bar across the frame, whatever its angle; its thickness follows the coverage
                length, thickness = 2 * math.hypot(width, height), part / min(width, height)
                shapes.append((np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * (length / 2, thickness / 2), (0, 1)))
            else:
                shapes.append((random_outline(rng) * math.sqrt(part / math.pi), (0.5, 0.5)))
        # the first one somewhere near where a target passes, the others anywhere
        drawn = [patch for _, patch in _drawn(target_alphas[int(rng.integers(len(target_alphas)))])]
        x0, y0, a = drawn[int(rng.integers(len(drawn)))]
        near = (x0, y0) + np.array([a.sum(0) @ np.arange(a.shape[1]), a.sum(1) @ np.arange(a.shape[0])]) / a.sum() + 0.5
        near += rng.uniform(-1, 1, 2) * math.sqrt(goal * width * height) / 2
        places = [(near if i == 0 else rng.uniform((0, 0), (width, height)), rng.uniform(0, math.pi))
                  for i in range(len(shapes))]
        scale = 1.0
        for _ in range(4):  # overlaps and the frame's edges hide some of each: scale until the union is the goal
            alpha = np.zeros((height, width), np.float32)
            for (corners, power), (centre, turn) in zip(shapes, places, strict=True):
                patch = coverage(corners * np.power(scale, power) @ rotation(turn) + centre, width, height)
                if patch is not None:
                    x0, y0, a = patch
                    view = alpha[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
                    np.maximum(view, a, out=view)
            scale *= goal / max(alpha.mean(), 1e-3)
        hidden = _hidden(alpha, target_alphas)
        if spec.occluded[0] <= alpha.mean() <= spec.occluded[1] and 0.1 <= hidden.mean() <= 0.5:
            break
    return alpha, texture


def render_scene(family: str, motion: str, rng: np.random.Generator) -> Scene:
    """One video of class ``motion`` of ``family``, with the target masks and the camera."""
    if family not in SPECS:
        raise SttsError(f"unknown motion family {family!r}; choose one of {', '.join(SPECS)}")
    if motion not in MOTIONS:
        raise SttsError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    spec = SPECS[family]
    width, height = spec.sizes[int(rng.integers(len(spec.sizes)))]
    fps = int(rng.integers(spec.fps[0], spec.fps[1] + 1))
    longest = spec.frames[1] if spec.seconds is None else min(spec.frames[1], int(spec.seconds * fps) + 1)
    count = int(rng.integers(spec.frames[0], longest + 1))
    steps = np.arange(count) - (count - 1) / 2  # frames from the middle one
    unit = min(width, height) / REFERENCE
    things, zoom, centre = _targets(spec, motion, steps, fps, width, height, unit, rng)
    things += [_distractor(spec, steps, fps, width, height, unit, rng)
               for _ in range(int(rng.integers(spec.distractors[0], spec.distractors[1] + 1)))]
    polarity = rng.choice((-1, 1))
    for thing in things:
        if thing.target:
            thing.contrast = polarity * rng.uniform(*CONTRAST)
    # the background's luma leaves room for the targets' contrast
    reach = max(abs(t.contrast) for t in things if t.target) + 15
    luma = rng.uniform(20, 235 - reach) if polarity > 0 else rng.uniform(20 + reach, 235)
    backgrounds = np.broadcast_to(_backgrounds(spec, zoom, centre, width, height, unit, luma, rng),
                                  (count, height, width, 3))
    alphas = [[coverage((t.outline * t.size[i] + t.centre[i] - centre[i]) * zoom[i] + (width / 2, height / 2),
                        width, height) for i in range(count)] for t in things]
    colours = [_colours(thing, patches, backgrounds, luma, rng) for thing, patches in zip(things, alphas, strict=True)]
    occluded = None
    if spec.occluded[1]:
        occluded = _occluders(spec, width, height, [p for t, p in zip(things, alphas, strict=True) if t.target], rng)
    layers = [(alphas[k], colours[k], things[k].target) for k in rng.permutation(len(things))]
    frames, masks = _compose(backgrounds, layers, occluded, rng.uniform(*spec.noise), rng)
    return Scene(frames, masks, fps, zoom, centre)


def _colours(thing: _Thing, patches, backgrounds: np.ndarray, luma: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) colour of ``thing``: its contrast away from the mean luma of the background it covers."""
    behind = [(a * (backgrounds[i, y0:y0 + a.shape[0], x0:x0 + a.shape[1]] @ LUMA)).sum() / a.sum()
              for i, (x0, y0, a) in _drawn(patches) if a.sum() > 0]
    colour = colour_of_luma((np.mean(behind) if behind else luma) + thing.contrast, rng)
    flicker = np.zeros(len(patches)) if thing.flicker is None else thing.flicker
    return colour + flicker[:, None]


def _compose(backgrounds: np.ndarray, layers, occluded, sigma: float, rng: np.random.Generator):
    """uint8 frames and the visible target masks: objects back to front, then occluders, then sensor noise."""
    count, height, width = backgrounds.shape[:3]
    frames = np.empty((count, height, width, 3), np.uint8)
    masks = np.zeros((count, height, width), bool)
    for i in range(count):
        frame = backgrounds[i].copy()
        for patches, colours, target in layers:
            if patches[i] is None:
                continue
            x0, y0, a = patches[i]
            region = frame[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
            region += a[..., None] * (colours[i].astype(np.float32) - region)
            seen = masks[i, y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
            if target:
                seen |= a > 0.5
            else:
                seen &= a <= 0.5
        if occluded is not None:
            alpha, texture = occluded
            frame += alpha[..., None] * (texture - frame)
            masks[i] &= alpha <= 0.5
        frame += rng.standard_normal((height, width, 3), dtype=np.float32) * sigma
        frames[i] = np.clip(frame + 0.5, 0, 255)
    return frames, masks


def _backgrounds(spec: Family, zoom, centre, width: int, height: int, unit: float, luma: float,
                 rng: np.random.Generator) -> np.ndarray:
    """float32 (1, H, W, 3) for a still camera, else (T, H, W, 3) seen through the moving one."""
    # the scene is drawn over all the camera sees; a moving camera's at 2 px a scene pixel, resampled per frame
    scale, pad = (2, 2) if spec.pan[1] else (1, 0)
    half = np.array([width, height]) / 2 / zoom[:, None]
    low, high = np.floor((centre - half).min(0)) - pad, np.ceil((centre + half).max(0)) + pad
    size = ((high - low) * scale).astype(int)
    image = textured_background(*size, luma, 8 * unit * scale, rng)
    sizes = np.array(RADIUS) * REFERENCE * unit * scale * (0.4, 1.0)  # clutter, mostly smaller than the targets
    draw_clutter(image, int(rng.integers(spec.clutter[0], spec.clutter[1] + 1)), sizes, rng)
    if spec.grain[1]:
        image += rng.normal(size=(size[1], size[0], 1)).astype(np.float32) * random_tint(rng.uniform(*spec.grain), rng)
    if not spec.pan[1]:
        return image[None]
    return camera_views(image, (zoom[:, None] / scale, (centre - low) * scale), width, height)


def _render_shapes(family: str, motion: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    scene = render_scene(family, motion, rng)
    return scene.frames, scene.masks, scene.fps


SUITE = {name: SuiteFamily(spec.about, MOTIONS, FLIP_PAIRS, partial(_render_shapes, name), spec.bits_per_pixel,
                           (60, 10, 20)) for name, spec in SPECS.items()}
# 60 videos a class in all, split 70/10/20 %
SUITE["body"] = SuiteFamily(motion_body.ABOUT, motion_body.ACTIONS, motion_body.FLIP_PAIRS, motion_body.render_video,
                            motion_body.BITS_PER_PIXEL, (42, 6, 12))


def _family(family: str) -> SuiteFamily:
    if family not in SUITE:
        raise SttsError(f"unknown motion family {family!r}; choose one of {', '.join(SUITE)}")
    return SUITE[family]


def render_video(family: str, motion: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames uint8 (T, H, W, 3), target masks bool (T, H, W), fps) of one video of class ``motion`` of ``family``."""
    return _family(family).render(motion, rng)


def _write_one(task) -> None:
    path, family, motion, seed = task
    if not Path(path).exists():
        frames, _, fps = render_video(family, motion, np.random.default_rng(seed))
        pixels_per_second = frames.shape[1] * frames.shape[2] * fps
        write_avi(Path(path), frames, fps, bit_rate=max(20_000, round(SUITE[family].bits_per_pixel * pixels_per_second)))


def _write_new(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        write_text(path, text)


def generate_family(family: str, root: str | Path, *, seed: int = 0, train_per_class: int | None = None,
                    val_per_class: int | None = None, test_per_class: int | None = None, workers: int | None = None,
                    progress: bool = True) -> Path:
    """Write ``root/<Class>/<family>_<Class>_<split>_<nnn>.avi`` and ``root/{train,val,test}.txt``; returns ``root``.

    ``stts prepare folder root`` then prepares it with these splits. Skips videos already written;
    ``root/motion.json`` records the options, and a root made with other options is refused. The
    counts a class default to the family's (``SUITE[family].videos``).
    """
    suite = _family(family)
    train_per_class, val_per_class, test_per_class = (default if given is None else given for given, default in
                                                      zip((train_per_class, val_per_class, test_per_class),
                                                          suite.videos, strict=True))
    root = Path(root)
    options = {"family": family, "seed": seed, "train_per_class": train_per_class, "val_per_class": val_per_class,
               "test_per_class": test_per_class}
    stamp = root / "motion.json"
    if stamp.exists() and json.loads(stamp.read_text()) != options:
        raise SttsError(f"{root} holds a motion family made with other options ({stamp}); choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    _write_new(stamp, json.dumps(options, indent=2) + "\n")
    index = list(SUITE).index(family)
    tasks, lists = [], {split: [] for split in SPLIT_OFFSETS}
    for label, motion in enumerate(suite.classes):
        (root / motion).mkdir(exist_ok=True)
        for split, count in zip(SPLIT_OFFSETS, (train_per_class, val_per_class, test_per_class), strict=True):
            for number in range(count):
                relative = f"{motion}/{family}_{motion}_{split}_{number:03d}.avi"
                lists[split].append(relative)
                tasks.append((str(root / relative), family, motion, [seed, index, label, SPLIT_OFFSETS[split] + number]))
    # the lists come first: an interrupted run then prepares with an error naming the missing videos
    for split, lines in lists.items():
        _write_new(root / f"{split}.txt", "".join(line + "\n" for line in lines))
    tasks = [task for task in tasks if not Path(task[0]).exists()]
    write_videos(_write_one, tasks, workers, f"generate {family}", progress)
    return root
