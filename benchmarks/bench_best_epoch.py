"""Which epoch best.pt keeps, and what it scores on test: the best single val top-1 (stts's rule until 2026-12-07)
against the lowest val loss averaged over 3 epochs (``stts.engine.stopping.best_epoch``, the rule now), and the
last epoch, from the ``statistics.csv`` of finished runs.

Every epoch's test top-1 is in statistics.csv (the clip protocol of ``stts evaluate``: the middle window, the centre
view), so each rule's choice is scored without training again. Prints one markdown row a run and a summary.

    python benchmarks/bench_best_epoch.py RUN_FOLDER [RUN_FOLDER ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from stts.engine.stopping import best_epoch


def best_single_val_top1(rows: list[dict[str, float]]) -> int:
    """The earlier rule: the highest val top-1 of one epoch, of equal ones the lower val loss (1 = the first epoch)."""
    chosen, top1, loss = 1, -1.0, math.inf
    for epoch, row in enumerate(rows, 1):
        if row["val_top1_accuracy"] > top1 or (row["val_top1_accuracy"] == top1 and row["val_loss"] < loss):
            chosen, top1, loss = epoch, row["val_top1_accuracy"], row["val_loss"]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of `stts train` (each with statistics.csv)")
    args = parser.parse_args()
    print("| run | val videos | epochs | best single val top-1: epoch, test top-1 | lowest 3-epoch val loss: epoch, "
          "test top-1 | last epoch's test top-1 |\n|---|---:|---:|---:|---:|---:|")
    scores: dict[str, list[float]] = {"single": [], "smoothed": [], "last": []}
    for run in sorted(args.runs):
        if not (run / "statistics.csv").is_file():
            raise SystemExit(f"{run}: no statistics.csv in it, so not a run folder of `stts train`")
        with open(run / "statistics.csv", newline="") as file:
            rows = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(file)]
        single, smoothed = best_single_val_top1(rows), best_epoch([row["val_loss"] for row in rows])
        test = [row["test_top1_accuracy"] for row in rows]
        for key, value in (("single", test[single - 1]), ("smoothed", test[smoothed - 1]), ("last", test[-1])):
            scores[key].append(value)
        videos = _val_videos(run)
        print(f"| {run.name} | {videos} | {len(rows)} | {single}: {test[single - 1]:.1f} % | {smoothed}: "
              f"{test[smoothed - 1]:.1f} % | {test[-1]:.1f} % |")
    gains = [b - a for a, b in zip(scores["single"], scores["smoothed"], strict=True)]
    print(f"\n{len(gains)} runs. Mean test top-1: best single val top-1 {_mean(scores['single']):.2f} %, lowest 3-epoch "
          f"val loss {_mean(scores['smoothed']):.2f} %, last epoch {_mean(scores['last']):.2f} %. The 3-epoch loss "
          f"against the single top-1: {sum(g > 0 for g in gains)} runs better (up to {max(gains):+.1f} points), "
          f"{sum(g < 0 for g in gains)} worse (down to {min(gains):+.1f}), {sum(g == 0 for g in gains)} the same.")


def _val_videos(run: Path) -> str:
    """The val split's size, from the data set's dataset.json where the run's config.json leads to it."""
    try:
        config = json.loads((run / "config.json").read_text())
        root = Path(config.get("data_root", "data"))
        for candidate in (Path(config["data_type"]), root / config["data_type"]):
            info = candidate / "dataset.json"
            if info.is_file():
                return str(json.loads(info.read_text())["counts"]["val"])
    except (OSError, KeyError, ValueError):
        pass
    return "?"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


if __name__ == "__main__":
    main()
