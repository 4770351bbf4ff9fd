"""``stts export``: a checkpoint's network as ONNX, checked against PyTorch with onnxruntime."""

from __future__ import annotations

from pathlib import Path

from ..errors import SttsError

FORMATS = ("onnx",)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint's network (ONNX)",
        description="Write the network as ONNX (batch dynamic, clip shape from the checkpoint, class names in the "
        "metadata; the input is the uint8 RGB clip, normalised inside the graph), then check onnxruntime's "
        "logits against PyTorch's (fp32) on random clips.",
    )
    parser.add_argument("checkpoint", metavar="CKPT", type=Path, help="a checkpoint written by stts train")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="export format (default onnx)")
    parser.add_argument("--out", type=Path, help="output file (default CKPT with the format's suffix)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--rtol", type=float, default=1e-3,
                        help="largest logit difference the check accepts, as a fraction of the logits' scale")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..inference.export import check_onnx, export_onnx

    if args.out and args.out.resolve() == args.checkpoint.resolve():
        raise SttsError(f"--out {args.out} would overwrite the checkpoint")
    checks = []  # the check runs on the written graph before it takes its name: a graph that fails it is not kept
    check = None if args.no_check else lambda path: checks.append(check_onnx(path, args.checkpoint, rtol=args.rtol))
    path = export_onnx(args.checkpoint, args.out, args.opset, check=check)
    print(f"wrote {path}")
    for result in checks:
        print(f"onnxruntime check passed: logits within {result['max_difference']:.1e} of PyTorch's network on the "
              f"graph's own input conversion (scale {result['scale']:.3g}, {result['relative']:.1e} relative; "
              f"{result['end_to_end']:.1e} end to end), that conversion within {result['input_difference']:.1e} of "
              f"PyTorch's, same top-1 (fp32, batch 1 and 3)")
    return 0
