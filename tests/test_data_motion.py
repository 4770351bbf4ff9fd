"""The motion suite: deterministic videos whose target masks move as the class says, in every family."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stts.data import prepare_dataset, read_video
from stts.data.drawing import coverage
from stts.data.motion import FAMILIES, FLIP_PAIRS, MOTIONS, SUITE, generate_family, render_scene, render_video
from stts.errors import SttsError

AXIS = {"MoveLeft": (0, -1), "MoveRight": (0, 1), "MoveUp": (1, -1), "MoveDown": (1, 1)}


def rng_of(family: str, motion: str, video: int, seed: int = 0):
    return np.random.default_rng([seed, list(FAMILIES).index(family), MOTIONS.index(motion), video])


def scene_track(scene):
    """(t, x, y, area) of the visible target per frame in which it shows, in the scene's coordinates."""
    height, width = scene.masks.shape[1:]
    yy, xx = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    rows = []
    for t, mask in enumerate(scene.masks):
        if mask.any():
            x, y = scene.centre[t] + (np.array([xx[mask].mean(), yy[mask].mean()]) - (width / 2, height / 2)) / scene.zoom[t]
            rows.append((t, x, y, mask.sum() / scene.zoom[t] ** 2))
    return np.array(rows).T


def seen_in(scene, a: int, b: int) -> float:
    """The fraction of frame a's target pixels that frame b's camera sees on the target."""
    height, width = scene.masks.shape[1:]
    v, u = np.nonzero(scene.masks[a])
    x, y = scene.centre[a, :, None] + (np.stack([u, v]) + 0.5 - [[width / 2], [height / 2]]) / scene.zoom[a]
    u, v = ((x - scene.centre[b, 0]) * scene.zoom[b] + width / 2), ((y - scene.centre[b, 1]) * scene.zoom[b] + height / 2)
    shown = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return scene.masks[b][v[shown].astype(int), u[shown].astype(int)].sum() / len(u)


def test_families_classes_and_flip_pairs():
    assert list(FAMILIES) == ["polarity", "slow", "fast", "crowd", "occlusion", "camera", "clutter", "varied"]
    assert list(SUITE) == [*FAMILIES, "body"]
    assert all(SUITE[f].classes == MOTIONS and SUITE[f].flip_pairs == FLIP_PAIRS for f in FAMILIES)
    assert all(isinstance(about, str) and "\n" not in about for about in FAMILIES.values())
    assert MOTIONS == ("MoveLeft", "MoveRight", "MoveUp", "MoveDown", "Grow", "Shrink")
    assert FLIP_PAIRS == (("MoveLeft", "MoveRight"),)
    with pytest.raises(SttsError, match="wobbly"):
        render_video("wobbly", "Grow", np.random.default_rng(0))
    with pytest.raises(SttsError, match="Spin"):
        render_video("slow", "Spin", np.random.default_rng(0))


@pytest.mark.parametrize("family", ["crowd", "camera"])
def test_same_seed_same_video_other_index_other_video(family):
    frames, masks, fps = render_video(family, "MoveUp", rng_of(family, "MoveUp", 3))
    again, again_masks, again_fps = render_video(family, "MoveUp", rng_of(family, "MoveUp", 3))
    assert np.array_equal(frames, again) and np.array_equal(masks, again_masks) and fps == again_fps
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3
    assert masks.dtype == bool and masks.shape == frames.shape[:3] and masks.any()
    other, _, _ = render_video(family, "MoveUp", rng_of(family, "MoveUp", 4))
    assert other.shape != frames.shape or not np.array_equal(other, frames)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_target_masks_move_as_the_class_says(family):
    """Slopes over time of the target's centroid and log area, in scene coordinates (the camera's pan removed)."""
    for motion in MOTIONS:
        scene = render_scene(family, motion, rng_of(family, motion, 0))
        t, x, y, area = scene_track(scene)
        assert len(t) >= len(scene.masks) / 3, f"{family} {motion}: target seen in {len(t)} of {len(scene.masks)} frames"
        slope_x, slope_y, growth = (np.polyfit(t, v, 1)[0] for v in (x, y, np.log(area)))
        unit = min(scene.masks.shape[1:]) / 120
        if motion in AXIS:
            axis, sign = AXIS[motion]
            along, across = (slope_x, slope_y) if axis == 0 else (slope_y, slope_x)
            assert sign * along > 0.1 * unit * 25 / scene.fps, f"{family} {motion}: {along:.3f} px/frame"
            assert abs(across) < 0.5 * abs(along), f"{family} {motion}: {along:.3f} along, {across:.3f} across"
        else:
            sign = 1 if motion == "Grow" else -1
            assert sign * growth > 0.002, f"{family} {motion}: log area {growth:.4f} a frame"
            # in place: the smallest target lies within the largest (distractors may hide a little of it)
            small, large = (0, len(t) - 1) if motion == "Grow" else (len(t) - 1, 0)
            inside = seen_in(scene, int(t[small]), int(t[large]))
            assert inside > 0.7, f"{family} {motion}: {inside:.2f} of the smallest target within the largest"


def test_camera_pans_and_zooms_and_the_background_moves_with_it():
    scene = render_scene("camera", "Grow", rng_of("camera", "Grow", 1))
    frames, zoom, centre = scene.frames.astype(np.float32), scene.zoom, scene.centre
    assert np.ptp(centre, axis=0).max() > 10 and abs(np.log(zoom[-1] / zoom[0])) > 0
    # frame 0 seen through the camera of frame k: frame k's pixels, up to noise, where no object is
    k = len(frames) // 3
    height, width = frames.shape[1:3]
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    u = (centre[k, 0] + (xx - width / 2) / zoom[k] - centre[0, 0]) * zoom[0] + width / 2
    v = (centre[k, 1] + (yy - height / 2) / zoom[k] - centre[0, 1]) * zoom[0] + height / 2
    inside = (u > 1) & (u < width - 1) & (v > 1) & (v < height - 1) & ~scene.masks[k]
    i, j = np.clip(v.astype(int), 0, height - 1), np.clip(u.astype(int), 0, width - 1)
    inside &= ~scene.masks[0][i, j]
    assert inside.mean() > 0.2
    warped = np.abs(frames[0][i, j] - frames[k])[inside].mean()
    still = np.abs(frames[0] - frames[k])[inside].mean()
    assert warped < 0.6 * still, (warped, still)
    flat, _, _ = render_video("polarity", "Grow", rng_of("polarity", "Grow", 1))
    assert render_scene("polarity", "Grow", rng_of("polarity", "Grow", 1)).zoom.tolist() == [1.0] * len(flat)


def ring_contrast(frame: np.ndarray, mask: np.ndarray, width: int = 3) -> float:
    """Mean luma on the target minus mean luma of a ring of background just around it."""
    grown = mask.copy()
    for _ in range(width):
        grown |= np.roll(grown, 1, 0) | np.roll(grown, -1, 0) | np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
    luma = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(luma[mask].mean() - luma[grown & ~mask].mean())


def test_both_contrast_polarities_and_low_contrast_occur():
    contrasts = []
    for video in range(12):
        motion = MOTIONS[video % len(MOTIONS)]
        frames, masks, _ = render_video("polarity", motion, rng_of("polarity", motion, video))
        contrasts.append(np.median([ring_contrast(f, m) for f, m in zip(frames, masks, strict=True) if m.sum() > 20]))
    contrasts = np.array(contrasts)
    assert (contrasts > 10).sum() >= 3 and (contrasts < -10).sum() >= 3, contrasts.round(1)
    assert np.abs(contrasts).min() < 50 and np.abs(contrasts).max() > 50, contrasts.round(1)


def test_slow_moves_less_than_half_a_pixel_a_frame_and_rendering_keeps_sub_pixel_steps():
    for video, motion in enumerate(("MoveLeft", "MoveDown")):
        scene = render_scene("slow", motion, rng_of("slow", motion, video))
        t, x, y, _ = scene_track(scene)
        speed = np.hypot(np.polyfit(t, x, 1)[0], np.polyfit(t, y, 1)[0])
        assert 0.1 < speed < 0.5 and len(scene.frames) >= 64
    # a triangle moved 0.15 px at a time: its area-weighted centre moves at every step, within 1/16 px of the truth
    triangle = np.array([[3.0, 3.0], [15.0, 5.0], [7.0, 14.0]])
    centres = []
    for step in range(12):
        x0, _, alpha = coverage(triangle + (0.15 * step, 0), 24, 20)
        centres.append(x0 + (alpha.sum(0) * (np.arange(alpha.shape[1]) + 0.5)).sum() / alpha.sum())
    shift = np.array(centres) - centres[0]
    assert np.all(np.diff(shift) > 0) and np.abs(shift - 0.15 * np.arange(12)).max() < 1 / 16, shift


def test_varied_draws_frame_rates_lengths_and_sizes_including_portrait():
    shapes = set()
    for video in range(12):
        motion = MOTIONS[video % len(MOTIONS)]
        frames, _, fps = render_video("varied", motion, rng_of("varied", motion, video))
        shapes.add((frames.shape[2], frames.shape[1], len(frames), fps))
        assert 10 <= fps <= 60 and 20 <= len(frames) <= 150 and len(frames) <= 3.8 * fps + 1
    sizes = {(w, h) for w, h, _, _ in shapes}
    assert len({fps for *_, fps in shapes}) >= 6 and len(sizes) >= 3 and any(h > w for w, h in sizes)
    assert len({n for _, _, n, _ in shapes}) >= 6


def test_generate_family_writes_the_layout_and_prepares_with_its_lists(tmp_path):
    root = tmp_path / "fast"
    counts = dict(train_per_class=2, val_per_class=1, test_per_class=1)
    assert generate_family("fast", root, seed=3, workers=2, progress=False, **counts) == root
    lists = {split: (root / f"{split}.txt").read_text().splitlines() for split in ("train", "val", "test")}
    assert [len(lines) for lines in lists.values()] == [12, 6, 6]
    assert "MoveLeft/fast_MoveLeft_train_001.avi" in lists["train"] and "Shrink/fast_Shrink_test_000.avi" in lists["test"]
    videos = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.avi"))
    assert videos == sorted(sum(lists.values(), []))
    assert json.loads((root / "motion.json").read_text()) == {"family": "fast", "seed": 3, **counts}
    frames, _ = read_video(root / lists["test"][0])
    assert frames.shape[1:] == (120, 160, 3) and 24 <= len(frames) <= 40

    result = prepare_dataset("folder", [root], tmp_path / "prepared", height=48, workers=1, progress=False)
    assert (result["classes"], result["train"], result["val"], result["test"]) == (6, 12, 6, 6)
    assert not result["skipped"] and not result["missing"]

    written = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    video = root / lists["val"][2]
    first = video.read_bytes()
    video.unlink()
    generate_family("fast", root, seed=3, workers=1, progress=False, **counts)
    assert video.read_bytes() == first  # the same bytes again
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p != video} == \
        {p: t for p, t in written.items() if p != video}
    with pytest.raises(SttsError, match=str(root)):
        generate_family("fast", root, seed=4, workers=1, progress=False, **counts)
    with pytest.raises(SttsError, match=str(root)):
        generate_family("slow", root, seed=3, workers=1, progress=False, **counts)


def test_each_family_is_a_data_set_that_prepare_makes_with_its_flip_pairs(tmp_path):
    from stts.data import read_info
    from stts.data.registry import get_dataset, list_datasets

    assert [n for n in list_datasets() if n.startswith("motion-")] == [f"motion-{f}" for f in SUITE]
    assert get_dataset("motion-camera").preset == "small"
    out = tmp_path / "motion-fast"
    result = prepare_dataset("motion-fast", [], out, workers=1, progress=False,
                             options={"train_per_class": 2, "val_per_class": 1, "test_per_class": 1})
    assert (result["train"], result["val"], result["test"]) == (12, 6, 6)
    info = read_info(out)
    assert info["flip_pairs"] == [["MoveLeft", "MoveRight"]] and info["spec"]["hflip"] is True
    with pytest.raises(SttsError, match="has no option frames"):
        prepare_dataset("motion-fast", [], tmp_path / "x", options={"frames": 3}, progress=False)
