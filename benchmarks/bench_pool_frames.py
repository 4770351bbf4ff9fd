"""The preset's train step on every frame against pairs of frames averaged (``--pool-frames 2``), interleaved.

Both networks (STTS-A width 16, the preset's input: the clip standardised, its temporal residual and its normal flow,
16x48x48, batch 8, Adam; bench_input's train step) are built in one process and their steps alternate, the order
swapped every round, so that the machine's drift (the same step moved 1.3x within minutes on our KVM guest) falls
on both alike. Prints the median and range of each over ``--steps`` rounds after two warm-up rounds, and the
speed-up. fp32 (run it as AVX2 with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``) or ``--precision bf16``.

    python benchmarks/bench_pool_frames.py [--steps 12] [--precision fp32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bench_infer import preset_spec
from bench_input import train_step
from device_kind import cpu_info, cpu_kind

POOLS = (1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    clips = torch.randint(0, 256, (8, 3, 16, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 6, (8,))
    times = {pool: [] for pool in POOLS}
    steps = {pool: train_step(preset_spec().replace(pool_frames=pool), clips, labels, width=16,
                              precision=args.precision) for pool in POOLS}
    for round_ in range(args.steps + 2):
        for pool in (POOLS if round_ % 2 == 0 else POOLS[::-1]):
            start = time.perf_counter()
            steps[pool]()
            if round_ >= 2:
                times[pool].append(time.perf_counter() - start)
    model_name, flags = cpu_info()
    print(f"The preset's train step (STTS-A width 16, 16x48x48, batch 8), {args.precision}, "
          f"{cpu_kind(model_name, flags, len(os.sched_getaffinity(0)))}, {torch.get_num_threads()} threads, "
          f"{args.steps} interleaved steps each\n")
    print("| network input | time steps | median ms a step | range, ms | train clips/s (median) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    base = statistics.median(times[POOLS[0]])
    for pool in POOLS:
        median = statistics.median(times[pool])
        name = "every frame (the preset before)" if pool == 1 else f"pairs of frames averaged (--pool-frames {pool})"
        print(f"| {name} | {16 // pool} | {median * 1000:.0f} | {min(times[pool]) * 1000:.0f}-"
              f"{max(times[pool]) * 1000:.0f} | {8 / median:.1f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
