"""stts export --format onnx: dynamic batch, clip shape and class names from the checkpoint, onnxruntime matches PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stts.cli import main
from stts.engine.checkpoint import save_checkpoint
from stts.errors import SttsError
from stts.inference.export import check_onnx, export_onnx, read_metadata
from stts.models import build_model

ort = pytest.importorskip("onnxruntime")

CLASSES = ["walk", "run", "jump", "wave"]
# one block a stage keeps the untrained network's fp32 rounding noise far under the 1e-4 check (see export.py)
CONFIG = {"model_type": "stts-a", "width": 4, "blocks": [1, 1, 1, 1], "clip_len": 8, "crop_size": 32,
          "frame_height": 40}


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = build_model("stts-a", len(CLASSES), width=CONFIG["width"], blocks=CONFIG["blocks"])
    return save_checkpoint({"model": model.state_dict(), "config": CONFIG, "classes": CLASSES}, path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    checkpoint = write_checkpoint(root / "tiny.pt")
    return checkpoint, export_onnx(checkpoint)


def test_onnx_logits_match_pytorch_for_any_batch(exported):
    checkpoint, onnx_path = exported
    assert onnx_path == checkpoint.with_suffix(".onnx")
    assert check_onnx(onnx_path, checkpoint, batches=(1, 3), atol=1e-4) <= 1e-4
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (clip,) = session.get_inputs()
    assert isinstance(clip.shape[0], str) and clip.shape[1:] == [3, 8, 32, 32]  # batch dynamic, the rest fixed
    (logits,) = session.run(None, {"clip": np.random.default_rng(0).random((5, 3, 8, 32, 32), np.float32)})
    assert logits.shape == (5, len(CLASSES))


def test_the_file_carries_the_class_names_and_preprocessing(exported):
    _, onnx_path = exported
    metadata = read_metadata(onnx_path)
    assert json.loads(metadata["stts_classes"]) == CLASSES
    config = json.loads(metadata["stts_config"])
    assert config["model_type"] == "stts-a" and config["clip_shape"] == [3, 8, 32, 32] and config["height"] == 40


def test_the_check_catches_a_network_that_differs(exported, tmp_path):
    _, onnx_path = exported
    other = write_checkpoint(tmp_path / "other.pt", seed=1)
    with pytest.raises(SttsError, match="differ from PyTorch"):
        check_onnx(onnx_path, other)


def test_export_command(exported, tmp_path, capsys):
    checkpoint, _ = exported
    out = tmp_path / "model.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert out.is_file() and "check passed" in stdout


def test_export_refuses_a_checkpoint_that_is_not_stts(tmp_path, capsys):
    foreign = tmp_path / "weights.pth"
    torch.save(build_model("stts-a", 3, width=4).state_dict(), foreign)
    assert main(["export", str(foreign)]) == 2
    assert "not a stts checkpoint" in capsys.readouterr().err
