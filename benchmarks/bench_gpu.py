"""What one GPU does with stts: train and inference speed of every network, the loader's speed, peak memory.

UNMEASURED: written in a session without a GPU; only its ``--tiny`` CPU run has been tested (tests/test_bench_gpu.py),
and no GPU table exists yet in benchmarks/results/. That it takes under 5 minutes on one GPU is an estimate (the
compiles dominate, ~30-60 s a network); the line under the table gives the real time.

Per network of the registry (``list_models()``), at the seed's sizes (32x112x112 clips, width 64, batch 16: ``stts
train``'s defaults), each as ``stts train`` and ``stts infer`` run it:

- train clips/s: uint8 clips on the GPU -> ``ClipSpec.model_input`` -> forward under the autocast ``--precision auto``
  picks (bf16 on a GPU that has it) -> cross-entropy, the loss read back (the loop's ``.item()``), backward, the
  loop's fused Adam (``engine.train.make_optimizer``); weights laid out by ``models.resnet.to_training_layout``
  (channels-last-3d). Eager, and under ``torch.compile`` (what ``--compile`` does) with its compile time apart.
- inference windows/s: the network as ``runtime.load_model`` gives it (eval mode, batch norms folded by
  ``models.layers.fold_batch_norms``, channels-last-3d), uint8 windows from host memory to logits back on the host,
  in inference mode, batch --infer-batch.
- peak GPU memory of each (``torch.cuda.max_memory_allocated``, reset before each).
- the loader against the train step: clips/s of ``ClipDataset(train=True)`` over a synthetic-motion set prepared
  into the clip store (320x240 videos stored at height 128, UCF101's size), in a ``DataLoader`` with
  ``stts train``'s default workers and with every core, divided by the network's best train clips/s: under 1, the
  loader holds training back.

Without CUDA it says so and measures nothing, unless ``--tiny``: small clips and networks, a few steps, on the CPU,
so that the script itself is tested (the table's header names the device; those figures are no GPU's).

    python benchmarks/bench_gpu.py [--models stts-a,c3d] [--batch 16] [--steps 20] [--compile both|on|off]
    python benchmarks/bench_gpu.py --tiny
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from device_kind import device_kind
from stts.data import ClipDataset, prepare_synthetic_motion, read_spec
from stts.engine.config import TrainConfig, default_workers
from stts.engine.train import make_optimizer
from stts.models import build_model, list_models
from stts.models.layers import fold_batch_norms
from stts.models.resnet import to_training_layout
from stts.runtime import autocast, resolve_precision

# (clip_len, crop), width, batch, inference batch, warm-up and timed steps, loader clips; synthetic-motion's options
FULL = dict(clip=(32, 112), width=64, batch=16, infer_batch=32, warmup=3, steps=20, loader_clips=4096,
            stored_height=128, videos=dict(train_per_class=32, test_per_class=1, frames=128, width=320, height=240))
TINY = dict(clip=(8, 32), width=8, batch=2, infer_batch=4, warmup=1, steps=2, loader_clips=16,
            stored_height=40, videos=dict(train_per_class=2, test_per_class=1, frames=16, width=64, height=48))
NUM_CLASSES = 101


@dataclass
class Row:
    eager: str = "-"
    compiled: str = "-"
    compile_s: str = "-"
    inference: str = "-"
    eager_mib: str = "-"
    compiled_mib: str = "-"
    inference_mib: str = "-"
    loader_ratio: str = "-"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}" if device.type == "cuda" else "-"


def failed(error: BaseException) -> str:
    # one network's failure (out of memory, a compile error) costs its cells, not the GPU run of the others
    traceback.print_exception(error, file=sys.stderr)
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return "out of memory"
    return f"failed ({type(error).__name__})"


def timed_steps(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds of the ``warmup`` first calls, seconds a call over the next ``steps``)."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return warm, (time.perf_counter() - start) / steps


def train_step(name: str, spec, size: dict, device: torch.device, precision: str, compiled: bool):
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES, width=size["width"], in_channels=spec.network_channels)
    to_training_layout(model.to(device))
    optimizer = make_optimizer(model.parameters(), TrainConfig())
    run = torch.compile(model) if compiled else model
    context = autocast(precision, device)
    clips = torch.randint(0, 256, (size["batch"], *spec.input_shape()), dtype=torch.uint8, device=device)
    labels = torch.randint(0, NUM_CLASSES, (size["batch"],), device=device)

    def step() -> None:
        x = spec.model_input(clips, device)  # (N, C, T, H, W) float, channels-last
        with context():
            logits = run(x)  # (N, K)
        loss = F.cross_entropy(logits.float(), labels)
        loss.item()  # the loop reads every step's loss (a NaN check): one synchronisation a step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure_train(name: str, spec, size: dict, device: torch.device, precision: str, compiled: bool,
                  row: Row) -> float:
    reset_peak(device)
    try:
        step = train_step(name, spec, size, device, precision, compiled)
        warm, seconds = timed_steps(step, device, size["warmup"], size["steps"])
    except Exception as error:  # noqa: BLE001 - reported in the table and on stderr
        message = failed(error)
        if compiled:
            row.compiled = message
        else:
            row.eager = message
        return 0.0
    finally:
        if compiled:
            torch._dynamo.reset()  # the next network compiles afresh, and this one's graphs are freed
    rate = size["batch"] / seconds
    if compiled:
        row.compiled, row.compile_s, row.compiled_mib = f"{rate:.1f}", f"{warm:.0f}", peak_mib(device)
    else:
        row.eager, row.eager_mib = f"{rate:.1f}", peak_mib(device)
    return rate


def measure_inference(name: str, spec, size: dict, device: torch.device, precision: str, row: Row) -> None:
    reset_peak(device)
    try:
        torch.manual_seed(0)
        model = build_model(name, NUM_CLASSES, width=size["width"], in_channels=spec.network_channels).eval()
        model = fold_batch_norms(model).to(device, memory_format=torch.channels_last_3d)  # as runtime.load_model
        context = autocast(resolve_precision("auto", device, trained=precision), device)
        windows = torch.randint(0, 256, (size["infer_batch"], *spec.input_shape()), dtype=torch.uint8)
        if device.type == "cuda":
            windows = windows.pin_memory()

        @torch.inference_mode()
        def step() -> None:
            with context():
                model(spec.model_input(windows, device)).float().cpu()  # (N, K) back on the host, as LoadedModel.logits

        _, seconds = timed_steps(step, device, size["warmup"], size["steps"])
    except Exception as error:  # noqa: BLE001
        row.inference = failed(error)
        return
    row.inference, row.inference_mib = f"{size['infer_batch'] / seconds:.1f}", peak_mib(device)


def loader_rate(dataset: ClipDataset, batch: int, workers: int, clips: int, pin: bool) -> float:
    """Clips/s of a DataLoader over ``dataset`` once its workers are running (the first batch is not counted)."""
    if len(dataset) < batch:  # drop_last would give no batch at all
        raise SystemExit(f"the loader's data set has {len(dataset)} training videos, fewer than a batch of {batch}")
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=pin,
                        persistent_workers=workers > 0, drop_last=True)
    seen, start = -1, 0.0
    for _ in itertools.count():
        for batch_clips, _labels in loader:
            if seen < 0:
                seen, start = 0, time.perf_counter()
                continue
            seen += len(batch_clips)
            if seen >= clips:
                return seen / (time.perf_counter() - start)
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="small clips and networks, a few steps, on the CPU: a test of this script, no GPU figure")
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--batch", type=int, help=f"train clips a step (default {FULL['batch']}, stts train's)")
    parser.add_argument("--infer-batch", type=int, help=f"windows a forward pass (default {FULL['infer_batch']})")
    parser.add_argument("--steps", type=int, help=f"timed steps after the warm-up ones (default {FULL['steps']})")
    parser.add_argument("--compile", choices=("both", "on", "off"),
                        help="train eager and compiled (default; --tiny: off), compiled only, eager only")
    parser.add_argument("--workers", help="loader workers to measure, comma-separated "
                                          "(default: stts train's default and every core)")
    args = parser.parse_args()
    started = time.perf_counter()
    size = dict(TINY if args.tiny else FULL)
    for key in ("batch", "infer_batch", "steps"):
        size[key] = getattr(args, key) or size[key]
    compile_mode = args.compile or ("off" if args.tiny else "both")
    cores = len(os.sched_getaffinity(0))
    workers = [int(w) for w in args.workers.split(",")] if args.workers else sorted({default_workers(), cores})
    models = args.models.split(",")

    if not args.tiny and not torch.cuda.is_available():
        print(f"No CUDA GPU on this machine ({device_kind()}, torch {torch.__version__}): bench_gpu.py measured "
              "nothing. `python benchmarks/bench_gpu.py --tiny` runs its small CPU check.")
        return
    device = torch.device("cpu" if args.tiny else "cuda")
    precision = resolve_precision("auto", device)
    clip_len, crop = size["clip"]

    work = Path(tempfile.mkdtemp(prefix="stts-bench-gpu-"))
    try:
        prepare_synthetic_motion(work / "synthetic-motion", size=size["stored_height"], workers=cores, progress=False,
                                 **size["videos"])
        spec = read_spec(work / "synthetic-motion").replace(clip_len=clip_len, crop_size=crop)
        dataset = ClipDataset(work / "synthetic-motion", "train", spec, train=True)
        loader = {w: loader_rate(dataset, size["batch"], w, size["loader_clips"], device.type == "cuda")
                  for w in workers}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = {}
    for name in models:
        row = rows[name] = Row()
        best = max(measure_train(name, spec, size, device, precision, compiled=compiled, row=row)
                   for compiled in {"both": (False, True), "on": (True,), "off": (False,)}[compile_mode])
        measure_inference(name, spec, size, device, precision, row)
        if best:
            row.loader_ratio = " / ".join(f"{rate / best:.1f}" for rate in loader.values())

    if device.type == "cuda":
        where = (f"GPU: {torch.cuda.get_device_name(device)} (kind {device_kind(gpu=True)}), torch {torch.__version__}, "
                 f"CUDA {torch.version.cuda}, host {device_kind()}")
    else:
        where = (f"CPU, --tiny: {device_kind()}, {torch.get_num_threads()} threads, torch {torch.__version__}. "
                 "A check that the script runs: small clips and networks, no GPU figure")
    print(f"{where}\n")
    print(f"clip {clip_len}x{crop}x{crop}, width {size['width']}, train batch {size['batch']}, {precision} autocast, "
          f"channels-last-3d (to_training_layout), fused Adam; inference batch {size['infer_batch']}, batch norms "
          f"folded; {size['warmup']} warm-up then {size['steps']} timed steps each\n")
    loader_text = ", ".join(f"{w} workers {rate:.0f} clips/s" for w, rate in loader.items())
    print(f"loader: ClipDataset(train=True) over {len(dataset)} synthetic-motion videos in the clip store "
          f"({size['videos']['width']}x{size['videos']['height']} stored at height {size['stored_height']}), "
          f"DataLoader batch {size['batch']}: {loader_text}\n")
    workers_text = " / ".join(str(w) for w in loader)
    print("| network | train clips/s, eager | train clips/s, torch.compile | compile s | inference windows/s | "
          "peak GPU MiB, train eager | peak GPU MiB, train compiled | peak GPU MiB, inference | "
          f"loader / train clips/s ({workers_text} workers) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row.eager} | {row.compiled} | {row.compile_s} | {row.inference} | {row.eager_mib} | "
              f"{row.compiled_mib} | {row.inference_mib} | {row.loader_ratio} |")
    print(f"\nwhole run {time.perf_counter() - started:.0f} s (video generation and preparation included)")


if __name__ == "__main__":
    main()
