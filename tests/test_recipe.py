"""One resolution of the recipe: every auto decided once, from the data, into a new config and spec;
the input options one typed group; `stts train --config` reruns a recipe."""

import dataclasses
import json

import numpy as np
import pytest

from stts.cli import main
from stts.cli.options import OPTIONS
from stts.clip import ClipSpec, InputOptions
from stts.engine.config import TrainConfig, resolve_config
from stts.engine.recipe import resolve_recipe
from stts.errors import SttsError

TINY = ["--width", "8", "--clip_len", "8", "--crop-size", "32", "--batch_size", "4", "--workers", "0",
        "--precision", "fp32", "--no-tensorboard", "--model-type", "c3d"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from stts.data import prepare_synthetic_motion

    root = tmp_path_factory.mktemp("data") / "synthetic-motion"
    return prepare_synthetic_motion(root, train_per_class=4, test_per_class=2, frames=24, width=64, height=48,
                                    size=40, classes=4, progress=False)


def test_the_resolver_decides_every_auto_into_a_new_config_and_leaves_the_given_one_alone(prepared, tmp_path):
    asked = resolve_config({"data_type": str(prepared), "preset": "small", "clip_len": 8, "crop_size": 32,
                            "width": 8, "out": str(tmp_path / "run")})
    before = asked.to_dict()
    recipe = resolve_recipe(asked, prepared)
    assert asked.to_dict() == before  # nothing written back
    assert (asked.clip_stride, asked.inputs.stabilise) == ("auto", "auto")
    stride = ClipSpec.spanning_stride(8, 24)  # every stored frame of 24 kept: synthetic-motion keeps them all
    assert recipe.config.clip_stride == recipe.spec.clip_stride == stride == 3
    assert recipe.config.inputs == recipe.spec.inputs and recipe.spec.inputs.stabilise is False
    assert [line.split(":")[0] for line in recipe.decisions] == ["--clip-stride auto", "--stabilise auto"]
    assert recipe.spec.inputs.normal_flow and recipe.spec.network_channels == 8
    given = resolve_config({"data_type": str(prepared), "clip_stride": 2, "out": str(tmp_path / "r2"), "crop_size": 32})
    assert resolve_recipe(given, prepared).decisions == ()  # nothing to decide: nothing said


def test_the_region_goes_from_the_option_to_the_runs_clip_spec(prepared, tmp_path):
    options = {"data_type": str(prepared), "preset": "small", "clip_len": 8, "crop_size": 32, "out": str(tmp_path)}
    framed = resolve_recipe(resolve_config(options), prepared).spec
    assert framed.region == "frame" and "the whole frame resized to 32x32" in framed.describe()  # the preset's
    assert resolve_recipe(resolve_config({**options, "region": "square"}), prepared).spec.region == "square"
    assert resolve_config({"data_type": str(prepared), "out": str(tmp_path / "seed")}).region == "square"  # the seed's
    assert "region" in OPTIONS and "region" in TrainConfig.option_names()


@pytest.mark.parametrize("shape", [(128, 170), (128, 228), (170, 128)])
def test_the_presets_views_keep_a_frames_sides(prepared, tmp_path, shape):
    """The README's claim: --preset small evaluates the whole frame and trains on 80-100 % of each side, whatever the
    frame's shape (4:3, 16:9, portrait); the square of the short side kept 75 %, 56 % and 75 % of the longer side."""
    spec = resolve_recipe(resolve_config({"data_type": str(prepared), "preset": "small", "out": str(tmp_path)}),
                          prepared).spec
    height, width = shape
    assert spec.eval_samples(100, height, width)[0].box == (0, 0, height, width)
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, box_h, box_w = spec.train_sample(100, height, width, rng).box
        assert box_h >= 0.8 * height - 1 and box_w >= 0.8 * width - 1
        assert 0 <= top <= height - box_h and 0 <= left <= width - box_w


def test_a_new_input_option_is_one_field_and_one_flag():
    for name in InputOptions.names():
        assert name in OPTIONS, f"InputOptions.{name} has no flag in stts.cli.options"
        assert name in TrainConfig.option_names()
    # the spec and the config carry the whole group, flat in their files, under any option's name
    inputs = InputOptions(normalisation="clip", temporal_residual=True, normal_flow=True, flow_baselines=2,
                          flow_local_contrast=True, stabilise=True)
    spec = ClipSpec(inputs=inputs)
    assert ClipSpec.from_dict(spec.to_dict()) == spec and set(InputOptions.names()) <= set(spec.to_dict())
    assert ClipSpec(**dataclasses.asdict(inputs)) == spec
    config = TrainConfig.from_dict({**dataclasses.asdict(inputs)})
    assert config.inputs == inputs and config.clip_spec(ClipSpec()).inputs == inputs
    assert ClipSpec().with_input_of(spec).inputs == inputs
    with pytest.raises(SttsError, match="flow_baselines must be a positive integer"):
        ClipSpec(flow_baselines=0)
    with pytest.raises(SttsError, match="stabilise must be true or false"):
        ClipSpec(stabilise="auto")  # a spec holds decided values only


def test_config_reruns_a_recipe_with_its_autos_decided_again_and_flags_winning(prepared, tmp_path, capsys):
    first = tmp_path / "first"
    assert main(["train", "--data-type", str(prepared), "--epochs", "1", "--clip-stride", "auto", "--out", str(first),
                 *TINY]) == 0
    saved = json.loads((first / "config.json").read_text())
    assert saved["clip_stride"] == "auto" and saved["decided"]["clip_stride"] == 3  # what was asked, and what it became
    assert "stts: --clip-stride auto: 3" in capsys.readouterr().out
    second = tmp_path / "second"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second), "--lr", "0.01"]) == 0
    rerun = json.loads((second / "config.json").read_text())
    same = {k: v for k, v in saved.items() if k not in ("out", "lr", "decided")}
    assert {k: v for k, v in rerun.items() if k in same} == same
    assert rerun["lr"] == 0.01 and rerun["out"] == str(second) and rerun["decided"] == saved["decided"]
    assert "stts: --clip-stride auto: 3" in capsys.readouterr().out  # decided again, from the data
    import stts

    third = stts.train(config=first / "config.json", out=tmp_path / "third", weight_decay=0.0)
    from_python = json.loads((third.folder / "config.json").read_text())
    assert {k: v for k, v in from_python.items() if k in same and k != "weight_decay"} == \
        {k: v for k, v in same.items() if k != "weight_decay"} and from_python["weight_decay"] == 0.0
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["train", "--config", str(tmp_path / "bad.json")]) == 2
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("--config" in line for line in errors)


def test_the_auto_stride_spans_the_median_video_but_never_puts_clip_frames_more_than_half_a_second_apart(tmp_path):
    from stts.data import prepare_synthetic_motion

    long = prepare_synthetic_motion(tmp_path / "long", train_per_class=2, test_per_class=1, frames=400, width=64,
                                    height=48, size=40, classes=2, progress=False)  # 16 s at 25 fps: every 4th kept
    config = resolve_config({"data_type": str(long), "clip_len": 8, "crop_size": 32, "clip_stride": "auto",
                             "out": str(tmp_path / "run")})
    recipe = resolve_recipe(config, long)
    assert ClipSpec.spanning_stride(8, 100) == 14  # what spanning the 100 stored frames alone would take
    assert recipe.spec.clip_stride == 3  # 3 stored frames of 0.16 s: 0.48 s
    assert "the median training video has 100; at most 3: 0.5 s from one clip frame" in recipe.decisions[0]
