"""`stts train` and `stts evaluate` end to end on a small prepared synthetic-motion dataset."""

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
import torch

from stts import checkpoint as ckpt
from stts.cli import main
from stts.engine.reporting import read_statistics

SMALL = ["--width", "8", "--clip_len", "8", "--crop-size", "32", "--batch_size", "4", "--workers", "0",
         "--precision", "fp32", "--no-tensorboard"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from stts.data import prepare_synthetic_motion

    root = tmp_path_factory.mktemp("data") / "synthetic-motion"
    return prepare_synthetic_motion(root, train_per_class=4, test_per_class=2, frames=12, width=64, height=48,
                                    size=40, classes=4, progress=False)


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "--data_type", str(prepared), "--model_type", "c3d", "--num_epochs", "2", "--gpu_ids", "0",
                     "--out", str(run), *SMALL])
    assert code == 0
    (run / "printed.txt").write_text(printed.getvalue())
    return run


def test_train_writes_the_run_folder_and_says_it_uses_the_cpu(trained, capsys):
    rows = read_statistics(trained / "statistics.csv")
    assert [row["epoch"] for row in rows] == [1, 2]
    state = ckpt.load_checkpoint(trained / "best.pt")
    assert state["config"]["model_type"] == "c3d" and state["config"]["clip_len"] == 8
    assert len(state["classes"]) == 4
    assert json.loads((trained / "config.json").read_text())["data_type"].endswith("synthetic-motion")
    for name in ("curves.png", "confusion_val.png"):
        assert (trained / name).stat().st_size > 1000
    printed = (trained / "printed.txt").read_text()
    if not torch.cuda.is_available():
        assert "stts train: no CUDA GPU visible: training on the CPU (--gpu_ids 0 ignored)" in printed
        assert "stts train: c3d (width 8)" in printed and ", CPU, fp32;" in printed


def test_evaluate_takes_one_crop_of_a_whole_frame_region_and_says_so(trained, tmp_path, capsys):
    """`--views 2x3` of a checkpoint whose evaluation region is the whole frame: three crops would be one region
    three times (three times the work, the same scores): 2x1 is evaluated, and the summary and a line say so."""
    state = ckpt.load_checkpoint(trained / "best.pt")
    state["spec"] = ckpt.checkpoint_spec(state).replace(view=1.0, region="frame").to_dict()
    framed = ckpt.save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")},
                                  tmp_path / "framed.pt")
    capsys.readouterr()
    assert main(["evaluate", str(framed), "--views", "2x3", "--json", "--workers", "0", "--precision", "fp32",
                 "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert (summary["views"], summary["views_asked"], summary["videos"]) == ("2x1", "2x3", 8)
    assert "--views 2x3: the checkpoint's evaluation region is the whole frame" in printed.err
    assert "evaluated 2x1" in printed.err


def test_evaluate_reports_clip_and_video_accuracy(trained, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(trained / "best.pt"), "--views", "2x3", "--json", "--workers", "0",
                 "--precision", "fp32", "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("clip_top1", "clip_top5", "video_top1", "video_top5"):
        assert 0 <= summary[key] <= 100
    assert summary["clip_top5"] == 100.0  # 4 classes: the true one is always in the top 5
    assert summary["videos"] == 8 and summary["views"] == summary["views_asked"] == "2x3"
    state = ckpt.load_checkpoint(trained / "best.pt")
    assert summary["clip_top1"] == pytest.approx(state["history"][-1]["test_top1_accuracy"], abs=1e-6) or \
        state["best_metric"] != state["history"][-1]["val_top1_accuracy"]
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 1000
    per_class = (tmp_path / "eval" / "per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,videos,clip_top1_accuracy,video_top1_accuracy" and len(per_class) == 5
    confusion = (tmp_path / "eval" / "confusion.csv").read_text().splitlines()
    assert sum(int(v) for line in confusion[1:] for v in line.split(",")[1:]) == 8


def test_user_errors_are_one_line(trained, prepared, tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["evaluate", str(tmp_path / "junk.pt")]) == 2
    assert main(["train", "--resume", str(trained), "--lr", "0.5"]) == 2
    assert main(["train", "--data_type", str(prepared), "--out", str(trained)]) == 2
    assert main(["train", "--data_type", str(tmp_path / "nowhere")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("stts ") for line in errors), errors
    assert "junk.pt" in errors[0] and "--lr" in errors[1] and "--resume" in errors[2] and "stts prepare" in errors[3]


def test_resume_refuses_other_data_with_the_same_classes(prepared, tmp_path, capsys):
    from stts.data import prepare_synthetic_motion

    first, other = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    (first / "synthetic-motion").symlink_to(prepared, target_is_directory=True)
    prepare_synthetic_motion(other / "synthetic-motion", seed=1, train_per_class=4, test_per_class=2, frames=12,
                             width=64, height=48, size=40, classes=4, progress=False)
    run = tmp_path / "run"
    # synthetic-motion names --preset small, whose pairs of frames would leave C3D 4 time steps: too few for it
    assert main(["train", "--data_type", "synthetic-motion", "--data-root", str(first), "--model_type", "c3d",
                 "--epochs", "1", "--out", str(run), *SMALL]) == 2
    assert "on 4x32x32 inputs (--clip-len 8 averaged over --pool-frames 2) does not build" in capsys.readouterr().err
    assert main(["train", "--data_type", "synthetic-motion", "--data-root", str(first), "--model_type", "c3d",
                 "--epochs", "1", "--out", str(run), "--pool-frames", "1", *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--data-root", str(other)]) == 2
    error = capsys.readouterr().err
    assert "trained on other data" in error and len(error.strip().splitlines()) == 1
    assert ckpt.load_checkpoint(run / "last.pt")["epoch"] == 1
    assert main(["train", "--resume", str(run), "--epochs", "2", "--data-root", str(first)]) == 0


def test_evaluating_on_data_with_other_classes_is_refused(trained, tmp_path, capsys):
    from stts.data import prepare_synthetic_motion

    other = prepare_synthetic_motion(tmp_path / "other", train_per_class=2, test_per_class=1, frames=12, width=64,
                                     height=48, size=40, classes=3, progress=False)
    assert main(["evaluate", str(trained / "best.pt"), "--data_type", str(other), "--workers", "0"]) == 2
    assert "trained on 4 classes" in capsys.readouterr().err


def test_a_network_on_pooled_frames_trains_evaluates_and_infers(prepared, tmp_path, capsys):
    """--pool-frames 2: the network takes half the time steps; the checkpoint's spec carries it, so evaluation and
    inference pool the same way without being told."""
    run = tmp_path / "pooled"
    assert main(["train", "--data_type", str(prepared), "--num_epochs", "1", "--out", str(run), "--pool-frames", "2",
                 "--normal-flow", *SMALL]) == 0
    assert "averaged over 2 frames at a time (4 time steps)" in capsys.readouterr().out
    assert ckpt.load_checkpoint(run / "best.pt")["spec"]["pool_frames"] == 2
    assert main(["evaluate", str(run / "best.pt"), "--json", "--workers", "0", "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["videos"] == 8
    video = next((prepared / "videos").rglob("*.avi"))
    assert main(["infer", str(video), "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "inferred"),
                 "--outputs", "none", "--json", "--precision", "fp32"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["top1"] in ckpt.load_checkpoint(run / "best.pt")["classes"] and record["windows"]
    assert main(["train", "--data_type", str(prepared), "--out", str(tmp_path / "bad"), "--pool-frames", "3",
                 *SMALL]) == 2
    assert "clip_len (8) must be a multiple of pool_frames (3)" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_on_the_cpu(prepared, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "stts",
               "train", "--data_type", str(prepared), "--model_type", "c3d", "--epochs", "1", "--out", str(run), *SMALL]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("training on the CPU") == 1  # rank 0 speaks, the other rank is quiet
    assert "2 processes" in result.stdout
    assert ckpt.load_checkpoint(run / "last.pt")["epoch"] == 1
