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
        "metadata), then check onnxruntime's logits against PyTorch's (fp32) on random clips.",
    )
    parser.add_argument("checkpoint", metavar="CKPT", type=Path, help="a checkpoint written by stts train")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="export format (default onnx)")
    parser.add_argument("--out", type=Path, help="output file (default CKPT with the format's suffix)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest logit difference the check accepts")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..inference.export import check_onnx, export_onnx

    if args.out and args.out.resolve() == args.checkpoint.resolve():
        raise SttsError(f"--out {args.out} would overwrite the checkpoint")
    path = export_onnx(args.checkpoint, args.out, args.opset)
    print(f"wrote {path}")
    if not args.no_check:
        worst = check_onnx(path, args.checkpoint, atol=args.atol)
        print(f"onnxruntime check passed: logits within {worst:.1e} of PyTorch (fp32, batch 1 and 3)")
    return 0
