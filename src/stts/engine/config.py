"""The resolved options of a training run; stored in every checkpoint and as config.json."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..clip import ClipSpec, InputOptions, carries_input_options
from ..errors import SttsError
from ..files import write_text
from ..models import build_model
from .presets import AUTO, PRESETS


def default_workers() -> int:
    """Data loader processes: the cores this process may use, at most 4 (more only slow the loop)."""
    return min(4, len(os.sched_getaffinity(0)))




@carries_input_options
@dataclass
class TrainConfig:
    """Defaults are the seed's recipe (UCF101, STTS-A, Adam 1e-4, 100 epochs of 16 clips)."""

    data_type: str = "ucf101"
    data_root: str = "data"
    model_type: str = "stts-a"
    width: int = 64
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    # how clips are sampled from the stored frames: copied into the run's clip spec
    clip_len: int = 32
    clip_stride: int | str = 1  # or AUTO: chosen from the training videos' length when the data is opened
    crop_size: int = 112
    view: float | None = None  # see ClipSpec.view and ClipSpec.train_views
    train_views: tuple[float, float] | None = None
    region: str = "square"  # see ClipSpec.region
    hflip: bool | None = None  # None: as the data set says
    # normalisation, temporal residual, normal flow...: written flat in config.json, one flag each;
    # inputs.stabilise may be AUTO: on when the training videos' camera moves
    inputs: InputOptions = field(default_factory=InputOptions)
    batch_size: int = 16  # clips a step over all processes, as the seed's DataParallel
    epochs: int = 100
    lr: float = 1e-4
    weight_decay: float = 5e-4
    optimizer: str = "adam"  # the seed's: weight decay as an L2 term of the loss; or "adamw": decoupled from it
    lr_schedule: str = "plateau"  # the seed's ReduceLROnPlateau; or "cosine", or "until-plateau" (engine.stopping)
    patience: int = 3  # until-plateau: epochs without a better smoothed val loss before the cool-down
    time_budget: float | None = None  # seconds of training over the whole run, resumes included (engine.stopping)
    lr_patience: int = 10  # ReduceLROnPlateau's default, as in the seed
    workers: int = field(default_factory=default_workers)
    seed: int = 0
    precision: str = "auto"
    compile: bool = False
    out: str = ""
    pretrained: str | None = None
    gpu_ids: str | None = None
    tensorboard: bool = True
    visdom: str | None = None
    preset: str | None = None
    # filled from the data
    num_classes: int = 0
    classes: list[str] = field(default_factory=list)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Every option by the name config.json, the flags' dest and ``stts.train`` use (the input options flat)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "inputs") + InputOptions.names()

    def to_dict(self) -> dict[str, Any]:
        state = dataclasses.asdict(self)
        state.update(state.pop("inputs"))
        state["blocks"] = list(self.blocks)
        if self.train_views is not None:
            state["train_views"] = list(self.train_views)
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainConfig:
        """From config.json's flat form (or a dict of options by name); unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)} - {"inputs"}
        values = {k: v for k, v in state.items() if k in known}
        for key in ("blocks", "train_views"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        values["inputs"] = InputOptions(**{k: v for k, v in state.items() if k in InputOptions.names()})
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (input options by their own names too)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def clip_spec(self, stored: ClipSpec) -> ClipSpec:
        """The run's clip spec: the data set's storage, with this run's sampling and input options. Every AUTO must
        be decided first (:func:`stts.engine.recipe.resolve_recipe`); :func:`check` passes a stand-in."""
        if AUTO in (self.clip_stride, self.inputs.stabilise):
            raise ValueError("clip_spec needs every auto decided (engine.recipe.resolve_recipe)")
        return stored.with_sampling(self.clip_len, self.clip_stride, self.crop_size, self.view, self.train_views,
                                    hflip=self.hflip, inputs=self.inputs, region=self.region)

    def decided_stand_in(self) -> TrainConfig:
        """This config with every AUTO replaced by a value that builds the same network (only to check it)."""
        return self.replace(clip_stride=1 if self.clip_stride == AUTO else self.clip_stride,
                            stabilise=self.inputs.stabilise is True)


LR_SCHEDULES = ("plateau", "cosine", "until-plateau")
OPTIMIZERS = ("adam", "adamw")

# what --resume may change: how the run is executed, not what it computes
RESUMABLE_OVERRIDES = ("epochs", "time_budget", "workers", "gpu_ids", "tensorboard", "visdom", "data_root")


def data_type_name(data_type: str) -> str:
    """'ucf101' -> 'ucf101'; a prepared folder's path -> its folder name (run names, visdom env)."""
    return Path(data_type).name or data_type


def resolve_config(given: dict[str, Any]) -> TrainConfig:
    """The seed's defaults, then the preset (given, or the data set's own), then the options the user gave."""
    from ..data.registry import kind_of

    given = {k: v for k, v in given.items() if v is not None}
    data_type = given.get("data_type", TrainConfig.data_type)
    kind = kind_of(data_type)
    preset = given.get("preset") or (kind.preset if kind else None)
    if preset is not None and preset not in PRESETS:
        raise SttsError(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}")
    config = TrainConfig.from_dict({**PRESETS.get(preset, {}), **given, "preset": preset})
    check(config)
    if not config.out:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        config.out = str(Path("runs") / f"{data_type_name(config.data_type)}_{config.model_type}_{stamp}")
    return config


def resume_config(saved: dict[str, Any], given: dict[str, Any], run: Path) -> TrainConfig:
    """The checkpoint's config with only the execution options the user gave replaced."""
    given = {k: v for k, v in given.items() if v is not None}
    changed = sorted(k for k, v in given.items() if k not in RESUMABLE_OVERRIDES and saved.get(k) != v)
    if changed:
        options = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise SttsError(
            f"--resume {run}: the run's saved config fixes {options}; "
            f"only {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_OVERRIDES)} may change"
        )
    config = TrainConfig.from_dict({**saved, **given, "out": str(run)})
    check(config)
    return config


def check(config: TrainConfig) -> None:
    """Every option checked before anything is written; the network is built (on no device) to check its size."""
    if config.inputs.stabilise not in (True, False, AUTO):
        raise SttsError(f"--stabilise must be on, off or {AUTO!r}, got {config.inputs.stabilise!r}")
    if isinstance(config.clip_stride, str) and config.clip_stride != AUTO:
        raise SttsError(f"--clip-stride must be a number or {AUTO!r}, got {config.clip_stride!r}")
    if not isinstance(config.epochs, int) or isinstance(config.epochs, bool):
        raise SttsError(f"--epochs must be a whole number, got {config.epochs!r}")
    for name in ("clip_len", "clip_stride", "crop_size", "batch_size", "epochs"):
        if getattr(config, name) != AUTO and getattr(config, name) < 1:
            raise SttsError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if not isinstance(config.inputs.flow_baselines, int) or config.inputs.flow_baselines < 1:
        raise SttsError(f"--flow-baselines must be at least 1, got {config.inputs.flow_baselines}")
    if config.lr <= 0 or config.weight_decay < 0:
        raise SttsError(f"--lr must be positive and --weight-decay not negative, got {config.lr}, {config.weight_decay}")
    if config.optimizer not in OPTIMIZERS:
        raise SttsError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise SttsError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {config.lr_schedule!r}")
    if config.lr_patience < 0 or config.patience < 1:
        raise SttsError(f"--lr-patience must be 0 or more and --patience at least 1, got {config.lr_patience}, "
                        f"{config.patience}")
    if config.time_budget is not None and not config.time_budget > 0:
        raise SttsError(f"--time-budget must be a positive number of seconds, got {config.time_budget}")
    if config.workers < 0:
        raise SttsError(f"--workers must be 0 or more, got {config.workers}")
    check_network(config, config.decided_stand_in().clip_spec(ClipSpec()))  # the spec checks the sampling options


def check_network(config: TrainConfig, spec: ClipSpec) -> None:
    """Build the network on the meta device and run one clip of ``spec`` (the config's) through it: a width or a
    clip it cannot take fails here, in one line, instead of after the run folder is written."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero-channel layers warn before they fail
            channels = spec.network_channels
            model = build_model(config.model_type, 2, width=config.width, blocks=config.blocks, in_channels=channels)
            model(torch.empty(1, channels, spec.network_frames, config.crop_size, config.crop_size))
    except SttsError as error:
        raise SttsError(f"--width {config.width}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure to build or run means these sizes do not fit
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        pooling = (f" (--clip-len {spec.clip_len} averaged over --pool-frames {spec.pool_frames})"
                   if spec.pool_frames > 1 else "")
        raise SttsError(f"--model-type {config.model_type} --width {config.width} on {spec.network_frames}x"
                        f"{config.crop_size}x{config.crop_size} inputs{pooling} does not build or run ({reason[:160]}); "
                        "use a larger --width (16, 32 or 64), larger clips or --pool-frames 1") from None


def per_process_batch(batch_size: int, world_size: int) -> int:
    """``--batch-size`` is the batch of one step over all processes (the seed's DataParallel split its batch)."""
    if batch_size % world_size:
        raise SttsError(f"--batch-size {batch_size} does not split evenly over {world_size} processes; "
                        f"use a multiple of {world_size}")
    return batch_size // world_size


def write_config(config: TrainConfig, run: Path, decided: dict[str, Any] | None = None) -> None:
    """config.json: the options as asked (AUTO kept, so that `--config` decides them again from its data), and under
    "decided" what each AUTO became for this run."""
    state = {**config.to_dict(), "decided": decided or {}}
    write_text(run / "config.json", json.dumps(state, indent=2) + "\n")
