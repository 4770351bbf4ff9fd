"""``stts train``: the seed's train.py options (its spellings too) plus the run's own, in groups."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..engine.presets import PRESETS
from .options import add

SMALL = ", ".join(f"{k}={v}" for k, v in PRESETS["small"].items())

# the options that decide the data, the clips and the recipe, in the groups of `stts train --help`
# (stts show-clips takes the same); each name is an entry of options.OPTIONS
GROUPS: dict[str, list[tuple[str, str | None, Any]]] = {
    "data": [
        ("data_type", "the data set to train on (default ucf101): ucf101, hmdb51, synthetic-motion, motion-*, or the "
                      "path of a prepared folder", None),
        ("data_root", None, None),
    ],
    "clip and input": [
        ("clip_len", "frames per clip (default 32)", None),
        ("clip_stride", "stored frames from one clip frame to the next (default 1); auto: the largest with which a "
                        "clip spans no more than the median training video (--preset small's)", None),
        ("crop_size", "crop side in pixels (default 112)", None),
        ("view", None, None),
        ("train_views", None, None),
        ("region", None, None),
        ("hflip", None, None),
        ("normalisation", "fixed (default, the seed's: values / 255) or clip: each clip standardised by its own "
                          "per-channel mean and standard deviation", None),
        ("temporal_residual", None, None),
        ("normal_flow", None, None),
        ("flow_baselines", None, None),
        ("flow_local_contrast", None, None),
        ("pool_frames", "the network sees its input channels averaged over N consecutive clip frames (--clip-len / N "
                        "time steps, about N times less work; default 1)", None),
        ("stabilise", "cancel the camera's pan and zoom (default off); auto: on when the camera moves in the "
                      "training videos (--preset small's)", None),
    ],
    "network": [
        ("model_type", "network (default stts-a)", None),
        ("width", "network width: channels of the stem (default 64, the seed's)", None),
        ("pretrained", None, None),
    ],
    "recipe": [
        ("preset", f"settings for a small CPU: {SMALL}; options given still win", None),
        ("epochs", "epochs (default 100); with until-plateau, the most", None),
        ("batch_size", "clips a step (default 16); with several GPUs or machines each process takes its share, as "
                       "the seed's DataParallel did", None),
        ("lr", "learning rate (default 1e-4)", None),
        ("weight_decay", None, None),
        ("optimizer", None, None),
        ("lr_schedule", None, None),
        ("lr_patience", None, None),
        ("patience", "until-plateau: epochs without a 1 %% better val loss (mean of 3 epochs) (while train top-1 gains under 2 "
                     "points, and train or val top-1 is at least 90 %%) before the cool-down (default 3)", None),
        ("time_budget", None, None),
        ("seed", "random seed (default 0)", None),
        ("precision", "auto (default: bf16 where the hardware runs it natively, else fp32), bf16, fp16 (CUDA, with "
                      "gradient scaling) or fp32", None),
        ("compile", None, None),
    ],
    "run and logging": [
        ("gpu_ids", None, None),
        ("workers", "data loader processes per training process (default: cores, at most 4)", None),
        ("tensorboard", None, None),
        ("visdom", None, None),
    ],
}

def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network (one process per GPU with --gpu_ids 0,1; many machines via torchrun)",
        description="Train with the seed's recipe: Adam, cross-entropy, ReduceLROnPlateau on the val loss; "
                    "the epoch with the lowest val loss (the mean of 3 epochs, robust to a small val split) is kept as best.pt, "
                    "the last epoch as last.pt. "
                    f"--preset small ({SMALL}) suits a CPU; the built-in data sets use it unless told otherwise.",
    )
    run_group = add_recipe_options(parser)
    run_group.add_argument("--out", help="run folder (default runs/<data_type>_<model_type>_<time>)")
    run_group.add_argument("--resume", metavar="RUN",
                           help="continue the run in folder RUN (or from RUN/last.pt) with its saved config")
    run_group.add_argument("--config", metavar="CONFIG.json", type=Path,
                           help="train the recipe of an earlier run again (its config.json; not its --out, classes or "
                                "what its auto options decided); options given still win")
    parser.set_defaults(func=run)


def add_recipe_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The options of GROUPS in their groups (``stts train`` and ``stts show-clips``); returns the run group."""
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    compat = parser.add_argument_group("compatibility with the original train.py")
    for title, entries in GROUPS.items():
        for name, help, default in entries:
            add(groups[title], name, help, default, compat=compat)
    return groups["run and logging"]


def run(args: argparse.Namespace) -> int:
    from ..engine.config import TrainConfig
    from ..engine.session import train_run

    given = {name: getattr(args, name, None) for name in TrainConfig.option_names()}
    result = train_run(given, resume=args.resume, recipe=args.config)
    return 130 if result.get("interrupted") else 0
