"""`make demo` as a new user meets it: a fresh clone of this repository's HEAD, then `make demo`, timed stage by stage.

The README promises the demo in at most 5 minutes on a 2-core CPU without native bf16; this measures that
promise where it runs. The stages are read from make's echo of each command as it starts: set-up (the
virtual environment and `pip install`, from pip's cache when it has one), preparing the built-in data, training,
evaluation and inference. Beside them: the epochs trained, the train clips/s the epoch lines printed, and the
test top-1 of the evaluation. Exits 1 when the whole demo takes longer than ``--limit`` seconds (default 300),
so a slower demo fails here rather than in a user's hands.

    python benchmarks/bench_demo.py [--limit 300] [--keep FOLDER]

It measures committed code only (a clone of HEAD). Run it alone on the machine: a second job on 2 cores slows
the demo 2-3x. Run as an AVX2 CPU with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from device_kind import cpu_info, cpu_kind

ROOT = Path(__file__).resolve().parent.parent
# make echoes each recipe line before it runs it; the first line of each stage names it
STAGES = (("preparation", re.compile(r"stts prepare ")), ("training", re.compile(r"stts train ")),
          ("evaluation", re.compile(r"stts evaluate ")), ("inference", re.compile(r"stts infer ")),
          ("end", re.compile(r"^demo done:")))
EPOCH_LINE = re.compile(r"^epoch (\d+)/\d+ \|.*\(([\d.]+) train clips/s\)")


def run_demo(clone: Path) -> tuple[dict[str, float], list[float], int]:
    """Run `make demo` in ``clone``; (seconds from the start at which each stage began, the epoch lines' train
    clips/s, make's exit status). Lines are echoed as they come, so a person watching sees the demo."""
    marks: dict[str, float] = {}
    rates: list[float] = []
    start = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(["make", "demo"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as process:
        assert process.stdout is not None
        for raw in process.stdout:
            now = time.perf_counter() - start
            for line in raw.replace("\r", "\n").splitlines():
                for stage, pattern in STAGES:
                    if stage not in marks and pattern.search(line):
                        marks[stage] = now
                match = EPOCH_LINE.search(line)
                if match:
                    rates.append(float(match.group(2)))
                    print(line, file=sys.stderr, flush=True)
            if not EPOCH_LINE.search(raw) and "batch/s" not in raw and "it/s" not in raw:
                print(raw, end="", file=sys.stderr, flush=True)
        status = process.wait()
    marks["total"] = time.perf_counter() - start
    return marks, rates, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=300.0, help="seconds the whole demo may take (default 300)")
    parser.add_argument("--keep", type=Path, help="clone into this new folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stts-demo-")) if args.keep is None else args.keep
    clone = work / "stts" if args.keep is None else work
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        marks, rates, status = run_demo(clone)
        if status != 0:
            print(f"bench_demo: `make demo` failed with exit status {status} in {clone}", file=sys.stderr)
            return 1
        summary = json.loads((clone / "runs/demo/evaluation/summary.json").read_text())
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    bounds = ["preparation", "training", "evaluation", "inference", "end"]
    edges = [0.0] + [marks[name] for name in bounds]
    rows = [("set-up (venv, pip install)", edges[1] - edges[0])]
    rows += [(name, edges[i + 2] - edges[i + 1]) for i, name in enumerate(bounds[:-1])]
    model, flags = cpu_info()
    print(f"`make demo` from a fresh clone of {commit}, {cpu_kind(model, flags, len(os.sched_getaffinity(0)))} "
          f"({model or 'unknown CPU'}), {os.environ.get('ONEDNN_MAX_CPU_ISA') or 'all instruction sets'}\n")
    print("| stage | seconds |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")
    verdict = "within" if marks["total"] <= args.limit else "OVER"
    print(f"| **the whole demo** | **{marks['total']:.1f}** ({verdict} the {args.limit:.0f} s promised) |")
    if rates:
        print(f"\n{len(rates)} epochs, train clips/s {min(rates):.1f}-{max(rates):.1f} (the epoch lines); "
              f"`stts evaluate` test top-1 {summary['video_top1']:.1f} % (3 windows a video), "
              f"{summary['clip_top1']:.1f} % (one clip)")
    return 0 if marks["total"] <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
