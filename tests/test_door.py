"""One door for every entry point: a video has a video stream and decodes to more than one frame (prepare, infer,
serve and the loaders refuse the rest by name); a data set has at least 2 classes; a write error ends any command
in one line, exit code 2, no partial file."""

from __future__ import annotations

import io
import json
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from data_fixtures import write_video
from original_networks import original_network
from stts.cli import main
from stts.data import ClipDataset, read_spec
from stts.data.store import IndexWriter, ShardWriter, encode_frames
from stts.errors import SttsError


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_one_frame_avi(path: Path) -> Path:
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(np.zeros(8000, np.int16).tobytes())
    return path


# the files that are no videos, each named as a video would be, and why stts says so
NOT_VIDEOS = {"picture.mp4": "is an image (png)", "one_frame.avi": "decodes to a single frame",
              "empty.avi": "empty file (0 bytes)", "sound.avi": "has no video stream"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Two classes of 3 real videos each; among the first's, a PNG, a 1-frame video, an empty file and a WAV."""
    root = tmp_path_factory.mktemp("door") / "videos"
    for c, name in enumerate(("left", "right")):
        for i in range(3):
            write_video(root / name / f"{name}_{i}.avi", frames=24, seed=10 * c + i)
    (root / "left" / "picture.mp4").write_bytes(png_bytes())
    write_one_frame_avi(root / "left" / "one_frame.avi")
    (root / "left" / "empty.avi").write_bytes(b"")
    write_wav(root / "left" / "sound.avi")
    return root


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "data"
    assert main(["prepare", "folder", str(videos), "--out", str(out), "--size", "48", "--workers", "1"]) == 0
    return out


def test_prepare_names_and_skips_every_file_that_is_no_video(videos, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(videos), "--out", str(out), "--size", "48", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    for name, why in NOT_VIDEOS.items():
        assert f"skipped left/{name}: " in printed and why in printed.split(f"skipped left/{name}: ")[1].splitlines()[0]
    assert json.loads((out / "dataset.json").read_text())["skipped"] == len(NOT_VIDEOS)
    listed = [line for manifest in (out / "manifests").glob("*.tsv") for line in manifest.read_text().splitlines()]
    assert len(listed) == 6 and not any(name in line for line in listed for name in NOT_VIDEOS)


def test_infer_refuses_the_same_files_by_name(videos, prepared, tmp_path, capsys):
    checkpoint = train_checkpoint(prepared, tmp_path)
    for name, why in NOT_VIDEOS.items():
        capsys.readouterr()
        code = main(["infer", str(videos / "left" / name), "--checkpoint", str(checkpoint), "--out",
                     str(tmp_path / "out"), "--precision", "fp32"])
        err = capsys.readouterr().err
        assert code != 0 and name in err and why in err and "Traceback" not in err, err


def test_a_stream_that_stops_after_one_frame_is_refused(videos):
    from stts.inference.sources import Source, decoded_frames, open_source

    source = Source("file", str(videos / "left" / "one_frame.avi"))
    container = open_source(source)
    with pytest.raises(SttsError, match="one_frame.avi: decodes to a single frame"):
        list(decoded_frames(container, source.label))
    container.close()
    good = Source("file", str(videos / "right" / "right_0.avi"))
    container = open_source(good)
    assert len(list(decoded_frames(container, good.label))) == 24
    container.close()


def test_the_loader_refuses_a_stored_single_frame(prepared, tmp_path):
    # what an earlier stts stored from a picture named .mp4: a one-frame entry, listed in the train manifest
    import shutil

    data = tmp_path / "data"
    shutil.copytree(prepared, data)
    store = data / "store"
    writer, index = ShardWriter(store), IndexWriter(store)
    frame = np.full((48, 64, 3), 128, np.uint8)
    index.commit(writer.append("left/picture.mp4", encode_frames([frame], 90), height=48, width=64, step=1,
                               source_frames=1, fps=25.0, announced_frames=1))
    index.close()
    manifest = data / "manifests" / "train.tsv"
    manifest.write_text(manifest.read_text() + "left/picture.mp4\t0\n")
    spec = read_spec(data).with_sampling(8, 1, 32, None, None)
    with pytest.raises(SttsError, match="left/picture.mp4 is stored as a single frame"):
        ClipDataset(data, "train", spec)


def test_a_folder_of_one_class_is_refused_and_leaves_no_folder(tmp_path, capsys):
    for i in range(3):
        write_video(tmp_path / "videos" / "only" / f"v{i}.avi", frames=24, seed=i)
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(tmp_path / "videos"), "--out", str(out), "--size", "48"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 class (only)" in err and "at least 2" in err
    assert not out.exists()


def test_classes_left_with_no_video_count_as_none(tmp_path, capsys):
    # two class folders, but the second holds only a picture: one class is left once it is skipped
    for i in range(3):
        write_video(tmp_path / "videos" / "real" / f"v{i}.avi", frames=24, seed=i)
    (tmp_path / "videos" / "fake").mkdir()
    (tmp_path / "videos" / "fake" / "picture.mp4").write_bytes(png_bytes())
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(tmp_path / "videos"), "--out", str(out), "--size", "48",
                 "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 class (real) with a video stored (1 skipped" in err and "is an image" in err
    assert not out.exists()


def test_serve_answers_400_to_a_picture_named_mp4(tmp_path):
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from serve_fixtures import running_server, write_checkpoint, write_clip

    checkpoint = write_checkpoint(tmp_path / "tiny.pt")
    with running_server([checkpoint]) as (url, state), httpx.Client(base_url=url, timeout=30) as client:
        for name, content in (("picture.mp4", png_bytes()),
                              ("one_frame.avi", write_one_frame_avi(tmp_path / "one.avi").read_bytes())):
            response = client.post("/v1/predict", files={"video": (name, content, "application/octet-stream")})
            assert response.status_code == 400, response.text
            assert name in response.json()["error"]
        good = write_clip(tmp_path / "good.mp4", frames=40)
        response = client.post("/v1/predict", files={"video": ("good.mp4", good.read_bytes(), "video/mp4")})
        assert response.status_code == 200, response.text


# --- write errors: one line, exit code 2, no partial file, whatever the command --------------------------------------

_trained: dict[Path, Path] = {}


def train_checkpoint(prepared: Path, tmp_path: Path) -> Path:
    """A checkpoint trained one epoch on ``prepared`` (made once)."""
    if prepared not in _trained:
        run = prepared.parent / "run"
        assert main(["train", "--data-type", str(prepared), "--out", str(run), "--epochs", "1", "--clip-len", "8",
                     "--crop-size", "32", "--width", "4", "--batch-size", "2", "--workers", "0",
                     "--precision", "fp32"]) == 0
        _trained[prepared] = run / "best.pt"
    return _trained[prepared]


def command_writing_into(command: str, blocked: Path, videos: Path, prepared: Path, checkpoint: Path) -> list[str]:
    """``command``'s arguments with its output under ``blocked`` (a file, where a folder is needed)."""
    if command == "convert":
        original = blocked.parent / "original.pth"
        torch.save(original_network("stts-a", 2).state_dict(), original)
        (blocked.parent / "classes.txt").write_text("left\nright\n")
        return ["convert", str(original), "--model-type", "stts-a", "--classes", str(blocked.parent / "classes.txt"),
                "--out", str(blocked / "converted.pt")]
    return {
        "prepare": ["prepare", "folder", str(videos), "--out", str(blocked / "data"), "--size", "48"],
        "train": ["train", "--data-type", str(prepared), "--out", str(blocked / "run"), "--epochs", "1",
                  "--clip-len", "8", "--crop-size", "32", "--width", "4", "--workers", "0"],
        "evaluate": ["evaluate", str(checkpoint), "--data-type", str(prepared), "--out", str(blocked / "eval")],
        "infer": ["infer", str(videos / "right" / "right_0.avi"), "--checkpoint", str(checkpoint), "--out",
                  str(blocked / "inference"), "--precision", "fp32"],
        "export": ["export", str(checkpoint), "--out", str(blocked / "x.onnx")],
        "show-clips": ["show-clips", str(prepared), "--out", str(blocked / "clips.png"), "--clip-len", "8",
                       "--crop-size", "32", "--workers", "0"],
    }[command]


# every command that writes files (models prints, serve writes only its uploads' temporary files)
@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "infer", "export", "convert", "show-clips"])
def test_a_write_error_ends_the_command_in_one_line(command, videos, prepared, tmp_path, capsys):
    if command == "export":
        pytest.importorskip("onnxruntime")
    checkpoint = train_checkpoint(prepared, tmp_path)
    place = tmp_path / "place"
    place.mkdir()
    blocked = place / "FILE"
    blocked.write_text("a file where the command wants a folder\n")
    argv = command_writing_into(command, blocked, videos, prepared, checkpoint)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith(f"stts {command}: error: {blocked}")  # the path, and what the system said of it
    assert "Not a directory" in errors[0] or "File exists" in errors[0], errors[0]
    assert blocked.read_text() == "a file where the command wants a folder\n"
    inputs = {"original.pth", "classes.txt"} if command == "convert" else set()
    assert {p.name for p in place.iterdir()} == {"FILE", *inputs}  # nothing written beside it, no temporary file
