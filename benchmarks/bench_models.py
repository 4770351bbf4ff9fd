"""Forward clips/s of each network on this machine: plain fp32 against bf16 autocast with channels-last-3d.

    python benchmarks/bench_models.py [--models stts-a] [--clip 16x112x112] [--batch 4]

Prints a markdown table. Both paths run in the same process on the same inputs,
alternating, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from stts.cli.options import parse_clip
from stts.models import build_model, list_models
from stts.runtime import bf16_supported


def clips_per_second(model, x, batch, repeats, context) -> float:
    with torch.no_grad(), context():
        model(x)  # warm-up: oneDNN picks and caches its kernels on the first call
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        elapsed = time.perf_counter() - start
    return batch * repeats / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["stts-a"], choices=list_models())
    parser.add_argument("--clip", type=parse_clip, default=(16, 112, 112))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device("cpu")
    clip = "x".join(map(str, args.clip))
    print(f"Forward clips/s, batch {args.batch}, clip {clip}, width {args.width}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"bf16 native: {bf16_supported(device)}\n")
    print("| model | fp32 clips/s | bf16 + channels-last clips/s | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.models:
        model = build_model(name, 101, width=args.width).eval()
        x = torch.rand(args.batch, 3, *args.clip)
        fp32 = clips_per_second(model, x, args.batch, args.repeats, torch.no_grad)
        fast_model = model.to(memory_format=torch.channels_last_3d)
        fast_x = x.contiguous(memory_format=torch.channels_last_3d)
        bf16 = clips_per_second(fast_model, fast_x, args.batch, args.repeats,
                                lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        print(f"| {name} | {fp32:.2f} | {bf16:.2f} | {bf16 / fp32:.2f}x |")


if __name__ == "__main__":
    main()
