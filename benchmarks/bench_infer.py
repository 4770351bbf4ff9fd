"""Frames per second of ``stts infer`` against the seed's way (one fp32 forward pass per frame).

    .venv/bin/python benchmarks/bench_infer.py [--width 64] [--seconds 10] [--seed-passes 4]

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
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from stts.checkpoint import save_checkpoint
from stts.clip import ClipSpec
from stts.inference.pipeline import infer_video
from stts.inference.predict import Predictor
from stts.models import build_model


def write_test_video(path: Path, seconds: float, width: int = 320, height: int = 240, fps: int = 25) -> Path:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 200, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = background.copy()
            x = (i * 4) % (width - 40)
            frame[100:140, x:x + 40] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def time_infer(video: Path, checkpoint: Path, precision: str, out: Path, batch_size: int) -> tuple[float, int, int]:
    predictor = Predictor(checkpoint, precision=precision, batch_size=batch_size)
    infer_video(video, "warmup", predictor, out, None, 5, progress=False)  # oneDNN builds its kernels per shape
    begin = time.perf_counter()
    result = infer_video(video, "bench", predictor, out, None, 5, progress=False)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64, help="network width (64: the seed's full STTS-A)")
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (default 10 s at 25 fps)")
    parser.add_argument("--seed-passes", type=int, default=4, help="forward passes timed for the seed's way")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass for stts infer")
    parser.add_argument("--no-fp32", action="store_true", help="skip the stts infer fp32 row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        video = write_test_video(root / "v_Bench_g01_c01.avi", args.seconds)
        model = build_model("stts-a", 101, width=args.width)
        config = {"model_type": "stts-a", "width": args.width}
        checkpoint = save_checkpoint({"model": model.state_dict(), "config": config, "spec": ClipSpec().to_dict(),
                                      "precision": "bf16", "classes": [str(i) for i in range(101)]},
                                     root / "bench.pt")
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

    print(f"STTS-A width {args.width}, 32x112x112 clips, {duration:g} s 320x240 25 fps video ({frames} frames); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print()
    print("| method | forward clips | wall s | frames/s | real-time factor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for method, clips, wall, fps, factor in rows:
        print(f"| {method} | {clips} | {wall:.1f} | {fps:.1f} | {factor:.2f}x |")


if __name__ == "__main__":
    main()
