"""stts serve: the API against a real server on 127.0.0.1, batching, bounds, hostile input, tokens; pure parts directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_fixtures import CLASSES, SPEC, running_server, with_settings, write_checkpoint, write_clip  # noqa: E402
from stts.cli import main  # noqa: E402
from stts.errors import SttsError  # noqa: E402
from stts.serve.batcher import Batcher  # noqa: E402
from stts.serve.limits import Admission, parse_topk, sanitize_filename, token_ok  # noqa: E402
from stts.serve.settings import Settings, check_settings, is_loopback, model_names  # noqa: E402

STATIC = Path(__file__).parents[1] / "src" / "stts" / "serve" / "static"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    good = write_clip(root / "good.mp4", frames=40)
    audio = root / "sound.wav"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate, frame.time_base = 8000, Fraction(1, 8000)
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode(None))
    return {
        "ckpt": write_checkpoint(root / "tiny.pt"),
        "other": write_checkpoint(root / "other" / "tiny.pt", seed=1, classes=["a", "b"]),
        "good": good,
        "second": write_clip(root / "second.webm", frames=30, seed=1),
        "long": write_clip(root / "long.mp4", frames=150, fps=25),  # 6 s
        "audio": audio,
        "root": root,
    }


@pytest.fixture(scope="module")
def server(files):
    with running_server([files["ckpt"], files["other"], files["ckpt"]], batch_size=8, batch_wait_ms=5,
                        queue_size=8, request_timeout=20) as running:
        yield running


@pytest.fixture
def client(server):
    url, state = server
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    assert not list(state.tmpdir.iterdir())  # every temporary file removed, whatever the request did
    assert state.admission.inside == 0


def post_video(client, path: Path | None = None, name: str | None = None, content: bytes | None = None, **fields):
    content = path.read_bytes() if content is None else content
    return client.post("/v1/predict", files={"video": (name or path.name, content, "application/octet-stream")},
                       data=fields)


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "\n" not in response.text.strip()
    message = response.json()["error"]
    assert set(response.json()) == {"error"} and all(word in message for word in words), message


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


# --- the endpoints ---------------------------------------------------------------------------------------------------

def test_health_models_and_one_load_per_checkpoint(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    listing = client.get("/v1/models").json()
    assert [m["name"] for m in listing["models"]] == health.json()["models"]  # the repeated checkpoint loaded once
    assert len(listing["models"]) == 2 and listing["default"] == listing["models"][0]["name"]
    first = listing["models"][0]
    assert first["classes"] == CLASSES and first["precision"] == "fp32"
    assert first["clip"]["spec"] == SPEC.to_dict() and first["clip"]["stride"] == 2
    assert first["clip"]["model_type"] == "stts-a" and "8 frames" in first["clip"]["description"]


def test_predict_answers_the_record_of_stts_infer(client, files, tmp_path, capsys):
    response = post_video(client, files["good"], topk="2")
    assert response.status_code == 200, response.text
    served = response.json()
    code = main(["infer", str(files["good"]), "--checkpoint", str(files["ckpt"]), "--json", "--topk", "2",
                 "--precision", "fp32", "--out", str(tmp_path)])
    assert code == 0
    [expected] = json.loads(capsys.readouterr().out)
    assert set(served) == set(expected) == {"video", "top1", "probability", "topk", "windows", "segments"}
    assert served["video"] == "good.mp4" and served["top1"] == expected["top1"]
    assert [w["start_frame"] for w in served["windows"]] == [w["start_frame"] for w in expected["windows"]]
    for ours, theirs in zip(served["windows"], expected["windows"], strict=True):
        assert {k: v for k, v in ours.items() if k != "topk"} == {k: v for k, v in theirs.items() if k != "topk"}
        assert [e["class"] for e in ours["topk"]] == [e["class"] for e in theirs["topk"]]
        np.testing.assert_allclose([e["probability"] for e in ours["topk"]],
                                   [e["probability"] for e in theirs["topk"]], atol=1e-5)
    assert [(s["class"], s["start_time"], s["end_time"]) for s in served["segments"]] == [
        (s["class"], s["start_time"], s["end_time"]) for s in expected["segments"]]


def test_another_model_by_name_and_an_unknown_one(client, files):
    name = client.get("/v1/models").json()["models"][1]["name"]
    response = post_video(client, files["second"], model=name)
    assert response.status_code == 200 and response.json()["top1"] in ("a", "b")
    assert_error(post_video(client, files["second"], model="nope"), 404, "nope")
    assert post_video(client, files["second"]).status_code == 200


def test_the_page_and_its_assets_come_from_the_server(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    for path in STATIC.iterdir():  # nothing from a CDN: no absolute URL anywhere in the page's files
        assert "://" not in path.read_text(), path
    assert_error(client.get("/static/../app.py"), 404)
    assert_error(client.get("/nowhere"), 404)
    assert_error(client.get("/v1/predict"), 405)


# --- batching and bounds ---------------------------------------------------------------------------------------------

def test_concurrent_requests_share_forward_passes(client, server, files):
    _, state = server
    batcher = next(iter(state.batchers.values()))
    before, submitted = batcher.stats.shared_batches, batcher.stats.submitted
    # hold the forward pass so that three requests' windows are queued together, then let it go
    with ThreadPoolExecutor(3) as pool:
        with batcher.lock:
            answers = [pool.submit(post_video, client, files["good"]) for _ in range(3)]
            # 2 windows each: the first request's may already be taken by the worker, which waits for the lock
            wait_until(lambda: batcher.stats.submitted - submitted == 6)
        answers = [answer.result() for answer in answers]
    assert [a.status_code for a in answers] == [200] * 3
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert batcher.stats.shared_batches > before and batcher.stats.largest_batch >= 4


def test_a_full_queue_answers_503_with_retry_after(client, server, files):
    _, state = server
    batcher = next(iter(state.batchers.values()))
    limit, state.admission.limit = state.admission.limit, 1
    try:
        with ThreadPoolExecutor(1) as pool:
            with batcher.lock:
                first = pool.submit(post_video, client, files["good"])
                wait_until(lambda: state.admission.inside == 1)
                busy = post_video(client, files["good"])
                assert_error(busy, 503, "--queue-size")
                assert busy.headers["retry-after"] == "1"
            assert first.result().status_code == 200  # the admitted one is answered once the forward pass runs
    finally:
        state.admission.limit = limit
    assert post_video(client, files["good"]).status_code == 200


def test_a_request_over_its_time_answers_504(client, server, files):
    _, state = server
    batcher = next(iter(state.batchers.values()))
    old = with_settings(state, request_timeout=0.3)
    try:
        with batcher.lock:
            assert_error(post_video(client, files["good"]), 504, "--request-timeout")
    finally:
        state.settings = old
    wait_until(lambda: state.admission.inside == 0)
    assert post_video(client, files["good"]).status_code == 200


def test_uploads_over_the_limit_get_413_told_or_not(client, server, files):
    _, state = server
    old = with_settings(state, max_upload_mb=0.05)  # 52 KB
    try:
        big = os.urandom(200_000)
        assert_error(post_video(client, content=big, name="big.mp4"), 413, "--max-upload-mb")

        def chunks():  # no Content-Length: the server counts what arrives
            yield b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'
            for _ in range(20):
                yield bytes(10_000)

        response = client.post("/v1/predict", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert_error(response, 413, "--max-upload-mb")
    finally:
        state.settings = old
    assert post_video(client, files["good"]).status_code == 200


# --- hostile input: a 4xx, then the next valid request succeeds ----------------------------------------------------------

HOSTILE = {
    "not a video": (dict(content=b"just some text, not a video\n" * 40, name="notes.mp4"), 400, ["notes.mp4", "video"]),
    "zero bytes": (dict(content=b"", name="empty.mp4"), 400, ["empty"]),
    "truncated": ("truncated", 400, ["cut.mp4"]),
    "no video stream": ("audio", 400, ["no video stream"]),
    "path-like name, bad content": (dict(content=b"\x00" * 500, name="../../../../etc/passwd"), 400, ["passwd"]),
    "too long": ("long", 413, ["--max-duration"]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_a_4xx_and_the_server_goes_on(client, server, files, case):
    _, state = server
    spec, status, words = HOSTILE[case]
    if spec == "truncated":
        spec = dict(content=files["good"].read_bytes()[:300], name="cut.mp4")
    elif spec == "audio":
        spec = dict(path=files["audio"])
    elif spec == "long":
        spec = dict(path=files["long"])
    old = with_settings(state, max_duration=3.0)
    try:
        response = post_video(client, **spec)
    finally:
        state.settings = old
    assert_error(response, status, *words)
    assert str(state.tmpdir) not in response.text
    assert post_video(client, files["good"]).status_code == 200


def test_a_path_like_name_is_only_echoed_sanitized(client, files):
    # built by hand: clients would escape the control character
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="video"; filename="..\\..\\evil/../../x\x01name.mp4"'
            b"\r\nContent-Type: video/mp4\r\n\r\n" + files["good"].read_bytes() + b"\r\n--b0undary--\r\n")
    response = client.post("/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert response.status_code == 200 and response.json()["video"] == "x_name.mp4"


def test_bad_form_fields_get_422(client, files):
    for topk in ("many", "0", "-3", "1e9"):
        assert_error(post_video(client, files["good"], topk=topk), 422, "topk")
    video = ("a.mp4", files["good"].read_bytes())
    # one file per request: a second one, whatever its field, is refused while parsing
    assert_error(client.post("/v1/predict", files={"video": video, "topk": ("k.txt", b"3")}), 422, "files")
    assert_error(client.post("/v1/predict", files=[("video", video), ("video", video)]), 422, "files")
    assert_error(client.post("/v1/predict", data={"video": "not a file"}), 422, "video")
    assert_error(client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"}), 422, "video")
    assert_error(client.post("/v1/predict", content=b"--x\r\nbroken",
                             headers={"content-type": "multipart/form-data; boundary=x"}), 422)
    assert post_video(client, files["good"]).status_code == 200


def test_pages_of_other_sites_are_refused(client, files):
    assert_error(client.get("/v1/models", headers={"host": "rebound.example.com"}), 421, "Host")
    response = client.post("/v1/predict", files={"video": ("a.mp4", files["good"].read_bytes())},
                           headers={"origin": "https://evil.example.com"})
    assert_error(response, 403, "cross-origin")
    response = client.post("/v1/predict", files={"video": ("a.mp4", files["good"].read_bytes())},
                           headers={"origin": str(client.base_url).rstrip("/")})
    assert response.status_code == 200


def test_a_token_is_asked_for_on_the_api(files):
    token = "s3cret-token-value"
    with running_server([files["ckpt"]], token=token) as (url, _), httpx.Client(base_url=url) as client:
        assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token}, {"authorization": "Basic x"}):
            response = client.get("/v1/models", headers=headers)
            assert_error(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
        assert_error(post_video(client, files["good"]), 401)
        good = {"authorization": f"Bearer {token}"}
        assert client.get("/v1/models", headers=good).status_code == 200
        response = client.post("/v1/predict", files={"video": ("a.mp4", files["good"].read_bytes())}, headers=good)
        assert response.status_code == 200


# --- the command ---------------------------------------------------------------------------------------------------

def test_serve_refuses_an_open_bind_and_says_what_is_missing(files, capsys, monkeypatch):
    assert main(["serve", str(files["ckpt"]), "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--token" in error and "0.0.0.0" in error
    monkeypatch.setattr("stts.cli.serve.missing_modules", lambda: ["uvicorn"])
    assert main(["serve", str(files["ckpt"])]) == 2
    assert "pip install 'stts[serve]'" in capsys.readouterr().err


def test_stts_serve_runs_as_a_command(files):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = str(Path(__file__).parents[1] / "src")  # this checkout's code, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "stts", "serve", str(files["ckpt"]), "--port", str(port),
                                "--precision", "fp32"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
                time.sleep(0.1)
            assert post_video(client, files["good"]).json()["top1"] in CLASSES
    finally:
        process.terminate()
        process.wait(20)


# --- pure parts ------------------------------------------------------------------------------------------------------

def test_settings_refuse_an_open_server_and_bad_limits():
    check_settings(Settings(checkpoints=[Path("a.pt")]))
    check_settings(Settings(checkpoints=[Path("a.pt")], host="0.0.0.0", token="long-enough"))
    for bad in (dict(host="0.0.0.0"), dict(host="192.168.1.5"), dict(token="short"), dict(queue_size=0),
                dict(batch_size=0), dict(max_upload_mb=0), dict(batch_wait_ms=-1), dict(port=70000)):
        with pytest.raises(SttsError):
            check_settings(Settings(checkpoints=[Path("a.pt")], **bad))
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.com", ""]))


def test_names_tokens_topk_and_admission():
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("C:\\Users\\me\\clip.avi") == "clip.avi"
    assert sanitize_filename("a\x00b\nc.mp4") == "a_b_c.mp4"
    assert sanitize_filename("..") == "upload" and sanitize_filename(None) == "upload"
    assert len(sanitize_filename("x" * 500 + ".mp4")) == 120 and sanitize_filename("x" * 500 + ".mp4").endswith(".mp4")
    assert token_ok("Bearer abc", "abc") and token_ok("bearer  abc", "abc")
    assert not token_ok("Bearer abd", "abc") and not token_ok(None, "abc") and not token_ok("abc", "abc")
    assert parse_topk(None) == 5 and parse_topk("3") == 3
    assert model_names([Path("a/best.pt"), Path("b/best.pt"), Path("c/last.pt")]) == ["a/best", "b/best", "last"]
    admission = Admission(2)
    assert admission.enter() and admission.enter() and not admission.enter()
    admission.leave()
    assert admission.enter()


def test_the_batcher_fills_batches_and_keeps_requests_apart():
    seen: list[list[int]] = []
    gate = threading.Event()

    def run(items):
        gate.wait(5)
        seen.append(list(items))
        return [item * 10 for item in items]

    batcher = Batcher(run, max_batch=3, wait_s=0.05)
    try:
        first = batcher.submit([1])  # taken alone once its wait is over, then held at the gate
        wait_until(lambda: batcher.queued == 0)
        second, third = batcher.submit([2, 3]), batcher.submit([4, 5])
        cancelled = batcher.submit([6])
        cancelled.cancel()
        gate.set()
        assert first.result(5) == [10] and second.result(5) == [20, 30] and third.result(5) == [40, 50]
        assert seen == [[1], [2, 3, 4], [5]]  # the cancelled request's window never ran
        assert batcher.stats.shared_batches == 1 and batcher.stats.largest_batch == 3
        assert batcher.submit([]).result(1) == []
    finally:
        batcher.close()


def test_a_failed_batch_fails_its_requests_only():
    def run(items):
        if "bad" in items:
            raise ValueError("boom")
        return items

    batcher = Batcher(run, max_batch=4, wait_s=0)
    try:
        with pytest.raises(ValueError):
            batcher.submit(["bad"]).result(5)
        assert batcher.submit(["ok"]).result(5) == ["ok"] and batcher.alive
        assert batcher.stats.failed_batches == 1
    finally:
        batcher.close()
