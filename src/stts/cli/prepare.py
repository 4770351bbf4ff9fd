"""``stts prepare``: archives or folders -> a prepared dataset (class list, manifests, clip store)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import SttsError

DATASETS = ("ucf101", "hmdb51", "folder", "synthetic-motion")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="prepare UCF101, HMDB51, a folder of videos or synthetic-motion for training",
        description="Extract and decode a dataset into a prepared folder: classes.txt, manifests/, store/. "
                    "SOURCE: UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip; hmdb51_org.rar and "
                    "test_train_splits.rar; or the same content extracted into folders; for `folder`, "
                    "ROOT/<class>/<video> with optional train.txt/val.txt/test.txt.")
    parser.add_argument("dataset", choices=DATASETS, metavar="DATASET", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("sources", nargs="*", type=Path, metavar="SOURCE", help="archives or folders")
    parser.add_argument("--out", type=Path, help="prepared folder (default data/DATASET)")
    parser.add_argument("--split", type=int, choices=(1, 2, 3), default=1, help="official split (default 1)")
    parser.add_argument("--size", type=int, default=None, help="stored frame height (default 128; 64 for synthetic)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of stored frames (default 90)")
    parser.add_argument("--val-from-test", action="store_true",
                        help="UCF101: the seed's val, a 20%% sample of test (overlaps test; not recommended)")
    parser.add_argument("--allow-missing", action="store_true", help="prepare the rest when listed videos are missing")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed for val/stratified splits and synthetic videos")
    parser.add_argument("--verify", action="store_true", help="check every entry of an already prepared folder")
    parser.add_argument("--json", action="store_true", help="print the final counts as one JSON object")
    synthetic = parser.add_argument_group("synthetic-motion")
    synthetic.add_argument("--train-per-class", type=int, default=60)
    synthetic.add_argument("--test-per-class", type=int, default=21)
    synthetic.add_argument("--frames", type=int, default=32, help="frames a video (25 fps)")
    synthetic.add_argument("--frame-size", default="128x96", help="WxH of generated videos (default 128x96)")
    synthetic.add_argument("--classes", type=int, default=8, help="number of motion classes, 2..8")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..data import prepare_dataset, prepare_synthetic_motion, verify_prepared

    out = args.out or Path("data") / (args.sources[0].name if args.dataset == "folder" and args.sources
                                      else args.dataset)
    progress = sys.stderr.isatty() and not args.json
    if args.verify:
        problems = verify_prepared(out, progress=progress)
        for video, why in sorted(problems.items()):
            print(f"{video}: {why}")
        if problems:
            raise SttsError(f"{out}: {len(problems)} bad entries (listed above); run `stts prepare` again to redo them")
        print(f"{out}: every entry verified")
        return 0
    if args.dataset == "synthetic-motion":
        width, height = (int(v) for v in args.frame_size.lower().split("x"))
        prepare_synthetic_motion(out, args.seed, args.train_per_class, args.test_per_class, args.frames, width,
                                 height, args.classes, args.size or 64, args.workers, progress)
        info = json.loads((out / "dataset.json").read_text())
        result = {"classes": info["classes"], **info["counts"], "skipped": [], "missing": [], "warnings": [],
                  "reasons": {}}
    else:
        if not args.sources:
            raise SttsError(f"give the {args.dataset} archives or folders to prepare (SOURCE ...)")
        result = prepare_dataset(args.dataset, args.sources, out, split=args.split, size=args.size or 128,
                                 quality=args.quality, val_from_test=args.val_from_test,
                                 allow_missing=args.allow_missing, workers=args.workers, seed=args.seed,
                                 progress=progress)
    for warning in result["warnings"]:
        print(f"stts prepare: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({key: result[key] for key in ("classes", "train", "val", "test", "skipped", "missing")}))
        return 0
    print_table(out, result)
    return 0


def print_table(out: Path, result: dict) -> None:
    print(f"prepared {out}")
    print(f"{'':<10} {'videos':>8}")
    for key in ("train", "val", "test"):
        print(f"{key:<10} {result[key]:>8,}")
    print(f"{'classes':<10} {result['classes']:>8,}")
    print(f"{'skipped':<10} {len(result['skipped']):>8,}")
    print(f"{'missing':<10} {len(result['missing']):>8,}")
    for video in result["skipped"]:
        print(f"  skipped {video}: {result['reasons'][video]}")
    for video in result["missing"]:
        print(f"  missing {video}")
    if result["skipped"] or result["missing"]:
        print(f"  (also in {out / 'report.txt'})")
