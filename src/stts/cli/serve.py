"""``stts serve``: the model behind a web page and an HTTP API (needs ``pip install 'stts[serve]'``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import SttsError
from .options import add as option

SERVE_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve checkpoints over HTTP: a web page and a JSON API",
        description="Serve checkpoints: GET / is a page to drop a video on; POST /v1/predict (multipart: video, "
        "optional model and topk) answers the JSON record of stts infer --json; GET /v1/models, GET /healthz. "
        "Windows of concurrent requests share forward passes.",
    )
    parser.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT", help="checkpoints written by stts train")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN on /v1/ (required off loopback)")
    parser.add_argument("--max-upload-mb", type=float, default=100, help="largest upload in MB (default 100; 413 above)")
    parser.add_argument("--max-duration", type=float, default=60, help="longest video in seconds (default 60; 413 above)")
    parser.add_argument("--request-timeout", type=float, default=60, help="seconds from upload to answer (default 60; 504)")
    parser.add_argument("--queue-size", type=int, default=16,
                        help="requests in progress at once (default 16); one more gets 503 with Retry-After")
    option(parser, "batch_size", "most windows in one forward pass", 8)
    parser.add_argument("--batch-wait-ms", type=float, default=10,
                        help="how long a window waits for others to fill its batch (default 10 ms)")
    parser.add_argument("--decode-workers", type=int, default=0,
                        help="threads decoding uploads (default 0: half the usable cores, at least 1)")
    option(parser, "precision", "auto: each checkpoint's training precision where this device runs it natively, "
                                "else fp32; bf16, fp16 or fp32", "auto")
    option(parser, "device", None, "auto")
    parser.set_defaults(func=run)


def missing_modules() -> list[str]:
    return [package for module, package in SERVE_MODULES.items() if importlib.util.find_spec(module) is None]


def run(args) -> int:
    """Check the flags, load every checkpoint once, serve until Ctrl-C."""
    missing = missing_modules()
    if missing:
        raise SttsError(f"stts serve needs {', '.join(missing)}: pip install 'stts[serve]'")
    from ..serve.server import serve
    from ..serve.settings import Settings

    return serve(Settings(
        checkpoints=args.checkpoints, host=args.host, port=args.port, token=args.token,
        max_upload_mb=args.max_upload_mb, max_duration=args.max_duration, request_timeout=args.request_timeout,
        queue_size=args.queue_size, batch_size=args.batch_size, batch_wait_ms=args.batch_wait_ms,
        decode_workers=args.decode_workers, device=args.device, precision=args.precision,
    ))
