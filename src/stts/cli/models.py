"""``stts models``: every registered network's parameters and forward GFLOPs."""

from __future__ import annotations

import json

import torch

from ..models import build_model, list_models
from ..models.summary import count_parameters, forward_flops
from .options import add as option
from .options import parse_clip


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the networks with their parameters and GFLOPs")
    parser.add_argument("--num-classes", "--num_classes", type=int, default=101, help="classifier size (default 101, UCF101)")
    parser.add_argument("--clip", type=parse_clip, default=(32, 112, 112), help="TxHxW of one clip (default 32x112x112)")
    option(parser, "width", "network width: channels of the stem (the seed's)", 64)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for name in list_models():
        with torch.device("meta"):  # no memory, no initialisation cost
            model = build_model(name, args.num_classes, width=args.width)
        rows.append({
            "model": name,
            "parameters": count_parameters(model),
            "gflops": round(forward_flops(model, args.clip) / 1e9, 2),
        })
    if args.json:
        print(json.dumps({"num_classes": args.num_classes, "clip": list(args.clip), "models": rows}))
        return 0
    clip = "x".join(map(str, args.clip))
    print(f"{'model':<10} {'parameters':>12} {'GFLOPs @ ' + clip:>20}")
    for row in rows:
        print(f"{row['model']:<10} {row['parameters']:>12,} {row['gflops']:>20.1f}")
    return 0
