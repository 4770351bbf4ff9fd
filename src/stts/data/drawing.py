"""Drawing for synthetic scenes: random shapes and colours, textured backgrounds, anti-aliased coverage."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

# PIL puts polygon corners on whole pixels of the image it draws on: at 8x a corner moves in
# 1/8 px steps, so a 0.15 px/frame motion still changes every frame (at 4x it would stall in some)
SUPERSAMPLE = 8
LUMA = np.array([0.299, 0.587, 0.114])  # BT.601, as the MPEG-4 encoder's RGB -> YUV


def rotation(turn: float) -> np.ndarray:
    """(2, 2) matrix that turns row vectors by ``turn`` radians."""
    return np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]])


def random_outline(rng: np.random.Generator) -> np.ndarray:
    """Corners of a random convex polygon (3-7 sides) or an ellipse, with the area of the unit disc."""
    if rng.random() < 1 / 3:
        angles = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    else:
        sides = int(rng.integers(3, 8))
        angles = (np.arange(sides) + rng.uniform(-0.35, 0.35, sides)) * 2 * math.pi / sides
    points = np.stack([np.cos(angles), np.sin(angles) * rng.uniform(0.55, 1.0)], 1)
    turn = rng.uniform(0, 2 * math.pi)
    points = points @ rotation(turn)
    x, y = points.T
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return points * math.sqrt(math.pi / area)


def colour_of_luma(luma: float, rng: np.random.Generator) -> np.ndarray:
    """A random colour of the given luma (BT.601 weights)."""
    chroma = rng.normal(size=3)
    chroma -= LUMA @ chroma  # the weights sum to 1: this direction leaves luma unchanged
    luma = float(np.clip(luma, 0, 255))
    room = np.where(chroma > 0, 255 - luma, luma) / np.maximum(np.abs(chroma), 1e-6)
    return luma + rng.uniform(0, min(room.min(), 120)) * chroma


def smooth_noise(width: int, height: int, cell: float, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.normal(size=(int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.Resampling.BICUBIC))


def textured_background(width: int, height: int, luma: float, cell: float, rng: np.random.Generator) -> np.ndarray:
    """float32 (H, W, 3): a gradient between two random colours plus smooth noise in random colours."""
    start, end = (colour_of_luma(luma + rng.uniform(-15, 15), rng) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1)
    image = start + ramp[..., None] * (end - start)
    for _ in range(2):
        image += smooth_noise(width, height, cell, rng)[..., None] * random_tint(rng.uniform(6, 14), rng)
    return image.astype(np.float32)


def random_tint(amount: float, rng: np.random.Generator) -> np.ndarray:
    direction = rng.normal(size=3)
    return direction / np.linalg.norm(direction) * amount


def coverage(points: np.ndarray, width: int, height: int):
    """(x0, y0, float32 (h, w)) area coverage of a polygon in frame pixels, or None when off the frame."""
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int), (width, height))
    if x1 <= x0 or y1 <= y0:
        return None
    image = Image.new("L", (int(x1 - x0) * SUPERSAMPLE, int(y1 - y0) * SUPERSAMPLE))
    # PIL truncates the corners' coordinates; half a pixel more makes that rounding
    ImageDraw.Draw(image).polygon([tuple(p) for p in (points - (x0, y0)) * SUPERSAMPLE + 0.5], fill=255)
    return int(x0), int(y0), np.asarray(image.reduce(SUPERSAMPLE), np.float32) / 255


def draw_clutter(image: np.ndarray, count: int, sizes: tuple[float, float], rng: np.random.Generator) -> None:
    """Draw ``count`` random shapes on float32 (H, W, 3) ``image``, each 15..90 luma darker or brighter than under it."""
    height, width = image.shape[:2]
    for _ in range(count):
        patch = coverage(random_outline(rng) * rng.uniform(*sizes) + rng.uniform((0, 0), (width, height)), width, height)
        if patch is not None:
            x0, y0, a = patch
            region = image[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
            base = (region @ LUMA).mean() + rng.choice((-1, 1)) * rng.uniform(15, 90)
            region += a[..., None] * (colour_of_luma(base, rng).astype(np.float32) - region)


def camera_views(image: np.ndarray, camera, width: int, height: int) -> np.ndarray:
    """float32 (T, H, W, 3) views of ``image`` by a camera (zoom (T, 1) in frame px an image px, centre (T, 2) in image px).

    Bilinear resampling of the smooth scene keeps a sub-pixel pan a sub-pixel shift.
    """
    zoom, centre = camera
    canvas = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    views = np.empty((len(zoom), height, width, 3), np.float32)
    for i, (z, (x, y)) in enumerate(zip(zoom[:, 0], centre, strict=True)):
        # frame point (u, v) sees image point (x, y) + ((u, v) - (W/2, H/2)) / z
        affine = (1 / z, 0, x - width / 2 / z, 0, 1 / z, y - height / 2 / z)
        views[i] = np.asarray(canvas.transform((width, height), Image.Transform.AFFINE, affine,
                                               resample=Image.Resampling.BILINEAR))
    return views
