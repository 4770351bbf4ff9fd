"""stts show-clips: the clips as the network sees them, the data's facts and warnings, the one-batch sanity run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from data_fixtures import tiny_motion_family, write_video
from stts.cli import main
from stts.data import ClipDataset, prepare_dataset, read_spec
from stts.engine.inspect import SLOW_MOTION, data_warnings, describe_data, moving_speed, pick_examples


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    for name in ("left", "right"):
        for i in range(5):
            write_video(root / "videos" / name / f"{i}.avi", frames=40, width=64, height=48, seed=i)
    (root / "videos" / "flip_pairs.txt").write_text("left right\n")
    prepare_dataset("folder", [root / "videos"], root / "out", height=48, workers=1, progress=False)
    return root / "out"


def test_warnings_name_a_crop_that_misses_most_of_the_frame_and_a_clip_too_short_or_too_long(prepared):
    stored = read_spec(prepared)
    train = ClipDataset(prepared, "train", stored.with_sampling(8, 1, 16, None, None))
    warnings = data_warnings(train.spec, train)
    assert any("16-pixel crop sees 33%" in w and "--view 1.0" in w for w in warnings)
    assert any("spans 8 of a typical video's 40 stored frames" in w and "--clip-stride 5 (or auto)" in w for w in warnings)
    scaled = stored.with_sampling(8, 2, 16, 1.0, (0.8, 1.0))
    assert data_warnings(scaled, ClipDataset(prepared, "train", scaled)) == []
    long = stored.with_sampling(32, 2, 16, 1.0, None)
    assert any("stretched" in w for w in data_warnings(long, ClipDataset(prepared, "train", long)))


def test_description_counts_frames_seconds_and_classes(prepared):
    spec = read_spec(prepared).with_sampling(8, 2, 16, 1.0, None)
    datasets = {split: ClipDataset(prepared, split, spec) for split in ("train", "val", "test")}
    lines = describe_data(datasets, spec)
    train = next(line for line in lines if line.startswith("train:"))
    assert "frames per video 40..40" in train and "a clip covers 0.60..0.60" in train  # 15 frames at 25 fps
    assert any("left 3, right 3" in line for line in lines)
    assert pick_examples(datasets["train"], 3) == [0, 3, 1]  # the classes in turn


def test_show_clips_writes_the_grid_and_the_sanity_run_says_the_loss_goes_down(prepared, tmp_path, capsys):
    out = tmp_path / "clips.png"
    code = main(["show-clips", str(prepared), "--out", str(out), "--count", "4", "--frames", "4", "--width", "8",
                 "--clip-len", "8", "--crop-size", "32", "--view", "1.0", "--precision", "fp32", "--workers", "0",
                 "--sanity", "--steps", "40", "--lr", "3e-3"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert "frames per video" in printed and "the loss goes down" in printed


def test_an_auto_stride_makes_the_clip_span_the_median_training_video(prepared, tmp_path, capsys):
    code = main(["show-clips", str(prepared), "--out", str(tmp_path / "clips.png"), "--count", "2", "--frames", "2",
                 "--preset", "small", "--clip-len", "8", "--workers", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    # 40 stored frames a video: every 5th spans 36 of them, every 6th would span 43
    assert "--clip-stride auto: 5 (a 8-frame clip spans 36 stored frames; the median training video has 40)" in printed
    assert "8 frames, every 5th stored frame" in printed
    assert "--stabilise auto: off" in printed and "cancelled" not in printed  # a still camera


def moving_disc(speed: float, frames: int = 16, side: int = 48, seed: int = 0) -> torch.Tensor:
    """(1, 3, T, side, side) in [0, 1]: a disc of one smooth random texture moving ``speed`` px a frame over
    another, still one, with sensor noise of 2 grey levels."""
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.ones(1, 1, 5, 5) / 25

    def texture():
        noise = torch.rand(1, 1, side * 2, side * 2, generator=generator)
        return F.conv2d(F.conv2d(noise, smooth, padding=2), smooth, padding=2)[0, 0]

    background, pattern = texture(), texture()
    pattern = (pattern - pattern.mean()) * 3 + 0.5
    background = (background - background.mean()) * 3 + 0.5
    angle = float(torch.rand(1, generator=generator)) * 2 * math.pi
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    clip = []
    for t in range(frames):
        dx, dy = (t - frames / 2) * speed * math.cos(angle), (t - frames / 2) * speed * math.sin(angle)
        # the disc's texture moves with it: sample it at the point the disc's motion brought here
        grid = torch.stack([(xs - dx + side / 2) / (side - 0.5) - 1, (ys - dy + side / 2) / (side - 0.5) - 1], -1)
        moved = F.grid_sample(pattern[None, None], grid[None], align_corners=False)[0, 0]
        inside = ((xs - side / 2 - dx) ** 2 + (ys - side / 2 - dy) ** 2).sqrt() < 10
        frame = torch.where(inside, moved, background[:side, :side])
        clip.append(frame + torch.randn(side, side, generator=generator) * 2 / 255)
    return torch.stack(clip).clamp(0, 1)[None, None].expand(1, 3, frames, side, side)


def test_the_speed_of_what_moves_is_measured_and_a_still_scene_has_none():
    for speed in (0.25, 0.5, 1.0):
        measured = [float(moving_speed(moving_disc(speed, seed=seed))[0]) for seed in range(4)]
        assert abs(sorted(measured)[1] / speed - 1) < 0.25, (speed, measured)
    assert float(moving_speed(moving_disc(3.0))[0]) > 2 * SLOW_MOTION
    assert float(moving_speed(moving_disc(0.0))[0]) == 0


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory):
    return tiny_motion_family(tmp_path_factory.mktemp("slow"), "slow")


def test_auto_epochs_train_longer_where_the_training_videos_move_slowly(prepared, slow_data, tmp_path, capsys):
    code = main(["show-clips", str(slow_data), "--out", str(tmp_path / "clips.png"), "--count", "2", "--frames", "2",
                 "--preset", "small", "--workers", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "--epochs auto: 40 (what moves in the median training clip moves 0." in printed
    code = main(["show-clips", str(prepared), "--out", str(tmp_path / "clips.png"), "--count", "2", "--frames", "2",
                 "--preset", "small", "--clip-len", "8", "--workers", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "--epochs auto: 20 " in printed
