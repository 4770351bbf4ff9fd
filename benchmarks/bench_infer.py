"""Speed and peak memory of ``stts infer``: streaming against the whole-video path, on long and large videos,
and frames per second against the seed's way (one fp32 forward pass per frame).

    .venv/bin/python benchmarks/bench_infer.py [--minutes 30] [--hd-minutes 2] [--models 64,16]
        [--memory-batch-sizes auto,8,2] [--whole-max-minutes 4] [--width 64] [--seconds 10] [--seed-passes 4] [--no-seed]

Memory table: a ``--minutes`` 320x240 25 fps MPEG-4 AVI and a ``--hd-minutes`` 1920x1080 25 fps
one (moving rectangles), each inferred in a fresh process per row (peak RSS from ``wait4``) with
STTS-A of each ``--models`` width: streaming (``infer_source``) and the whole-video path
(``infer_whole_video``, every frame held at full size; only for videos up to ``--whole-max-minutes``
at 320x240, as it needs ~230 KB a frame). The annotated frame count is checked against the input's.
The issue's bar: a 30-minute 320x240 and a 2-minute 1080p video under 1 GB.

Makes a 10 s 320x240 25 fps MPEG-4 AVI (UCF101's format) and an STTS-A checkpoint at full
width (random weights: speed does not depend on them; 101 classes, 32x112x112 clips, height 128).

- ``stts infer``: decode, windows every ``clip_len // 4`` kept frames (every 4th frame kept),
  batched, channels-last, bf16 autocast where native (fp32 row for comparison), the annotated
  mp4, JSON and CSV written: the whole per-video path, timed end to end.
- the seed's way: for every frame, one forward pass (batch 1, fp32) of the clip of the last 32
  frames. Timed on ``--seed-passes`` passes and scaled to the video's frames (each pass costs
  the same); its decoding and drawing are not counted, which favours it.

Prints a markdown table. Timings on a shared machine are noisy: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from stts.checkpoint import save_checkpoint
from stts.clip import ClipSpec
from stts.inference.pipeline import infer_source, infer_whole_video
from stts.inference.predict import Predictor
from stts.inference.sources import Source
from stts.models import build_model


def write_test_video(path: Path, seconds: float, width: int = 320, height: int = 240, fps: int = 25) -> Path:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 200, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    side = height // 6
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps), options={"qscale": "8"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = background.copy()
            x = (i * width // 80) % (width - side)
            frame[height // 2 - side // 2:height // 2 + side // 2, x:x + side] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_checkpoint(path: Path, width: int) -> Path:
    """STTS-A of ``width`` with random weights (speed does not depend on them), 101 classes, the seed's spec."""
    model = build_model("stts-a", 101, width=width)
    return save_checkpoint({"model": model.state_dict(), "config": {"model_type": "stts-a", "width": width},
                            "spec": ClipSpec().to_dict(), "precision": "bf16",
                            "classes": [str(i) for i in range(101)]}, path)


def child(path_kind: str, video: str, checkpoint: str, out: str, batch_size: int | None) -> None:
    """One inference in this (fresh) process; prints what the parent tabulates."""
    predictor = Predictor(checkpoint, batch_size=batch_size)
    begin = time.perf_counter()
    if path_kind == "stream":
        result = infer_source(Source("file", video), "bench", predictor, Path(out), progress=False)
    else:
        result = infer_whole_video(Path(video), "bench", predictor, Path(out), None, 5, progress=False)
    print(json.dumps({"wall": time.perf_counter() - begin, "frames": result.record["frames"],
                      "duration": result.duration, "precision": predictor.precision, "batch": predictor.batch_size}))


def measure(path_kind: str, video: Path, checkpoint: Path, out: Path, batch_size: int | None) -> dict:
    """Wall time, real-time factor and peak RSS of one inference in a child process, and its annotated frames."""
    process = subprocess.Popen([sys.executable, __file__, "--child", path_kind, str(video), str(checkpoint), str(out),
                                str(batch_size or "auto")], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{path_kind} on {video.name} failed ({process.returncode})")
    row = json.loads(output.strip().splitlines()[-1])
    with av.open(str(out / "bench.annotated.mp4")) as container:
        row["annotated"] = sum(packet.size > 0 for packet in container.demux(video=0))
    row["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return row


def memory_table(args, root: Path) -> list[str]:
    videos = []
    if args.minutes > 0:
        videos.append(("320x240", args.minutes, write_test_video(root / "long.avi", args.minutes * 60)))
    if args.hd_minutes > 0:
        videos.append(("1920x1080", args.hd_minutes, write_test_video(root / "hd.avi", args.hd_minutes * 60, 1920, 1080)))
    lines = ["| video | STTS-A width | batch | path | frames | wall s | real-time factor | peak RSS MB | annotated frames |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for width in args.models:
        checkpoint = write_checkpoint(root / f"width{width}.pt", width)
        for size, minutes, video in videos:
            paths = ["stream"]
            if size == "320x240" and minutes <= args.whole_max_minutes:
                paths.append("whole")
            for path_kind, batch_size in [(p, b) for p in paths for b in args.memory_batch_sizes]:
                row = measure(path_kind, video, checkpoint, root / "out", batch_size)
                name = "streaming" if path_kind == "stream" else "whole video (before)"
                check = "= input" if row["annotated"] == row["frames"] else f"{row['annotated']} != {row['frames']}"
                batch = row["batch"] if batch_size else f"{row['batch']} (default)"
                lines.append(f"| {minutes:g} min {size} | {width} | {batch} | {name} ({row['precision']}) | "
                             f"{row['frames']} | "
                             f"{row['wall']:.1f} | {row['duration'] / row['wall']:.2f}x | {row['peak_mb']:.0f} | "
                             f"{check} |")
                print(lines[-1], file=sys.stderr, flush=True)
    return lines


def time_infer(video: Path, checkpoint: Path, precision: str, out: Path, batch_size: int) -> tuple[float, int, int]:
    predictor = Predictor(checkpoint, precision=precision, batch_size=batch_size)
    source = Source("file", str(video))
    infer_source(source, "warmup", predictor, out, progress=False)  # oneDNN builds its kernels per shape
    begin = time.perf_counter()
    result = infer_source(source, "bench", predictor, out, progress=False)
    return time.perf_counter() - begin, result.record["frames"], len(result.record["windows"])


def time_seed_way(checkpoint: Path, passes: int) -> float:
    """Seconds per forward pass: batch 1, fp32, contiguous layout, as the seed's inference.py runs."""
    predictor = Predictor(checkpoint, precision="fp32", batch_size=1)
    model = predictor.loaded.model.to(memory_format=torch.contiguous_format)
    clip = torch.rand(1, *predictor.spec.input_shape())
    with torch.no_grad():
        model(clip)  # warm-up
        begin = time.perf_counter()
        for _ in range(passes):
            model(clip)
    return (time.perf_counter() - begin) / passes


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, video, checkpoint, out, batch_size = sys.argv[2:7]
        return child(kind, video, checkpoint, out, None if batch_size == "auto" else int(batch_size))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="320x240 video length (default 30; 0 skips it)")
    parser.add_argument("--hd-minutes", type=float, default=2.0, help="1920x1080 video length (default 2; 0 skips)")
    parser.add_argument("--models", type=lambda text: [int(w) for w in text.split(",")], default=[64, 16],
                        help="STTS-A widths for the memory table (default 64,16)")
    parser.add_argument("--memory-batch-sizes", default=[None],
                        type=lambda text: [None if b == "auto" else int(b) for b in text.split(",")],
                        help="windows per forward pass in the memory table, each a row: auto (the default: what "
                             "stts infer picks on this machine) or numbers, e.g. auto,8")
    parser.add_argument("--whole-max-minutes", type=float, default=4.0,
                        help="run the whole-video path on 320x240 videos up to this long (default 4: ~3 GB)")
    parser.add_argument("--width", type=int, default=64, help="network width of the speed table (64: the seed's)")
    parser.add_argument("--seconds", type=float, default=10.0, help="speed table's video length (default 10 s)")
    parser.add_argument("--seed-passes", type=int, default=4, help="forward passes timed for the seed's way")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass for stts infer")
    parser.add_argument("--no-fp32", action="store_true", help="skip the stts infer fp32 row")
    parser.add_argument("--no-seed", action="store_true", help="only the memory table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        memory = memory_table(args, root)
        if not args.no_seed:
            speed = speed_table(args, root)
    print(f"stts infer, STTS-A, 32x112x112 clips, windows every 8 kept frames (every 4th frame kept); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print()
    print("\n".join(memory))
    if not args.no_seed:
        print()
        print("\n".join(speed))


def speed_table(args, root: Path) -> list[str]:
    video = write_test_video(root / "v_Bench_g01_c01.avi", args.seconds)
    checkpoint = write_checkpoint(root / "bench.pt", args.width)
    duration = args.seconds
    rows = []
    precisions = ["auto"] + ([] if args.no_fp32 else ["fp32"])
    for precision in precisions:
        wall, frames, windows = time_infer(video, checkpoint, precision, root / "out", args.batch_size)
        name = Predictor(checkpoint, precision=precision).precision
        rows.append((f"stts infer (windows every 8 kept frames, batched, channels-last, {name})", windows,
                     wall, frames / wall, duration / wall))
    per_pass = time_seed_way(checkpoint, args.seed_passes)
    wall = per_pass * frames
    rows.append((f"seed's way (one forward pass a frame, fp32; {args.seed_passes} passes timed, scaled)", frames,
                 wall, frames / wall, duration / wall))
    lines = [f"STTS-A width {args.width}, {duration:g} s 320x240 25 fps video ({frames} frames)", "",
             "| method | forward clips | wall s | frames/s | real-time factor |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {method} | {clips} | {wall:.1f} | {fps:.1f} | {factor:.2f}x |" for method, clips, wall, fps, factor in rows]
    return lines


if __name__ == "__main__":
    main()
