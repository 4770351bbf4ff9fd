"""``stts evaluate CKPT``: clip accuracy (the seed's protocol) and video accuracy over many views."""

from __future__ import annotations

import argparse
import json
import sys

from .options import add as option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="clip and video accuracy of a checkpoint, per class, with a confusion matrix",
        description="Clip accuracy: the middle window and the centre crop of each video (the seed's protocol). "
                    "Video accuracy: softmax averaged over --views. Writes summary.json, per_class.csv, "
                    "confusion.csv and confusion.png.",
    )
    add = parser.add_argument
    add("checkpoint", metavar="CKPT", help="a checkpoint written by `stts train` (best.pt or last.pt)")
    add("--split", choices=("test", "val"), default="test", help="split to evaluate (default test)")
    add("--views", default="10x3", help="WINDOWSxCROPS per video for video accuracy, crops 1 or 3 (default 10x3; "
                                        "one crop where the evaluation region is the whole frame)")
    option(parser, "data_type", "data set (default: the one it was trained on)")
    option(parser, "data_root", "where prepared data sets live (default: the run's)")
    option(parser, "batch_size", "clips per batch", 16)
    option(parser, "workers", "data loader processes (default: cores, at most 4)")
    option(parser, "precision", "auto: the precision it was trained in where this device runs it natively, else "
                                "fp32; bf16, fp16 or fp32", "auto")
    option(parser, "device", None, "auto")
    add("--out", help="output folder (default: next to the checkpoint, eval_<name>_<split>)")
    add("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.evaluate import evaluate_checkpoint

    summary = evaluate_checkpoint(
        args.checkpoint, split=args.split, views=args.views, data_type=args.data_type, data_root=args.data_root,
        batch_size=args.batch_size, workers=args.workers, precision=args.precision, out=args.out, device=args.device,
    )
    if summary["views"] != summary["views_asked"]:
        print(f"stts evaluate: --views {summary['views_asked']}: the checkpoint's evaluation region is the whole frame "
              f"(--region frame at --view 1.0), so its 3 crops are one; evaluated {summary['views']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['split']}: {summary['videos']} videos; clip top-1 {summary['clip_top1']:.2f} % "
          f"top-5 {summary['clip_top5']:.2f} %; video ({summary['views']} views) top-1 {summary['video_top1']:.2f} % "
          f"top-5 {summary['video_top5']:.2f} %")
    print(f"written: {summary['out']}/summary.json, per_class.csv, confusion.csv, confusion.png")
    return 0
