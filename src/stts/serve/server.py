"""``stts serve`` from settings to a running server: check, load each checkpoint once, run uvicorn."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import uvicorn

from . import pipeline
from .app import create_app
from .settings import Settings, check_settings, model_names


def load_models(settings: Settings) -> list[pipeline.Model]:
    """One load per checkpoint file, however often it is named."""
    paths = list(dict.fromkeys(Path(path).resolve() for path in settings.checkpoints))
    return [pipeline.load_model(path, name, settings.device, settings.precision, settings.batch_size)
            for path, name in zip(paths, model_names(paths), strict=True)]


def configure_threads() -> None:
    """The forward pass owns the usable cores (torch counts the machine's, not this process's share);
    an explicit OMP_NUM_THREADS wins."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(len(os.sched_getaffinity(0)))


def uvicorn_config(app, settings: Settings, **options) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, http="h11", lifespan="on",
        # uvicorn's own backstop against piles of idle connections, well above what admission lets in
        limit_concurrency=max(64, 4 * settings.queue_size), timeout_keep_alive=5, server_header=False, **options,
    )


def serve(settings: Settings) -> int:
    check_settings(settings)
    configure_threads()
    models = load_models(settings)
    app = create_app(models, settings)
    names = ", ".join(f"{model.name} ({len(model.classes)} classes, {model.precision}, {model.device})" for model in models)
    print(f"stts serve: {names}; http://{settings.host}:{settings.port}/ (batches of up to {settings.batch_size} "
          f"windows, {settings.batch_wait_ms:g} ms wait, {settings.queue_size} requests at once)", file=sys.stderr)
    uvicorn.Server(uvicorn_config(app, settings)).run()
    return 0
