"""What keeps the server bounded and its clients honest: admission, body size, token, host, file names.

Every refusal is an ``ApiError``: an HTTP status and a one-line message, sent as ``{"error": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import unicodedata
from urllib.parse import urlsplit

from .settings import is_loopback


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}

    @property
    def message(self) -> str:
        return one_line(str(self))


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_body(message: str) -> bytes:
    return json.dumps({"error": one_line(message)}).encode()


class Admission:
    """At most ``limit`` requests inside at once; the next one is refused at the door rather than queued."""

    def __init__(self, limit: int):
        self.limit, self.inside, self._lock = limit, 0, threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.inside >= self.limit:
                return False
            self.inside += 1
            return True

    def leave(self) -> int:
        """Returns how many are still inside."""
        with self._lock:
            self.inside -= 1
            return self.inside


class BodyTooLarge(Exception):
    pass


def limited_receive(receive, max_bytes: int):
    """An ASGI ``receive`` that raises BodyTooLarge once more than ``max_bytes`` of body have arrived.

    The Content-Length check catches honest clients before their body is read; this catches
    chunked uploads and clients that lie about the length.
    """
    received = 0

    async def wrapped():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLarge(received)
        return message

    return wrapped


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def sanitize_filename(name: str | None, limit: int = 120) -> str:
    """The last component of a client's file name, without control or path characters; only ever echoed, never
    used on disk (uploads go to ``tempfile`` names)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > limit:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: limit - len(suffix) - 1] + "." + suffix) if dot and len(suffix) < 12 else name[:limit]
    return name or "upload"


def token_ok(header: str | None, token: str) -> bool:
    """``Authorization: Bearer TOKEN``, compared in constant time (digests, so the length does not leak either)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest())


def parse_topk(value, default: int = 5, limit: int = 1000) -> int:
    """The ``topk`` form field: absent or empty for the default; text holding a whole number otherwise."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ApiError(422, "topk must be a form field, not a file")
    try:
        k = int(value)
    except ValueError:
        raise ApiError(422, f"topk must be a whole number, got {value[:40]!r}") from None
    if not 1 <= k <= limit:
        raise ApiError(422, f"topk must be between 1 and {limit}, got {k}")
    return k


class Guard:
    """ASGI middleware: a token for the API when one is set, and, on loopback, the Host and Origin of this machine.

    The Host check stops DNS rebinding (a web page whose name points at 127.0.0.1) and the Origin
    check stops other sites' pages from posting uploads to a server the user runs locally.
    """

    def __init__(self, app, token: str | None, loopback_only: bool):
        self.app, self.token, self.loopback_only = app, token, loopback_only

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
            problem = self.check(scope, headers)
            if problem:
                await send_error(send, problem)
                return
        await self.app(scope, receive, send)

    def check(self, scope, headers: dict[str, str]) -> ApiError | None:
        if self.loopback_only:
            host = urlsplit("//" + headers.get("host", "")).hostname or ""
            if not is_loopback(host):
                return ApiError(421, f"Host {headers.get('host', '')[:80]!r} is not this machine's loopback address")
            origin = headers.get("origin")
            if origin and scope["method"] not in ("GET", "HEAD") and not is_loopback(urlsplit(origin).hostname or ""):
                return ApiError(403, f"cross-origin request from {origin[:80]!r} refused")
        if self.token and scope["path"].startswith("/v1/") and not token_ok(headers.get("authorization"), self.token):
            return ApiError(401, "missing or wrong token: send Authorization: Bearer TOKEN",
                            {"WWW-Authenticate": "Bearer"})
        return None


async def send_error(send, error: ApiError) -> None:
    body = error_body(error.message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(key.lower().encode(), value.encode()) for key, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
