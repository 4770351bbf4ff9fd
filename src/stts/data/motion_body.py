"""The motion suite's articulated family: jointed figures whose eight classes differ only in how their limbs move.

A figure is a skeleton of 17 joints posed in 3-D (x to the body's right, y up, z forward, in units of
its standing height), turned 35..65 degrees from facing the camera and seen without perspective,
then drawn as anti-aliased capsules (limbs, torso) and a disc (head), far parts first in every frame.
Every class is drawn from the same distributions of everything but the limbs' motion: body
proportions, limb thickness, clothes, height (55..95 px standing), place, facing, mirroring, tempo
(0.6..1.4 action cycles a second, drifting within a video), the camera and the background. The
figures stand on their feet: the pelvis follows from the feet on the ground (the lower foot carries
the weight), so squatting moves the hips back and walking carries the figure forward at the pace its
stride makes.

Hardships, the same for every class: the figure lighter or darker than the background (every garment
25..90 luma away from it), a textured background with 6..20 static shapes and 0..3 limb-like bars a
frame's area, sensor noise (sigma 2..8), 48..80 frames at 25 fps. A seed gives every class the same
length, height, body, clothes, idle limbs, polarity and noise, and the in-place classes the same
facing and (with a still camera) the same background.

Mirroring: an in-place class stays itself mirrored (a left-handed wave is a wave), and half its
figures are drawn mirrored. A walk is a figure walking forward, so a mirrored WalkRight is a WalkLeft:
the two are a flip pair and the data set says so.

The camera pans with half the figures: a walker's camera follows at 0.5..1.2 times the walking pace,
an in-place figure's pans 10..45 px/s either way. A walk that would not fit the frame (its centre
0.3 of its height from the edges) takes shorter strides, down to 8 degrees a leg; a pan that would
not fit is slowed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import SttsError
from .drawing import LUMA, colour_of_luma, coverage, draw_clutter, rotation, textured_background

ACTIONS = ("WaveOneArm", "WaveBothArms", "JumpingJack", "Punch", "Kick", "Squat", "WalkLeft", "WalkRight")
FLIP_PAIRS = (("WalkLeft", "WalkRight"),)
ABOUT = ("jointed figures 55..95 px tall waving one or both arms, doing jumping jacks, punching, kicking, squatting "
         "or walking left or right; mirrored, both polarities, clutter, noise, a camera that pans with half of them")
SIZE = (160, 120)  # (width, height)
FPS = 25
FRAMES = (48, 80)
STATURE = (55.0, 95.0)  # standing height, px
TEMPO = (0.6, 1.4)  # action cycles a second, every class
YAW = (35.0, 65.0)  # degrees from facing the camera to facing right
PAN = (10.0, 45.0)  # an in-place figure's camera pan, px/s
FOLLOW = (0.5, 1.2)  # a walker's camera pan over its walking pace
CONTRAST = (25.0, 90.0)  # luma between each garment and the background behind the figure
NOISE = (2.0, 8.0)  # sensor noise sigma
CLUTTER = (6, 20)  # static shapes in a frame's area of background
MARGIN = 0.3  # the pelvis keeps this fraction of the height from the left and right edges (an arm reaches 0.35)
BITS_PER_PIXEL = 0.25

JOINTS = ("pelvis", "neck", "head", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
          "r_hip", "r_knee", "r_ankle", "r_toe", "l_hip", "l_knee", "l_ankle", "l_toe")
# (joint, joint, what it wears: shirt, sleeve, skin, trousers, leg or shoe, thickness kind)
SEGMENTS = (
    ("pelvis", "neck", "shirt", "torso"), ("neck", "head", "skin", "neck"), ("head", "head", "skin", "head"),
    ("r_shoulder", "l_shoulder", "shirt", "arm"), ("r_hip", "l_hip", "trousers", "leg"),
    ("r_shoulder", "r_elbow", "shirt", "arm"), ("r_elbow", "r_wrist", "sleeve", "arm"),
    ("l_shoulder", "l_elbow", "shirt", "arm"), ("l_elbow", "l_wrist", "sleeve", "arm"),
    ("r_hip", "r_knee", "trousers", "leg"), ("r_knee", "r_ankle", "leg", "leg"), ("r_ankle", "r_toe", "shoe", "foot"),
    ("l_hip", "l_knee", "trousers", "leg"), ("l_knee", "l_ankle", "leg", "leg"), ("l_ankle", "l_toe", "shoe", "foot"),
)
# the arms' and legs' segments (not the feet, the shoulders' or the hips' bar)
LIMBS = tuple(i for i, (a, b, _, _) in enumerate(SEGMENTS) if a[2:] in ("shoulder", "elbow", "hip", "knee") and a[:2] == b[:2])


class BodyScene(NamedTuple):
    """A rendered video of a figure; frame point = scene point - camera[t]."""

    frames: np.ndarray  # uint8 (T, H, W, 3)
    masks: np.ndarray  # bool (T, H, W): the figure's pixels
    fps: int
    joints: np.ndarray  # (T, 17, 2) frame px (x, y), in JOINTS order
    radii: np.ndarray  # (15,) px, the half-thickness of each of SEGMENTS
    camera: np.ndarray  # (T, 2) px the camera has moved since the first frame
    stature: float  # standing height, px
    polarity: int  # 1: the figure is lighter than the background, -1 darker
    mirrored: bool  # drawn facing left (the canonical figure faces right)


class _Body(NamedTuple):
    head: float  # radius
    neck: float
    torso: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    foot: float
    shoulders: float  # half width
    hips: float
    sole: float  # the foot's half-thickness: the ankle's height when standing


def _random_body(rng: np.random.Generator) -> tuple[_Body, dict[str, float]]:
    """Proportions scaled to a standing height of 1, and thicknesses (diameters, as fractions of it)."""
    # an arm 0.075 of 55 px is 4.1 px: 1.2 px when 160 px are seen as 48
    thickness = {"arm": rng.uniform(0.075, 0.1), "leg": rng.uniform(0.09, 0.12), "torso": rng.uniform(0.16, 0.22),
                 "neck": rng.uniform(0.05, 0.07)}
    thickness["foot"] = thickness["leg"] * 0.8
    body = _Body(head=rng.uniform(0.06, 0.072), neck=rng.uniform(0.03, 0.045), torso=rng.uniform(0.28, 0.32),
                 upper_arm=rng.uniform(0.16, 0.19), forearm=rng.uniform(0.16, 0.19), thigh=rng.uniform(0.23, 0.26),
                 shin=rng.uniform(0.23, 0.27), foot=rng.uniform(0.09, 0.12), shoulders=rng.uniform(0.085, 0.115),
                 hips=rng.uniform(0.05, 0.07), sole=thickness["foot"] / 2)
    # the lengths scaled so that sole, shin, thigh, torso, neck and head stand 1 tall
    scale = (1 - body.sole) / (body.shin + body.thigh + body.torso + body.neck + 2 * body.head)
    return body._replace(**{name: value * scale for name, value in body._asdict().items() if name != "sole"}), thickness


def _direction(elevation, azimuth, side: int) -> np.ndarray:
    """(T, 3) unit vectors: ``elevation`` degrees up from straight down (negative: backwards), swung ``azimuth``
    degrees from the forward plane towards the body's ``side`` (1 right, -1 left)."""
    e, a = np.radians(elevation), np.radians(azimuth)
    return np.stack([side * np.sin(e) * np.sin(a), -np.cos(e), np.sin(e) * np.cos(a)], -1)


class _Pose(NamedTuple):
    arms: np.ndarray  # (2 sides (right, left), 4 (upper elevation, upper azimuth, fore elevation, fore azimuth), T)
    legs: np.ndarray  # (2 sides, 4 (thigh elevation, thigh azimuth, shin elevation, shin azimuth), T)
    lean: np.ndarray  # (T,) degrees forward
    hop: np.ndarray  # (T,) height above the ground, in statures


def _constant(count: int, *values: float) -> np.ndarray:
    return np.repeat(np.array(values, float)[:, None], count, 1)


def _idle_arm(rng: np.random.Generator, sway: np.ndarray) -> np.ndarray:
    """(4, T) an arm doing nothing in particular, one of four poses for every class, swaying a little."""
    u = rng.uniform
    style = int(rng.integers(4))
    elevation = u(4, 14)
    pose = [(elevation, u(60, 100), elevation + u(5, 20), u(60, 100)),  # hanging
            (u(30, 45), u(100, 130), u(35, 55), u(-100, -70)),  # hand on the hip
            (u(15, 30), u(0, 25), u(60, 85), u(-30, 0)),  # hands in front
            (u(30, 45), u(10, 30), u(125, 150), u(-10, 20))][style]  # guard
    arm = _constant(len(sway), *pose)
    arm[[0, 2]] += 3 * sway
    return arm


def _idle_legs(rng: np.random.Generator, count: int) -> np.ndarray:
    """(2, 4, T) standing: feet apart or one foot ahead, for every class that does not use its legs."""
    legs = np.empty((2, 4, count))
    if rng.random() < 0.5:
        for side in range(2):
            elevation = rng.uniform(1, 6)
            legs[side] = _constant(count, elevation, 90, elevation, 90)
    else:
        ahead = rng.uniform(5, 12)
        front = int(rng.integers(2))
        for side, sign in ((front, 1), (1 - front, -1)):
            legs[side] = _constant(count, sign * ahead, rng.uniform(0, 10), sign * ahead, 0)
    return legs


def _pulse(phase: np.ndarray) -> np.ndarray:
    """0 at phase 0, 1 at phase pi, smooth."""
    return 0.5 - 0.5 * np.cos(phase)


def _pose(action: str, phase: np.ndarray, sway: np.ndarray, stride: float, rng: np.random.Generator) -> _Pose:
    """Joint angles over time of ``action`` at ``phase`` (radians of the action cycle); ``stride``: a walk's thigh
    swing either way, degrees."""
    u, count = rng.uniform, len(phase)
    arms = np.stack([_idle_arm(rng, sway), _idle_arm(rng, sway)])
    legs = _idle_legs(rng, count)
    lean, hop = 2 * sway + u(-2, 4), np.zeros(count)
    side = int(rng.integers(2))  # the waving, punching or kicking side
    if action in ("WaveOneArm", "WaveBothArms"):
        swing = u(20, 35) * np.sin(phase)
        both = action == "WaveBothArms"
        parallel = both and rng.random() < 0.5  # both forearms to the same side of the image, or mirror images
        for arm in (side, 1 - side) if both else (side,):
            sign = -1 if parallel and arm != side else 1
            if rng.random() < 0.3:  # the whole arm straight overhead, swaying
                elevation = u(145, 165) + sign * swing
                arms[arm] = np.stack([elevation, _constant(count, u(70, 90))[0], elevation + u(0, 10), np.full(count, 90.0)])
            else:  # the upper arm out and up, the forearm swinging above it
                arms[arm] = np.stack([u(110, 145) + 0.3 * sign * swing, np.full(count, u(50, 90)),
                                      u(160, 175) + sign * swing, np.full(count, 90.0)])
    elif action == "JumpingJack":
        out = _pulse(phase)
        for limb in range(2):
            upper = u(8, 15) + out * u(140, 160)
            arms[limb] = np.stack([upper, np.full(count, u(75, 95)), upper + u(5, 20) * (1 - out) + 5, np.full(count, 90.0)])
            thigh = u(2, 4) + out * u(14, 22)
            legs[limb] = np.stack([thigh, np.full(count, 90.0), thigh, np.full(count, 90.0)])
        hop = u(0.03, 0.06) * np.abs(np.sin(phase))  # a jump out and a jump in every cycle
    elif action == "Punch":
        alternate = rng.random() < 0.6
        guard, reach = (u(30, 45), u(10, 30), u(125, 150), u(-10, 20)), (u(80, 95), u(0, 10))
        for arm in (side, 1 - side) if alternate else (side,):
            out = _pulse(phase + (0 if arm == side else math.pi)) ** 2  # quick out, quick back
            arms[arm] = np.stack([guard[0] + out * (reach[0] - guard[0]), guard[1] + out * (reach[1] - guard[1]),
                                  guard[2] + out * (reach[0] - guard[2]), guard[3] + out * (reach[1] - guard[3])])
    elif action == "Kick":
        lift = _pulse(phase) ** 1.5
        thigh = 5 + lift * u(60, 90)
        # chambered on the way up and down, straight at the top
        legs[side] = np.stack([thigh, np.full(count, u(0, 15)), thigh - u(40, 70) * np.sin(math.pi * lift), np.zeros(count)])
        support = u(0, 5)
        legs[1 - side] = _constant(count, support, 90, support, 90)
        lean = lean - lift * u(5, 15)
    elif action == "Squat":
        down = _pulse(phase)
        depth = u(70, 100)
        for limb in range(2):
            knees_out = np.full(count, u(0, 25))  # the shin's azimuth too, so that the feet stay where they are
            legs[limb] = np.stack([down * depth, knees_out, -0.5 * down * depth, knees_out])
        lean = lean + 0.45 * down * depth
        if rng.random() < 0.5:  # arms forward for balance
            reach = u(70, 90) * down + u(5, 12)
            for arm in range(2):
                arms[arm] = np.stack([reach, np.full(count, u(0, 15)), reach + u(0, 15), np.full(count, u(0, 15))])
    elif action in ("WalkLeft", "WalkRight"):
        knee, swing, elbow = u(35, 55), u(15, 30), u(10, 30)
        for limb in range(2):
            step = phase + limb * math.pi
            thigh = stride * np.sin(step)
            legs[limb] = np.stack([thigh, np.zeros(count), thigh - knee * np.maximum(np.cos(step), 0) ** 2,
                                   np.zeros(count)])
            upper = -swing * np.sin(step)  # against the leg of its side
            arms[limb] = np.stack([upper, np.full(count, u(5, 15)), upper + elbow, np.full(count, u(0, 10))])
        lean = lean + u(2, 6)
    else:
        raise SttsError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    return _Pose(arms, legs, lean, hop)


def _skeleton(body: _Body, pose: _Pose) -> np.ndarray:
    """(T, 17, 3) joints in statures, the pelvis over the ground and carried by the feet that stand on it."""
    count = pose.lean.shape[0]
    lean = np.radians(pose.lean)
    spine = np.stack([np.zeros(count), np.cos(lean), np.sin(lean)], -1)
    joints = {"pelvis": np.zeros((count, 3)), "neck": body.torso * spine}
    joints["head"] = joints["neck"] + (body.neck + body.head) * spine
    for side, name in ((1, "r"), (-1, "l")):
        arm, leg = pose.arms[0 if side == 1 else 1], pose.legs[0 if side == 1 else 1]
        shoulder = joints["neck"] - 0.03 * spine + (side * body.shoulders, 0, 0)
        elbow = shoulder + body.upper_arm * _direction(arm[0], arm[1], side)
        hip = np.tile((side * body.hips, 0.0, 0.0), (count, 1))
        knee = hip + body.thigh * _direction(leg[0], leg[1], side)
        ankle = knee + body.shin * _direction(leg[2], leg[3], side)
        joints |= {f"{name}_shoulder": shoulder, f"{name}_elbow": elbow,
                   f"{name}_wrist": elbow + body.forearm * _direction(arm[2], arm[3], side),
                   f"{name}_hip": hip, f"{name}_knee": knee, f"{name}_ankle": ankle,
                   # the ankle keeps the foot nearer level than the shin is
                   f"{name}_toe": ankle + body.foot * _direction(90 + 0.25 * leg[2], 0, side)}
    skeleton = np.stack([joints[name] for name in JOINTS], 1)
    feet = skeleton[:, [JOINTS.index("r_ankle"), JOINTS.index("l_ankle")]]  # (T, 2, 3)
    toes = skeleton[:, [JOINTS.index("r_toe"), JOINTS.index("l_toe")]]
    low = np.minimum(feet[..., 1], toes[..., 1])  # (T, 2)
    # the lower foot carries the weight: the pelvis moves so that it stays where it is on the ground
    weight = np.exp(-(low - low.min(1, keepdims=True)) / 0.01)
    weight /= weight.sum(1, keepdims=True)
    moved = np.einsum("tk,tkc->tc", weight[1:], np.diff(feet[..., [0, 2]], axis=0))
    pelvis = np.zeros((count, 3))
    pelvis[1:, [0, 2]] = -np.cumsum(moved, 0)
    pelvis[:, 1] = body.sole - low.min(1) + pose.hop
    return skeleton + pelvis[:, None]


def _segments(view: np.ndarray, thickness: dict[str, float], head: float):
    """(T, 15, 2, 3) segment ends and (15,) radii, in px; the torso stops short of the hips and the neck."""
    index = {name: i for i, name in enumerate(JOINTS)}
    ends = np.stack([view[:, [index[a], index[b]]] for a, b, _, _ in SEGMENTS], 1)
    radii = np.array([head if kind == "head" else thickness[kind] / 2 for *_, kind in SEGMENTS])
    spine = ends[:, 0, 1] - ends[:, 0, 0]
    spine /= np.linalg.norm(spine, axis=-1, keepdims=True)
    ends[:, 0, 0] += 0.3 * radii[0] * spine
    ends[:, 0, 1] -= 0.7 * radii[0] * spine
    return ends, radii


def _capsules(ends: np.ndarray, radii: np.ndarray, width: int, height: int):
    """Anti-aliased coverage of each segment in a box that holds it: (T, S, h, w) and box origins (T, S, 2)."""
    lo, hi = ends.min(2), ends.max(2)  # (T, S, 2)
    box = np.ceil((hi - lo).max((0, 1)) + 2 * radii.max() + 3).astype(int)
    box = np.minimum(box, (width, height))
    origin = np.floor(lo - radii[None, :, None] - 1).astype(int)
    origin = np.clip(origin, 0, np.array([width, height]) - box)
    x = (origin[..., 0, None, None] + np.arange(box[0])[None, None, None, :] + 0.5).astype(np.float32)
    y = (origin[..., 1, None, None] + np.arange(box[1])[None, None, :, None] + 0.5).astype(np.float32)
    a, d = ends[:, :, 0].astype(np.float32), (ends[:, :, 1] - ends[:, :, 0]).astype(np.float32)
    ax, ay, dx, dy = (v[..., None, None] for v in (a[..., 0], a[..., 1], d[..., 0], d[..., 1]))
    along = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    distance = np.sqrt(np.square(x - ax - along * dx) + np.square(y - ay - along * dy))
    return np.clip(radii.astype(np.float32)[None, :, None, None] + 0.5 - distance, 0, 1), origin


def _scene_background(width: int, height: int, camera: np.ndarray, stature: float, luma: float,
                      rng: np.random.Generator) -> np.ndarray:
    """float32 (1 or T, H, W, 3) background of about ``luma`` with static clutter, seen by the camera."""
    low = np.floor(camera.min(0)).astype(int)
    size = (np.ceil(camera.max(0)).astype(int) - low + (width + 1, height + 1))
    image = textured_background(*size, luma, 8, rng)
    area = size[0] * size[1] / (width * height)  # as many shapes a frame's area whatever the camera sees
    draw_clutter(image, round(rng.integers(CLUTTER[0], CLUTTER[1] + 1) * area), stature * np.array([0.03, 0.12]), rng)
    for _ in range(round(rng.integers(0, 4) * area)):  # poles and branches, as thick as limbs
        half = np.array([rng.uniform(0.1, 0.4), rng.uniform(0.02, 0.05)]) * stature
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        patch = coverage(corners @ rotation(rng.uniform(0, math.pi)) + rng.uniform((0, 0), size), *size)
        if patch is not None:
            x0, y0, a = patch
            region = image[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
            shade = colour_of_luma((region @ LUMA).mean() + rng.choice((-1, 1)) * rng.uniform(15, 90), rng)
            region += a[..., None] * (shade.astype(np.float32) - region)
    if not np.ptp(camera, 0).any():
        return image[None, :height, :width]
    # bilinear: a sub-pixel pan stays a sub-pixel shift
    views = np.empty((len(camera), height, width, 3), np.float32)
    for t, (x, y) in enumerate(camera - low):
        i, j, fx, fy = int(y), int(x), np.float32(x % 1), np.float32(y % 1)
        views[t] = ((1 - fy) * ((1 - fx) * image[i:i + height, j:j + width] + fx * image[i:i + height, j + 1:j + width + 1])
                    + fy * ((1 - fx) * image[i + 1:i + height + 1, j:j + width]
                            + fx * image[i + 1:i + height + 1, j + 1:j + width + 1]))
    return views


def _clothes(polarity: int, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, str]]:
    """Each part's luma contrast to the background (all of one sign) and what it is dressed as."""
    contrast = {part: polarity * rng.uniform(*CONTRAST) for part in ("shirt", "skin", "trousers", "shoe")}
    dressed = {"shirt": "shirt", "skin": "skin", "trousers": "trousers", "shoe": "shoe",
               "sleeve": "shirt" if rng.random() < 0.5 else "skin", "leg": "trousers" if rng.random() < 0.6 else "skin"}
    return contrast, dressed


def _compose(backgrounds: np.ndarray, count: int, capsules, depth: np.ndarray, colours: np.ndarray, sigma: float,
             rng: np.random.Generator):
    """uint8 frames and the figure's masks: in every frame the segments far to near, then sensor noise."""
    coverages, origin = capsules  # (T, S, h, w), (T, S, 2)
    height, width = backgrounds.shape[1:3]
    frames = np.empty((count, height, width, 3), np.float32)
    frames[:] = backgrounds
    masks = np.zeros((count, height, width), bool)
    # every frame's box of a segment at once, through windows onto the frames (a loop over frames took twice as long)
    box, t = coverages.shape[2:], np.arange(count)
    windows = sliding_window_view(frames, box, axis=(1, 2), writeable=True)  # (T, H - h + 1, W - w + 1, 3, h, w)
    mask_windows = sliding_window_view(masks, box, axis=(1, 2), writeable=True)
    for s in np.argsort(depth, 1).T:  # (T,) the segment of this rank in every frame, far to near
        x0, y0 = origin[t, s, 0], origin[t, s, 1]
        alpha = coverages[t, s]
        region = windows[t, y0, x0]  # (T, 3, h, w)
        region += alpha[:, None] * (colours[s][:, :, None, None] - region)
        windows[t, y0, x0] = region
        mask_windows[t, y0, x0] |= alpha > 0.5
    # sensor noise, the same on the three channels (the encoder's 4:2:0 chroma would average most of it away),
    # each pixel's the sum of two uniform draws (sigma as given): a third of the cost of three normal draws
    raw = np.frombuffer(rng.bytes(2 * count * height * width), np.uint8).reshape(2, count, height, width, 1)
    frames += (raw[0].astype(np.float32) + raw[1] - 254.5) * np.float32(sigma / (255 * math.sqrt(2 / 12)))
    return np.clip(frames, 0, 255, out=frames).astype(np.uint8), masks


def render_body(action: str, rng: np.random.Generator) -> BodyScene:
    """One video of class ``action``, with the figure's joints, masks and the camera."""
    if action not in ACTIONS:
        raise SttsError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    width, height = SIZE
    count = int(rng.integers(FRAMES[0], FRAMES[1] + 1))
    seconds = np.arange(count) / FPS
    stature = rng.uniform(*STATURE)
    body, thickness = _random_body(rng)
    # the tempo drifts: the phase's rate stays within 2 pi (tempo -+ 0.4) a second
    drift, rate = rng.uniform(0, 0.8), rng.uniform(0.2, 0.5)
    phase = (rng.uniform(0, 2 * math.pi) + 2 * math.pi * rng.uniform(*TEMPO) * seconds
             + drift * np.sin(2 * math.pi * rate * seconds + rng.uniform(0, 2 * math.pi)))
    sway = np.sin(2 * math.pi * rng.uniform(0.2, 0.5) * seconds + rng.uniform(0, 2 * math.pi)) * rng.uniform(0, 1)
    walking = action in ("WalkLeft", "WalkRight")
    flip = bool(rng.random() < 0.5)  # drawn for every class, so that the draws after it are the same for each
    mirrored = action == "WalkLeft" if walking else flip
    yaw = math.radians(rng.uniform(*YAW))
    panned, follow, pan, tilt = rng.random() < 0.5, rng.uniform(*FOLLOW), rng.uniform(*PAN), rng.uniform(-0.05, 0.05)
    pan_sign, stride, pose_seed = rng.choice((-1, 1)), rng.uniform(14, 25), int(rng.integers(2 ** 63))
    room = width - 2 * MARGIN * stature
    while True:  # shorter strides until the walk fits the frame (the pose's draws are the same every time)
        skeleton = _skeleton(body, _pose(action, phase, sway, stride, np.random.default_rng(pose_seed)))  # (T, J, 3)
        turned = (skeleton[..., 0] * math.cos(yaw) + skeleton[..., 2] * math.sin(yaw)) * (-1 if mirrored else 1)
        travel = turned[:, 0] * stature  # the pelvis's image x, px
        if panned and walking:
            speed = follow * (travel[-1] - travel[0]) / (count - 1)
        else:
            speed = panned * pan_sign * min(pan / FPS, max(room - np.ptp(travel), 0) / (count - 1))
        camera = np.outer(np.arange(count), (speed, abs(speed) * tilt))
        if np.ptp(travel - camera[:, 0]) <= room or stride <= 8:
            break
        stride = max(8.0, 0.9 * stride)
    path = travel - camera[:, 0]
    low, high = MARGIN * stature - path.min(), width - MARGIN * stature - path.max()
    start, ground = rng.uniform(low, max(low, high)), rng.uniform(stature + 4, height - 2)
    depth = -skeleton[..., 0] * math.sin(yaw) + skeleton[..., 2] * math.cos(yaw)
    view = np.stack([start + turned * stature - camera[:, :1], ground - skeleton[..., 1] * stature - camera[:, 1:],
                     depth * stature], -1)  # (T, J, 3) px, the third towards the camera
    ends, radii = _segments(view, {kind: t * stature for kind, t in thickness.items()}, body.head * stature)

    polarity = int(rng.choice((-1, 1)))
    contrast, dressed = _clothes(polarity, rng)
    reach = max(abs(c) for c in contrast.values()) + 15  # the background's luma leaves room for the contrast
    luma = rng.uniform(20, 235 - reach) if polarity > 0 else rng.uniform(20 + reach, 235)
    backgrounds = _scene_background(width, height, camera, stature, luma, rng)
    behind = float(backgrounds.mean((0, 1, 2)) @ LUMA)
    colour = {part: colour_of_luma(behind + c, rng) for part, c in contrast.items()}
    colours = np.array([colour[dressed[part]] for _, _, part, _ in SEGMENTS], np.float32)
    frames, masks = _compose(backgrounds, count, _capsules(ends[..., :2], radii, width, height), ends[..., 2].mean(2),
                             colours, rng.uniform(*NOISE), rng)
    return BodyScene(frames, masks, FPS, view[..., :2], radii, camera, stature, polarity, mirrored)


def render_video(action: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames uint8 (T, H, W, 3), figure masks bool (T, H, W), fps) of one video of class ``action``."""
    scene = render_body(action, rng)
    return scene.frames, scene.masks, scene.fps
