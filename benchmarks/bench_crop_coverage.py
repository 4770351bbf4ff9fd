"""How much of what moves the preset's training clips and evaluation view keep, by region shape, in the motion suite.

For each family, a few videos a class are rendered (``stts.data.motion``, ``stts.data.motion_body``: the frames and
the masks of the target objects, or of the figure), and ``ClipSpec.train_sample`` draws training clips from them as
``--preset small`` does (16 frames, every 2nd, a random region of 80-100 %, resized to 48x48), once with
``--region square`` (a square of the short side: a wider frame's sides are never seen in one clip) and once with
``--region frame`` (the frame's own shape). Prints, per family and region: the mean share of the target's pixels
(over the clip's frames) outside the region, the share of clips that lose more than a quarter of it, and the same
share for the evaluation view (the centre region at 100 %). No network and no timing: the numbers depend only on
the generators and the sampling.

    python benchmarks/bench_crop_coverage.py [--videos 6] [--draws 10]
"""

from __future__ import annotations

import argparse

import numpy as np

from stts.clip import ClipSpec
from stts.data.motion import SUITE, render_video

REGIONS = ("square", "frame")


def lost_shares(spec: ClipSpec, masks: list[np.ndarray], draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The share of the target's pixels outside the region: of ``draws`` training clips a video, and of its eval view."""
    train, evaluation = [], []
    for mask in masks:
        samples = [spec.train_sample(len(mask), *mask.shape[1:], rng) for _ in range(draws)]
        samples += spec.eval_samples(len(mask), *mask.shape[1:])
        for index, sample in enumerate(samples):
            top, left, height, width = sample.box
            clip = mask[sample.indices]
            kept = clip[:, top:top + height, left:left + width].sum() / max(clip.sum(), 1)
            (train if index < draws else evaluation).append(1 - kept)
    return np.array(train), np.array(evaluation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6, help="videos a class (default 6)")
    parser.add_argument("--draws", type=int, default=10, help="training clips drawn from each video (default 10)")
    args = parser.parse_args()
    print(f"`--preset small`'s clips (16 frames, every 2nd, train regions of 80-100 %, 48x48) drawn from {args.videos} "
          f"videos a class, {args.draws} training clips each; the target's pixels outside the region\n")
    print("| family | region | lost, training clips (mean) | training clips losing > 25 % | eval views losing > 25 % |")
    print("|---|---|---:|---:|---:|")
    for family, entry in SUITE.items():
        masks = [render_video(family, name, np.random.default_rng([11, c, i]))[1]
                 for c, name in enumerate(entry.classes) for i in range(args.videos)]
        for region in REGIONS:
            spec = ClipSpec(clip_len=16, clip_stride=2, crop_size=48, view=1.0, train_views=(0.8, 1.0), region=region)
            train, evaluation = lost_shares(spec, masks, args.draws, np.random.default_rng(0))
            print(f"| {family} | {region} | {train.mean():.1%} | {(train > 0.25).mean():.0%} | "
                  f"{(evaluation > 0.25).mean():.0%} |", flush=True)


if __name__ == "__main__":
    main()
