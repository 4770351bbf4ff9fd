"""stts infer --outputs: the files asked for and nothing else; JSON alone decodes once and neither draws nor
encodes; labels drawn on the decoded planes look as drawn on RGB; a start-up that imports only what it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

import stts
from conftest import moving_squares
from stts.checkpoint import meta_network
from stts.cli import main
from stts.clip import ClipSpec
from stts.engine.config import TrainConfig
from stts.engine.train import fit
from stts.errors import SttsError
from stts.inference import annotate, pipeline
from stts.inference.annotate import EncoderFrames, LabelPainter, draw_label, label_font, mp4_writer
from stts.inference.pipeline import infer_source, parse_outputs
from stts.inference.predict import Predictor
from stts.inference.sources import Source
from stts.models import list_models
from stts.models.summary import largest_activation
from stts.runtime import load_model
from test_infer import decoded, write_checkpoint, write_mp4


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outputs")
    return {"ckpt": write_checkpoint(root / "tiny.pt"), "good": write_mp4(root / "good.mp4", 40, 64, 48)}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["infer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_outputs_name_the_files_written(files, tmp_path, capsys):
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "all")
    assert code == 0, stderr
    assert listing(tmp_path / "all") == ["good.annotated.mp4", "good.csv", "good.json", "good.segments.csv",
                                         "good.timeline.png", "good.vtt"]
    code, stdout, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "two",
                                   "--outputs", "vtt,video")
    assert code == 0, stderr
    assert listing(tmp_path / "two") == ["good.annotated.mp4", "good.vtt"]
    assert "good.{vtt,annotated.mp4}" in stdout
    assert decoded(tmp_path / "two" / "good.annotated.mp4") == decoded(files["good"])
    assert (tmp_path / "two" / "good.vtt").read_text() == (tmp_path / "all" / "good.vtt").read_text()


def test_no_files_and_the_records_on_stdout(files, tmp_path, capsys):
    code, stdout, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "none",
                                   "--outputs", "none", "--json")
    assert code == 0, stderr
    assert listing(tmp_path / "none") == []
    (record,) = json.loads(stdout)
    assert record["top1"] in ("circle", "square", "triangle") and len(record["windows"]) == 2


def test_an_unknown_output_is_one_line(files, tmp_path, capsys):
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path,
                              "--outputs", "json,mp4")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "--outputs 'json,mp4'" in stderr and "timeline" in stderr
    assert parse_outputs("video, JSON") == ("json", "video") and parse_outputs("all") == pipeline.OUTPUTS
    with pytest.raises(SttsError):
        parse_outputs("")


def test_json_alone_decodes_once_and_never_draws_or_encodes(files, tmp_path, capsys, monkeypatch):
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "all")
    assert code == 0, stderr
    opened = []
    open_source = pipeline.open_source
    monkeypatch.setattr(pipeline, "open_source", lambda source: opened.append(source) or open_source(source))

    def forbidden(*args, **kwargs):
        raise AssertionError("a frame was drawn or encoded")

    for owner, name in ((annotate.LabelPainter, "paint"), (annotate.H264Writer, "write"),
                        (annotate.EncoderFrames, "__call__"), (annotate, "draw_label")):
        monkeypatch.setattr(owner, name, forbidden)
    code, stdout, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "json",
                                   "--outputs", "json", "--json")
    assert code == 0, stderr
    assert len(opened) == 1  # decoded once
    assert listing(tmp_path / "json") == ["good.json"]
    assert (tmp_path / "json" / "good.json").read_text() == (tmp_path / "all" / "good.json").read_text()
    assert json.loads(stdout)[0]["windows"] == json.loads((tmp_path / "all" / "good.json").read_text())["windows"]


def test_show_and_explain_still_draw_without_the_video(files, tmp_path, capsys):
    predictor = Predictor(files["ckpt"], precision="fp32", batch_size=2)
    shown = []
    result = infer_source(Source("file", str(files["good"])), "good", predictor, tmp_path, progress=False,
                          show=lambda image: shown.append(image) or True, outputs=())
    assert result.files == [] and listing(tmp_path) == []
    assert len(shown) == 40 and shown[0].shape == (48, 64, 3)
    assert shown[0][4:8, 2:30].mean() < 120 and shown[0][24:].mean() > 200  # the label's dark box on white
    code, _, stderr = run_cli(capsys, files["good"], "--checkpoint", files["ckpt"], "--out", tmp_path / "explain",
                              "--outputs", "none", "--explain")
    assert code == 0, stderr
    assert listing(tmp_path / "explain") == ["good.explain.mp4"]
    assert decoded(tmp_path / "explain" / "good.explain.mp4")[0] == 40


@pytest.mark.parametrize("height, width", [(48, 64), (240, 320), (1080, 1920)])
def test_labels_drawn_on_the_decoded_planes_look_as_drawn_on_rgb(height, width):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    frame = av.VideoFrame.from_ndarray(blocks, format="rgb24").reformat(format="yuv420p")
    before = frame.to_ndarray()  # (H * 3 / 2, W) planes
    rgb = frame.to_ndarray(format="rgb24")
    text = "triangle 0.87"
    expected = draw_label(rgb, text, label_font(height)).astype(np.int16)
    painted = LabelPainter(height, width).paint(EncoderFrames()(frame), text)
    ours = painted.to_ndarray(format="rgb24").astype(np.int16)
    box = np.any(expected != rgb, axis=2)  # where draw_label changed something
    rows, columns = np.nonzero(box)
    assert box.any() and (rgb[box].mean() - expected[box].mean()) > 30  # the box is darker than the frame
    # the same box: over it, a few grey levels apart on average (chroma is shared by 2x2 pixels)
    assert np.abs(ours - expected)[box].mean() < 4
    after = painted.to_ndarray()
    untouched = np.ones(before.shape, bool)
    untouched[rows.min() // 2 * 2:rows.max() + 2, :columns.max() + 2] = False  # luma rows past the box
    assert np.array_equal(after[:height][untouched[:height]], before[:height][untouched[:height]])


def test_an_abandoned_video_leaves_no_file_and_no_encoder_thread(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="stop"), mp4_writer(path, 25) as writer:
        for _ in range(20):
            writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("stop")
    assert listing(tmp_path) == []
    assert not any(thread.name == "stts-encoder" for thread in threading.enumerate())


@pytest.mark.parametrize("model_type", list_models())
def test_the_cpu_batch_comes_from_a_small_real_pass(model_type, tmp_path):
    # the probe runs 32x32 windows and scales; the meta-device pass it replaces is the reference
    spec = ClipSpec(min_kept=8, height=72, clip_len=8, crop_size=64)
    loaded = load_model(write_checkpoint(tmp_path / "c.pt", spec=spec, model_type=model_type, width=8), "cpu", "fp32")
    network = meta_network(loaded.config, 3, spec.network_channels)
    assert loaded.largest_activation() == largest_activation(network, (8, 64, 64), spec.network_channels)


def test_a_trained_checkpoint_carries_the_number_the_cpu_batch_is_sized_by(tmp_path):
    # stts train measures it once; load_model takes it and `stts infer` runs no probe pass of its own
    config = TrainConfig(data_type="tiny", model_type="stts-a", width=8, clip_len=8, crop_size=32, batch_size=4,
                         epochs=1, workers=0, precision="fp32", tensorboard=False, out=str(tmp_path / "run"))
    fit(config, datasets=moving_squares())
    carried = load_model(tmp_path / "run" / "best.pt", "cpu", "fp32")
    assert carried.largest is not None
    assert carried.largest == largest_activation(meta_network(carried.config, 4, carried.spec.network_channels),
                                                 (8, 32, 32), carried.spec.network_channels)


def test_infer_imports_only_what_it_uses(files, tmp_path):
    # no meta-device pass (it imported torch's compiler stack), no matplotlib without a timeline, no other command,
    # no ONNX exporter, no data set generators or torch Dataset
    script = (f"import sys; from stts.cli import main; code = main(['infer', {str(files['good'])!r}, '--checkpoint', "
              f"{str(files['ckpt'])!r}, '--out', {str(tmp_path)!r}, '--outputs', 'json']); "
              "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'sympy') or "
              "m.startswith(('torch._dynamo', 'torch._inductor', 'torch.onnx', 'stts.cli.', 'stts.serve', "
              "'stts.engine', 'stts.data.motion', 'stts.data.prepare', 'stts.data.dataset')) and "
              "m not in ('stts.cli.infer', 'stts.cli.options')))")
    env = {**os.environ, "PYTHONPATH": str(Path(stts.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().splitlines()[-1] == "0 []"
