"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``, read top to bottom.

The seed's recipe: Adam, cross-entropy, ReduceLROnPlateau (factor 0.1) on the val loss (or a
cosine schedule), train/val/test measured every epoch and the checkpoint of the lowest smoothed val loss
(the mean of the last 3 epochs', ``stopping.smoothed_val_loss``) kept as best.pt.
Device, precision, DDP and the clip spec are decided before the loop (``start_run``), so the
loop has no branches on them.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from .. import checkpoint as ckpt
from ..clip import ClipSpec
from ..errors import SttsError
from ..models import build_model
from ..models.layers import fold_batch_norms
from ..models.resnet import to_training_layout
from ..runtime import autocast as make_autocast
from ..runtime import largest_activation, resolve_precision
from .config import TrainConfig, data_type_name, per_process_batch, write_config
from .distributed import Context, ShardSampler, any_rank, broadcast_object, sync_buffers
from .metrics import EpochMetrics, MetricMeter
from .recipe import resolve_recipe
from .reporting import SPLITS, Reporter
from .rng import capture_rng, restore_rng, seed_everything
from .signals import StopRequested, graceful_stop
from .stopping import MIN_VAL_VIDEOS, Stopping, best_epoch, smoothed_val_loss
from .stopping import describe as describe_stopping


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, scaler, autocast,
                    spec: ClipSpec, context: Context, num_classes: int, stop, desc: str = "train") -> EpochMetrics:
    """One pass over ``loader``; raises :class:`StopRequested` (SIGINT/SIGTERM) or :class:`Diverged` (NaN loss)."""
    model.train()
    meter = MetricMeter(num_classes, context.device)
    bar = tqdm(total=len(loader), desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=not context.is_main)
    start, seen, loss_sum, hits = time.perf_counter(), 0, 0.0, 0.0
    for step, (clips, labels) in enumerate(loader):
        x = spec.model_input(clips, context.device)  # (N, C, T, H, W) float, channels-last
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
def evaluate(model: nn.Module, loader: DataLoader, autocast, spec: ClipSpec, context: Context, num_classes: int,
             desc: str = "eval") -> EpochMetrics:
    """Loss, top-1/5 and confusion over ``loader``, summed over ranks (pass the model without DDP)."""
    model.eval()
    meter = MetricMeter(num_classes, context.device)
    for clips, labels in tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                              disable=not context.is_main):
        y = labels.to(context.device, non_blocking=True)
        with autocast():
            logits = model(spec.model_input(clips, context.device))
        meter.update(logits.float(), y)
    meter.all_reduce()
    return meter.compute()


def fit(config: TrainConfig, context: Context | None = None, datasets: dict[str, Dataset] | None = None,
        resume: bool = False) -> dict:
    """Train ``config`` in this process (one rank of ``context``); returns the final model and statistics.

    With ``resume``, the run folder's last.pt restores model, optimizer, scheduler, scaler,
    history and RNG states, and training goes on with the epoch after it.
    """
    context = context or Context()
    run = start_run(config, context, datasets, resume)
    completed, metrics = run.start_epoch - 1, {}
    try:
        with graceful_stop() as stop:
            for epoch in range(run.start_epoch, config.epochs + 1):
                metrics = run_epoch(run, epoch, stop)
                completed = epoch
                if any_rank([stop.requested], context)[0]:
                    raise StopRequested
                if run.stopping.finished(epoch):
                    break
    except StopRequested:
        if context.is_main:
            print(f"stts train: stopped during epoch {completed + 1}; {run.folder / 'last.pt'} holds epoch "
                  f"{completed}. Continue with `stts train --resume {run.folder}` (epoch {completed + 1} "
                  "restarts from its beginning)")
        return {"model": run.model, "history": run.history, "interrupted": True, "run": run.folder}
    finally:
        run.close()
    if context.is_main:
        ended = f" after epoch {completed} of at most {config.epochs} ({run.stopping.reason})" \
            if completed < config.epochs else ""
        print(f"stts train: done{ended}; best.pt is epoch {run.best_epoch} (the lowest val loss, mean of 3 epochs), "
              f"val top-1 {run.best:.2f} %, {run.folder / 'best.pt'}")
    return {"model": run.model, "history": run.history, "interrupted": False, "run": run.folder, "metrics": metrics}


@dataclass
class TrainingRun:
    """Everything the loop needs, decided once before it: network, optimizer, data, precision, spec."""

    config: TrainConfig
    context: Context
    folder: Path
    spec: ClipSpec
    precision: str
    model: nn.Module
    compiled: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    datasets: dict[str, Dataset]
    loaders: dict[str, DataLoader]
    classes: list[str]
    dataset: dict[str, Any]  # name, root and fingerprint of the data
    asked: TrainConfig | None = None  # the config as given, AUTO values and all (saved, so that a resume decides alike)
    reporter: Reporter | None = None
    history: list[dict] = field(default_factory=list)
    best: float = -1.0  # val top-1 of best.pt's epoch
    best_loss: float = math.inf  # its smoothed val loss, which chose it
    best_epoch: int = 0
    start_epoch: int = 1
    stopping: Stopping = field(default_factory=lambda: Stopping(max_epochs=1))
    elapsed: float = 0.0  # seconds of the epochs trained so far, over every resume (what --time-budget counts)
    largest_activation: int | None = None  # of a window's forward pass, measured once, saved for inference

    def __post_init__(self) -> None:
        self.autocast = make_autocast(self.precision, self.context.device)

    def close(self) -> None:
        if self.reporter:
            self.reporter.close()


def start_run(config: TrainConfig, context: Context, datasets: dict[str, Dataset] | None,
              resume: bool) -> TrainingRun:
    """Data, network, optimizer and schedule of a new run, or restored from the run folder's last.pt.

    ``config`` may hold AUTO values: they are decided here, once, by :func:`~stts.engine.recipe.resolve_recipe`
    (a resumed run takes the spec of its checkpoint), and the run works with the decided config; config.json
    keeps what was asked, with what it was decided to beside it.
    """
    device = context.device
    precision = resolve_precision(config.precision, device)
    config.out = broadcast_object(config.out, context)
    folder = Path(config.out)
    state = ckpt.load_checkpoint(folder / "last.pt", map_location=device) if resume else None
    asked = config
    decisions: tuple[str, ...] = ()
    if datasets is None:
        root = open_data(config, context)
        if state is not None:
            spec = ckpt.checkpoint_spec(state, folder / "last.pt")
        else:
            recipe = broadcast_object(resolve_recipe(config, root) if context.is_main else None, context)
            spec, decisions = recipe.spec, recipe.decisions
        datasets = build_datasets(root, spec, config.seed)
    spec = getattr(datasets["train"], "spec", None) or config.decided_stand_in().clip_spec(ClipSpec())
    config = config.replace(clip_stride=spec.clip_stride, stabilise=spec.inputs.stabilise)
    check_splits(datasets, config)
    classes = list(datasets["train"].classes)
    dataset = dataset_identity(datasets["train"], config)
    if state is not None:
        check_same_data(state, classes, dataset, folder)
    config.classes, config.num_classes = classes, len(classes)
    asked.classes, asked.num_classes = classes, len(classes)

    pretrained = ckpt.load_checkpoint(config.pretrained) if config.pretrained and state is None else None
    if pretrained is not None:
        # the weights were trained on inputs in the pretrained checkpoint's channel order and normalisation
        spec = spec.with_input_of(ckpt.checkpoint_spec(pretrained, config.pretrained))
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_model(config.model_type, config.num_classes, width=config.width, blocks=config.blocks,
                        in_channels=spec.network_channels)
    if pretrained is not None:
        load_pretrained(model, config, pretrained)
    to_training_layout(model.to(device))
    optimizer = make_optimizer(model.parameters(), config)
    stopping = Stopping(max_epochs=config.epochs, patience=config.patience,
                        plateau_rule=config.lr_schedule == "until-plateau" and len(datasets["val"]) >= MIN_VAL_VIDEOS)
    scheduler = make_scheduler(optimizer, config, stopping)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    compiled = torch.compile(model) if config.compile else model
    train_model = DistributedDataParallel(compiled) if context.distributed else compiled
    batch = per_process_batch(config.batch_size, context.world_size)
    train_sampler = DistributedSampler(datasets["train"], num_replicas=context.world_size, rank=context.rank,
                                       shuffle=True, seed=config.seed)
    loaders = {"train": make_loader(datasets["train"], batch, config, context, train_sampler)}
    for split in ("val", "test"):
        # no activations are kept for a backward pass: twice the batch fits, and ran ~10 % faster on a CPU
        loaders[split] = make_loader(datasets[split], 2 * batch, config, context,
                                     ShardSampler(len(datasets[split]), context))
    run = TrainingRun(config, context, folder, spec, precision, model, compiled, train_model, optimizer, scheduler,
                      scaler, datasets, loaders, classes, dataset, asked=asked, stopping=stopping)
    if state is not None:
        restore_run(run, state)
    else:
        seed_everything(config.seed + context.rank)
    if state is not None and config.time_budget:
        run.stopping.budget(run.start_epoch - 1, config.time_budget - run.elapsed, run.stopping.epoch_seconds)
    if run.start_epoch > config.epochs or (state is not None and run.stopping.finished(run.start_epoch - 1)):
        reason = f" ({run.stopping.reason})" if run.stopping.reason else ""
        raise SttsError(f"--resume {folder}: the run already ended after {run.start_epoch - 1} epochs{reason}; "
                        "pass a larger --epochs or --time-budget")
    if context.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        for line in decisions:
            print(f"stts: {line}")
        write_config(asked, folder, decided={"clip_stride": spec.clip_stride, "stabilise": spec.inputs.stabilise})
        run.reporter = Reporter(folder, classes, data_type_name(config.data_type), config.tensorboard, config.visdom)
        print(f"stts train: {config.model_type} (width {config.width}) on {config.data_type}, {len(classes)} classes, "
              f"{where(context)}, {precision}; clips: {spec.describe()}; run folder {folder}")
        if config.lr_schedule == "until-plateau" or config.time_budget:
            print(f"stts train: {describe_stopping(run.stopping, len(datasets['val']), config.time_budget)}")
        if hasattr(datasets["train"], "store"):
            from .inspect import data_warnings

            for warning in data_warnings(spec, datasets["train"]):
                print(f"stts train: warning: {warning} (see `stts show-clips`)")
    if state is None:
        save(run, 0, best_epoch=False)  # the resume point of epoch 1
    return run


def run_epoch(run: TrainingRun, epoch: int, stop) -> dict[str, EpochMetrics]:
    """Train one epoch, measure the three splits, step the schedule, save, report; returns the metrics."""
    config, context = run.config, run.context
    run.loaders["train"].sampler.set_epoch(epoch)
    for dataset in run.datasets.values():
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
    started, lr = time.perf_counter(), run.optimizer.param_groups[0]["lr"]
    desc = f"epoch {epoch}/{config.epochs}"
    try:
        train = train_one_epoch(run.train_model, run.loaders["train"], run.optimizer, run.scaler, run.autocast,
                                run.spec, context, config.num_classes, stop, desc=f"{desc} train")
    except Diverged as error:
        raise SttsError(f"{error}; {run.folder / 'last.pt'} keeps epoch {epoch - 1}. "
                        "Lower --lr or use --precision fp32") from None
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        raise SttsError(f"out of {context.device.type.upper()} memory with --batch-size {config.batch_size}: lower "
                        "--batch-size (or --clip-len / --crop-size)") from None
    trained = time.perf_counter() - started
    sync_buffers(run.model, context)
    metrics = {"train": train}
    measured = evaluation_model(run)
    for split in ("val", "test"):
        metrics[split] = evaluate(measured, run.loaders[split], run.autocast, run.spec, context,
                                  config.num_classes, desc=f"{desc} {split}")
    seconds = broadcast_object(time.perf_counter() - started, context)  # rank 0's clock, on every rank
    run.elapsed, run.stopping.epoch_seconds = run.elapsed + seconds, seconds
    decaying = run.stopping.decay_from is not None
    run.stopping.observe(epoch, metrics["val"].loss, metrics["train"].top1, metrics["val"].top1)
    if config.time_budget:
        run.stopping.budget(epoch, config.time_budget - run.elapsed, seconds)
    line = ending_line(run.stopping, config, epoch) if not decaying and run.stopping.decay_from is not None else ""
    if run.reporter and line and epoch < config.epochs:
        print(f"stts train: {line}", flush=True)
    step_scheduler(run.scheduler, metrics["val"].loss)
    row = {"epoch": epoch}
    for split in SPLITS:
        row.update(metrics[split].as_row(split))
    run.history.append(row)
    improved = best_epoch(run.stopping.val_loss) == len(run.stopping.val_loss)
    if improved:
        run.best, run.best_loss, run.best_epoch = metrics["val"].top1, smoothed_val_loss(run.stopping.val_loss), epoch
    save(run, epoch, best_epoch=improved)
    if run.reporter:
        run.reporter.epoch(run.history, {s: m.confusion for s, m in metrics.items()}, lr)
        print(summary_line(epoch, config.epochs, metrics, lr, trained, time.perf_counter() - started, improved),
              flush=True)
    return metrics


def ending_line(stopping: Stopping, config: TrainConfig, epoch: int) -> str:
    """What the stopping rule decided after ``epoch``, as the learning rate will feel it: until-plateau cools down
    over the epochs left; another schedule keeps its own rates and only ends sooner (a time budget), and its
    approach to --epochs is no news (the start line said how many)."""
    if config.lr_schedule == "until-plateau":
        ending = f"a cool-down of {stopping.decay_epochs} epoch(s)" if stopping.decay_epochs else "the end"
        return f"{ending} after epoch {epoch}: {stopping.reason}"
    if stopping.cause == "budget":
        return f"the run ends after epoch {epoch + stopping.decay_epochs}: {stopping.reason}"
    return ""


def evaluation_model(run: TrainingRun) -> nn.Module:
    """The network val and test are measured with: a copy with its batch norms folded into the convs, all
    channels-last-3d (as `stts evaluate` and `stts infer` run it; see runtime.load_model).

    The same function in eval mode, to float rounding; on a CPU at width 16, where batch norm over
    channels-last tensors of few channels costs as much as the convs, ~1.2x faster (bench_train.py),
    and all channels-last 1.6x faster than in the training layout (to_training_layout).
    A compiled network is measured as it is: a copy would be compiled again.
    """
    if run.config.compile:
        return run.compiled
    return fold_batch_norms(copy.deepcopy(run.model).eval()).to(memory_format=torch.channels_last_3d)


RESUME_ONLY = ("optimizer", "scheduler", "scaler", "rng")


def save(run: TrainingRun, epoch: int, best_epoch: bool) -> None:
    """last.pt every epoch (and best.pt on a lower smoothed val loss), with the clip spec and the precision used.

    best.pt is for use (inference, evaluation, export, a warm start), so it leaves out what only a resume reads
    (the optimizer's moments, the schedulers, the random states): a third of last.pt's size at width 16, and
    loaded in a third of the time, which a 1-second `stts infer` feels."""
    rngs = gather_rng(run.context)
    if not run.context.is_main:
        return
    if run.largest_activation is None:  # what `stts infer` sizes its CPU batch by, without a pass of its own
        run.largest_activation = largest_activation(run.model, run.spec, run.context.device)
    payload = {
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "epoch": epoch, "rng": rngs,
        "config": (run.asked or run.config).to_dict(), "classes": run.classes, "spec": run.spec.to_dict(),
        "precision": run.precision, "dataset": run.dataset, "best_metric": run.best, "best_loss": run.best_loss,
        "best_epoch": run.best_epoch,
        "history": run.history, "stopping": run.stopping.state_dict(), "elapsed": run.elapsed,
        "largest_activation": run.largest_activation,
    }
    ckpt.save_checkpoint(payload, run.folder / "last.pt")
    if best_epoch:
        ckpt.save_checkpoint({k: v for k, v in payload.items() if k not in RESUME_ONLY}, run.folder / "best.pt")


def restore_run(run: TrainingRun, state: dict[str, Any]) -> None:
    ckpt.load_weights(run.model, state["model"], run.folder / "last.pt")
    run.optimizer.load_state_dict(state["optimizer"])
    load_scheduler(run.scheduler, state["scheduler"], run.optimizer)
    run.scaler.load_state_dict(state["scaler"])
    run.history, run.best, run.start_epoch = list(state["history"]), state["best_metric"], state["epoch"] + 1
    run.best_loss, run.best_epoch = state.get("best_loss", math.inf), state.get("best_epoch", 0)
    run.stopping.load_state_dict(state.get("stopping", {}))
    run.elapsed = state.get("elapsed", 0.0)
    rng = state["rng"]
    if len(rng) == run.context.world_size:
        restore_rng(rng[run.context.rank])
    else:
        seed_everything(run.config.seed + 1000 * run.start_epoch + run.context.rank)


def open_data(config: TrainConfig, context: Context) -> Path:
    """The prepared folder of ``config.data_type``; a built-in set is made first if it is missing (on rank 0)."""
    from ..data import dataset_root, prepare_dataset
    from ..data.registry import kind_of

    kind = kind_of(config.data_type)
    if kind is not None and kind.generate is not None and context.is_main:
        try:
            dataset_root(config.data_type, config.data_root)
        except SttsError:
            target = Path(config.data_root) / kind.name
            print(f"stts: preparing the {kind.name} dataset in {target}")
            prepare_dataset(kind.name, [], target)
    broadcast_object(None, context)  # the other ranks wait for rank 0's preparation
    return dataset_root(config.data_type, config.data_root)


def build_datasets(root: Path, spec: ClipSpec, seed: int) -> dict[str, Dataset]:
    """train/val/test :class:`~stts.data.ClipDataset` of the prepared folder ``root``, made into clips by ``spec``."""
    from ..data import ClipDataset

    return {split: ClipDataset(root, split, spec, train=split == "train", seed=seed) for split in SPLITS}


def check_splits(datasets: dict[str, Dataset], config: TrainConfig) -> None:
    for split in SPLITS:
        if len(datasets[split]) == 0:
            raise SttsError(f"{config.data_type}: the {split} split is empty, so "
                            f"{'nothing can be learned' if split == 'train' else 'best.pt would be chosen on nothing'}; "
                            "prepare the data with videos in every split")


def dataset_identity(dataset: Dataset, config: TrainConfig) -> dict[str, Any]:
    """Name, folder and fingerprint of the training data (written by stts prepare), for --resume's check."""
    root = getattr(dataset, "root", None)
    if root is None:
        return {"name": config.data_type, "root": None, "fingerprint": None}
    from ..data import read_info

    return {"name": config.data_type, "root": str(root), "fingerprint": read_info(root).get("fingerprint")}


def check_same_data(state: dict[str, Any], classes: list[str], dataset: dict[str, Any], folder: Path) -> None:
    """A resumed run goes on with the data it was trained on: the same classes and the same fingerprint."""
    if list(state["classes"]) != classes:
        raise SttsError(f"--resume {folder}: the checkpoint has {len(state['classes'])} classes, "
                        f"{dataset['name']} has {len(classes)}; resume with the data it was trained on")
    before = (state.get("dataset") or {}).get("fingerprint")
    if before != dataset["fingerprint"]:
        raise SttsError(f"--resume {folder}: it was trained on other data ({before}, now {dataset['root']} with "
                        f"{dataset['fingerprint']}: other videos, splits or stored frames); resume with the data "
                        "it was trained on (--data-root)")


class Diverged(SttsError):
    """The loss became NaN or infinite."""


def out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def where(context: Context) -> str:
    device = context.device.type.upper() if context.device.type == "cpu" else str(context.device)
    return f"{context.world_size} processes ({device}...)" if context.distributed else device


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the decay as an L2 term of the loss (the seed's), or AdamW with it decoupled.

    In Adam an L2 term's gradient is divided by the running gradient scale like any other, so weights with
    large gradients are barely decayed and the decay's strength shifts as training goes; AdamW shrinks every
    weight by lr x decay a step (Loshchilov and Hutter, "Decoupled Weight Decay Regularization").
    """
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel over all the weights; on a CPU the default loops over them: 34 ms a step against 8 ms for
    # --preset small's 460 tensors on 2 threads, ~3 % of its training step
    return optimizer(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, stopping: Stopping | None = None):
    """ReduceLROnPlateau on the val loss (the seed's), cosine from ``config.lr`` to 0 over the epochs, or
    until-plateau: ``stopping``'s factor (constant, then a linear cool-down; see engine.stopping).

    The cosine factor is computed from ``config.epochs`` when called, so a run resumed with a larger
    --epochs stretches the rest of its schedule instead of restarting it.
    """
    if config.lr_schedule == "until-plateau":
        rule = stopping or Stopping(max_epochs=config.epochs)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: rule.factor(done))
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


def load_pretrained(model: nn.Module, config: TrainConfig, state: dict[str, Any]) -> None:
    """Warm start: every weight but the classifier, from a checkpoint of the same network."""
    other = state["config"]
    if other.get("model_type") != config.model_type:
        raise SttsError(f"--pretrained {config.pretrained}: it is a {other.get('model_type')} checkpoint, "
                        f"this run trains {config.model_type}; pass --model-type {other.get('model_type')}")
    ckpt.load_weights(model, state["model"], config.pretrained, skip_classifier=True)


def make_loader(dataset: Dataset, batch_size: int, config: TrainConfig, context: Context, sampler) -> DataLoader:
    """Workers that live for the whole run: forking them anew every epoch made the first train step after each
    fork take 1.4-1.8 s against ~0.5 s (the parent's pages, shared copy-on-write with fresh workers, are copied
    as it writes them), about a second of every epoch of the CPU preset (docs/speed.md)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=config.workers,
                      pin_memory=context.device.type == "cuda", worker_init_fn=ignore_sigint,
                      persistent_workers=config.workers > 0)


def ignore_sigint(_worker_id: int) -> None:
    # Ctrl-C reaches the loader workers too; the main process stops them after saving
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def gather_rng(context: Context) -> list[dict]:
    """Every rank's RNG states, in rank order, so that a resumed DDP run continues each stream."""
    state = capture_rng()
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
