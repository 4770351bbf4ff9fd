"""The ASGI app: the page, ``/v1/predict``, ``/v1/models`` and ``/healthz`` on Starlette.

A prediction is admitted (or refused with 503), its upload parsed under the size limit,
copied to a ``tempfile`` and decoded in a small thread pool, its windows queued on the
model's batcher, and its record assembled from their probabilities. Everything a request
holds is let go in ``finally``: the temporary file inside the decoding thread itself, the
admission slot only once that thread is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import SttsError
from . import pipeline
from .batcher import Batcher
from .limits import Admission, ApiError, BodyTooLarge, Guard, error_body, limited_receive, parse_topk, sanitize_filename
from .settings import Settings, is_loopback

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    # everything the page needs comes from this server; the video plays from a local blob: URL
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; img-src 'self' data: blob:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@dataclass
class ServerState:
    settings: Settings
    models: dict[str, pipeline.Model]
    batchers: dict[str, Batcher]
    admission: Admission
    decoders: ThreadPoolExecutor
    tmpdir: Path
    started: float
    trim: Any = None  # malloc_trim where there is one


def create_app(models: list[pipeline.Model], settings: Settings) -> Starlette:
    """An app serving ``models`` (already loaded) under ``settings``; the first model is the default."""
    forward_lock = threading.Lock()  # one forward pass at a time owns the cores, whichever model it is
    trim = _malloc_trim()
    state = ServerState(
        settings=settings,
        models={model.name: model for model in models},
        batchers={
            model.name: Batcher(lambda items, model=model: pipeline.forward(model, items), settings.batch_size,
                                settings.batch_wait_ms / 1000, lock=forward_lock, name=f"stts-batch-{model.name}")
            for model in models
        },
        admission=Admission(settings.queue_size),
        decoders=ThreadPoolExecutor(settings.workers, thread_name_prefix="stts-decode"),
        tmpdir=Path(tempfile.mkdtemp(prefix="stts-serve-")),
        started=time.time(),
        trim=trim,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            close(state)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/healthz", healthz),
            Route("/v1/models", list_models),
            Route("/v1/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(Guard, token=settings.token, loopback_only=is_loopback(settings.host))],
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.serve = state
    return app


def close(state: ServerState) -> None:
    for batcher in state.batchers.values():
        batcher.close()
    state.decoders.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(state.tmpdir, ignore_errors=True)


# --- routes ---------------------------------------------------------------------------------------------------------

async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def healthz(request: Request) -> Response:
    state: ServerState = request.app.state.serve
    dead = [name for name, batcher in state.batchers.items() if not batcher.alive]
    if dead:
        return JSONResponse({"status": "unavailable", "error": f"batcher stopped: {', '.join(dead)}"}, 503)
    return JSONResponse({"status": "ok", "models": list(state.models)})


async def list_models(request: Request) -> Response:
    state: ServerState = request.app.state.serve
    return JSONResponse({
        "models": [
            {"name": name, "classes": model.classes, "clip": model.clip, "device": model.device,
             "precision": model.precision, "batching": state.batchers[name].stats.as_dict()}
            for name, model in state.models.items()
        ],
        "default": next(iter(state.models)),
        "limits": {"max_upload_mb": state.settings.max_upload_mb, "max_duration": state.settings.max_duration,
                   "request_timeout": state.settings.request_timeout, "queue_size": state.settings.queue_size,
                   "batch_size": state.settings.batch_size, "batch_wait_ms": state.settings.batch_wait_ms},
        "in_progress": state.admission.inside,
    })


async def predict(request: Request) -> Response:
    """``multipart/form-data``: ``video`` (a file), optional ``model`` and ``topk`` -> the video's JSON record."""
    state: ServerState = request.app.state.serve
    settings = state.settings
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload_bytes:
        raise _too_large(settings)
    if not state.admission.enter():
        raise ApiError(503, f"server busy: {settings.queue_size} requests in progress (--queue-size); "
                            f"retry in {settings.retry_after} s", {"Retry-After": str(settings.retry_after)})
    work: list[Future] = []  # the decoding thread's future, once submitted
    try:
        return await asyncio.wait_for(_predict(request, state, work), settings.request_timeout)
    except asyncio.TimeoutError:
        raise ApiError(504, f"request took longer than --request-timeout {settings.request_timeout:g} s") from None
    finally:
        if work and not work[0].done():
            work[0].add_done_callback(lambda _: leave(state))  # the slot is free when the thread is
        else:
            leave(state)


def leave(state: ServerState) -> None:
    """A request is done; the last one out hands the memory its clips used back to the system."""
    if state.admission.leave() == 0 and state.trim:
        state.trim()


async def _predict(request: Request, state: ServerState, work: list[Future]) -> Response:
    settings = state.settings
    bounded = Request(request.scope, limited_receive(request.receive, settings.max_upload_bytes))
    try:
        form = await bounded.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    except BodyTooLarge:
        raise _too_large(settings) from None
    try:
        upload = form.get("video")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "expected a multipart/form-data body with a file in the field 'video'")
        name = sanitize_filename(upload.filename)
        model_name = form.get("model") or next(iter(state.models))
        if not isinstance(model_name, str):
            raise ApiError(422, "the field 'model' must be text: a name from GET /v1/models")
        model = state.models.get(model_name)
        if model is None:
            raise ApiError(404, f"unknown model {str(model_name)[:80]!r}; GET /v1/models lists: {', '.join(state.models)}")
        topk = parse_topk(form.get("topk"))
        work.append(state.decoders.submit(decode_upload, upload, name, model, settings, state.tmpdir))
        video = await asyncio.wrap_future(work[0])
    finally:
        await form.close()
    # the queue is bounded by admission: at most --queue-size requests, each of at most --max-duration
    future = state.batchers[model.name].submit(video.items)
    probabilities = await asyncio.wrap_future(future)  # cancelled with the request: its windows are dropped
    record = pipeline.video_record(model, name, video, np.stack(probabilities), topk)
    return JSONResponse(record)


def decode_upload(upload: UploadFile, name: str, model: pipeline.Model, settings: Settings, tmpdir: Path):
    """In a decoding thread: the upload into a temporary file of our naming, decoded, the file removed."""
    descriptor, temporary = tempfile.mkstemp(prefix="upload-", suffix=".video", dir=tmpdir)
    try:
        with os.fdopen(descriptor, "wb") as file:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, file, 1 << 20)
        try:
            return pipeline.video_windows(model, Path(temporary), settings.max_duration)
        except pipeline.VideoTooLong as error:
            raise ApiError(413, str(error).replace(temporary, name)) from None
        except SttsError as error:  # not a video, no video stream, truncated, empty
            raise ApiError(400, str(error).replace(temporary, name)) from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _too_large(settings: Settings) -> ApiError:
    return ApiError(413, f"upload over --max-upload-mb {settings.max_upload_mb:g} MB")


# --- errors: one line of JSON ----------------------------------------------------------------------------------------

def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(message), status, headers=headers, media_type="application/json")


async def api_error(request: Request, error: ApiError) -> Response:
    return _error_response(error.status, error.message, error.headers)


async def http_error(request: Request, error: HTTPException) -> Response:
    status = 422 if error.status_code == 400 else error.status_code  # Starlette's 400s are malformed forms
    return _error_response(status, str(error.detail), dict(error.headers or {}))


async def internal_error(request: Request, error: Exception) -> Response:
    # Starlette re-raises the error after this answer, and the server logs its traceback
    return _error_response(500, f"internal error ({type(error).__name__}); the server log has the details")


def _malloc_trim() -> Any:
    """glibc's malloc_trim, to hand freed clip memory back to the system once no request is left (None elsewhere).

    Decoded frames are freed by several threads into several malloc arenas, which glibc
    otherwise keeps: the process would stay at its peak after a burst of requests.
    """
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    return (lambda: trim(0)) if trim else None
