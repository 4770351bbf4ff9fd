"""``stts infer``: class predictions on videos, streams and cameras with a trained checkpoint, per window and per video."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import SttsError
from ..inference.display import FrameWindow, display_problem
from ..inference.pipeline import OUTPUTS, SUFFIXES, infer_source, latency_summary, parse_outputs, stop_on_interrupt
from ..inference.predict import Predictor
from ..inference.sources import collect_sources, source_names
from .options import add as option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="predict the action in videos, streams or a camera with a trained checkpoint",
        description="Slide a clip-sized window over each source (frames made as the checkpoint's clip spec says, "
        "as in evaluation), streaming: memory does not grow with a video's length, and each annotated frame is "
        "written once every window covering it is done. Writes <name>.json, <name>.csv (top-k classes of every "
        "window), <name>.annotated.mp4, and which action when: <name>.segments.csv, <name>.vtt (subtitles) and "
        "<name>.timeline.png, to --out (--outputs picks them). Ctrl-C ends a source early with its files complete.",
    )
    parser.add_argument("videos", nargs="*", metavar="SOURCE",
                        help="video files, folders of videos, URLs FFmpeg opens (http, https, rtsp...), "
                             "/dev/videoN cameras, or - for a stream on stdin")
    parser.add_argument("--video_name", "--video-name", action="append", default=[], metavar="VIDEO",
                        help="a video (the seed's flag; may be repeated)")
    parser.add_argument("--camera", type=int, action="append", default=[], metavar="N",
                        help="the camera /dev/videoN (may be repeated); always live")
    parser.add_argument("--live", "--realtime", action="store_true",
                        help="read the sources in real time (files paced by their timestamps): windows the network "
                             "cannot keep up with are skipped, and the latency from frame to label is reported")
    parser.add_argument("--checkpoint", "--model_name", "--model-name", dest="checkpoint", metavar="CKPT",
                        help="a checkpoint written by stts train (--model_name is the seed's name for it)")
    option(parser, "model_type", "the seed's flag: checked against the checkpoint's network")
    option(parser, "data_type", "the seed's flag: checked against the checkpoint's data set")
    parser.add_argument("--out", type=Path, default=Path("inference"), help="output folder (default ./inference)")
    parser.add_argument("--stride", type=int, help="kept frames between window starts (default a quarter of the clip)")
    parser.add_argument("--topk", type=int, default=5, help="classes listed per window and video (default 5)")
    option(parser, "batch_size", "windows per forward pass (default 8 on a GPU; on a CPU up to 8 small windows but 1 "
                                 "full-width one, whose batches hold GBs of activations for no speed); live: at most "
                                 "this many wait for the network")
    option(parser, "precision", "auto: the precision it was trained in where this device runs it natively, else "
                                "fp32; bf16, fp16 or fp32", "auto")
    option(parser, "device", None, "auto")
    parser.add_argument("--outputs", default=",".join(OUTPUTS), metavar="LIST",
                        help=f"the files written per source, comma-separated: any of {','.join(OUTPUTS)}, or none "
                             "(default all). Without video a file is decoded once and nothing is drawn or encoded: "
                             "--outputs json labels a video several times faster")
    parser.add_argument("--json", action="store_true", help="print one JSON list of the videos' predictions to stdout")
    parser.add_argument("--explain", action="store_true",
                        help="also write <name>.explain.mp4: Grad-CAM of each window's predicted class over the "
                             "frames (video files only; a backward pass a window, several times slower)")
    parser.add_argument("--show", action="store_true",
                        help="show the annotated frames in a window as they are labelled (needs stts[gui])")
    parser.set_defaults(func=run)


def check_seed_flags(args, predictor: Predictor) -> None:
    config = predictor.config
    if args.model_type and args.model_type != config["model_type"]:
        raise SttsError(f"--model_type {args.model_type}, but {predictor.path} holds a {config['model_type']} network")
    stored = config.get("data_type")
    if args.data_type and stored and args.data_type != stored:
        raise SttsError(f"--data_type {args.data_type}, but {predictor.path} was trained on {stored}")


def written(stem: Path, outputs: tuple[str, ...], explain: bool) -> str:
    """' -> out/name.{json,csv}' for the files written, '' for none."""
    suffixes = [SUFFIXES[output].lstrip(".") for output in outputs] + (["explain.mp4"] if explain else [])
    if not suffixes:
        return ""
    return f" -> {stem}.{suffixes[0]}" if len(suffixes) == 1 else f" -> {stem}.{{{','.join(suffixes)}}}"


def run(args) -> int:
    """Predict every source; a bad one is reported in one line, the rest still run, and the exit code is 2.
    Ctrl-C ends the current source with its files written and skips the rest (exit code 130)."""
    inputs = [*args.videos, *args.video_name]
    if not inputs and not args.camera:
        raise SttsError("no videos given: stts infer SOURCE... --checkpoint CKPT")
    if not args.checkpoint:
        raise SttsError("--checkpoint is required (a checkpoint written by stts train)")
    if args.topk < 1 or (args.stride is not None and args.stride < 1):
        raise SttsError("--topk and --stride must be at least 1")
    outputs = parse_outputs(args.outputs)
    sources = collect_sources(inputs, args.camera, args.live)
    predictor = Predictor(args.checkpoint, args.device, args.precision, args.batch_size)
    check_seed_flags(args, predictor)
    # with --json, stdout carries the JSON alone and the human-readable lines go to stderr
    log = sys.stderr if args.json else sys.stdout
    show_problem = display_problem() if args.show else None
    records, failed, duration, begin, interrupted = [], 0, 0.0, time.perf_counter(), False
    with stop_on_interrupt() as stop:
        for source, name in zip(sources, source_names(sources), strict=True):
            window = None
            if args.show and not show_problem:
                try:
                    window = FrameWindow(f"stts: {source.label}")
                except Exception as error:  # a display that refuses the window (cv2.error and kin)
                    show_problem = f"could not open a window ({type(error).__name__}: {str(error).strip()[:120]})"
            try:
                result = infer_source(source, name, predictor, args.out, args.stride, args.topk, stop=stop,
                                      show=window.show if window else None, explain=args.explain, outputs=outputs,
                                      notify=lambda line: print(line, file=sys.stderr, flush=True))
            except SttsError as error:
                print(f"stts infer: error: {error}", file=sys.stderr)
                failed += 1
                continue
            finally:
                if window is not None:
                    window.close()
            for warning in result.warnings:
                print(f"stts infer: warning: {warning}", file=sys.stderr)
            records.append({key: result.record[key] for key in ("video", "top1", "probability", "topk", "windows",
                                                                 "segments")})
            duration += result.duration
            print(f"{source.label}: {result.record['top1']} {result.record['probability']:.3f} "
                  f"({len(result.record['windows'])} windows; {result.duration:.1f} s of video in {result.wall:.1f} s, "
                  f"{result.realtime_factor:.1f}x real time){written(args.out / name, outputs, args.explain)}", file=log)
            if source.live:
                latency = latency_summary(result.latencies)
                timing = (f"latency frame -> label median {latency['median']:.2f} s, p95 {latency['p95']:.2f} s, "
                          f"max {latency['max']:.2f} s" if latency else "no window labelled")
                print(f"{source.label}: live: {timing}; {result.skipped} window(s) skipped, "
                      f"{result.dropped} frame(s) dropped", file=log)
            if result.interrupted:
                interrupted = True
                break
    wall = time.perf_counter() - begin
    if records:
        print(f"{len(records)} video(s), {duration:.1f} s of video in {wall:.1f} s: "
              f"{duration / wall:.1f}x real time ({predictor.precision}, {predictor.device})", file=log)
    if args.show and show_problem:
        print(f"stts infer: --show: {show_problem}; files written to {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(records))
    if interrupted:
        print("stts infer: interrupted: the current source's files are complete; later sources were skipped",
              file=sys.stderr)
        return 130
    if failed:
        print(f"stts infer: {failed} of {len(sources)} source(s) failed", file=sys.stderr)
        return 2
    return 0
