"""stts convert: the original code's state dicts -> stts checkpoints whose logits equal the original network's."""

from __future__ import annotations

import json

import pytest
import torch

from original_networks import original_network
from stts.cli import main
from stts.data.classes import UCF101
from stts.models import build_model
from stts.models.original import convert_state_dict
from stts.runtime import load_model

CLASSES = [f"action{i}" for i in range(7)]


def rgb_clip(seed: int = 0) -> torch.Tensor:
    """uint8 RGB (2, 3, 8, 32, 32), as the clip spec's functions make clips."""
    return torch.randint(0, 256, (2, 3, 8, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def original_logits(network, clip: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return network(clip.flip(1).float() / 255)  # the original fed OpenCV's BGR frames / 255


@pytest.mark.parametrize("model_type", ["r2plus1d", "stts", "stts-a"])
@pytest.mark.parametrize("data_parallel", [False, True])
def test_converted_checkpoints_give_the_original_logits(model_type, data_parallel, tmp_path, capsys):
    network = original_network(model_type, len(CLASSES))
    weights = network.state_dict()
    if data_parallel:
        weights = {f"module.{key}": value for key, value in weights.items()}
    torch.save(weights, tmp_path / "original.pth")
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    assert main(["convert", str(tmp_path / "original.pth"), "--model_type", model_type,
                 "--classes", str(tmp_path / "classes.txt"), "--out", str(tmp_path / "ours.pt")]) == 0
    loaded = load_model(tmp_path / "ours.pt", "cpu", "fp32")
    assert loaded.classes == CLASSES and loaded.spec.channels == "BGR" and loaded.precision == "fp32"
    clip = rgb_clip()
    expected = original_logits(network, clip)
    got = loaded.logits(clip)
    assert ((got - expected).abs().max() / expected.abs().max()) <= 1e-5


def test_ucf101_order_is_turned_into_stts_order(tmp_path):
    # the original numbered classes by sorted(): HammerThrow before Hammering, JumpRope before JumpingJack
    network = original_network("r2plus1d", 101)
    torch.save(network.state_dict(), tmp_path / "original.pth")
    assert main(["convert", str(tmp_path / "original.pth"), "--model_type", "r2plus1d", "--data_type", "ucf101",
                 "--out", str(tmp_path / "ours.pt")]) == 0
    loaded = load_model(tmp_path / "ours.pt", "cpu", "fp32")
    assert loaded.classes == UCF101
    clip = rgb_clip(1)
    theirs, ours = original_logits(network, clip), loaded.logits(clip)
    by_name = sorted(UCF101)
    for name in ("Hammering", "HammerThrow", "JumpRope", "JumpingJack", "YoYo"):
        torch.testing.assert_close(ours[:, UCF101.index(name)], theirs[:, by_name.index(name)], rtol=1e-5, atol=1e-5)
    assert UCF101.index("Hammering") != by_name.index("Hammering")


def test_converted_checkpoints_run_in_infer_export_and_as_a_warm_start(tmp_path, capsys):
    from conftest import moving_squares
    from data_fixtures import write_video
    from stts.engine.config import TrainConfig
    from stts.engine.train import fit

    torch.save(original_network("stts-a", len(CLASSES)).state_dict(), tmp_path / "original.pth")
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    checkpoint = tmp_path / "ours.pt"
    assert main(["convert", str(tmp_path / "original.pth"), "--model_type", "stts-a", "--classes",
                 str(tmp_path / "classes.txt"), "--out", str(checkpoint)]) == 0
    video = write_video(tmp_path / "v.avi", frames=40, width=64, height=48)
    capsys.readouterr()
    assert main(["infer", str(video), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--json",
                 "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top1"] in CLASSES
    config = TrainConfig(data_type="tiny", model_type="stts-a", width=64, clip_len=8, crop_size=32, batch_size=2,
                         epochs=1, lr=1e-9, workers=0, precision="fp32", tensorboard=False,
                         pretrained=str(checkpoint), out=str(tmp_path / "run"))
    result = fit(config, datasets=moving_squares((2, 2, 2)))
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["spec"]["channels"] == "BGR"  # the warm start keeps the input the weights were trained on
    assert not result["interrupted"]


def test_c3d_and_foreign_weights_are_refused_in_one_line(tmp_path, capsys):
    torch.save(build_model("c3d", 3, width=4).state_dict(), tmp_path / "c3d.pth")
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    assert main(["convert", str(tmp_path / "c3d.pth"), "--model_type", "c3d", "--classes",
                 str(tmp_path / "classes.txt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "no ReLU between its convolutions" in capsys.readouterr().err
    torch.save(build_model("stts", 3, width=8).state_dict(), tmp_path / "ours.pth")
    assert main(["convert", str(tmp_path / "ours.pth"), "--model_type", "stts", "--classes",
                 str(tmp_path / "classes.txt"), "--out", str(tmp_path / "x.pt")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "unexpected weight" in error[0]
    with pytest.raises(Exception, match="not an ST and a TS"):
        convert_state_dict({"feature.conv1.a.spatial_conv.weight": torch.zeros(1)}, "stts")
