"""stts infer: windows, preprocessing, per-video outputs, annotated mp4s and bad input, on tiny real videos."""

from __future__ import annotations

import csv
import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from data_fixtures import write_video
from stts.checkpoint import save_checkpoint
from stts.cli import main
from stts.clip import ClipSpec
from stts.data import ClipDataset, prepare_dataset, read_spec
from stts.data.video import read_kept_frames, resize_to_stored
from stts.inference.annotate import write_mp4 as write_h264
from stts.inference.predict import Predictor
from stts.inference.sources import Source, collect_sources, output_names
from stts.inference.windows import frame_probabilities, frame_slots, window_frame_range
from stts.models import build_model

CLASSES = ["circle", "square", "triangle"]
CONFIG = {"model_type": "stts-a", "width": 8, "blocks": [1, 1, 1, 1], "data_type": "synthetic-motion"}
SPEC = ClipSpec(min_kept=8, height=40, clip_len=8, crop_size=32)


def write_checkpoint(path: Path, seed: int = 0, spec: ClipSpec = SPEC, **config) -> Path:
    torch.manual_seed(seed)
    config = {**CONFIG, **config}
    model = build_model(config["model_type"], len(CLASSES), width=config["width"], blocks=config["blocks"],
                        in_channels=spec.network_channels)
    return save_checkpoint({"model": model.state_dict(), "config": config, "classes": CLASSES,
                            "spec": spec.to_dict(), "precision": "fp32"}, path)


def write_mp4(path: Path, frames: int, width: int, height: int, rotation: int = 0, fps: int = 30) -> Path:
    """H.264 (yuv444p, so odd sizes work) on a white background with a dark bar; optional display rotation."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = np.full((height, width, 3), 255, np.uint8)
            frame[height // 2:, (i * 3) % width:(i * 3) % width + 5] = 0
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def decoded(path: Path) -> tuple[int, int, int, Fraction]:
    """(frames, width, height, rate) of a video as a player sees it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.width, stream.height, stream.average_rate


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("infer")
    corrupt = root / "corrupt.mp4"
    good = write_mp4(root / "good.mp4", 40, 64, 48)
    corrupt.write_bytes(good.read_bytes()[:300])  # the header survives, the frames do not
    return {
        "ckpt": write_checkpoint(root / "tiny.pt"),
        "avi": write_video(root / "clips" / "plain.avi", frames=30),
        "good": good,
        "odd": write_mp4(root / "odd.mp4", 21, 65, 47),
        "rotated": write_mp4(root / "rotated.mp4", 20, 64, 48, rotation=90),
        "short": write_mp4(root / "short.mp4", 3, 64, 48),
        "garbage": root / "garbage.avi",
        "corrupt": corrupt,
        "root": root,
    }


@pytest.fixture(scope="module")
def predictor(files) -> Predictor:
    return Predictor(files["ckpt"], precision="fp32", batch_size=4)


# --- windows: pure functions ---------------------------------------------------------------------------------------

def test_each_frame_gets_the_mean_of_the_windows_covering_it():
    # 10 frames kept every 2nd -> 5 kept; windows of 3 kept frames at 0 and 2
    slots = frame_slots(10, 2, 5)
    assert slots.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    frames = frame_probabilities(probs, [0, 2], 3, slots)
    assert frames[:4].tolist() == [[1, 0]] * 4  # first window only
    assert frames[4:6].tolist() == [[0.5, 0.5]] * 2  # both windows
    assert frames[6:].tolist() == [[0, 1]] * 4
    assert window_frame_range(2, 3, 2, 10) == (4, 9)  # kept frames 2..4
    # frames past the last kept one (step does not divide the count) belong to it
    assert frame_slots(11, 2, 6)[-1] == 5


def test_output_names_stay_unique(tmp_path):
    videos = [tmp_path / "a" / "x.avi", tmp_path / "b" / "x.avi", tmp_path / "b" / "y.avi"]
    assert output_names(videos) == ["a_x", "b_x", "y"]


def test_a_folder_stands_for_its_videos(files):
    sources = collect_sources([files["avi"].parent, files["good"]])
    assert sources == [Source("file", str(files["avi"])), Source("file", str(files["good"]))]


# --- prediction --------------------------------------------------------------------------------------------------

def test_windows_are_batched_without_changing_the_result(files, predictor):
    frames = np.random.default_rng(0).integers(0, 256, (60, 48, 64, 3), dtype=np.uint8)
    one = Predictor(files["ckpt"], precision="fp32", batch_size=1).predict(frames, stride=2)
    many = predictor.predict(frames, stride=2)  # batches of 4 windows
    assert len(one.window_probs) == len(SPEC.window_starts(15, 2)) == 5  # 60 frames, every 4th kept
    np.testing.assert_allclose(one.window_probs, many.window_probs, atol=1e-5)
    np.testing.assert_allclose(many.window_probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(many.probabilities, many.window_probs.mean(0), atol=1e-6)
    assert many.frame_probs.shape == (60, len(CLASSES))


@pytest.mark.parametrize("width, spec, batch", [(64, ClipSpec(), 1), (16, ClipSpec(), 4),
                                                (16, ClipSpec(clip_len=16, crop_size=48, temporal_residual=True), 8)])
def test_a_cpu_pass_takes_as_many_windows_as_its_activations_allow(width, spec, batch, tmp_path):
    # full width at the seed's 32x112x112: a batch of 8 held 2.7 GB and was no faster than 1
    checkpoint = write_checkpoint(tmp_path / "c.pt", spec=spec, width=width, blocks=[2, 2, 2, 2])
    assert Predictor(checkpoint, device="cpu", batch_size=None).batch_size == batch


def test_windows_sample_frames_with_the_training_step(predictor):
    # 40 frames with the rule for 8-frame clips: every 4th frame (10 kept), default stride 2
    frames = np.zeros((40, 48, 64, 3), np.uint8)
    result = predictor.predict(frames)
    assert (result.step, result.stride) == (4, 2)
    assert result.window_frames == [(0, 31), (8, 39)]


def test_a_temporal_stride_spreads_each_window_over_more_frames(tmp_path):
    spec = SPEC.replace(clip_len=4, clip_stride=2)  # 4 frames, every 2nd kept one: 7 kept frames a window
    predictor = Predictor(write_checkpoint(tmp_path / "strided.pt", spec=spec), precision="fp32")
    result = predictor.predict(np.zeros((40, 48, 64, 3), np.uint8), stride=3)
    assert result.window_frames == [(0, 27), (12, 39)]  # kept 0..6 and 3..9, 4 decoded frames each


def test_a_video_shorter_than_a_clip_is_padded_as_in_training(predictor):
    frames = np.random.default_rng(1).integers(0, 256, (3, 40, 53, 3), dtype=np.uint8)
    result = predictor.predict(frames)
    assert len(result.window_probs) == 1 and result.frame_probs.shape == (3, 3)
    views = torch.from_numpy(SPEC.centre_view(frames))  # already at the stored height
    clip = views[torch.from_numpy(SPEC.window_indices(0, 3))][None]  # frames 0,0,0,1,1,1,2,2
    expected = predictor.loaded.probabilities(clip.permute(0, 4, 1, 2, 3))[0].numpy()
    np.testing.assert_allclose(result.window_probs[0], expected, atol=1e-6)


def test_windows_see_the_frames_training_evaluates_without_the_training_data(files, tmp_path):
    # a prepared dataset (JPEG store at height 40, frame rule for 8-frame clips) and a checkpoint of its spec
    videos = tmp_path / "videos"
    source = write_video(videos / "a" / "v1.avi", frames=40, seed=3)
    for name, seed in (("a/v2", 5), ("a/v3", 6), ("b/v4", 4), ("b/v5", 7), ("b/v6", 8)):
        write_video(videos / f"{name}.avi", frames=40, seed=seed)
    prepared = tmp_path / "prepared"
    prepare_dataset("folder", [videos], prepared, height=40, workers=1, progress=False)
    spec = read_spec(prepared).with_sampling(8, 1, 32, None, None)
    assert spec.storage() != SPEC.storage()  # the rule's minimum differs: the checkpoint's spec must decide
    predictor = Predictor(write_checkpoint(tmp_path / "ckpt.pt", spec=spec, data_type=str(prepared)),
                          precision="fp32")
    dataset = ClipDataset(prepared, "train", spec)  # evaluation: middle window, centre crop
    expected, _ = dataset[dataset.videos.index("a/v1.avi")]  # (C, T, H, W)
    kept = read_kept_frames(source, predictor.spec)
    assert (kept.step, kept.decoded, len(kept.frames)) == (1, 40, 40)  # fewer than 32 at every 2nd: all kept
    views = torch.from_numpy(spec.centre_view(np.stack(kept.frames)))
    ours = views[torch.from_numpy(spec.window_indices(16, 40))].permute(3, 0, 1, 2)  # the middle window
    assert (ours.float() - expected.float()).abs().mean() < 3  # the store's JPEG error only
    shifted = views[torch.from_numpy(spec.window_indices(18, 40))].permute(3, 0, 1, 2)
    assert (shifted.float() - expected.float()).abs().mean() > 3  # a window off is not
    before = predictor.predict(resize_to_stored(np.stack(read_video_frames(source)), spec))
    shutil.rmtree(prepared)  # inference reads the checkpoint only, never the training data folder
    after = Predictor(tmp_path / "ckpt.pt", precision="fp32").predict(
        resize_to_stored(np.stack(read_video_frames(source)), spec))
    np.testing.assert_array_equal(before.window_probs, after.window_probs)


def read_video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# --- the command -------------------------------------------------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["infer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_infer_writes_json_csv_and_an_annotated_copy_per_video(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, files["good"], files["avi"], "--checkpoint", files["ckpt"], "--out", out,
                                   "--json", "--topk", "2", "--precision", "fp32")
    assert code == 0, stderr
    listing = json.loads(stdout)
    assert [Path(r["video"]).name for r in listing] == ["good.mp4", "plain.avi"]
    for record in listing:
        assert set(record) == {"video", "top1", "probability", "topk", "windows", "segments"}
        assert record["top1"] == record["topk"][0]["class"] and len(record["topk"]) == 2
        segments = record["segments"]
        assert segments and all(set(s) == {"class", "start_time", "end_time", "probability"} for s in segments)
        assert segments[0]["start_time"] == record["windows"][0]["start_time"]
        assert segments[-1]["end_time"] == record["windows"][-1]["end_time"]
    assert "real time" in stderr  # the human-readable lines go to stderr under --json

    saved = json.loads((out / "good.json").read_text())
    assert saved["frames"] == 40 and saved["frame_step"] == 4 and len(saved["windows"]) == 2
    rows = list(csv.DictReader((out / "good.csv").open()))
    assert len(rows) == 2 and rows[1]["start_frame"] == "8" and rows[1]["class_1"] in CLASSES
    assert float(rows[0]["probability_1"]) >= float(rows[0]["probability_2"])
    segment_rows = list(csv.DictReader((out / "good.segments.csv").open()))
    assert [row["class"] for row in segment_rows] == [s["class"] for s in saved["segments"]]
    vtt = (out / "good.vtt").read_text()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(saved["segments"])
    assert (out / "good.timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for name, source in (("good", files["good"]), ("plain", files["avi"])):
        assert decoded(out / f"{name}.annotated.mp4") == decoded(source)  # frame count, size and rate kept
    # the label's dark box is drawn on the white frames' top-left corner
    with av.open(str(out / "good.annotated.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame[4:8, 2:30].mean() < 120 and frame[20:24].mean() > 200  # the box, and white below it


@pytest.mark.parametrize("size, reordered", [((240, 320), True), ((1088, 1920), False)])
def test_frames_over_720p_are_encoded_without_reordering(size, reordered, tmp_path):
    # no B-frames (decode order = display order) means no look-ahead: x264's 1080p frame pool 179 -> 75 MB
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (size[0] // 16, size[1] // 16, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    frames = np.stack([np.roll(base, 8 * i, axis=1) for i in range(12)])
    path = write_h264(frames, 25, tmp_path / "out.mp4")
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert len(packets) == len(frames)
    assert any(p.pts != p.dts for p in packets) == reordered


def test_odd_sizes_and_rotation_metadata(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, stderr = run_cli(capsys, files["odd"], files["rotated"], "--checkpoint", files["ckpt"], "--out", out)
    assert code == 0, stderr
    frames, width, height, rate = decoded(out / "odd.annotated.mp4")
    assert (frames, rate) == (21, 30) and (width, height) == (66, 48)  # yuv420p: one replicated column and row
    # rotation metadata is applied: the upright 48x64 video is annotated and written without it
    assert decoded(out / "rotated.annotated.mp4") == (20, 48, 64, 30)


def test_a_bad_video_is_reported_and_the_others_still_processed(files, tmp_path, capsys):
    files["garbage"].write_bytes(b"not a video at all" * 50)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, files["garbage"], files["short"], files["corrupt"], tmp_path / "missing.avi",
                                   "--checkpoint", files["ckpt"], "--out", out, "--json")
    assert code != 0
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 3 and "garbage.avi" in errors[0] and "corrupt.mp4" in errors[1] and "missing.avi" in errors[2]
    assert [Path(r["video"]).name for r in json.loads(stdout)] == ["short.mp4"]
    assert decoded(out / "short.annotated.mp4")[0] == 3
    assert not (out / "garbage.json").exists()


def test_a_checkpoint_that_is_not_stts_is_refused(files, tmp_path, capsys):
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": build_model("stts-a", 3, width=8).state_dict()}, foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for checkpoint in (foreign, text):
        code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", checkpoint, "--out", tmp_path)
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and str(checkpoint) in stderr


def test_the_seeds_flags_are_checked_against_the_checkpoint(files, tmp_path, capsys):
    code, _, stderr = run_cli(capsys, "--video_name", files["good"], "--model_name", files["ckpt"], "--model_type", "c3d",
                              "--out", tmp_path)
    assert code == 2 and "c3d" in stderr and "stts-a" in stderr
    code, _, stderr = run_cli(capsys, "--video_name", files["good"], "--model_name", files["ckpt"], "--data_type", "ucf101",
                              "--out", tmp_path)
    assert code == 2 and "synthetic-motion" in stderr
    code, _, stderr = run_cli(capsys, "--video_name", files["good"], "--model_name", files["ckpt"], "--model_type", "stts-a",
                              "--data_type", "synthetic-motion", "--out", tmp_path)
    assert code == 0, stderr
    assert (tmp_path / "good.annotated.mp4").is_file()


def test_show_without_a_display_says_so_and_still_writes_the_files(files, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path, "--show")
    assert code == 0
    lines = [line for line in stderr.splitlines() if "--show" in line]
    assert len(lines) == 1 and "no display" in lines[0] and str(tmp_path) in lines[0]
    assert (tmp_path / "good.annotated.mp4").is_file()


def test_explain_writes_the_heat_over_every_frame_and_only_for_files(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", out, "--explain",
                              "--precision", "fp32")
    assert code == 0, stderr
    assert decoded(out / "good.explain.mp4") == decoded(files["good"])
    with av.open(str(out / "good.explain.mp4")) as explained, av.open(str(out / "good.annotated.mp4")) as annotated:
        heat = next(explained.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        plain = next(annotated.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(heat - plain)[20:].mean() > 5  # the heat is drawn over the frame (below the label box)
    code, _, stderr = run_cli(capsys, files["good"], "--live", "--checkpoint", files["ckpt"], "--out", out,
                              "--explain")
    assert code == 2 and "--explain needs a video file" in stderr
