"""A real ``stts serve`` on 127.0.0.1 in a background thread, a tiny checkpoint and tiny videos for it."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from stts.checkpoint import save_checkpoint
from stts.clip import ClipSpec
from stts.models import build_model

CLASSES = ["circle", "square", "triangle"]
CONFIG = {"model_type": "stts-a", "width": 8, "blocks": [1, 1, 1, 1], "data_type": "synthetic-motion"}
SPEC = ClipSpec(min_kept=8, height=40, clip_len=8, crop_size=32)


def write_checkpoint(path: Path, seed: int = 0, classes: list[str] = CLASSES, **config) -> Path:
    torch.manual_seed(seed)
    config = {**CONFIG, **config}
    model = build_model(config["model_type"], len(classes), width=config["width"], blocks=config["blocks"])
    return save_checkpoint({"model": model.state_dict(), "config": config, "classes": classes,
                            "spec": SPEC.to_dict(), "precision": "fp32"}, path)


def write_clip(path: Path, frames: int = 40, width: int = 64, height: int = 48, fps: int = 25, seed: int = 0) -> Path:
    """H.264 in MP4 (or VP8 in WebM by the suffix), what a browser plays: a dark square moving on a gradient."""
    rng = np.random.default_rng(seed)
    codec = "libvpx" if path.suffix == ".webm" else "libx264"
    base = np.linspace(60, 230, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        y = int(rng.integers(0, height - 12))
        for i in range(frames):
            frame = base.copy()
            x = (i * 3) % (width - 12)
            frame[y:y + 12, x:x + 12] = (20, 30, 200)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@contextlib.contextmanager
def running_server(checkpoints: list[Path], **settings):
    """Yield (base URL, app state) of a uvicorn server with ``settings`` on a free port of 127.0.0.1."""
    import uvicorn

    from stts.serve.app import create_app
    from stts.serve.server import load_models, uvicorn_config
    from stts.serve.settings import Settings, check_settings

    options = Settings(checkpoints=list(checkpoints), port=0, precision="fp32", **settings)
    check_settings(options)
    app = create_app(load_models(options), options)
    server = uvicorn.Server(uvicorn_config(app, options, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app.state.serve
    finally:
        server.should_exit = True
        thread.join(10)


def with_settings(state, **changes):
    """The server's settings with some changed, in place (tests that need a tighter limit for a moment)."""
    old = state.settings
    state.settings = replace(old, **changes)
    return old
