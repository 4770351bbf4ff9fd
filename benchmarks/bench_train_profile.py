"""Where a train step of `--preset small` spends its time: torch.profiler's operators, and the convolutions by shape.

One train step as `stts train` runs it (``bench_input.train_step``: the preset's input built from uint8 clips,
STTS-A width 16 in the training layout, forward, backward, Adam), in the precision ``--precision auto`` picks
here (fp32 without native bf16), profiled over --steps steps after a warm-up. Prints two markdown tables: the
operators by their own CPU time (a share of the step), and the convolutions grouped by input and weight shape,
forward and backward, with the GFLOP/s each reaches; beside them, this machine's fp32 matmul GFLOP/s.

Run it as a CPU without native bf16 runs (AVX2; on an AVX-512 machine ``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2``, which ``benchmarks/device_kind.py`` then names ``...-as-avx2-...``).

    python benchmarks/bench_train_profile.py [--clip 16x48x48] [--batch 8] [--width 16] [--steps 5] [--compile]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench_input import train_step
from bench_train import matmul_gflops
from stts.clip import ClipSpec
from stts.runtime import resolve_precision

CONVOLUTION = {"aten::mkldnn_convolution": "forward", "aten::convolution_backward": "backward"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="16x48x48")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12, help="rows of each table")
    parser.add_argument("--compile", action="store_true", help="the network under torch.compile (stts train "
                        "--compile); the first step, which compiles, is timed apart")
    args = parser.parse_args()
    frames, side, _ = (int(v) for v in args.clip.split("x"))
    precision = resolve_precision("auto", torch.device("cpu"))
    spec = ClipSpec(clip_len=frames, crop_size=side, normalisation="clip", temporal_residual=True, normal_flow=True)
    clips = torch.randint(0, 256, (args.batch, 3, frames, side, side), dtype=torch.uint8)
    labels = torch.randint(0, 6, (args.batch,))
    step = train_step(spec, clips, labels, args.width, precision, compile=args.compile)
    start = time.perf_counter()
    step()  # oneDNN creates its kernels on the first call (and torch.compile compiles)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        for _ in range(args.steps):
            step()
    print(f"CPU, {torch.get_num_threads()} threads, ATen kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{precision}; fp32 matmul {matmul_gflops(torch.float32):.0f} GFLOP/s; stts-a width {args.width}, clip "
          f"{args.clip}, batch {args.batch}: {seconds * 1000:.0f} ms a step unprofiled ({args.batch / seconds:.1f} "
          f"train clips/s), profiled over {args.steps} steps; the first step {first:.1f} s"
          f"{' (torch.compile)' if args.compile else ''}\n")
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print("| operator | ms a step (own time) | share | calls a step |\n|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
        print(f"| {e.key} | {e.self_cpu_time_total / args.steps / 1000:.1f} | {e.self_cpu_time_total / total:.0%} | "
              f"{e.count // args.steps} |")
    shaped = [e for e in profiler.key_averages(group_by_input_shape=True) if e.key in CONVOLUTION]
    convolution = sum(e.self_cpu_time_total for e in shaped)
    print(f"\nConvolutions: {convolution / args.steps / 1000:.0f} ms a step, {convolution / total:.0%} of it; by shape "
          "(input N, C, T, H, W; weight out, in, kT, kH, kW):\n")
    print("| pass | input | weight | ms a step | calls a step | GFLOP/s (as if stride 1) |\n|---|---|---|---:|---:|---:|")
    for e in sorted(shaped, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
        forward = CONVOLUTION[e.key] == "forward"
        x, w = (e.input_shapes[0], e.input_shapes[1]) if forward else (e.input_shapes[1], e.input_shapes[2])
        # stride 1 but in the stem and the downsampling blocks: the output's positions bound the work from above
        flops = 2 * math.prod(w) * x[0] * math.prod(x[2:]) * (1 if forward else 2)  # backward: input and weight
        ms = e.self_cpu_time_total / args.steps / 1000
        print(f"| {CONVOLUTION[e.key]} | {list(x)} | {list(w)} | {ms:.1f} | {e.count // args.steps} | "
              f"{flops * (e.count // args.steps) / ms / 1e6:.0f} |")


if __name__ == "__main__":
    main()
