"""stts export --format onnx: uint8 clips in, the spec's conversion inside, dynamic batch, class names and
clip spec in the file, onnxruntime matching PyTorch on checkpoints of every network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import moving_squares
from stts.checkpoint import save_checkpoint
from stts.cli import main
from stts.clip import ClipSpec
from stts.errors import SttsError
from stts.inference.export import ClipInput, batch_dependence, check_onnx, export_onnx, read_metadata
from stts.models import build_model, list_models
from stts.runtime import load_model
from test_camera import rendered_clips

ort = pytest.importorskip("onnxruntime")

CLASSES = ["right", "left", "down", "up"]
SPEC = ClipSpec(clip_len=8, crop_size=32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), channels="BGR")


def write_checkpoint(path: Path, model_type: str = "stts-a", width: int = 4, steps: int = 0, seed: int = 0,
                     blocks=(1, 1, 1, 1)) -> Path:
    """A checkpoint of ``model_type``, trained ``steps`` Adam steps on moving squares so that its logits and
    BatchNorm statistics are a trained network's, not an initialisation's."""
    torch.manual_seed(seed)
    model = build_model(model_type, len(CLASSES), width=width, blocks=blocks)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = moving_squares((16, 1, 1), clip_len=8, crop_size=32)["train"]
    for step in range(steps):
        clips, labels = zip(*(data[(4 * step + i) % len(data)] for i in range(4)), strict=True)
        loss = torch.nn.functional.cross_entropy(model(SPEC.model_input(torch.stack(clips))), torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    config = {"model_type": model_type, "width": width, "blocks": list(blocks)}
    return save_checkpoint({"model": model.state_dict(), "config": config, "classes": CLASSES,
                            "spec": SPEC.to_dict(), "precision": "fp32"}, path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    checkpoint = write_checkpoint(root / "tiny.pt")
    return checkpoint, export_onnx(checkpoint)


def test_onnx_takes_uint8_clips_and_matches_pytorch_for_any_batch(exported):
    checkpoint, onnx_path = exported
    assert onnx_path == checkpoint.with_suffix(".onnx")
    assert check_onnx(onnx_path, checkpoint, batches=(1, 3))["relative"] <= 1e-3
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (clip,) = session.get_inputs()
    assert clip.type == "tensor(uint8)"
    assert isinstance(clip.shape[0], str) and clip.shape[1:] == [3, 8, 32, 32]  # batch dynamic, the rest fixed
    clips = np.random.default_rng(0).integers(0, 256, (5, 3, 8, 32, 32), dtype=np.uint8)
    (logits,) = session.run(None, {"clip": clips})
    assert logits.shape == (5, len(CLASSES))


def test_the_file_carries_the_class_names_and_the_clip_spec(exported):
    _, onnx_path = exported
    metadata = read_metadata(onnx_path)
    assert json.loads(metadata["stts_classes"]) == CLASSES
    assert ClipSpec.from_dict(json.loads(metadata["stts_spec"])) == SPEC
    assert json.loads(metadata["stts_model"])["model_type"] == "stts-a"


def test_the_check_catches_a_network_that_differs(exported, tmp_path):
    _, onnx_path = exported
    other = write_checkpoint(tmp_path / "other.pt", seed=1)
    with pytest.raises(SttsError, match="differ from PyTorch"):
        check_onnx(onnx_path, other)


@pytest.mark.parametrize("model_type", list_models())
def test_export_passes_on_trained_checkpoints_of_every_network_at_width_16(model_type, tmp_path, capsys):
    # the case: an STTS-A of width 16 after some training failed an absolute 1e-4 check
    checkpoint = write_checkpoint(tmp_path / f"{model_type}.pt", model_type, width=16, steps=6, blocks=(2, 2, 2, 2))
    assert main(["export", str(checkpoint)]) == 0
    assert "check passed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("model_type", list_models())
def test_export_passes_on_full_width_checkpoints(model_type, tmp_path):
    checkpoint = write_checkpoint(tmp_path / f"{model_type}.pt", model_type, width=64, steps=1, blocks=(2, 2, 2, 2))
    check = check_onnx(export_onnx(checkpoint), checkpoint, batches=(2,))
    assert check["relative"] <= 1e-3


def spec_checkpoint(path: Path, spec: ClipSpec, width: int = 8, blocks=(1, 1, 1, 1), classes: int = 3,
                    steps: int = 0) -> Path:
    """An STTS-A checkpoint whose input is ``spec``'s, trained ``steps`` Adam steps on moving squares."""
    torch.manual_seed(0)
    model = build_model("stts-a", classes, width=width, blocks=blocks, in_channels=spec.network_channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = moving_squares((16, 1, 1), clip_len=spec.clip_len, crop_size=spec.crop_size)["train"]
    for step in range(steps):
        clips, labels = zip(*(data[(4 * step + i) % len(data)] for i in range(4)), strict=True)
        loss = torch.nn.functional.cross_entropy(model(spec.model_input(torch.stack(clips))), torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_checkpoint({"model": model.state_dict(), "config": {"model_type": "stts-a", "width": width,
                            "blocks": list(blocks)}, "classes": CLASSES[:classes], "spec": spec.to_dict(),
                            "precision": "fp32"}, path)


def test_clip_normalisation_is_inside_the_graph(tmp_path):
    spec = ClipSpec(clip_len=8, crop_size=32).replace(normalisation="clip")
    checkpoint = spec_checkpoint(tmp_path / "clipnorm.pt", spec)
    assert check_onnx(export_onnx(checkpoint), checkpoint, batches=(1, 3))["relative"] <= 1e-3


# every option of the spec that changes the network's input, on at once (each in the graph, none tied to the batch)
EVERY_INPUT = {"temporal_residual": True, "normal_flow": True, "flow_baselines": 2, "flow_local_contrast": True,
               "stabilise": True, "pool_frames": 2}


@pytest.mark.parametrize("normalisation", ["clip", "fixed"])
def test_every_input_option_is_inside_the_graph_at_any_batch(normalisation, tmp_path):
    spec = ClipSpec(clip_len=8, crop_size=32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), channels="BGR").replace(
        normalisation=normalisation, **EVERY_INPUT)
    checkpoint = spec_checkpoint(tmp_path / "every.pt", spec)
    # batches 1 and 3: the graph is traced at 2, and a size of the example batch kept in it fails at any other
    assert check_onnx(export_onnx(checkpoint), checkpoint, batches=(1, 3))["relative"] <= 1e-3


def test_a_stabilising_preset_small_network_gives_each_clip_the_same_logits_at_any_batch(tmp_path, capsys):
    # the case: --preset small --stabilise on (16 frames, 48-pixel view, the residual, the normal flow,
    # width 16) failed `stts export` at batches 1 and 3 with "Grid batch size 30 does not match input batch size 15"
    spec = ClipSpec(clip_len=16, crop_size=48, view=1.0).replace(normalisation="clip", temporal_residual=True,
                                                                 normal_flow=True, stabilise=True)
    checkpoint = spec_checkpoint(tmp_path / "small.pt", spec, width=16, blocks=(2, 2, 2, 2), classes=4, steps=4)
    assert main(["export", str(checkpoint)]) == 0
    assert "check passed" in capsys.readouterr().out
    session = ort.InferenceSession(str(checkpoint.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    _, _, clips = rendered_clips("camera")  # motion-camera's clips: the camera pans and zooms, an object moves
    clips = (clips[:3] * 255).round().to(torch.uint8).numpy()
    (together,) = session.run(None, {"clip": clips})
    alone = np.concatenate([session.run(None, {"clip": clips[i:i + 1]})[0] for i in range(3)])
    expected = load_model(checkpoint, "cpu", "fp32").logits(torch.from_numpy(clips)).numpy()
    scale = np.abs(expected).max()
    assert np.abs(together - alone).max() <= 1e-4 * scale  # a clip's logits do not depend on its batch
    assert np.abs(together - expected).max() <= 1e-3 * scale


class KeepsTheBatch(torch.nn.Module):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.float().mean((1, 2, 3, 4)) * torch.ones(len(clips))  # len(): a constant in a traced graph


def test_a_graph_that_keeps_the_example_batch_is_found_and_named():
    place = batch_dependence(KeepsTheBatch(), (3, 4, 8, 8))
    assert place is not None and place.startswith("test_export.py:") and "len" in place
    spec = ClipSpec(clip_len=8, crop_size=32).replace(**EVERY_INPUT)
    model = build_model("stts-a", 3, width=4, blocks=(1, 1, 1, 1), in_channels=spec.network_channels).eval()
    assert batch_dependence(ClipInput(model, spec).eval(), spec.input_shape()) is None


def test_a_failed_check_leaves_no_file_and_says_so_in_one_line(exported, tmp_path, capsys):
    checkpoint, _ = exported
    out = tmp_path / "strict" / "tiny.onnx"
    assert main(["export", str(checkpoint), "--out", str(out), "--rtol", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out} not written: " in err and "from PyTorch" in err
    assert not out.exists() and list(out.parent.iterdir()) == []  # nor its temporary file


def test_c3d_exports_at_the_seeds_crop_where_onnx_has_no_adaptive_pooling(tmp_path):
    # 112-pixel crops leave C3D a 7x7 map for its adaptive max pool to 4x4, which ONNX cannot express
    torch.manual_seed(0)
    spec = ClipSpec(clip_len=16, crop_size=112)
    model = build_model("c3d", 3, width=4)
    checkpoint = save_checkpoint({"model": model.state_dict(), "config": {"model_type": "c3d", "width": 4},
                                  "classes": CLASSES[:3], "spec": spec.to_dict(), "precision": "fp32"},
                                 tmp_path / "c3d.pt")
    assert check_onnx(export_onnx(checkpoint), checkpoint, batches=(2,))["relative"] <= 1e-3


def test_export_refuses_a_checkpoint_that_is_not_stts(tmp_path, capsys):
    foreign = tmp_path / "weights.pth"
    torch.save({"weights": [build_model("stts-a", 3, width=4).state_dict()]}, foreign)
    assert main(["export", str(foreign)]) == 2
    assert "not a stts checkpoint" in capsys.readouterr().err
