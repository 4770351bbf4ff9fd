"""What the network's input costs: a train step of `--preset small`'s STTS-A for each input the clip spec can give.

Each row times the whole step as `stts train` runs it, from the uint8 clips the loader returns: the conversion
to the network's input (``ClipSpec.model_input``: standardisation, the temporal residual, the normal flow),
forward, backward and the Adam step, on channels-last-3d weights laid out as training lays them out. The rows
differ only in the input: RGB; RGB and the temporal residual (the preset before the normal flow); RGB, the
residual and the normal flow (the preset before it pooled frames); the same with the normal flow over two baselines
(``--flow-baselines 2``); RGB, the residual and the normal flow averaged over pairs of frames (``--pool-frames 2``,
the preset's: the network sees half the time steps). Each step is timed in fp32 and, where this CPU runs bf16
natively (AVX-512 BF16 or AMX; what `--precision auto` picks), under bf16 autocast: the choice the preset's
`precision` makes. Prints a markdown table of train clips/s (best of --steps, the least disturbed by other work),
the conversion's own time, and each row's fp32 speed against the first's.

    python benchmarks/bench_input.py [--clip 16x48x48] [--batch 8] [--width 16] [--steps 10]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
import torch.nn.functional as F

from stts.clip import ClipSpec
from stts.engine.config import TrainConfig
from stts.engine.train import make_optimizer
from stts.models import build_model
from stts.models.resnet import to_training_layout
from stts.runtime import autocast, runs_natively

INPUTS = {
    "RGB": {},
    "RGB + temporal residual": {"temporal_residual": True},
    "RGB + residual + normal flow (the preset before pooling)": {"temporal_residual": True, "normal_flow": True},
    "RGB + residual + normal flow over 1 and 2 steps": {"temporal_residual": True, "normal_flow": True,
                                                         "flow_baselines": 2},
    "the same averaged over pairs of frames (the preset: --pool-frames 2)": {"temporal_residual": True, "normal_flow": True,
                                                                      "pool_frames": 2},
}


def best_seconds(function, steps: int) -> float:
    function()  # first call: oneDNN primitive creation
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def train_step(spec: ClipSpec, clips: torch.Tensor, labels: torch.Tensor, width: int, precision: str = "fp32",
               compile: bool = False):
    """One train step of a fresh STTS-A fed ``spec``'s input, as a function of no arguments (the network under
    ``torch.compile`` as ``stts train --compile`` runs it, if ``compile``)."""
    torch.manual_seed(0)
    model = to_training_layout(build_model("stts-a", 6, width=width, in_channels=spec.network_channels))
    optimizer = make_optimizer(model.parameters(), TrainConfig(lr=2e-3))
    context = autocast(precision, torch.device("cpu"))
    network = torch.compile(model) if compile else model

    def step():
        with context():
            logits = network(spec.model_input(clips))
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="16x48x48")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    frames, side, _ = (int(v) for v in args.clip.split("x"))
    clips = torch.randint(0, 256, (args.batch, 3, frames, side, side), dtype=torch.uint8)
    labels = torch.randint(0, 6, (args.batch,))
    bf16 = runs_natively("bf16", torch.device("cpu"))
    print(f"CPU, {torch.get_num_threads()} threads, bf16 {'native' if bf16 else 'not native (not timed)'}; stts-a "
          f"width {args.width}, clip {args.clip}, batch {args.batch}; best of {args.steps} train steps\n")
    print("| input | channels | fp32 train clips/s | bf16 train clips/s | bf16 / fp32 | input conversion ms a batch "
          "| fp32 against RGB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    baseline = None
    for name, fields in INPUTS.items():
        spec = ClipSpec(clip_len=frames, crop_size=side, normalisation="clip", **fields)
        rate = args.batch / best_seconds(train_step(spec, clips, labels, args.width), args.steps)
        fast = args.batch / best_seconds(train_step(spec, clips, labels, args.width, "bf16"), args.steps) if bf16 else None
        conversion = best_seconds(partial(spec.model_input, clips), args.steps) * 1000
        baseline = baseline or rate
        bf16_cells = f"{fast:.1f} | {fast / rate:.2f}x" if fast else "- | -"
        print(f"| {name} | {spec.network_channels} | {rate:.1f} | {bf16_cells} | {conversion:.1f} | "
              f"{rate / baseline:.2f}x |", flush=True)

if __name__ == "__main__":
    main()
