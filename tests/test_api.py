"""The Python API: stts.load(...).predict(...) gives what `stts infer --json` prints, stts.train and stts.prepare run
what their commands run, and `import stts` stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import stts
from data_fixtures import write_video
from stts.checkpoint import load_checkpoint, model_from_checkpoint
from stts.cli import main
from stts.data.video import resize_to_stored
from test_infer import CLASSES, write_checkpoint, write_mp4


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api")
    return {"ckpt": write_checkpoint(root / "tiny.pt"), "mp4": write_mp4(root / "good.mp4", 40, 64, 48),
            "avi": write_video(root / "clips" / "plain.avi", frames=30), "root": root}


@pytest.fixture(scope="module")
def model(files) -> stts.Model:
    return stts.load(files["ckpt"], device="cpu", precision="fp32", batch_size=3)


def infer_json(capsys, video: Path, checkpoint: Path, out: Path, *options: str) -> dict:
    capsys.readouterr()  # what ran before
    code = main(["infer", str(video), "--checkpoint", str(checkpoint), "--out", str(out), "--json",
                 "--precision", "fp32", *options])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    (record,) = json.loads(stdout)
    return record


# --- import --------------------------------------------------------------------------------------------------------

def test_import_stts_loads_no_torch_until_a_name_is_used():
    code = ("import sys, stts; assert 'torch' not in sys.modules, 'import stts'; "
            "stts.SttsError; assert 'torch' not in sys.modules, 'stts.SttsError'; "
            "stts.load; assert 'torch' in sys.modules; print(stts.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == stts.__version__


def test_every_public_name_resolves_and_an_unknown_one_is_an_attribute_error():
    for name in stts.__all__:
        assert getattr(stts, name) is not None
        assert name in dir(stts)
    with pytest.raises(AttributeError, match="no attribute 'predict'"):
        stts.predict  # noqa: B018
    assert (Path(stts.__file__).parent / "py.typed").is_file()


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"stts {stts.__version__}"
    done = subprocess.run([sys.executable, "-c", "import sys; from stts.cli import main\ntry: main(['--version'])\n"
                           "except SystemExit: print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"stts {stts.__version__}", "False"]  # no command's parser, no torch


# --- predict ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("video, options", [("mp4", {}), ("mp4", {"topk": 2, "stride": 1}), ("avi", {"topk": 1})])
def test_predict_gives_the_record_stts_infer_json_prints(files, model, tmp_path, capsys, monkeypatch, video, options):
    flags = [f for key, value in options.items() for f in (f"--{key}", str(value))]
    record = infer_json(capsys, files[video], files["ckpt"], tmp_path / "cli", *flags)
    monkeypatch.chdir(tmp_path)
    Path("here").mkdir()
    monkeypatch.chdir("here")
    prediction = model.predict(str(files[video]), **options)
    assert prediction.to_dict() == record
    assert list(Path(".").iterdir()) == []  # predict writes no files
    assert prediction.label == record["top1"] and prediction.probability == record["probability"]
    assert [w.to_dict(options.get("topk", 5)) for w in prediction.windows] == record["windows"]
    assert [s.to_dict() for s in prediction.segments] == record["segments"]
    k = min(options.get("topk", 5), len(CLASSES))
    assert [(entry["class"], entry["probability"]) for entry in record["topk"]] == \
        [(name, round(p, 6)) for name, p in prediction.topk(k)]
    assert prediction.probabilities.shape == (len(CLASSES),) and prediction.frames == {"mp4": 40, "avi": 30}[video]


def test_a_path_object_names_the_video_as_the_command_does(files, model):
    assert model.predict(files["mp4"]).to_dict()["video"] == str(files["mp4"])


def test_stream_gives_the_windows_and_segments_of_the_record_as_they_come(files, model):
    stream = model.stream(files["mp4"], stride=1, topk=2)
    events = list(stream)
    record = stream.prediction.to_dict()
    windows = [e for e in events if isinstance(e, stts.WindowPrediction)]
    segments = [e for e in events if isinstance(e, stts.Segment)]
    assert len(windows) + len(segments) == len(events) and len(windows) == len(record["windows"]) == 3
    assert [w.to_dict(2) for w in windows] == record["windows"]
    assert [s.to_dict() for s in segments] == record["segments"]
    for window in windows:  # each window's own label is its most probable class
        assert window.label == window.topk(1)[0][0] and window.probability == pytest.approx(window.topk(1)[0][1])


def test_stop_ends_a_stream_early_with_what_it_has(files, model):
    stream = model.stream(files["mp4"], stride=1)
    events = []
    for event in stream:
        events.append(event)
        stream.stop()
    assert stream.prediction is not None and 0 < stream.prediction.frames < 40


def test_a_live_source_keeps_the_windows_the_network_kept_up_with(files, model):
    # read at the file's own pace (1.3 s), as a camera would give it: windows are a subset of the file's, same frames
    live = model.predict(files["mp4"], live=True, stride=1)
    whole = {(w.start_frame, w.end_frame) for w in model.predict(files["mp4"], stride=1).windows}
    assert live.windows and {(w.start_frame, w.end_frame) for w in live.windows} <= whole
    assert live.frames == 40 and [w.index for w in live.windows] == list(range(len(live.windows)))


def test_a_video_shorter_than_a_clip_says_so(files, model, tmp_path):
    prediction = model.predict(write_mp4(tmp_path / "short.mp4", 3, 64, 48))
    assert len(prediction.windows) == 1 and "padded" in " ".join(prediction.warnings)


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_predict_on_frames_in_memory(files, model):
    frames = decode(files["mp4"])
    prediction = model.predict(frames, fps=30, topk=2, name="clip")
    from_file = model.predict(files["mp4"], topk=2)
    record = prediction.to_dict()
    assert record["video"] == "clip" and prediction.frames == 40 and prediction.fps == 30
    assert [(w["start_frame"], w["end_frame"], w["start_time"], w["end_time"]) for w in record["windows"]] == \
        [(w["start_frame"], w["end_frame"], w["start_time"], w["end_time"]) for w in from_file.to_dict()["windows"]]
    assert prediction.probabilities.sum() == pytest.approx(1, abs=1e-5)
    # the same frames, converted by FFmpeg from YUV once or by the decoder's RGB output: close, not equal
    np.testing.assert_allclose(prediction.probabilities, from_file.probabilities, atol=0.05)


def test_predict_clips_gives_the_windows_probabilities(files, model):
    frames = decode(files["mp4"])
    spec = model.spec
    step = spec.keep_step(len(frames))
    kept = spec.centre_view(resize_to_stored(frames[::step], spec))
    starts = spec.window_starts(len(kept), 1)
    clips = torch.from_numpy(np.stack([kept[spec.window_indices(s, len(kept))] for s in starts])).permute(0, 4, 1, 2, 3)
    probabilities = model.predict_clips(clips)
    assert probabilities.shape == (len(starts), len(CLASSES)) and probabilities.dtype == torch.float32
    torch.testing.assert_close(probabilities.sum(1), torch.ones(len(starts)))
    windows = model.predict(frames, fps=30, stride=1).windows
    np.testing.assert_allclose(probabilities.numpy(), np.stack([w.probabilities for w in windows]), atol=1e-6)
    assert model.predict_clips(clips[:0]).shape == (0, len(CLASSES))


def test_the_model_describes_itself(files, model):
    assert model.classes == CLASSES and model.precision == "fp32" and model.device.type == "cpu"
    assert model.spec.clip_len == 8 and model.path == files["ckpt"] and model.batch_size == 3
    assert not model.network.training

    def norms(network):
        return sum(isinstance(m, torch.nn.BatchNorm3d) for m in network.modules())

    # the network's batch norms are folded; the recipe its docstring gives for fine-tuning keeps them
    trainable = model_from_checkpoint(load_checkpoint(files["ckpt"])).train()
    assert norms(model.network) < norms(trainable)
    loss = trainable(torch.zeros(1, *model.spec.input_shape())).sum()
    loss.backward()
    assert all(p.grad is not None for p in trainable.parameters())
    assert model.config["model_type"] == "stts-a" and "3 classes" in repr(model)


@pytest.mark.parametrize("call, message", [
    (lambda m, f: m.predict(np.zeros((4, 8, 8, 3), np.uint8)), "fps=25"),
    (lambda m, f: m.predict(np.zeros((4, 8, 8), np.uint8), fps=25), "uint8 array (T, H, W, 3)"),
    (lambda m, f: m.predict(f["mp4"], fps=25), "fps= is for frames"),
    (lambda m, f: m.predict(f["root"] / "missing.mp4"), "no such video file"),
    (lambda m, f: m.predict(f["root"]), "a folder of 2 videos"),
    (lambda m, f: m.predict(f["mp4"], topk=0), "at least 1"),
    (lambda m, f: m.predict_clips(torch.zeros(1, 3, 8, 32, 32)), "uint8 tensor (N, 3, 8, 32, 32)"),
    (lambda m, f: m.predict_clips(torch.zeros(1, 3, 4, 32, 32, dtype=torch.uint8)), "got torch.uint8 (1, 3, 4, 32, 32)"),
    (lambda m, f: stts.load(f["root"] / "none.pt"), "checkpoint not found"),
    (lambda m, f: stts.load(f["ckpt"], precision="fp8"), "unknown precision"),
    (lambda m, f: stts.train(data_type="synthetic-motion"), "data=..."),
    (lambda m, f: stts.train(), "give the data"),
    (lambda m, f: stts.train(data="synthetic-motion", lr_sceduele="cosine", out=f["root"] / "r"), "lr_sceduele"),
    (lambda m, f: stts.prepare("folder", f["root"], out=f["root"] / "p", frames=12), "generator options (frames)"),
    (lambda m, f: stts.prepare("kinetics", out=f["root"] / "k"), "unknown data set 'kinetics'"),
])
def test_user_errors_are_one_line_stts_errors(files, model, call, message):
    with pytest.raises(stts.SttsError) as error:
        call(model, files)
    assert message in str(error.value) and "\n" not in str(error.value)


# --- train and prepare -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_prepare_train_and_predict_from_python(tmp_path, capsys):
    data = tmp_path / "motion"
    counts = stts.prepare("synthetic-motion", out=data, size=40, train_per_class=4, test_per_class=2, frames=12,
                          width=64, height=48, classes=4)
    assert (counts["classes"], counts["train"], counts["test"]) == (4, 12, 8) and counts["out"] == str(data)
    run = stts.train(data=data, preset="small", epochs=1, out=tmp_path / "run", width=8, batch_size=4, workers=0,
                     precision="fp32", tensorboard=False)
    assert not run.interrupted and run.best.is_file() and run.last.is_file()
    assert [row["epoch"] for row in run.statistics] == [1]
    config = json.loads((run.folder / "config.json").read_text())
    assert (config["preset"], config["epochs"], config["width"], config["data_type"]) == ("small", 1, 8, str(data))
    model = run.load(device="cpu")
    assert model.classes == (data / "classes.txt").read_text().split()
    video = sorted((data / "videos").rglob("*.avi"))[0]
    record = infer_json(capsys, video, run.best, tmp_path / "cli")
    assert model.predict(video).to_dict() == record
    with pytest.raises(stts.SttsError, match="already holds a run"):
        stts.train(data=data, preset="small", epochs=1, out=run.folder)
