"""``stts infer``: class predictions on videos with a trained checkpoint, per window and per video."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import SttsError
from ..inference.display import display_problem, show_frames
from ..inference.pipeline import collect_videos, infer_video, output_names
from ..inference.predict import Predictor
from ..models import list_models


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="predict the action in videos with a trained checkpoint",
        description="Slide a clip-sized window over each video (frames made as the checkpoint's clip spec says, "
        "as in evaluation), and write "
        "<name>.json, <name>.csv (top-k classes of every window) and <name>.annotated.mp4 to --out.",
    )
    parser.add_argument("videos", nargs="*", metavar="VIDEO", help="video files or folders of videos")
    parser.add_argument("--video_name", "--video-name", action="append", default=[], metavar="VIDEO",
                        help="a video (the seed's flag; may be repeated)")
    parser.add_argument("--checkpoint", "--model_name", "--model-name", dest="checkpoint", metavar="CKPT",
                        help="a checkpoint written by stts train (--model_name is the seed's name for it)")
    parser.add_argument("--model_type", "--model-type", choices=list_models(),
                        help="the seed's flag: checked against the checkpoint's network")
    parser.add_argument("--data_type", "--data-type", help="the seed's flag: checked against the checkpoint's dataset")
    parser.add_argument("--out", type=Path, default=Path("inference"), help="output folder (default ./inference)")
    parser.add_argument("--stride", type=int, help="kept frames between window starts (default a quarter of the clip)")
    parser.add_argument("--topk", type=int, default=5, help="classes listed per window and video (default 5)")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=8, help="windows per forward pass (default 8)")
    parser.add_argument("--precision", default="auto",
                        help="auto (the precision it was trained in where this device runs it natively, else fp32), "
                             "bf16, fp16 or fp32")
    parser.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu or cuda[:N]")
    parser.add_argument("--json", action="store_true", help="print one JSON list of the videos' predictions to stdout")
    parser.add_argument("--show", action="store_true", help="play the annotated videos in a window (needs stts[gui])")
    parser.set_defaults(func=run)


def check_seed_flags(args, predictor: Predictor) -> None:
    config = predictor.config
    if args.model_type and args.model_type != config["model_type"]:
        raise SttsError(f"--model_type {args.model_type}, but {predictor.path} holds a {config['model_type']} network")
    stored = config.get("data_type")
    if args.data_type and stored and args.data_type != stored:
        raise SttsError(f"--data_type {args.data_type}, but {predictor.path} was trained on {stored}")


def run(args) -> int:
    """Predict every video; a bad one is reported in one line, the rest still run, and the exit code is 2."""
    inputs = [*args.videos, *args.video_name]
    if not inputs:
        raise SttsError("no videos given: stts infer VIDEO... --checkpoint CKPT")
    if not args.checkpoint:
        raise SttsError("--checkpoint is required (a checkpoint written by stts train)")
    if args.topk < 1 or (args.stride is not None and args.stride < 1):
        raise SttsError("--topk and --stride must be at least 1")
    predictor = Predictor(args.checkpoint, args.device, args.precision, args.batch_size)
    check_seed_flags(args, predictor)
    videos = collect_videos(inputs)
    # with --json, stdout carries the JSON alone and the human-readable lines go to stderr
    log = sys.stderr if args.json else sys.stdout
    show_problem = display_problem() if args.show else None
    records, failed, duration, begin = [], 0, 0.0, time.perf_counter()
    for video, name in zip(videos, output_names(videos), strict=True):
        try:
            result = infer_video(video, name, predictor, args.out, args.stride, args.topk)
        except SttsError as error:
            print(f"stts infer: error: {error}", file=sys.stderr)
            failed += 1
            continue
        records.append({key: result.record[key] for key in ("video", "top1", "probability", "topk", "windows")})
        duration += result.duration
        print(f"{video}: {result.record['top1']} {result.record['probability']:.3f} "
              f"({len(result.record['windows'])} windows; {result.duration:.1f} s of video in {result.wall:.1f} s, "
              f"{result.realtime_factor:.1f}x real time) -> {args.out / name}.{{json,csv,annotated.mp4}}", file=log)
        if args.show and not show_problem:
            try:
                if not show_frames(result.frames, result.fps, f"stts: {video.name}"):
                    args.show = False  # the user closed it: no more windows
            except Exception as error:  # a display that refuses the window (cv2.error and kin)
                show_problem = f"could not open a window ({type(error).__name__}: {str(error).strip()[:120]})"
    wall = time.perf_counter() - begin
    if records:
        print(f"{len(records)} video(s), {duration:.1f} s of video in {wall:.1f} s: "
              f"{duration / wall:.1f}x real time ({predictor.precision}, {predictor.device})", file=log)
    if args.show and show_problem:
        print(f"stts infer: --show: {show_problem}; files written to {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(records))
    if failed:
        print(f"stts infer: {failed} of {len(videos)} video(s) failed", file=sys.stderr)
        return 2
    return 0
