"""The motion suite (the body family too), every family from scratch: `stts prepare` defaults, `stts train --preset small`.

For each family: `stts prepare motion-FAMILY` (generated and stored at its defaults, once), then for each
variant and seed `stts train --data_type motion-FAMILY --preset small [the variant's options] --seed S` in its
own process, then `stts evaluate` of its best.pt on the test split. Prints one markdown table: test top-1 (clip:
the middle window and the centre view; video: 3 windows), train top-1 over the last three epochs (the run
underfits when it is low), the best val epoch, the epochs run and the minutes of training (the `stts train`
process, data preparation excluded).

Variants are compared side by side in one run, on the same prepared data and seeds:

    python benchmarks/bench_motion_suite.py --families slow,fast --seeds 0,1 \\
        --variant "square=--region square" --variant "frame=--region frame" --jobs 2

``--jobs 2`` trains two runs at once with one thread each (and one loader worker): the accuracies are those
of any thread count up to the run-to-run noise, the minutes are not the one-run-alone figure. Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from device_kind import cpu_info, cpu_kind
from stts.data.motion import SUITE
from stts.engine.stopping import best_epoch


def stts(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stts", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, options = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"a variant is NAME=OPTIONS, got {text!r}")
    return name, shlex.split(options)


def curve(run: Path) -> dict[str, object]:
    """The train top-1 of the last three epochs, the best val epoch and the epochs run, from statistics.csv."""
    with open(run / "statistics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    best = rows[best_epoch([float(row["val_loss"]) for row in rows]) - 1]  # best.pt's epoch, as stts train chooses it
    return {"train_top1": [float(row["train_top1_accuracy"]) for row in rows[-3:]], "best_epoch": int(best["epoch"]),
            "epochs": int(rows[-1]["epoch"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(SUITE), help="comma-separated families (default all nine)")
    parser.add_argument("--work", type=Path, help="folder for the data and runs (default a temporary one)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[], metavar="NAME=OPTIONS",
                        help="a named set of extra `stts train` options, e.g. \"frame=--region frame\" (repeatable; "
                             "default one variant, the preset as it is)")
    parser.add_argument("--train-option", action="append", default=[], metavar="OPTION",
                        help="an extra `stts train` option for every variant, e.g. --train-option=--epochs=10")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once, the cores shared among them")
    args = parser.parse_args()
    variants = args.variant or [("preset", [])]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    families = args.families.split(",")
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if args.jobs > 1 else None
    with tempfile.TemporaryDirectory() as temporary:
        work = (args.work or Path(temporary)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        counts = {}
        for family in families:
            name = f"motion-{family}"
            stts("prepare", name, "--out", str(work / "data" / name), "--json", cwd=work)
            counts[family] = json.loads((work / "data" / name / "dataset.json").read_text())["counts"]

        def train_and_evaluate(family: str, variant: str, options: list[str], seed: int) -> dict[str, object]:
            name = f"motion-{family}"
            run = work / "runs" / f"{name}-{variant}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
            begin = time.perf_counter()
            stts("train", "--data_type", name, "--data-root", str(work / "data"), "--preset", "small",
                 "--seed", str(seed), "--out", str(run), "--no-tensorboard",
                 *(["--workers", "1"] if args.jobs > 1 else []), *args.train_option, *options, cwd=work, env=env)
            minutes = (time.perf_counter() - begin) / 60
            summary = json.loads(stts("evaluate", str(run / "best.pt"), "--views", "3x1", "--json",
                                      "--out", str(run / "evaluation"), cwd=work, env=env).stdout)
            row = {"family": family, "variant": variant, "seed": seed, "clip": summary["clip_top1"],
                   "video": summary["video_top1"], "minutes": minutes, **curve(run)}
            print(f"{family} {variant} seed {seed}: clip {row['clip']:.1f} %, video {row['video']:.1f} %, "
                  f"{minutes:.1f} min", file=sys.stderr, flush=True)
            return row

        runs = [(family, variant, options, seed) for family in families for variant, options in variants
                for seed in seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda job: train_and_evaluate(*job), runs))
    model, flags = cpu_info()
    print(f"Motion suite, `stts train --preset small` from scratch, {cpu_kind(model, flags, os.cpu_count() or 1)}, "
          f"{args.jobs} run(s) at once with {threads} thread(s) each"
          + (f", extra options {' '.join(args.train_option)}" if args.train_option else "") + "\n")
    if len(variants) > 1 or variants[0][1]:
        print("Variants: " + "; ".join(f"{name}: `{shlex.join(options) or 'the preset'}`" for name, options in variants)
              + "\n")
    print("| family | videos train/val/test | variant | seed | test top-1, clip | test top-1, video (3 windows) "
          "| train top-1, last 3 epochs | best val epoch / epochs | training minutes |")
    print("|---|---:|---|---:|---:|---:|---|---:|---:|")
    for row in rows:
        videos = "/".join(str(counts[row["family"]][split]) for split in ("train", "val", "test"))
        train = " / ".join(f"{value:.1f}" for value in row["train_top1"])
        print(f"| {row['family']} | {videos} | {row['variant']} | {row['seed']} | {row['clip']:.1f} % | "
              f"{row['video']:.1f} % | {train} % | {row['best_epoch']} / {row['epochs']} | {row['minutes']:.1f} |")


if __name__ == "__main__":
    main()
