"""``stts train``: the seed's train.py options (both spellings) plus the run's own."""

from __future__ import annotations

import argparse

from ..engine.config import AUTO, LR_SCHEDULES, OPTIMIZERS, PRESETS, TrainConfig
from ..models import list_models
from ..runtime import PRECISIONS

SMALL = ", ".join(f"{k}={v}" for k, v in PRESETS["small"].items())


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network (one process per GPU with --gpu_ids 0,1; many machines via torchrun)",
        description="Train with the seed's recipe: Adam, cross-entropy, ReduceLROnPlateau on the val loss; "
                    "the checkpoint with the best val top-1 (ties: the lower val loss) is kept as best.pt, "
                    "the last epoch as last.pt. "
                    f"--preset small ({SMALL}) suits a CPU; the built-in data sets use it unless told otherwise.",
    )
    add = parser.add_argument
    add_recipe_options(add)
    add("--out", help="run folder (default runs/<data_type>_<model_type>_<time>)")
    add("--resume", metavar="RUN", help="continue the run in folder RUN (or from RUN/last.pt) with its saved config")
    add("--pretrained", metavar="CKPT", help="warm start from a checkpoint of the same network (classifier dropped)")
    add("--no-tensorboard", dest="tensorboard", action="store_false", default=None,
        help="do not write TensorBoard logs (written to RUN/tensorboard by default)")
    add("--visdom", nargs="?", const="127.0.0.1:8097", metavar="HOST:PORT",
        help="also plot to a visdom server (default 127.0.0.1:8097), environment named after the dataset")
    parser.set_defaults(func=run)


def add_recipe_options(add) -> None:
    """The options that decide the data, the clips and the recipe (``stts train`` and ``stts show-clips``)."""
    add("--data_type", "--data-type", dest="data_type",
        help="ucf101 (default), hmdb51, synthetic-motion, or the path of a prepared folder dataset")
    add("--data-root", "--data_root", dest="data_root", help="where prepared datasets live (default data/)")
    add("--model_type", "--model-type", dest="model_type", choices=list_models(), help="network (default stts-a)")
    add("--batch_size", "--batch-size", dest="batch_size", type=int,
        help="clips a step (default 16); with several GPUs or machines each process takes its share, as the "
             "seed's DataParallel did")
    add("--num_epochs", "--num-epochs", "--epochs", dest="epochs", type=int, help="epochs (default 100)")
    add("--gpu_ids", "--gpu-ids", dest="gpu_ids",
        help="GPUs to train on, e.g. 0,1 (default: all visible; the CPU when there is no CUDA)")
    add("--clip-len", "--clip_len", dest="clip_len", type=int, help="frames per clip (default 32)")
    add("--clip-stride", "--clip_stride", dest="clip_stride", type=parse_number_or_auto, metavar="N|auto",
        help="stored frames from one clip frame to the next (default 1); auto: the largest with which a clip "
             "spans no more than the median training video (--preset small's)")
    add("--crop-size", "--crop_size", dest="crop_size", type=int, help="crop side in pixels (default 112)")
    add("--view", type=float,
        help="evaluation: the centre square of this fraction of the frame's short side, resized to --crop-size "
             "(default: --crop-size pixels at the stored scale, the seed's way)")
    add("--train-views", "--train_views", dest="train_views", type=parse_range, metavar="LO,HI",
        help="training: a square of a random fraction in [LO, HI] of the short side, resized to --crop-size")
    add("--normalisation", "--normalization", dest="normalisation", choices=("fixed", "clip"),
        help="fixed (default, the seed's: values / 255) or clip: each clip standardised by its own per-channel "
             "mean and standard deviation")
    add("--temporal-residual", "--temporal_residual", dest="temporal_residual", action=argparse.BooleanOptionalAction,
        default=None, help="the network also sees each frame less the clip's mean frame (what moves), as 3 more "
                           "input channels")
    add("--normal-flow", "--normal_flow", dest="normal_flow", action=argparse.BooleanOptionalAction, default=None,
        help="the network also sees which way edges move, whatever their contrast (Lucas-Kanade's -I_t * grad I, "
             "2 more input channels)")
    add("--flow-baselines", "--flow_baselines", dest="flow_baselines", type=int, metavar="N",
        help="with --normal-flow: the frame change taken over 1..N clip steps either side, 2 channels each "
             "(default 1); longer baselines see sub-pixel motion more clearly through noise and flicker")
    add("--flow-local-contrast", "--flow_local_contrast", dest="flow_local_contrast",
        action=argparse.BooleanOptionalAction, default=None,
        help="with --normal-flow: take it on frames whose local contrast is evened out (5x5 windows), so that "
             "flicker and lighting changes do not read as motion and faint edges count as much as strong ones")
    add("--stabilise", "--stabilize", dest="stabilise", type=parse_switch, metavar="on|off|auto",
        help="cancel the camera's pan and zoom: every frame of a clip resampled into its middle frame's camera "
             "(default off); auto: on when the camera moves in the training videos (--preset small's)")
    add("--hflip", action=argparse.BooleanOptionalAction, default=None,
        help="whether training mirrors clips (default: as the data set says)")
    add("--preset", choices=list(PRESETS), help=f"settings for a small CPU: {SMALL}; options given still win")
    add("--width", type=int, help="network width: channels of the stem (default 64, the seed's)")
    add("--lr", type=float, help="learning rate (default 1e-4)")
    add("--weight-decay", "--weight_decay", dest="weight_decay", type=float,
        help="weight decay (default 5e-4, the seed's; with adamw, 0.01-0.05 is usual)")
    add("--optimizer", choices=OPTIMIZERS,
        help="adam (default, the seed's: the weight decay as an L2 term of the loss) or adamw (the decay "
             "decoupled from the loss)")
    add("--lr-schedule", "--lr_schedule", dest="lr_schedule", choices=LR_SCHEDULES,
        help="plateau (default, the seed's: 10x lower after --lr-patience epochs without a better val loss) "
             "or cosine (from --lr down to 0 at the last epoch)")
    add("--lr-patience", "--lr_patience", dest="lr_patience", type=int,
        help="plateau schedule: epochs without a better val loss before the learning rate drops 10x (default 10)")
    add("--workers", type=int, help="data loader processes per training process (default: cores, at most 4)")
    add("--seed", type=int, help="random seed (default 0)")
    add("--precision", choices=PRECISIONS,
        help="auto (default: bf16 where the hardware runs it natively, else fp32), bf16, fp16 (CUDA, with "
             "gradient scaling) or fp32")
    add("--compile", action="store_true", default=None, help="torch.compile the network")


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


def run(args: argparse.Namespace) -> int:
    from ..engine.session import train_run

    given = {name: getattr(args, name, None) for name in TrainConfig.__dataclass_fields__}
    result = train_run(given, resume=args.resume)
    return 130 if result.get("interrupted") else 0
