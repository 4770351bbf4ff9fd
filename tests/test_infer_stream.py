"""Streaming stts infer: the same outputs as the whole-video path, bounded memory, every kind of source, live
sources that skip windows rather than fall behind, Ctrl-C, and bad inputs reported in one line."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import stts
from data_fixtures import write_video
from stts.cli import main
from stts.inference import annotate, pipeline
from stts.inference.pipeline import infer_source, infer_whole_video
from stts.inference.predict import Predictor
from stts.inference.sources import Source, collect_sources, open_source, source_names
from stts.inference.stream import StreamState, WindowRunner
from test_infer import SPEC, decoded, write_checkpoint, write_mp4

FPS = 25


def write_container(path: Path, frames: int, width: int = 64, height: int = 48, fps: int = FPS, **options) -> Path:
    """A moving bar on grey, H.264 in the container the suffix names (mkv announces no frame count)."""
    with av.open(str(path), "w", **options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = np.full((height, width, 3), 128, np.uint8)
            frame[:, (i * 2) % (width - 6):(i * 2) % (width - 6) + 6] = (250, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stream")
    return {
        "ckpt": write_checkpoint(root / "tiny.pt"),
        "long": write_mp4(root / "long.mp4", 150, 64, 48),
        "avi": write_video(root / "plain.avi", frames=30),
        "odd": write_mp4(root / "odd.mp4", 21, 65, 47),
        "rotated": write_mp4(root / "rotated.mp4", 20, 64, 48, rotation=90),
        "short": write_mp4(root / "short.mp4", 3, 64, 48),
        "mkv": write_container(root / "noheader.mkv", 70),
        "ts": write_container(root / "piped.ts", 60, format="mpegts"),
        "root": root,
    }


@pytest.fixture(scope="module")
def predictor(files) -> Predictor:
    return Predictor(files["ckpt"], precision="fp32", batch_size=3)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["infer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# --- the same result as the whole-video path ---------------------------------------------------------------------

@pytest.mark.parametrize("video", ["long", "avi", "odd", "rotated", "short", "mkv"])
def test_streaming_writes_what_the_whole_video_path_writes(files, predictor, tmp_path, video, monkeypatch):
    # the labels drawn on each frame are compared, not the mp4s: the whole-video path draws on RGB frames, the
    # streaming one on the decoded yuv420p planes (tested against RGB drawing in test_infer_outputs.py), and
    # libx264 need not encode one array to the same bytes twice (on an AVX-512 CPU two encodings of the same
    # frames decoded up to 1.8 grey levels apart on average over a frame)
    drawn: dict[str, list[str]] = {"whole": [], "stream": []}
    draw_label, paint = annotate.draw_label, annotate.LabelPainter.paint

    def draw_and_keep(frame, text, font):
        drawn["whole"].append(text)
        return draw_label(frame, text, font)

    def paint_and_keep(painter, frame, text):
        drawn["stream"].append(text)
        return paint(painter, frame, text)

    monkeypatch.setattr(annotate, "draw_label", draw_and_keep)
    monkeypatch.setattr(annotate.LabelPainter, "paint", paint_and_keep)
    path = files[video]
    whole = infer_whole_video(path, "v", predictor, tmp_path / "whole", None, 3, progress=False)
    streamed = infer_source(Source("file", str(path)), "v", predictor, tmp_path / "stream", None, 3, progress=False)
    assert streamed.record == whole.record
    for suffix in ("json", "csv"):
        assert (tmp_path / "stream" / f"v.{suffix}").read_bytes() == (tmp_path / "whole" / f"v.{suffix}").read_bytes()
    assert len(drawn["stream"]) == decoded(path)[0]
    assert drawn["stream"] == drawn["whole"]  # the same label drawn on every frame
    assert decoded(tmp_path / "stream" / "v.annotated.mp4") == decoded(tmp_path / "whole" / "v.annotated.mp4")
    np.testing.assert_array_equal(streamed.prediction.window_probs, whole.prediction.window_probs)
    assert streamed.prediction.window_frames == whole.prediction.window_frames


def test_a_memory_budget_runs_partial_batches_with_the_same_windows(files, predictor, http_server, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(pipeline, "PENDING_BUDGET", 0)  # every window runs as soon as it is ready
    batches = []
    # a stream's frames are held for their labels (a file's are decoded again instead)
    source = Source("url", f"{http_server}/long.mp4")
    streamed = infer_source(source, "v", predictor, tmp_path, None, 3, progress=False,
                            on_batch=lambda clips, starts, probs: batches.append((clips.shape, starts, probs.shape)))
    whole = predictor.predict_kept(*_kept(files["long"], predictor))
    assert all(len(starts) == 1 for _, starts, _ in batches)  # not held back for a batch of 3
    assert [s for _, starts, _ in batches for s in starts] == SPEC.window_starts(38, 2)  # 150 frames, every 4th kept
    assert batches[0][0] == (1, 3, 8, 32, 32) and batches[0][2] == (1, 3)  # uint8 clips at crop size, for an explainer
    np.testing.assert_allclose(streamed.prediction.window_probs, whole.window_probs, atol=1e-5)


def _kept(path: Path, predictor: Predictor):
    from stts.data.video import read_kept_frames

    kept = read_kept_frames(path, predictor.spec)
    return np.stack(kept.frames), kept.step, kept.decoded


def test_memory_held_does_not_grow_with_the_video(files, predictor):
    state = StreamState(predictor.spec, step=4, stride=2)
    runner = WindowRunner(predictor)
    span, batch, held, written = SPEC.span, predictor.batch_size, [], 0
    waiting = []
    with av.open(str(files["long"])) as container:
        for frame in container.decode(video=0):
            waiting += state.add(frame, 0.0)
            if len(waiting) >= batch:
                runner.submit(waiting)
                waiting = []
            state.resolve(*runner.collect())
            written += sum(1 for _ in state.labelled())
            held.append((len(state.ring), len(state.pending)))
    assert max(ring for ring, _ in held) <= span + 1  # kept frames: one window span
    # frames awaiting labels: a window span and the windows filling a batch, in decoded frames
    assert max(pending for _, pending in held) <= (span + 2 * batch + 1) * 4
    assert written > 100  # most of the 150 frames were written before the end


def test_a_truncated_file_keeps_what_it_decodes(files, predictor, tmp_path, capsys):
    full = write_video(tmp_path / "full.avi", frames=120)
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size * 3 // 5])
    code, _, stderr = run_cli(capsys, truncated, "--checkpoint", files["ckpt"], "--out", tmp_path / "out")
    assert code == 0, stderr
    record = json.loads((tmp_path / "out" / "truncated.json").read_text())
    frames = decoded(truncated)[0]
    assert 20 < frames < 100 and record["frames"] == frames and record["frame_step"] == 4  # the header's step
    assert record["windows"][-1]["end_frame"] == frames - 1  # the last window ends on the last kept frame
    assert decoded(tmp_path / "out" / "truncated.annotated.mp4")[0] == frames
    assert "truncated.avi" in stderr and "truncated?" in stderr


# --- sources -----------------------------------------------------------------------------------------------------

def test_sources_and_their_output_names(files):
    sources = collect_sources(["-", "http://host/videos/clip.mp4?x=1", "rtsp://cam.local/stream", "/dev/video2",
                               str(files["long"]), "http://other/clip.mp4"], cameras=[0])
    assert [s.kind for s in sources] == ["stdin", "url", "url", "camera", "file", "url", "camera"]
    assert source_names(sources) == ["stdin", "clip", "stream", "camera2", "long", "clip_2", "camera0"]
    assert all(s.live for s in sources if s.kind == "camera") and not sources[0].live
    with pytest.raises(stts.errors.SttsError, match="gopher"):
        collect_sources(["gopher://x/y"])


def test_a_stream_on_stdin(files, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(stts.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    # a pipe, so FFmpeg cannot seek: the stream's length is unknown
    process = subprocess.run([sys.executable, "-m", "stts", "infer", "-", "--checkpoint", str(files["ckpt"]),
                              "--out", str(out), "--precision", "fp32"], input=files["ts"].read_bytes(),
                             capture_output=True, env=env, timeout=120)
    assert process.returncode == 0, process.stderr.decode()
    record = json.loads((out / "stdin.json").read_text())
    assert record["video"] == "stdin" and record["frames"] == 60 and record["frame_step"] == SPEC.keep_every
    assert decoded(out / "stdin.annotated.mp4")[0] == 60


@pytest.fixture
def http_server(files):
    handler = functools.partial(QuietHandler, directory=str(files["root"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_video_over_http_gives_the_files_result(files, http_server, tmp_path, capsys):
    url = f"{http_server}/long.mp4"
    code, _, stderr = run_cli(capsys, url, files["long"], "--checkpoint", files["ckpt"], "--out", tmp_path,
                              "--precision", "fp32")
    assert code == 0, stderr
    over_http, local = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("long", "long_2"))
    assert over_http["video"] == url
    assert {**over_http, "video": ""} == {**local, "video": ""}
    assert decoded(tmp_path / "long.annotated.mp4")[0] == 150


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- bad input ---------------------------------------------------------------------------------------------------

def test_bad_inputs_are_named_in_one_line_and_the_rest_still_run(files, tmp_path, capsys):
    image = tmp_path / "still.png"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(image)
    audio = tmp_path / "sound.wav"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    unreachable = f"http://127.0.0.1:{free_port()}/gone.mp4"
    code, stdout, stderr = run_cli(capsys, image, audio, unreachable, files["short"], files["avi"], "--checkpoint",
                                   files["ckpt"], "--out", tmp_path / "out", "--json", "--camera", "97")
    assert code == 2
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 4
    assert "still.png" in errors[0] and "image" in errors[0]
    assert "sound.wav" in errors[1] and "no video stream" in errors[1]
    assert unreachable in errors[2] and "cannot open" in errors[2]
    assert "/dev/video97" in errors[3] and "no such camera" in errors[3]
    warnings = [line for line in stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "short.mp4" in warnings[0] and "padded" in warnings[0]
    assert [Path(r["video"]).name for r in json.loads(stdout)] == ["short.mp4", "plain.avi"]


def test_an_image_is_refused_even_named_like_a_video(tmp_path):
    fake = tmp_path / "frame.mp4"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(fake, format="PNG")
    with pytest.raises(stts.errors.SttsError, match="frame.mp4: is an image"):
        open_source(Source("file", str(fake)))


# --- live --------------------------------------------------------------------------------------------------------

LIVE_SPEC = SPEC.replace(keep_every=1, height=64, clip_len=16, crop_size=64)  # a window every frame: 25 a second


def test_a_live_source_skips_windows_and_keeps_latency_bounded(tmp_path):
    video = write_container(tmp_path / "live.mp4", 75, width=96, height=72)  # 3 s at 25 fps
    # about 0.1 s a window on one CPU thread, against the 0.04 s a window the source brings
    checkpoint = write_checkpoint(tmp_path / "slow.pt", spec=LIVE_SPEC, width=16)
    predictor = Predictor(checkpoint, precision="fp32", batch_size=1)
    result = infer_source(Source("file", str(video), live=True), "live", predictor, tmp_path, stride=1, k=2,
                          progress=False)
    span_seconds = LIVE_SPEC.span / FPS
    assert result.skipped > 0
    assert result.latencies and max(result.latencies) < 2 * span_seconds
    assert len(result.record["windows"]) + result.skipped == result.record["frames"] - LIVE_SPEC.span + 1
    assert result.record["live"]["skipped_windows"] == result.skipped
    assert decoded(tmp_path / "live.annotated.mp4")[0] == result.record["frames"] == 75 - result.dropped


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_a_live_source_with_its_files_complete(files, tmp_path, number):
    video = write_container(tmp_path / "endless.mp4", 500)  # 20 s read in real time
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(stts.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "stts", "infer", str(video), "--live", "--checkpoint",
                                str(files["ckpt"]), "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env,
                               # Ctrl-C as in a terminal, whatever SIGINT this test process inherited
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # a live source says when its first frame is labelled
        lines = iter(process.stderr.readline, b"")
        assert any(b"Ctrl-C" in line for line in lines), "the live source never said it was labelling"
        process.send_signal(number)  # Ctrl-C, or a service manager's stop: either ends it cleanly
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.decode()
    record = json.loads((out / "endless.json").read_text())
    assert record["interrupted"] and 0 < record["frames"] < 500 and record["windows"]
    assert decoded(out / "endless.annotated.mp4")[0] == record["frames"]
    assert (out / "endless.csv").read_text().startswith("window,")
    assert not list(out.glob(".*"))  # no temporary files left
