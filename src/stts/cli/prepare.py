"""``stts prepare``: archives, folders or a built-in generator -> a prepared data set (classes, manifests, store)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.registry import get_dataset, list_datasets
from ..errors import SttsError
from .options import add as option


def add_parser(subparsers) -> None:
    names = list_datasets()
    parser = subparsers.add_parser(
        "prepare", help="prepare UCF101, HMDB51, a folder of videos or a built-in data set for training",
        description="Extract and decode a data set into a prepared folder: classes.txt, manifests/, store/ and "
                    "dataset.json (with the clip spec's storage: frame rule and stored height). "
                    "SOURCE: " + "; ".join(f"{n}: {get_dataset(n).sources}" for n in names if get_dataset(n).sources)
                    + "; folder: ROOT/<class>/<video> with optional train.txt/val.txt/test.txt and flip_pairs.txt; "
                    "built-in sets make their own videos.")
    parser.add_argument("dataset", choices=names, metavar="DATASET", help=f"one of {', '.join(names)}")
    parser.add_argument("sources", nargs="*", type=Path, metavar="SOURCE", help="archives or folders")
    parser.add_argument("--out", type=Path, help="prepared folder (default data/DATASET)")
    parser.add_argument("--split", type=int, choices=(1, 2, 3), default=1, help="official split (default 1)")
    parser.add_argument("--size", type=int, default=None,
                        help="stored frame height (default 128; synthetic-motion 64)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of stored frames (default 90)")
    option(parser, "hflip", "--hflip: every class stays itself when mirrored, so training may flip clips; --no-hflip: "
                            "never flip (default: UCF101/HMDB51 flip, a folder does not unless it has flip_pairs.txt)")
    parser.add_argument("--val-from-test", action="store_true",
                        help="UCF101: the seed's val, a 20%% sample of test (overlaps test; not recommended)")
    parser.add_argument("--allow-missing", action="store_true", help="prepare the rest when listed videos are missing")
    option(parser, "workers", "decoding processes (default: all cores)")
    option(parser, "seed", "seed for val/stratified splits and generated videos", 0)
    parser.add_argument("--verify", action="store_true", help="check every entry of an already prepared folder")
    parser.add_argument("--json", action="store_true", help="print the final counts as one JSON object")
    synthetic = parser.add_argument_group("built-in sets (synthetic-motion, motion-*)")
    synthetic.add_argument("--train-per-class", type=int)
    synthetic.add_argument("--val-per-class", type=int, help="motion-* only (synthetic-motion: whole train groups)")
    synthetic.add_argument("--test-per-class", type=int)
    synthetic.add_argument("--frames", type=int, help="synthetic-motion: frames a video (25 fps)")
    synthetic.add_argument("--frame-size", help="synthetic-motion: WxH of generated videos (default 128x96)")
    synthetic.add_argument("--classes", type=int, help="synthetic-motion: number of motion classes, 2..8")
    parser.set_defaults(func=run)


def generator_options(args) -> dict:
    options = {"train_per_class": args.train_per_class, "val_per_class": args.val_per_class,
               "test_per_class": args.test_per_class,
               "frames": args.frames, "classes": args.classes}
    if args.frame_size:
        try:
            options["width"], options["height"] = (int(v) for v in args.frame_size.lower().split("x"))
        except ValueError:
            raise SttsError(f"--frame-size {args.frame_size!r}: expected WxH, e.g. 128x96") from None
    return {k: v for k, v in options.items() if v is not None}


def run(args) -> int:
    from ..data import prepare_dataset, verify_prepared
    from ..data.prepare import check_generator_options, default_out

    out = args.out or default_out(args.dataset, args.sources)
    progress = sys.stderr.isatty() and not args.json
    if args.verify:
        problems = verify_prepared(out, progress=progress)
        for video, why in sorted(problems.items()):
            print(f"{video}: {why}")
        if problems:
            raise SttsError(f"{out}: {len(problems)} bad entries (listed above); run `stts prepare` again to redo them")
        print(f"{out}: every entry verified")
        return 0
    options = generator_options(args)
    check_generator_options(args.dataset, options)
    result = prepare_dataset(args.dataset, args.sources, out, split=args.split, height=args.size,
                             quality=args.quality, val_from_test=args.val_from_test, allow_missing=args.allow_missing,
                             workers=args.workers, seed=args.seed, hflip=args.hflip, options=options,
                             progress=progress)
    for warning in result["warnings"]:
        print(f"stts prepare: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({key: result[key] for key in ("classes", "train", "val", "test", "skipped", "missing",
                                                       "partial")}))
        return 0
    print_table(out, result)
    return 0


def print_table(out: Path, result: dict) -> None:
    print(f"prepared {out}")
    print(f"{'':<10} {'videos':>8}")
    for key in ("train", "val", "test"):
        print(f"{key:<10} {result[key]:>8,}")
    for key in ("classes", "skipped", "missing", "partial"):
        value = result[key] if key == "classes" else len(result[key])
        print(f"{key:<10} {value:>8,}")
    for video in result["skipped"]:
        print(f"  skipped {video}: {result['reasons'][video]}")
    for video in result["missing"]:
        print(f"  missing {video}")
    for video in result["partial"]:
        print(f"  partial {video}: {result['reasons'][video]}")
    if result["skipped"] or result["missing"] or result["partial"]:
        print(f"  (also in {out / 'report.txt'})")
