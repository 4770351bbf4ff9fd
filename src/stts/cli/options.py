"""Every option that more than one subcommand takes, and every training option, defined once.

An :class:`Option` fixes a flag's spelling, type and choices; a subcommand adds it with
:func:`add`, saying what it means there (help) and its default where it has one. The original
code's spellings (``--batch_size``, ``--data_type``...) are accepted everywhere; ``stts train
--help`` lists the seed's in a group of their own and hides the other underscore spellings.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ..choices import AUTO, PRECISIONS, REGIONS

# the original train.py's and inference.py's flags: listed under "compatibility" in stts train --help
SEED_FLAGS = {"data_type": "--data_type", "model_type": "--model_type", "batch_size": "--batch_size",
              "epochs": "--num_epochs", "gpu_ids": "--gpu_ids"}


def parse_clip(text: str) -> tuple[int, int, int]:
    """'32x112x112' -> (32, 112, 112): frames, height, width."""
    try:
        t, h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"clip must look like 32x112x112 (TxHxW), got {text!r}") from None
    if min(t, h, w) < 1:
        raise argparse.ArgumentTypeError(f"clip sizes must be positive, got {text!r}")
    return t, h, w


def parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI such as 0.6,1.0, got {text!r}") from None
    return low, high


def parse_number_or_auto(text: str) -> int | str:
    if text == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or {AUTO!r}, got {text!r}") from None


def parse_switch(text: str) -> bool | str:
    choices = {"on": True, "off": False, AUTO: AUTO}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected on, off or {AUTO}, got {text!r}")
    return choices[text]


def model_names() -> list[str]:
    from ..models import list_models

    return list_models()


@dataclass(frozen=True)
class Option:
    """One flag: its spelling, type and choices; ``help`` is its meaning when a command says nothing more."""

    flag: str
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # other spellings, accepted and not listed

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def _switch(flag: str, help: str, aliases: tuple[str, ...] = ()) -> Option:
    return Option(flag, help, {"action": argparse.BooleanOptionalAction}, aliases)


OPTIONS: dict[str, Option] = {option.dest: option for option in [
    # shared by several commands
    Option("--device", "auto (a GPU if there is one), cpu or cuda[:N]"),
    Option("--precision", "auto (bf16 where this device runs it natively, else fp32), bf16, fp16 (CUDA) or fp32",
           {"choices": PRECISIONS}),
    Option("--batch-size", "clips a step", {"type": int}),
    Option("--workers", "data loader processes", {"type": int}),
    Option("--data-type", "ucf101, hmdb51, synthetic-motion, motion-*, or the path of a prepared folder"),
    Option("--data-root", "where prepared data sets live (default data/)"),
    Option("--model-type", "network", {"choices": None}),  # choices from the model registry, filled in by add()
    Option("--seed", "random seed", {"type": int}),
    Option("--width", "network width: channels of the stem", {"type": int}),
    # stts train and stts show-clips: the clips and the network's input
    Option("--clip-len", "frames per clip", {"type": int}),
    Option("--clip-stride", "stored frames from one clip frame to the next; auto: the largest with which a clip spans "
           "no more than the median training video", {"type": parse_number_or_auto, "metavar": "N|auto"}),
    Option("--crop-size", "crop side in pixels", {"type": int}),
    Option("--view", "evaluation: the centre region (--region) of this fraction of the frame, resized to --crop-size "
           "(default: --crop-size pixels at the stored scale, the seed's way)", {"type": float}),
    Option("--train-views", "training: a region (--region) of a random fraction in [LO, HI] of the frame at a random "
           "place, resized to --crop-size", {"type": parse_range, "metavar": "LO,HI"}),
    Option("--region", "the shape of --view's and --train-views' regions: square (the seed's: a fraction of the short "
           "side; a wider frame's sides are cut away) or frame (--preset small's: that fraction of each side, 1.0 is "
           "the whole frame squeezed to the square crop)", {"choices": REGIONS}),
    _switch("--hflip", "whether training mirrors clips (default: as the data set says)"),
    Option("--normalisation", "fixed (the seed's: values / 255) or clip: each clip standardised by its own "
           "per-channel mean and standard deviation", {"choices": ("fixed", "clip")}, ("--normalization",)),
    _switch("--temporal-residual", "the network also sees each frame less the clip's mean frame (what moves), as 3 "
            "more input channels"),
    _switch("--normal-flow", "the network also sees which way edges move, whatever their contrast (Lucas-Kanade's "
            "-I_t * grad I, 2 more input channels)"),
    Option("--flow-baselines", "with --normal-flow: the frame change taken over 1..N clip steps either side, 2 "
           "channels each; longer baselines see sub-pixel motion more clearly through noise and flicker",
           {"type": int, "metavar": "N"}),
    _switch("--flow-local-contrast", "with --normal-flow: take it on frames whose local contrast is evened out (5x5 "
            "windows), so that flicker and lighting changes do not read as motion"),
    Option("--pool-frames", "the network sees its input channels averaged over N consecutive clip frames (--clip-len / "
           "N time steps, about N times less work; the temporal residual and the normal flow still come from every "
           "frame)", {"type": int, "metavar": "N"}),
    Option("--stabilise", "cancel the camera's pan and zoom: every frame of a clip resampled into its middle frame's "
           "camera; auto: on when the camera moves in the training videos",
           {"type": parse_switch, "metavar": "on|off|auto"}, ("--stabilize",)),
    # stts train: the recipe and the run
    Option("--preset", "settings for a small CPU; options given still win", {"choices": None}),
    Option("--epochs", "epochs (with until-plateau, the most)", {"type": int}, ("--num-epochs",)),
    Option("--lr", "learning rate", {"type": float}),
    Option("--weight-decay", "weight decay (the seed's 5e-4; with adamw, 0.01-0.05 is usual)", {"type": float}),
    Option("--optimizer", "adam (the seed's: the weight decay as an L2 term of the loss) or adamw (the decay "
           "decoupled from the loss)", {"choices": ("adam", "adamw")}),
    Option("--lr-schedule", "plateau (the seed's: 10x lower after --lr-patience epochs without a better val loss), "
           "cosine (from --lr down to 0 at the last epoch) or until-plateau (--lr until the val loss (mean of 3 epochs) stops "
           "improving, then down to 0 over a cool-down of a quarter of the epochs so far, and stop; --epochs is the "
           "most)", {"choices": ("plateau", "cosine", "until-plateau")}),
    Option("--patience", "until-plateau: epochs without a 1 %% better val loss (mean of 3 epochs) (while train top-1 gains under "
           "2 points, and train or val top-1 is at least 90 %%) before the cool-down", {"type": int}),
    Option("--time-budget", "seconds of training for the whole run, resumes included: the run ends within it (with "
           "until-plateau, after a cool-down)", {"type": float, "metavar": "SECONDS"}),
    Option("--lr-patience", "plateau schedule: epochs without a better val loss before the learning rate drops 10x",
           {"type": int}),
    Option("--compile", "torch.compile the network", {"action": "store_true"}),
    Option("--gpu-ids", "GPUs to train on, e.g. 0,1 (default: all visible; the CPU when there is no CUDA)"),
    Option("--pretrained", "warm start from a checkpoint of the same network (classifier dropped)",
           {"metavar": "CKPT"}),
    Option("--tensorboard", "write TensorBoard logs to RUN/tensorboard (default on)",
           {"action": argparse.BooleanOptionalAction}),
    Option("--visdom", "also plot to a visdom server (default 127.0.0.1:8097), environment named after the data set",
           {"nargs": "?", "const": "127.0.0.1:8097", "metavar": "HOST:PORT"}),
]}


def add(parser, name: str, help: str | None = None, default: Any = None, compat=None, **extra: Any) -> None:
    """Add option ``name`` to ``parser`` (a parser or an argument group); ``help`` says what it means for this
    command (default: the option's own). The underscore spelling is accepted too; a seed flag is listed in
    ``compat`` (an argument group) when one is given."""
    option = OPTIONS[name]
    kwargs = dict(option.kwargs)
    if name == "model_type":
        kwargs["choices"] = model_names()
    elif name == "preset":
        from ..engine.presets import PRESETS

        kwargs["choices"] = list(PRESETS)
    kwargs.update(extra)
    if default is not None:
        text = "on" if default is True else "off" if default is False else default
        help = f"{help or option.help} (default {text})"
    spellings = [option.flag, *option.aliases]
    underscore = "--" + option.dest
    seed = SEED_FLAGS.get(name)
    hidden = [spelling for spelling in (underscore,) if spelling not in (option.flag, seed)]
    if kwargs.get("required"):  # argparse checks a required option per action: every spelling in the one
        spellings += [s for s in (*hidden, seed) if s is not None]
        hidden, seed = [], None
    parser.add_argument(*spellings, dest=name, default=default, help=help or option.help, **kwargs)
    if hidden:
        parser.add_argument(*hidden, dest=name, default=default, help=argparse.SUPPRESS, **kwargs)
    if seed is not None:
        target = compat if compat is not None else parser
        target.add_argument(seed, dest=name, default=default, help=f"the original code's name for {option.flag}"
                            if compat is not None else argparse.SUPPRESS, **kwargs)
