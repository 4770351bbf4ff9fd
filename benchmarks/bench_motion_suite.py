"""The motion suite (the body family too), every family from scratch: `stts prepare` defaults, `stts train --preset small`.

For each family: `stts prepare motion-FAMILY` (generated and stored at its defaults), then
`stts train --data_type motion-FAMILY --preset small` in its own process, then `stts evaluate` of
its best.pt on the test split. Prints one markdown table: test top-1 (clip: the middle window and
the centre view; video: 3 windows) and the minutes of training (the `stts train` process, data
preparation excluded). Run it on an otherwise idle machine: `python benchmarks/bench_motion_suite.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stts.data.motion import SUITE


def stts(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stts", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(SUITE), help="comma-separated families (default all nine)")
    parser.add_argument("--work", type=Path, help="folder for the data and runs (default a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--train-option", action="append", default=[], metavar="OPTION",
                        help="an extra `stts train` option, e.g. --train-option=--epochs=10 (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = (args.work or Path(temporary)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for family in args.families.split(","):
            name = f"motion-{family}"
            stts("prepare", name, "--out", str(work / "data" / name), "--json", cwd=work)
            info = json.loads((work / "data" / name / "dataset.json").read_text())
            run = work / "runs" / f"{name}-seed{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"  # never an old run
            begin = time.perf_counter()
            stts("train", "--data_type", name, "--data-root", str(work / "data"), "--preset", "small",
                 "--seed", str(args.seed), "--out", str(run), "--no-tensorboard", *args.train_option, cwd=work)
            minutes = (time.perf_counter() - begin) / 60
            summary = json.loads(stts("evaluate", str(run / "best.pt"), "--views", "3x1", "--json",
                                      "--out", str(run / "evaluation"), cwd=work).stdout)
            counts = info["counts"]
            rows.append((family, f"{counts['train']}/{counts['val']}/{counts['test']}", summary["clip_top1"],
                         summary["video_top1"], minutes))
            print(f"{family}: clip {summary['clip_top1']:.1f} %, video {summary['video_top1']:.1f} %, "
                  f"{minutes:.1f} min", file=sys.stderr, flush=True)
    print(f"Motion suite, `stts train --preset small` from scratch, seed {args.seed}, {os.cpu_count()} cores"
          + (f", extra options {' '.join(args.train_option)}" if args.train_option else "") + "\n")
    print("| family | what is hard | videos train/val/test | test top-1, clip | test top-1, video (3 windows) "
          "| training minutes |")
    print("|---|---|---:|---:|---:|---:|")
    for family, videos, clip, video, minutes in rows:
        print(f"| {family} | {SUITE[family].about} | {videos} | {clip:.1f} % | {video:.1f} % | {minutes:.1f} |")


if __name__ == "__main__":
    main()
