"""stts show-clips: the clips as the network sees them, the data's facts and warnings, the one-batch sanity run."""

from __future__ import annotations

import pytest

from data_fixtures import write_video
from stts.cli import main
from stts.data import ClipDataset, prepare_dataset, read_spec
from stts.engine.inspect import data_warnings, describe_data, pick_examples


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
