"""``stts serve`` under load on 127.0.0.1: windows batched across requests against one window a forward pass.

    .venv/bin/python benchmarks/bench_serve.py [--requests 200] [--concurrency 8] [--width 16]

Writes a small STTS-A checkpoint (random weights: speed does not depend on them; 8 classes,
16x48x48 clips) and eight H.264 videos of 2 to 4 s (160x120, 25 fps: 2 to 4 windows each),
then starts ``stts serve`` twice as a separate process on a free port:

- batched: ``--batch-size 8 --batch-wait-ms 10`` (the defaults);
- one at a time: ``--batch-size 1 --batch-wait-ms 0``: every window its own forward pass.

Each gets a few warm-up requests, then ``--requests`` POST /v1/predict from ``--concurrency``
client threads with keep-alive connections. Prints one markdown table: answers by kind
(a request with no HTTP answer is lost), throughput, latency percentiles, the server
process's resident memory when idle (after warm-up), at its peak (sampled every 20 ms)
and 2 s after the load, and the mean windows per forward pass the server reports.
Timings on a shared machine are noisy: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import torch

from stts.checkpoint import save_checkpoint
from stts.clip import ClipSpec
from stts.models import build_model

CLASSES = [f"action{i}" for i in range(8)]
SOURCE = Path(__file__).resolve().parents[1] / "src"


def write_checkpoint(path: Path, width: int) -> Path:
    torch.manual_seed(0)
    config = {"model_type": "stts-a", "width": width, "data_type": "synthetic-motion"}
    spec = ClipSpec(min_kept=16, height=56, clip_len=16, crop_size=48)
    model = build_model("stts-a", len(CLASSES), width=width)
    return save_checkpoint({"model": model.state_dict(), "config": config, "classes": CLASSES,
                            "spec": spec.to_dict(), "precision": "fp32"}, path)


def write_video(path: Path, seconds: float, seed: int, width: int = 160, height: int = 120, fps: int = 25) -> Path:
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 200, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = background.copy()
            x = (i * 3 + seed * 11) % (width - 24)
            frame[40:64, x:x + 24] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    mode: str
    requests: int
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    kinds: collections.Counter = field(default_factory=collections.Counter)  # "200", "503", "ReadTimeout", ...
    wall: float = 0.0
    idle_mb: float = 0.0
    peak_mb: float = 0.0
    after_mb: float = 0.0
    mean_batch: float = 0.0


class Server:
    """``stts serve`` in a child process, answering on a free port of 127.0.0.1."""

    def __init__(self, checkpoint: Path, *flags: str):
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
        env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), env.get("PYTHONPATH", "")])
        command = [sys.executable, "-m", "stts", "serve", str(checkpoint), "--port", str(self.port), *flags]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stts serve {' '.join(flags)} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def run_load(server: Server, mode: str, videos: list[Path], requests: int, concurrency: int, warmup: int) -> Result:
    contents = [(video.name, video.read_bytes()) for video in videos]
    local = threading.local()

    def one(index: int) -> tuple[str, float]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=server.url, timeout=120)
        name, content = contents[index % len(contents)]
        begin = time.perf_counter()
        try:
            response = local.client.post("/v1/predict", files={"video": (name, content, "video/mp4")})
        except httpx.HTTPError as error:
            return type(error).__name__, 0.0
        return str(response.status_code), time.perf_counter() - begin

    with ThreadPoolExecutor(concurrency) as pool:
        warm = list(pool.map(one, range(warmup)))
        if any(kind != "200" for kind, _ in warm):
            raise RuntimeError(f"warm-up failed: {warm}")
        time.sleep(1.0)
        result = Result(mode, requests, idle_mb=rss_mb(server.process.pid))
        before = batching(server)
        peak, done = [result.idle_mb], threading.Event()

        def sample():
            while not done.wait(0.02):
                peak[0] = max(peak[0], rss_mb(server.process.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        begin = time.perf_counter()
        answers = list(pool.map(one, range(requests)))
        result.wall = time.perf_counter() - begin
        done.set()
        sampler.join()
    time.sleep(2.0)
    result.peak_mb, result.after_mb = peak[0], rss_mb(server.process.pid)
    for kind, latency in answers:
        result.kinds[kind] += 1
        if kind.isdigit():
            result.latencies.append(latency)
    after = batching(server)
    result.mean_batch = (after["windows"] - before["windows"]) / max(1, after["batches"] - before["batches"])
    return result


def batching(server: Server) -> dict[str, float]:
    return httpx.get(server.url + "/v1/models").json()["models"][0]["batching"]


def row(result: Result) -> str:
    ok = result.kinds["200"]
    busy = result.kinds["503"]
    others = {kind: count for kind, count in result.kinds.items() if kind not in ("200", "503")}
    other = ", ".join(f"{kind}: {count}" for kind, count in sorted(others.items())) or "0"
    lost = result.requests - len(result.latencies)  # no HTTP answer at all
    p50, p95, p99 = (np.percentile(result.latencies, q) * 1000 for q in (50, 95, 99))
    return (f"| {result.mode} | {result.requests} | {ok} | {busy} | {other} | {lost} | {ok / result.wall:.1f} | "
            f"{p50:.0f} | {p95:.0f} | {p99:.0f} | {result.mean_batch:.2f} | {result.idle_mb:.0f} | "
            f"{result.peak_mb:.0f} | {result.after_mb:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--width", type=int, default=16, help="STTS-A width (default 16)")
    parser.add_argument("--warmup", type=int, default=16, help="requests before the measurement (default 16)")
    args = parser.parse_args()

    load = os.getloadavg()[0]  # others' work on a shared machine shows here
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        checkpoint = write_checkpoint(root / "bench.pt", args.width)
        videos = [write_video(root / f"clip{i}.mp4", 2 + (i % 3), seed=i) for i in range(8)]
        modes = [("batched (batch 8, 10 ms wait)", ["--batch-size", "8", "--batch-wait-ms", "10"]),
                 ("one at a time (batch 1, no wait)", ["--batch-size", "1", "--batch-wait-ms", "0"])]
        results = []
        for mode, flags in modes:
            server = Server(checkpoint, *flags, "--queue-size", str(max(16, 2 * args.concurrency)))
            try:
                results.append(run_load(server, mode, videos, args.requests, args.concurrency, args.warmup))
            finally:
                server.stop()

    print(f"`stts serve`, {args.requests} requests at concurrency {args.concurrency} on 127.0.0.1; STTS-A width "
          f"{args.width}, 16x48x48 clips, {len(CLASSES)} classes; 8 H.264 videos of 2-4 s, 160x120, 2-4 windows each "
          f"({platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}; "
          f"load average {load:.1f} at the start)")
    print()
    print("| server | requests | ok | 503 | other errors | lost | req/s | p50 ms | p95 ms | p99 ms | windows/pass | "
          "idle RSS MB | peak RSS MB | RSS after MB |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(row(result))
    speedup = (results[0].kinds["200"] / results[0].wall) / (results[1].kinds["200"] / results[1].wall)
    print()
    print(f"batched / one at a time: {speedup:.2f}x the throughput")


if __name__ == "__main__":
    main()
