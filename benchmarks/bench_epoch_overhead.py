"""What an epoch of `--preset small` spends outside the train step: loader workers forked every epoch against workers
kept for the run (``engine.train.make_loader``), epochs interleaved so that the machine's drift falls on both.

A fresh worker is a fork of the training process: until the parent has written its pages once more (copy-on-write),
its first train step after the fork runs at a fraction of the speed. The table gives, for the epochs after the first
(both fork then), the first train step, the median of the others, the time the loop waited for batches, the train
phase's clips/s as the epoch line prints it, and the test split's evaluation, with each variant's median over the
epochs. On synthetic-motion (prepared in a temporary folder unless --data names one), the preset's recipe, 2 loader
workers (the preset's default on 2 cores), `--precision auto`.

    python benchmarks/bench_epoch_overhead.py [--epochs 4] [--data FOLDER_OF_PREPARED_SETS]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from stts.engine.config import resolve_config
from stts.engine.distributed import Context, ShardSampler
from stts.engine.recipe import resolve_recipe
from stts.engine.train import build_datasets, ignore_sigint, make_loader, make_optimizer, open_data
from stts.models import build_model
from stts.models.resnet import to_training_layout
from stts.runtime import autocast, resolve_precision

VARIANTS = ("workers forked every epoch (before)", "workers kept for the run (stts train)")


def loaders(datasets, config, context, kept: bool) -> dict[str, DataLoader]:
    train_sampler = DistributedSampler(datasets["train"], num_replicas=1, rank=0, shuffle=True, seed=0)
    test_sampler = ShardSampler(len(datasets["test"]), context)
    if kept:
        return {"train": make_loader(datasets["train"], config.batch_size, config, context, train_sampler),
                "test": make_loader(datasets["test"], 2 * config.batch_size, config, context, test_sampler)}
    options = {"num_workers": config.workers, "worker_init_fn": ignore_sigint}
    return {"train": DataLoader(datasets["train"], batch_size=config.batch_size, sampler=train_sampler, **options),
            "test": DataLoader(datasets["test"], batch_size=2 * config.batch_size, sampler=test_sampler, **options)}


def epoch(model, optimizer, loader_set, datasets, spec, precision, number: int) -> dict[str, float]:
    loader_set["train"].sampler.set_epoch(number)
    datasets["train"].set_epoch(number)
    device, steps, waited = torch.device("cpu"), [], 0.0
    model.train()
    start = ready = time.perf_counter()
    for clips, labels in loader_set["train"]:
        fetched = time.perf_counter()
        waited += fetched - ready
        with autocast(precision, device)():
            logits = model(spec.model_input(clips, device))
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ready = time.perf_counter()
        steps.append(ready - fetched)
    trained = ready - start
    model.eval()
    evaluated = time.perf_counter()
    with torch.no_grad(), autocast(precision, device)():
        for clips, _ in loader_set["test"]:
            model(spec.model_input(clips, device))
    return {"first": 1000 * steps[0], "median": 1000 * statistics.median(steps[1:]), "waited": waited,
            "clips_s": len(datasets["train"]) / trained, "test": time.perf_counter() - evaluated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each variant, interleaved (default 4)")
    parser.add_argument("--data", type=Path, help="folder holding a prepared synthetic-motion (default: prepare one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.data or Path(scratch)
        config = resolve_config({"data_type": "synthetic-motion", "preset": "small", "data_root": str(root)})
        context = Context()
        data = open_data(config, context)
        recipe = resolve_recipe(config, data)
        datasets = build_datasets(data, recipe.spec, config.seed)
        spec, precision = datasets["train"].spec, resolve_precision(config.precision, torch.device("cpu"))
        torch.manual_seed(0)
        model = to_training_layout(build_model(config.model_type, len(datasets["train"].classes), width=config.width,
                                               blocks=config.blocks, in_channels=spec.network_channels))
        optimizer = make_optimizer(model.parameters(), config)
        sets = {kept: loaders(datasets, config, context, kept) for kept in (False, True)}
        measured = {kept: [] for kept in sets}
        for number in range(1, args.epochs + 1):
            for kept in (False, True) if number % 2 else (True, False):  # each first in turn: drift falls on both
                result = epoch(model, optimizer, sets[kept], datasets, spec, precision, number)
                if number > 1:
                    measured[kept].append(result)
    print(f"Epochs of `--preset small` on synthetic-motion ({len(datasets['train'])} training clips, batch "
          f"{config.batch_size}, {config.workers} loader workers, {precision}, {torch.get_num_threads()} threads), "
          f"epochs 2-{args.epochs} of each variant, interleaved; medians over those epochs\n")
    print("| loader workers | first train step, ms | other steps, median ms | waiting for batches, s | "
          "train clips/s | test evaluation, s |")
    print("|---|---:|---:|---:|---:|---:|")
    for kept, name in zip(sets, VARIANTS, strict=True):
        rows = measured[kept]
        value = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"| {name} | {value['first']:.0f} | {value['median']:.0f} | {value['waited']:.2f} | "
              f"{value['clips_s']:.1f} | {value['test']:.1f} |")


if __name__ == "__main__":
    main()
