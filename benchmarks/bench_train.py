"""Train-step throughput of every network: the seed's way (fp32, eager, contiguous) against stts's default path.

The default path is what ``stts train`` does: autocast to the resolved precision (bf16 where the
CPU has AVX-512 BF16/AMX), channels-last-3d weights and inputs but for the ResNets' stem and first
stage (``models.resnet.to_training_layout``); also measured with every layer channels-last. Also reports the achieved GFLOP/s
(3x the forward FLOPs per clip for forward + backward) as a share of this machine's measured
fp32 and bf16 matmul GFLOP/s, and what the CPU bf16 guard costs: the default path again with
``stts.models.layers.Conv3d`` running every layer in bf16 (the guard off; its gradients are
wrong, only its speed is measured). A second table measures the per-epoch val/test pass: the network
as trained (batch norms, the training batch) against what ``stts train`` measures with (batch norms
folded into the convs, twice the batch; ``engine.train.evaluation_model``). Prints markdown tables.
Timings on a shared machine are noisy. The preset small's sizes: --clip 16x48x48 --width 16.

    python benchmarks/bench_train.py [--clip 16x112x112] [--batch 8] [--width 64] [--steps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from unittest import mock

import torch
import torch.nn.functional as F

from stts.models import build_model, list_models
from stts.models.layers import Conv3d, fold_batch_norms
from stts.models.resnet import to_training_layout
from stts.models.summary import forward_flops
from stts.runtime import autocast, resolve_precision


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def clips_per_second(name: str, clip: tuple[int, int, int], batch: int, width: int, steps: int, fast: bool,
                     all_channels_last: bool = False) -> float:
    torch.manual_seed(0)
    model = build_model(name, 101, width=width)
    x = torch.randint(0, 256, (batch, 3, *clip), dtype=torch.uint8).float().div(255)
    y = torch.randint(0, 101, (batch,))
    if fast:
        if all_channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        else:
            model = to_training_layout(model)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        precision = resolve_precision("auto", torch.device("cpu"))
        context = autocast(precision, torch.device("cpu"))
    else:
        context = contextlib.nullcontext
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)

    def step():
        with context():
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # first call: oneDNN primitive creation
    best = float("inf")
    for _ in range(steps):  # best of steps: the least disturbed by other work on the machine
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return batch / best


def eval_clips_per_second(name: str, clip: tuple[int, int, int], batch: int, width: int, steps: int,
                          folded: bool) -> float:
    torch.manual_seed(0)
    model = build_model(name, 101, width=width).eval()
    if folded:
        model, batch = fold_batch_norms(model), 2 * batch
    model = model.to(memory_format=torch.channels_last_3d)
    x = torch.rand(batch, 3, *clip).contiguous(memory_format=torch.channels_last_3d)
    precision = resolve_precision("auto", torch.device("cpu"))
    with torch.inference_mode(), autocast(precision, torch.device("cpu"))():
        model(x)
        best = float("inf")
        for _ in range(steps + 1):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="16x112x112")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--models", default=",".join(list_models()))
    args = parser.parse_args()
    clip = tuple(int(v) for v in args.clip.split("x"))
    fp32_peak, bf16_peak = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    precision = resolve_precision("auto", torch.device("cpu"))
    print(f"CPU, {torch.get_num_threads()} threads; matmul peak: fp32 {fp32_peak:.0f} GFLOP/s, "
          f"bf16 {bf16_peak:.0f} GFLOP/s; default path: {precision} autocast + channels-last-3d")
    print(f"clip {args.clip}, batch {args.batch}, width {args.width}, best of {args.steps} train steps\n")
    print("| network | seed's way (fp32 eager) clips/s | default path clips/s | speed-up | all channels-last clips/s | "
          "GFLOP/s seed / % fp32 peak | GFLOP/s default / % of its peak | default, bf16 guard off clips/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    peak = bf16_peak if precision == "bf16" else fp32_peak
    for name in args.models.split(","):
        with torch.device("meta"):
            flops = 3 * forward_flops(build_model(name, 101, width=args.width), clip)  # forward + backward
        seed = clips_per_second(name, clip, args.batch, args.width, args.steps, fast=False)
        fast = clips_per_second(name, clip, args.batch, args.width, args.steps, fast=True)
        all_cl = clips_per_second(name, clip, args.batch, args.width, args.steps, fast=True, all_channels_last=True)
        unguarded = "- (no bf16 here)"
        if precision == "bf16":
            with mock.patch.object(Conv3d, "forward", torch.nn.Conv3d.forward):
                unguarded = f"{clips_per_second(name, clip, args.batch, args.width, args.steps, fast=True):.2f}"
        seed_gflops, fast_gflops = seed * flops / 1e9, fast * flops / 1e9
        print(f"| {name} | {seed:.2f} | {fast:.2f} | {fast / seed:.2f}x | {all_cl:.2f} | {seed_gflops:.0f} / "
              f"{100 * seed_gflops / fp32_peak:.0f} % | {fast_gflops:.0f} / {100 * fast_gflops / peak:.0f} % "
              f"| {unguarded} |", flush=True)
    print(f"\nval/test pass (inference mode, {precision}, channels-last-3d), best of {args.steps + 1}\n")
    print(f"| network | as trained, batch {args.batch} clips/s | batch norms folded, batch {2 * args.batch} clips/s "
          "| speed-up |")
    print("|---|---:|---:|---:|")
    for name in args.models.split(","):
        plain = eval_clips_per_second(name, clip, args.batch, args.width, args.steps, folded=False)
        folded = eval_clips_per_second(name, clip, args.batch, args.width, args.steps, folded=True)
        print(f"| {name} | {plain:.1f} | {folded:.1f} | {folded / plain:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
