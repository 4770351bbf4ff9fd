"""``stts convert``: a checkpoint of the original STTS code -> a stts checkpoint with its clip spec."""

from __future__ import annotations

from pathlib import Path

from ..errors import SttsError
from ..models.original import CONVERTIBLE
from .options import add as option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="turn a checkpoint of the original STTS code into a stts checkpoint",
        description="Read the original code's torch.save(model.state_dict()) (with or without DataParallel's "
                    "module. prefix), rename its weights to stts's, and write a checkpoint that records the "
                    "original's input (BGR frames, values / 255, every 4th frame, height 128, 32x112x112 clips). "
                    "R(2+1)D, STTS and STTS-A convert; the original C3D (no ReLU between its convolutions) does not.")
    parser.add_argument("original", type=Path, metavar="ORIGINAL.pth", help="the original code's checkpoint")
    option(parser, "model_type", "the network it holds", required=True, choices=[*CONVERTIBLE, "c3d"])
    classes = parser.add_mutually_exclusive_group(required=True)
    classes.add_argument("--classes", type=Path, metavar="CLASSES.txt",
                         help="class names, one a line, in the original's output order")
    option(classes, "data_type", "the original's order for this data set (its sorted folder names); the outputs are "
                                 "put in stts's order of it, so `stts evaluate` runs on the prepared data set",
           choices=("ucf101", "hmdb51"))
    parser.add_argument("--out", type=Path, required=True, help="the stts checkpoint to write")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..checkpoint import convert_original

    names = None
    if args.classes:
        if not args.classes.is_file():
            raise SttsError(f"--classes {args.classes}: no such file")
        names = [line.strip() for line in args.classes.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.out.resolve() == args.original.resolve():
        raise SttsError(f"--out {args.out} would overwrite the original")
    path = convert_original(args.original, args.model_type, args.out, classes=names, data_type=args.data_type)
    print(f"wrote {path}: {args.model_type}, {len(names) if names else args.data_type} classes, input BGR as the "
          "original code fed it; run `stts infer`, `stts evaluate`, `stts export` or `stts train --pretrained` on it")
    return 0
