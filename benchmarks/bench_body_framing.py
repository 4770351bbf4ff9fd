"""What holds motion-body back, measured: the figure's scale and framing in the view, with the compute unchanged.

Two data sets of the same videos (the generator's seeds, the family's splits and flip pair), side by side:
- **as generated**: `stts prepare motion-body`, the 160x120 frames (the preset's view: the whole frame squeezed to
  48x48, the figure 22-38 px tall in it);
- **framed by its masks**: each video cut to a square around its figure (the union of the generator's masks over
  the video, 1.15x its larger side plus 4 px, kept inside the frame), stored at 96x96, then `stts prepare folder`
  with the same train/val/test lists and flip pair: the figure fills ~85 % of the view's height whatever its size.

Both are trained with `stts train --preset small --epochs N` (one thread a run, two at a time, accuracy only) and
their best.pt evaluated on the test split. The framed set is a diagnostic, not a recipe: a real video has no masks,
and the gap between the two is what a view that frames the person would be worth.

    python benchmarks/bench_body_framing.py [--epochs 18] [--seeds 0] [--work FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench_motion_suite import curve, stts
from device_kind import cpu_info, cpu_kind
from stts.data import motion
from stts.data.synthetic import write_avi, write_videos

FAMILY = "body"
MARGIN, PAD, SIDE = 1.15, 4, 96


def framed(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames -> (T, SIDE, SIDE, 3): the square around the figure's masks over the whole video."""
    ys, xs = np.nonzero(masks.any(0))
    height, width = masks.shape[1:]
    side = min(max(np.ptp(ys), np.ptp(xs)) * MARGIN + PAD, height, width)
    centre_y, centre_x = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    top = int(round(min(max(centre_y - side / 2, 0), height - side)))
    left = int(round(min(max(centre_x - side / 2, 0), width - side)))
    side = int(round(side))
    return np.stack([np.asarray(Image.fromarray(frame[top:top + side, left:left + side]).resize((SIDE, SIDE),
                                                                                              Image.BILINEAR))
                     for frame in frames])


def write_framed(task) -> None:
    path, motion_class, seed = task
    if Path(path).exists():
        return
    frames, masks, fps = motion.render_video(FAMILY, motion_class, np.random.default_rng(seed))
    bits = motion.SUITE[FAMILY].bits_per_pixel * SIDE * SIDE * fps
    write_avi(Path(path), framed(frames, masks), fps, bit_rate=max(20_000, round(bits)))


def generate_framed(root: Path, seed: int = 0) -> None:
    """The family's videos (``motion.generate_family``'s seeds and names), framed, with its lists and flip pair."""
    family = motion.SUITE[FAMILY]
    index = list(motion.SUITE).index(FAMILY)
    tasks, lists = [], {split: [] for split in motion.SPLIT_OFFSETS}
    for label, motion_class in enumerate(family.classes):
        (root / motion_class).mkdir(parents=True, exist_ok=True)
        for split, count in zip(motion.SPLIT_OFFSETS, family.videos, strict=True):
            for number in range(count):
                relative = f"{motion_class}/{FAMILY}_{motion_class}_{split}_{number:03d}.avi"
                lists[split].append(relative)
                tasks.append((str(root / relative), motion_class, [seed, index, label,
                                                                   motion.SPLIT_OFFSETS[split] + number]))
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("".join(line + "\n" for line in lines))
    (root / "flip_pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in family.flip_pairs))
    write_videos(write_framed, tasks, None, "generate framed", progress=False, chunksize=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=18, help="the most epochs of each run (default 18)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--work", type=Path, help="folder for the data and runs (default a temporary one)")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as temporary:
        work = (args.work or Path(temporary)).resolve()
        data = {"as generated": work / "data" / f"motion-{FAMILY}", "framed by its masks": work / "data" / "framed"}
        stts("prepare", f"motion-{FAMILY}", "--out", str(data["as generated"]), "--json", cwd=work)
        if not (data["framed by its masks"] / "dataset.json").is_file():
            generate_framed(work / "videos" / "framed")
            stts("prepare", "folder", str(work / "videos" / "framed"), "--out", str(data["framed by its masks"]),
                 "--json", cwd=work)

        def train_and_evaluate(name: str, seed: int) -> dict[str, object]:
            run = work / "runs" / f"{name.replace(' ', '-')}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
            begin = time.perf_counter()
            stts("train", "--data_type", str(data[name]), "--preset", "small", "--epochs", str(args.epochs),
                 "--seed", str(seed), "--out", str(run), "--no-tensorboard", "--workers", "1", cwd=work, env=env)
            minutes = (time.perf_counter() - begin) / 60
            summary = json.loads(stts("evaluate", str(run / "best.pt"), "--views", "3x1", "--json",
                                      "--out", str(run / "evaluation"), cwd=work, env=env).stdout)
            print(f"{name} seed {seed}: clip {summary['clip_top1']:.1f} %, {minutes:.1f} min", file=sys.stderr,
                  flush=True)
            return {"name": name, "seed": seed, "clip": summary["clip_top1"], "video": summary["video_top1"],
                    "minutes": minutes, **curve(run)}

        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = list(pool.map(lambda job: train_and_evaluate(*job), [(name, seed) for seed in seeds
                                                                        for name in data]))
    model, flags = cpu_info()
    print(f"motion-body as generated and framed by its masks, `stts train --preset small --epochs {args.epochs}`, "
          f"{cpu_kind(model, flags, os.cpu_count() or 1)}, two runs at once with one thread each\n")
    print("| data | seed | test top-1, clip | test top-1, video (3 windows) | train top-1, last 3 epochs "
          "| best val epoch / epochs | training minutes |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for row in rows:
        train = " / ".join(f"{value:.1f}" for value in row["train_top1"])
        print(f"| {row['name']} | {row['seed']} | {row['clip']:.1f} % | {row['video']:.1f} % | {train} % | "
              f"{row['best_epoch']} / {row['epochs']} | {row['minutes']:.1f} |")


if __name__ == "__main__":
    main()
