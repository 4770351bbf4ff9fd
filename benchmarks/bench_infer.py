"""Where the time of ``stts infer`` goes, its peak memory, and its speed against the seed's way.

    .venv/bin/python benchmarks/bench_infer.py [--tables breakdown,memory,seed] [--rows 16:320x240:json,...]
        [--seconds 120] [--full-seconds 20] [--repeat 1]
        [--minutes 30] [--hd-minutes 2] [--models 16] [--memory-batch-sizes auto,8,2] [--whole-max-minutes 4]
        [--width 64] [--seed-seconds 10] [--seed-passes 4]

Breakdown table (the default): ``stts infer`` run as a user runs it, one fresh process a row (``python -m stts
infer VIDEO --checkpoint CKPT --outputs O``), on H.264 videos of moving squares over a panning texture this script
makes, with the preset's network (``16``: STTS-A width 16, ``--preset small``'s clip of 16x48x48 frames over every
2nd stored frame, normal flow and temporal residual) and the full-width one (``64``: STTS-A width 64, the seed's
32x112x112 clip), random weights (speed does not depend on them), at 320x240 and 1920x1080 (``--seconds`` long
for the preset, ``--full-seconds`` at full width), writing ``json`` alone or ``all`` the outputs. The process's
wall time is split into start-up (interpreter, imports, checkpoint, until the first frame is asked for),
decode, conversion (kept frames to the stored size; frames for the video to upright yuv420p), network (input
features and forward passes), drawing, waiting for the encoder (the main thread blocked on its queue or its
flush), writing the other files, and the rest; encoding runs on its own thread, so its busy seconds overlap the
others and are given apart. Beside each row: the decode-only time of the same file in the same run (PyAV, the
same threads; frames alone, and frames converted to RGB at full size), the process's CPU seconds and peak RSS.
The parts are timed by wrapping the functions that do them (``install_timers``), in the child process.

Memory table: a ``--minutes`` 320x240 25 fps MPEG-4 AVI and a ``--hd-minutes`` 1920x1080 25 fps
one (moving rectangles), each inferred in a fresh process per row (peak RSS from ``wait4``) with
STTS-A of each ``--models`` width: streaming (``infer_source``) and the whole-video path
(``infer_whole_video``, every frame held at full size; only for videos up to ``--whole-max-minutes``
at 320x240, as it needs ~230 KB a frame). The annotated frame count is checked against the input's.
The issue's bar: a 30-minute 320x240 and a 2-minute 1080p video under 1 GB. The full-width 30-minute
row takes hours on a 2-core CPU: ``--models 16`` is the default.

Seed table: a ``--seed-seconds`` 320x240 25 fps MPEG-4 AVI (UCF101's format) and an STTS-A checkpoint at
``--width`` (random weights; 101 classes, 32x112x112 clips, height 128):

- ``stts infer``: decode, windows every ``clip_len // 4`` kept frames (every 4th frame kept),
  batched, channels-last, bf16 autocast where native (fp32 row for comparison), the annotated
  mp4, JSON and CSV written: the whole per-video path, timed end to end.
- the seed's way: for every frame, one forward pass (batch 1, fp32) of the clip of the last 32
  frames. Timed on ``--seed-passes`` passes and scaled to the video's frames (each pass costs
  the same); its decoding and drawing are not counted, which favours it.

Prints markdown tables. Timings on a shared machine are noisy: run it on a quiet one (``--repeat`` keeps each
row's fastest run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

# heavy imports (torch, stts, av) are made where they are used: a breakdown row's child process must pay for
# what stts infer pays for, no more


def write_test_video(path: Path, seconds: float, width: int = 320, height: int = 240, fps: int = 25,
                     codec: str = "mpeg4") -> Path:
    """Moving squares over a background; ``mpeg4`` an AVI of a still background (UCF101's format), ``h264`` an mp4
    (CABAC, B-frames, deblocking: what a phone or a camera writes) whose background pans,
    with sensor-like noise: ~1 Mbit/s at 320x240 (PyAV decodes it at ~1,100 frames/s on 2 cores)."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    block = max(8, height // 30)
    background = rng.integers(0, 200, (height // block + 1, width // block + 2, 3), dtype=np.uint8)
    background = background.repeat(block, 0).repeat(block, 1)[:height]
    side = height // 6
    noise = max(2, 16 * 320 // width)  # grey levels; 1080p's pixels are smaller than a sensor's noise grain
    options = {"qscale": "8"} if codec == "mpeg4" else {"preset": "faster", "crf": "18"}
    with av.open(str(path), "w", format="avi" if codec == "mpeg4" else "mp4") as container:
        stream = container.add_stream("mpeg4" if codec == "mpeg4" else "libx264", rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            if codec == "mpeg4":
                frame = np.ascontiguousarray(background[:, :width])
            else:
                shift = (i // 2) % block
                frame = background[:, shift:shift + width] + rng.integers(0, noise, (height, width, 1), dtype=np.uint8)
            x = (i * width // 80) % (width - side)
            frame[height // 2 - side // 2:height // 2 + side // 2, x:x + side] = 255
            y = (i * height // 60) % (height - side)
            frame[y:y + side, width - x - side:width - x] = (250, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_checkpoint(path: Path, width: int, spec=None, precision: str = "bf16") -> Path:
    """STTS-A of ``width`` with random weights (speed does not depend on them), 101 classes, ``spec`` (default the
    seed's)."""
    import torch

    from stts.checkpoint import save_checkpoint
    from stts.clip import ClipSpec
    from stts.models import build_model
    from stts.runtime import largest_activation

    spec = spec or ClipSpec()
    model = build_model("stts-a", 101, width=width, in_channels=spec.network_channels)
    largest = largest_activation(model, spec, torch.device("cpu"))  # as `stts train` saves it
    return save_checkpoint({"model": model.state_dict(), "config": {"model_type": "stts-a", "width": width},
                            "spec": spec.to_dict(), "precision": precision, "largest_activation": largest,
                            "classes": [str(i) for i in range(101)]}, path)


def preset_spec():
    """--preset small's clip spec as a synthetic-motion run resolves it (clip_stride auto -> 2, stabilise off), read
    from the preset and the data set's registry entry, so that a change to either is what this script measures."""
    from stts.clip import ClipSpec
    from stts.data.registry import kind_of
    from stts.engine.config import resolve_config

    config = resolve_config({"data_type": "synthetic-motion", "clip_stride": 2, "stabilise": False, "out": "unused"})
    return config.clip_spec(ClipSpec(height=kind_of("synthetic-motion").height))


# --- breakdown ---------------------------------------------------------------------------------------------------

PARTS = ("decode", "conversion", "network", "drawing", "encoder wait", "writing")


def install_timers() -> dict[str, float]:
    """Wrap the functions each part of stts infer runs in, adding their seconds to the dict returned."""
    from stts.data import video
    from stts.inference import annotate, pipeline, stream

    totals: dict[str, float] = defaultdict(float)

    def timed(part: str, function):
        def wrapper(*args, **kwargs):
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[part] += time.perf_counter() - begin
        return wrapper

    def timed_frames(function):
        def wrapper(*args, **kwargs):
            frames = function(*args, **kwargs)
            while True:
                begin = time.perf_counter()
                frame = next(frames, None)
                totals["decode"] += time.perf_counter() - begin
                if frame is None:
                    return
                yield frame
        return wrapper

    def closed(close):
        def wrapper(writer):
            begin = time.perf_counter()
            try:
                return close(writer)
            finally:
                totals["encoder wait"] += time.perf_counter() - begin
                totals["encoding"] += writer.busy
        return wrapper

    pipeline.decoded_frames = timed_frames(pipeline.decoded_frames)  # the annotated video's second decoding
    stream.decoded_frames = timed_frames(stream.decoded_frames)  # the first, the windows' (stream.open_feed)
    video.FrameConverter.__call__ = timed("conversion", video.FrameConverter.__call__)
    annotate.EncoderFrames.__call__ = timed("conversion", annotate.EncoderFrames.__call__)
    stream.WindowRunner.run = timed("network", stream.WindowRunner.run)
    annotate.LabelPainter.paint = timed("drawing", annotate.LabelPainter.paint)
    annotate.H264Writer.write = timed("encoder wait", annotate.H264Writer.write)
    annotate.H264Writer.close = closed(annotate.H264Writer.close)
    pipeline.write_outputs = timed("writing", pipeline.write_outputs)
    pipeline.infer_source = timed("infer", pipeline.infer_source)
    return totals


def timed_child(report: str, argv: list[str]) -> int:
    """``stts infer`` with ``argv`` in this (fresh) process, its parts timed; their seconds written to ``report``."""
    gc.disable()  # as stts.cli.main has it while the command's modules are imported, which the timers do first
    totals = install_timers()
    from stts.cli import main as stts_main

    sys.argv = ["stts", "infer", *argv]
    code = stts_main()  # as the process's command: the collector frozen after the imports and at the end
    Path(report).write_text(json.dumps(totals))
    return code


def decode_only(video: Path) -> tuple[float, float, int]:
    """Seconds to decode ``video`` (PyAV, FFmpeg's threads as stts infer sets them), alone and with every frame
    converted to RGB at full size (one scaler context for all, as stts keeps one); and its frames."""
    import av
    from av.video.reformatter import VideoReformatter

    times, count = [], 0
    for rgb in (False, True):
        begin = time.perf_counter()
        reformatter = VideoReformatter()
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count = 0
            for frame in container.decode(stream):
                if rgb:
                    reformatter.reformat(frame, format="rgb24").to_ndarray()
                count += 1
        times.append(time.perf_counter() - begin)
    return times[0], times[1], count


def run_row(video: Path, checkpoint: Path, outputs: str, out: Path, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of ``stts infer`` in a fresh process: wall, CPU and peak RSS, and its parts."""
    best = None
    for _ in range(repeat):
        report = out / "parts.json"
        begin = time.perf_counter()
        process = subprocess.Popen([sys.executable, __file__, "--timed-child", str(report), str(video), "--checkpoint",
                                    str(checkpoint), "--out", str(out), "--outputs", outputs],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - begin
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"stts infer {video.name} --outputs {outputs} failed:\n{stderr}")
        row = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
               **json.loads(report.read_text())}
        if best is None or row["wall"] < best["wall"]:
            best = row
    return best


def parse_rows(text: str) -> list[tuple[int, str, str]]:
    """'16:320x240:json,64:1920x1080:all' -> [(16, '320x240', 'json'), (64, '1920x1080', 'all')]."""
    rows = []
    for item in text.split(","):
        try:
            width, size, outputs = item.split(":")
            rows.append((int(width), size, outputs))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a row is WIDTH:WxH:OUTPUTS (16:320x240:json), got {item!r}") from None
    return rows


DEFAULT_ROWS = ",".join(f"{width}:{size}:{outputs}" for width in (16, 64) for size in ("320x240", "1920x1080")
                        for outputs in ("json", "all"))


def breakdown_table(args, root: Path) -> list[str]:
    import torch

    from stts.runtime import resolve_precision

    precision = resolve_precision("auto", torch.device("cpu"))  # what --preset small trains in on this CPU
    checkpoints, videos, decoding = {}, {}, {}
    lines = ["| network | video | outputs | wall s | real-time factor | start-up s | decode s | conversion s | "
             "network s | drawing s | encoder wait s | writing s | other s | encoding s (own thread) | network share | "
             "decode-only s (frames / to RGB) | wall / decode to RGB | CPU s | peak RSS MB |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
             "---: | ---: | ---: | ---: |"]
    for width, size, outputs in args.rows:
        if width not in checkpoints:
            spec = preset_spec() if width == 16 else None
            checkpoints[width] = write_checkpoint(root / f"breakdown{width}.pt", width, spec, precision)
        seconds = args.seconds if width == 16 else args.full_seconds
        key = (size, seconds)
        if key not in videos:
            w, h = (int(side) for side in size.split("x"))
            videos[key] = write_test_video(root / f"{size}_{seconds:g}s.mp4", seconds, w, h, codec="h264")
            decoding[key] = decode_only(videos[key])
        row = run_row(videos[key], checkpoints[width], outputs, root / "out", args.repeat)
        frames_s, rgb_s, _ = decoding[key]
        startup = row["wall"] - row["infer"]
        parts = [row.get(part, 0.0) for part in PARTS]
        other = row["infer"] - sum(parts)
        name = ("preset (STTS-A width 16, 16x48x48 pooled to 8 steps)" if width == 16
                else "full width (STTS-A width 64, 32x112x112)")
        lines.append(f"| {name} | {seconds:g} s {size} H.264 | {outputs} | {row['wall']:.1f} | "
                     f"{seconds / row['wall']:.1f}x | {startup:.2f} | " + " | ".join(f"{p:.2f}" for p in parts) +
                     f" | {other:.2f} | {row.get('encoding', 0.0):.2f} | {row.get('network', 0.0) / row['wall']:.0%} | "
                     f"{frames_s:.2f} / {rgb_s:.2f} | {row['wall'] / rgb_s:.1f}x | {row['cpu']:.1f} | "
                     f"{row['peak_mb']:.0f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


# --- memory ------------------------------------------------------------------------------------------------------

def child(path_kind: str, video: str, checkpoint: str, out: str, batch_size: int | None) -> None:
    """One inference in this (fresh) process; prints what the parent tabulates."""
    from stts.inference.pipeline import infer_source, infer_whole_video
    from stts.inference.predict import Predictor
    from stts.inference.sources import Source

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
    import av

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


# --- against the seed's way -------------------------------------------------------------------------------------

def time_infer(video: Path, checkpoint: Path, precision: str, out: Path, batch_size: int) -> tuple[float, int, int]:
    from stts.inference.pipeline import infer_source
    from stts.inference.predict import Predictor
    from stts.inference.sources import Source

    predictor = Predictor(checkpoint, precision=precision, batch_size=batch_size)
    source = Source("file", str(video))
    infer_source(source, "warmup", predictor, out, progress=False)  # oneDNN builds its kernels per shape
    begin = time.perf_counter()
    result = infer_source(source, "bench", predictor, out, progress=False)
    return time.perf_counter() - begin, result.record["frames"], len(result.record["windows"])


def time_seed_way(checkpoint: Path, passes: int) -> float:
    """Seconds per forward pass: batch 1, fp32, contiguous layout, as the seed's inference.py runs."""
    import torch

    from stts.inference.predict import Predictor

    predictor = Predictor(checkpoint, precision="fp32", batch_size=1)
    model = predictor.loaded.model.to(memory_format=torch.contiguous_format)
    clip = torch.rand(1, *predictor.spec.input_shape())
    with torch.no_grad():
        model(clip)  # warm-up
        begin = time.perf_counter()
        for _ in range(passes):
            model(clip)
    return (time.perf_counter() - begin) / passes


def speed_table(args, root: Path) -> list[str]:
    from stts.inference.predict import Predictor

    video = write_test_video(root / "v_Bench_g01_c01.avi", args.seed_seconds)
    checkpoint = write_checkpoint(root / "bench.pt", args.width)
    duration = args.seed_seconds
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


def main() -> int | None:
    if sys.argv[1:2] == ["--timed-child"]:
        return timed_child(sys.argv[2], sys.argv[3:])
    if sys.argv[1:2] == ["--child"]:
        kind, video, checkpoint, out, batch_size = sys.argv[2:7]
        return child(kind, video, checkpoint, out, None if batch_size == "auto" else int(batch_size))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="breakdown", type=lambda text: text.split(","),
                        help="which tables, comma-separated: breakdown (the default), memory, seed")
    parser.add_argument("--rows", type=parse_rows, default=parse_rows(DEFAULT_ROWS),
                        help="breakdown rows, WIDTH:WxH:OUTPUTS each, comma-separated; WIDTH 16 is the preset, 64 "
                             f"the full width; OUTPUTS as stts infer --outputs takes them (default {DEFAULT_ROWS})")
    parser.add_argument("--seconds", type=float, default=120.0, help="breakdown: the preset's video length (default "
                        "120 s: the issue's 2-minute video)")
    parser.add_argument("--full-seconds", type=float, default=60.0, help="breakdown: the full width's video length "
                        "(default 60 s: ~30 windows, 0.6-3 s each on 2 cores)")
    parser.add_argument("--repeat", type=int, default=1, help="breakdown: runs a row, the fastest kept (default 1)")
    parser.add_argument("--minutes", type=float, default=30.0, help="memory: 320x240 video length (default 30; 0 "
                        "skips it)")
    parser.add_argument("--hd-minutes", type=float, default=2.0, help="memory: 1920x1080 video length (default 2; 0 "
                        "skips)")
    parser.add_argument("--models", type=lambda text: [int(w) for w in text.split(",")], default=[16],
                        help="memory: STTS-A widths (default 16; 64 at 30 minutes takes hours on 2 cores)")
    parser.add_argument("--memory-batch-sizes", default=[None],
                        type=lambda text: [None if b == "auto" else int(b) for b in text.split(",")],
                        help="memory: windows per forward pass, each a row: auto (the default: what "
                             "stts infer picks on this machine) or numbers, e.g. auto,8")
    parser.add_argument("--whole-max-minutes", type=float, default=4.0,
                        help="memory: run the whole-video path on 320x240 videos up to this long (default 4: ~3 GB)")
    parser.add_argument("--width", type=int, default=64, help="seed: network width (64: the seed's)")
    parser.add_argument("--seed-seconds", type=float, default=10.0, help="seed: video length (default 10 s)")
    parser.add_argument("--seed-passes", type=int, default=4, help="seed: forward passes timed for the seed's way")
    parser.add_argument("--batch-size", type=int, default=8, help="seed: windows per forward pass for stts infer")
    parser.add_argument("--no-fp32", action="store_true", help="seed: skip the stts infer fp32 row")
    args = parser.parse_args()
    unknown = set(args.tables) - {"breakdown", "memory", "seed"}
    if unknown:
        parser.error(f"unknown table(s) {', '.join(sorted(unknown))}: choose from breakdown, memory, seed")

    import torch

    tables = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "breakdown" in args.tables:
            tables.append(["Where the time of `stts infer` goes (one fresh process a row, "
                           "`python -m stts infer VIDEO --outputs O`):", "", *breakdown_table(args, root)])
        if "memory" in args.tables:
            tables.append(["Peak memory, streaming against the whole-video path (32x112x112 clips):", "",
                           *memory_table(args, root)])
        if "seed" in args.tables:
            tables.append(speed_table(args, root))
    print(f"stts infer; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    for lines in tables:
        print()
        print("\n".join(lines))
    return None


if __name__ == "__main__":
    sys.exit(main())
