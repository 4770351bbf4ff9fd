"""synthetic-motion: a UCF101-like tree of real AVIs, prepared by the UCF101 path, deterministic for a seed."""

from __future__ import annotations

import numpy as np

from stts.data import ClipDataset, prepare_synthetic_motion, read_spec, read_video
from stts.data.synthetic import MOTIONS, motion_path, render_video, render_video_and_masks


def test_generates_and_prepares_like_ucf101(tmp_path):
    options = dict(train_per_class=3, test_per_class=1, frames=24, width=64, height=48, classes=8, size=40, workers=2,
                   progress=False)
    out = prepare_synthetic_motion(tmp_path / "a", seed=5, **options)
    lists = out / "videos" / "ucfTrainTestlist"
    assert (lists / "trainlist01.txt").read_bytes().count(b"\r\n") == 24
    test_videos = (lists / "testlist01.txt").read_text().split()
    assert len(test_videos) == 8 and all((out / "videos/UCF-101" / v).is_file() for v in test_videos)
    spec = read_spec(out).replace(clip_len=16, crop_size=32)
    dataset = ClipDataset(out, "test", spec)
    assert len(dataset) == 8 and dataset.classes == list(MOTIONS)
    assert_flips_swap_mirrored_motions(ClipDataset(out, "train", spec, train=True))
    again = prepare_synthetic_motion(tmp_path / "b", seed=5, **options)
    first, _ = read_video(out / "videos/UCF-101" / test_videos[0])
    second, _ = read_video(again / "videos/UCF-101" / test_videos[0])
    assert np.array_equal(first, second)


def test_class_shows_only_in_motion():
    rng = np.random.default_rng
    x, _, _, _ = motion_path("MoveRight", 30, 100, 80, rng(0))
    assert np.all(np.diff(x) > 0)
    x, _, _, _ = motion_path("MoveLeft", 30, 100, 80, rng(0))
    assert np.all(np.diff(x) < 0)
    _, _, r, _ = motion_path("Shrink", 30, 100, 80, rng(0))
    assert np.all(np.diff(r) < 0)
    _, _, _, a = motion_path("RotateClockwise", 30, 100, 80, rng(0))
    assert np.all(np.diff(a) < 0)


def test_the_shapes_masks_come_with_the_same_frames():
    video = render_video("MoveRight", 8, 64, 48, np.random.default_rng(3))
    same, masks = render_video_and_masks("MoveRight", 8, 64, 48, np.random.default_rng(3))
    np.testing.assert_array_equal(video, same)
    assert masks.shape == (8, 48, 64) and masks.dtype == bool
    assert 0.02 < masks.mean() < 0.3
    # the shape is the brighter: inside its mask the frames are brighter than around it
    luma = video.mean(-1)
    assert all(luma[t][masks[t]].mean() > luma[t][~masks[t]].mean() + 50 for t in range(8))
    centres = [np.nonzero(m)[1].mean() for m in masks]
    assert np.all(np.diff(centres) > 0)  # and the mask moves right


def assert_flips_swap_mirrored_motions(dataset):
    """A mirrored MoveLeft clip moves right, so training must label it MoveRight (and so for rotations)."""
    mirror = {"MoveLeft": "MoveRight", "MoveRight": "MoveLeft",
              "RotateClockwise": "RotateAnticlockwise", "RotateAnticlockwise": "RotateClockwise"}
    swapped = kept = 0
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            _, label = dataset[index]
            name, given = dataset.classes[dataset.labels[index]], dataset.classes[label]
            if given != name:
                assert given == mirror[name]
                swapped += 1
            elif name in mirror:
                kept += 1
    assert swapped > 0 and kept > 0
