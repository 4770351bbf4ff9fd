"""``stts show-clips DATA``: the training clips exactly as they reach the network, and what the data holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.config import TrainConfig
from ..errors import SttsError
from .train import add_recipe_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "show-clips", help="a picture of training clips as the network sees them, and what the data holds",
        description="Write a grid of clips of a split exactly as training makes them (window, crop, view, flip and "
                    "the flipped label), with the class under each; print frames per video, the seconds a clip "
                    "covers, class balance and warnings about clips that may hide the classes. Takes the same "
                    "options as `stts train`. --sanity also overfits one batch and says whether the loss goes down.")
    parser.add_argument("data", metavar="DATA", help="a data set name (ucf101, motion-polarity, ...) or a prepared folder")
    parser.add_argument("--split", choices=("train", "val", "test"), default="train",
                        help="split to show (default train: with training's random window, crop and flip)")
    parser.add_argument("--out", type=Path, default=Path("clips.png"), help="picture to write (default clips.png)")
    parser.add_argument("--count", type=int, default=8, help="clips to show (default 8, spread over the classes)")
    parser.add_argument("--frames", type=int, default=8, help="frames shown of each clip (default 8)")
    parser.add_argument("--sanity", action="store_true",
                        help="overfit one batch with a fresh network and say whether the loss goes down")
    parser.add_argument("--steps", type=int, default=60, help="--sanity: training steps on the batch (default 60)")
    add_recipe_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.config import resolve_config
    from ..engine.distributed import Context
    from ..engine.inspect import clip_grid, data_warnings, describe_data, overfit_one_batch
    from ..engine.recipe import resolve_recipe
    from ..engine.reporting import save_figure
    from ..engine.train import build_datasets, open_data

    if args.count < 1 or args.frames < 1 or args.steps < 1:
        raise SttsError("--count, --frames and --steps must be at least 1")
    given = {name: getattr(args, name, None) for name in TrainConfig.option_names()}
    given.update(data_type=args.data, out="show-clips", tensorboard=False)
    config = resolve_config(given)
    root = open_data(config, Context())
    recipe = resolve_recipe(config, root)
    for line in recipe.decisions:
        print(f"stts: {line}")
    config, spec = recipe.config, recipe.spec
    datasets = build_datasets(root, spec, config.seed)
    for line in describe_data(datasets, spec):
        print(line)
    for warning in data_warnings(spec, datasets["train"]):
        print(f"warning: {warning}")
    dataset = datasets[args.split]
    if not len(dataset):
        raise SttsError(f"{args.data}: the {args.split} split has no videos")
    dataset.set_epoch(1)
    title = f"{args.data}, {args.split}: clips as the network sees them\n{spec.describe()}"
    save_figure(clip_grid(dataset, args.count, args.frames, title), args.out)
    print(f"wrote {args.out}")
    if args.sanity:
        result = overfit_one_batch(config, datasets["train"], spec, steps=args.steps)
        verdict = ("the loss goes down: the pipeline can learn these clips" if result["learns"] else
                   "the loss does NOT go down to a tenth: look at the clips above, the learning rate and the data")
        print(f"sanity: one batch of {result['clips']} clips, {result['steps']} steps in {result['seconds']:.0f} s: "
              f"loss {result['first']:.3f} -> {result['last']:.3f}; {verdict}")
        return 0 if result["learns"] else 1
    return 0
