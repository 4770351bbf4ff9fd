"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``, read top to bottom.

The seed's recipe: Adam, cross-entropy, ReduceLROnPlateau (factor 0.1) on the val loss (or a
cosine schedule), train/val/test measured every epoch and the checkpoint with the best val top-1
kept (of equal ones, the one with the lower val loss: a small val split ties often).
Device, precision and DDP are decided before the loop, so the loop has no branches on them.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from ..errors import SttsError
from ..models import build_model
from . import checkpoint as ckpt
from .config import TrainConfig, data_type_name, write_config
from .distributed import Context, ShardSampler, any_rank, broadcast_object, sync_buffers
from .metrics import EpochMetrics, MetricMeter
from .precision import autocast as make_autocast
from .precision import resolve_precision, to_model_input
from .reporting import SPLITS, Reporter
from .signals import StopRequested, graceful_stop


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, scaler, autocast,
                    context: Context, num_classes: int, stop, desc: str = "train") -> EpochMetrics:
    """One pass over ``loader``; raises :class:`StopRequested` (SIGINT/SIGTERM) or SttsError (NaN loss)."""
    model.train()
    meter = MetricMeter(num_classes, context.device)
    bar = tqdm(total=len(loader), desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=not context.is_main)
    start, seen, loss_sum, hits = time.perf_counter(), 0, 0.0, 0.0
    for step, (clips, labels) in enumerate(loader):
        x = to_model_input(clips, context.device)  # (N, C, T, H, W) float, channels-last
        y = labels.to(context.device, non_blocking=True)
        with autocast():
            logits = model(x)  # (N, K)
        loss = F.cross_entropy(logits.float(), y)
        value = loss.item()
        # every rank must take the same branch, or the others wait forever in the next all-reduce
        nonfinite, stopping = any_rank([not math.isfinite(value), stop.requested], context)
        if nonfinite:
            raise Diverged(f"the training loss became {value} ({desc}, batch {step + 1}): the run diverged")
        if stopping:
            raise StopRequested
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        meter.update(logits.detach(), y, loss.detach())
        n = y.numel()
        seen, loss_sum = seen + n, loss_sum + value * n
        hits += (logits.detach().argmax(1) == y).sum().item()
        rate = seen * context.world_size / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{100 * hits / seen:.1f}%", clips_s=f"{rate:.1f}")
        bar.update()
    bar.close()
    meter.all_reduce()
    return meter.compute()


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, autocast, context: Context, num_classes: int,
             desc: str = "eval") -> EpochMetrics:
    """Loss, top-1/5 and confusion over ``loader``, summed over ranks (pass the model without DDP)."""
    model.eval()
    meter = MetricMeter(num_classes, context.device)
    for clips, labels in tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                              disable=not context.is_main):
        y = labels.to(context.device, non_blocking=True)
        with autocast():
            logits = model(to_model_input(clips, context.device))
        meter.update(logits.float(), y)
    meter.all_reduce()
    return meter.compute()


def build_datasets(config: TrainConfig, context: Context) -> dict[str, Dataset]:
    """train/val/test :class:`~stts.data.ClipDataset` of ``config.data_type`` (synthetic-motion is made if missing)."""
    from ..data import ClipDataset, dataset_root, prepare_synthetic_motion

    if config.data_type == "synthetic-motion" and context.is_main:
        try:
            dataset_root(config.data_type, config.data_root)
        except SttsError:
            target = Path(config.data_root) / "synthetic-motion"
            print(f"stts: preparing the synthetic-motion dataset in {target}")
            prepare_synthetic_motion(target)
    broadcast_object(None, context)  # the other ranks wait for rank 0's preparation
    root = dataset_root(config.data_type, config.data_root)
    clip = {"clip_len": config.clip_len, "crop_size": config.crop_size, "seed": config.seed}
    return {split: ClipDataset(root, split, train=split == "train", **clip) for split in SPLITS}


def fit(config: TrainConfig, context: Context | None = None, datasets: dict[str, Dataset] | None = None,
        resume: bool = False) -> dict:
    """Train ``config`` in this process (one rank of ``context``); returns the final model and statistics.

    With ``resume``, the run folder's last.pt restores model, optimizer, scheduler, scaler,
    history and RNG states, and training goes on with the epoch after it.
    """
    context = context or Context()
    device = context.device
    precision = resolve_precision(config.precision, device)
    autocast = make_autocast(precision, device)
    config.out = broadcast_object(config.out, context)
    run = Path(config.out)
    datasets = datasets if datasets is not None else build_datasets(config, context)
    classes = list(datasets["train"].classes)
    state = ckpt.load_checkpoint(run / "last.pt", map_location=device) if resume else None
    if state is not None and list(state["classes"]) != classes:
        raise SttsError(f"--resume {run}: the checkpoint has {len(state['classes'])} classes, "
                        f"{config.data_type} has {len(classes)}; resume with the data it was trained on")
    config.classes, config.num_classes = classes, len(classes)
    if getattr(datasets["train"], "root", None) is not None:
        from ..data import read_info

        config.data_info = read_info(datasets["train"].root)

    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_model(config.model_type, config.num_classes, width=config.width, blocks=config.blocks)
    if config.pretrained and state is None:
        load_pretrained(model, config)
    model.to(device, memory_format=torch.channels_last_3d)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    history, best, best_loss, start_epoch = [], -1.0, math.inf, 1
    if state is not None:
        ckpt.load_weights(model, state["model"], run / "last.pt")
        optimizer.load_state_dict(state["optimizer"])
        load_scheduler(scheduler, state["scheduler"], optimizer)
        scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = list(state["history"]), state["best_metric"], state["epoch"] + 1
        best_loss = state.get("best_loss", math.inf)
        rng = state["rng"]
        if len(rng) == context.world_size:
            ckpt.restore_rng(rng[context.rank])
        else:
            seed_everything(config.seed + 1000 * start_epoch + context.rank)
    else:
        seed_everything(config.seed + context.rank)

    compiled = torch.compile(model) if config.compile else model
    train_model = DistributedDataParallel(compiled) if context.distributed else compiled
    train_sampler = DistributedSampler(datasets["train"], num_replicas=context.world_size, rank=context.rank,
                                       shuffle=True, seed=config.seed)
    loaders = {"train": make_loader(datasets["train"], config, context, train_sampler)}
    for split in ("val", "test"):
        loaders[split] = make_loader(datasets[split], config, context, ShardSampler(len(datasets[split]), context))

    reporter = None
    if context.is_main:
        run.mkdir(parents=True, exist_ok=True)
        write_config(config, run)
        reporter = Reporter(run, classes, data_type_name(config.data_type), config.tensorboard, config.visdom)
        print(f"stts train: {config.model_type} (width {config.width}) on {config.data_type}, "
              f"{len(classes)} classes, {where(context)}, {precision}; run folder {run}")

    def save(epoch: int, best_epoch: bool) -> None:
        rngs = gather_rng(context)
        if not context.is_main:
            return
        payload = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch, "rng": rngs, "config": config.to_dict(),
            "classes": classes, "best_metric": best, "best_loss": best_loss, "history": history,
        }
        ckpt.save_checkpoint(payload, run / "last.pt")
        if best_epoch:
            ckpt.save_checkpoint(payload, run / "best.pt")

    if state is None:
        save(0, best_epoch=False)  # the resume point of epoch 1
    completed = start_epoch - 1
    if start_epoch > config.epochs:
        if reporter:
            reporter.close()
        raise SttsError(f"--resume {run}: the run already trained {completed} epochs; pass a larger --epochs")
    try:
        with graceful_stop() as stop:
            for epoch in range(start_epoch, config.epochs + 1):
                train_sampler.set_epoch(epoch)
                for dataset in datasets.values():
                    if hasattr(dataset, "set_epoch"):
                        dataset.set_epoch(epoch)
                started, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
                desc = f"epoch {epoch}/{config.epochs}"
                try:
                    train = train_one_epoch(train_model, loaders["train"], optimizer, scaler, autocast, context,
                                            config.num_classes, stop, desc=f"{desc} train")
                except Diverged as error:
                    raise SttsError(f"{error}; {run / 'last.pt'} keeps epoch {completed}. "
                                    "Lower --lr or use --precision fp32") from None
                except (torch.OutOfMemoryError, RuntimeError) as error:
                    if not out_of_memory(error):
                        raise
                    raise SttsError(f"out of {device.type.upper()} memory with --batch-size {config.batch_size} "
                                    "per process: lower --batch-size (or --clip-len / --crop-size)") from None
                trained = time.perf_counter() - started
                sync_buffers(model, context)
                metrics = {"train": train}
                for split in ("val", "test"):
                    metrics[split] = evaluate(compiled, loaders[split], autocast, context, config.num_classes,
                                              desc=f"{desc} {split}")
                step_scheduler(scheduler, metrics["val"].loss)
                row = {"epoch": epoch}
                for split in SPLITS:
                    row.update(metrics[split].as_row(split))
                history.append(row)
                val = metrics["val"]
                improved = improves(val.top1, val.loss, best, best_loss)
                if improved:
                    best, best_loss = val.top1, val.loss
                save(epoch, best_epoch=improved)
                completed = epoch
                if reporter:
                    reporter.epoch(history, {s: m.confusion for s, m in metrics.items()}, lr)
                    print(summary_line(epoch, config.epochs, metrics, lr,
                                       trained, time.perf_counter() - started, improved), flush=True)
                if any_rank([stop.requested], context)[0]:
                    raise StopRequested
    except StopRequested:
        if context.is_main:
            print(f"stts train: stopped during epoch {completed + 1}; {run / 'last.pt'} holds epoch {completed}. "
                  f"Continue with `stts train --resume {run}` (epoch {completed + 1} restarts from its beginning)")
        return {"model": model, "history": history, "interrupted": True, "run": run}
    finally:
        if reporter:
            reporter.close()
    if context.is_main:
        print(f"stts train: done; best val top-1 {best:.2f} %, {run / 'best.pt'}")
    return {"model": model, "history": history, "interrupted": False, "run": run, "metrics": metrics}


class Diverged(SttsError):
    """The loss became NaN or infinite."""


def out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def where(context: Context) -> str:
    device = context.device.type.upper() if context.device.type == "cpu" else str(context.device)
    return f"{context.world_size} processes ({device}...)" if context.distributed else device


def improves(top1: float, loss: float, best_top1: float, best_loss: float) -> bool:
    """A higher val top-1, or the same with a lower val loss."""
    return top1 > best_top1 or (top1 == best_top1 and loss < best_loss)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """ReduceLROnPlateau on the val loss (the seed's), or cosine from ``config.lr`` to 0 over the epochs.

    The cosine factor is computed from ``config.epochs`` when called, so a run resumed with a larger
    --epochs stretches the rest of its schedule instead of restarting it.
    """
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda done: 0.5 * (1 + math.cos(math.pi * min(done, config.epochs) / config.epochs)))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=config.lr_patience)


def load_scheduler(scheduler, state: dict, optimizer: torch.optim.Optimizer) -> None:
    """Restore ``scheduler``; a cosine one then re-derives the learning rate from the current --epochs.

    The saved optimizer holds the rate the old --epochs gave for the next epoch (0 when the run
    had reached its end), so a resume with more epochs would otherwise train one epoch at it.
    """
    scheduler.load_state_dict(state)
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
            group["lr"] = base * factor(scheduler.last_epoch)


def step_scheduler(scheduler, val_loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def load_pretrained(model: nn.Module, config: TrainConfig) -> None:
    """Warm start: every weight but the classifier, from a checkpoint of the same network."""
    state = ckpt.load_checkpoint(config.pretrained)
    other = state["config"]
    if other.get("model_type") != config.model_type:
        raise SttsError(f"--pretrained {config.pretrained}: it is a {other.get('model_type')} checkpoint, "
                        f"this run trains {config.model_type}; pass --model-type {other.get('model_type')}")
    ckpt.load_weights(model, state["model"], config.pretrained, skip_classifier=True)


def make_loader(dataset: Dataset, config: TrainConfig, context: Context, sampler) -> DataLoader:
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                      pin_memory=context.device.type == "cuda", worker_init_fn=ignore_sigint)


def ignore_sigint(_worker_id: int) -> None:
    # Ctrl-C reaches the loader workers too; the main process stops them after saving
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def gather_rng(context: Context) -> list[dict]:
    """Every rank's RNG states, in rank order, so that a resumed DDP run continues each stream."""
    state = ckpt.capture_rng()
    if not context.distributed:
        return [state]
    import torch.distributed as dist

    states = [None] * context.world_size
    dist.all_gather_object(states, state)
    return states


def summary_line(epoch: int, epochs: int, metrics: dict[str, EpochMetrics], lr: float, train_seconds: float,
                 seconds: float, best: bool) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    for split in SPLITS:
        m = metrics[split]
        parts.append(f"{split} loss {m.loss:.3f} top1 {m.top1:5.1f}% top5 {m.top5:5.1f}%")
    clips = metrics["train"].count / train_seconds
    parts.append(f"lr {lr:.0e}, {seconds:.1f} s ({clips:.1f} train clips/s)" + (", best" if best else ""))
    return " | ".join(parts)

