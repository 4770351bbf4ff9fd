"""What ``stts serve`` is told by its flags, checked once before anything is loaded or bound."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SttsError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class Settings:
    checkpoints: list[Path] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_mb: float = 100.0
    max_duration: float = 60.0  # seconds of video
    request_timeout: float = 60.0  # seconds, upload to answer
    queue_size: int = 16  # requests admitted at once: uploading, decoding, waiting for or in a forward pass
    batch_size: int = 8  # windows per forward pass
    batch_wait_ms: float = 10.0
    decode_workers: int = 0  # threads decoding uploads; 0: half the usable cores, at least 1
    device: str = "auto"
    precision: str = "auto"
    retry_after: int = 1  # seconds, sent with 503

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def workers(self) -> int:
        return self.decode_workers or max(1, len(os.sched_getaffinity(0)) // 2)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(settings: Settings) -> None:
    """Refuse what cannot work or would expose an open server: one line naming the flag."""
    if not settings.checkpoints:
        raise SttsError("no checkpoint given: stts serve CHECKPOINT [CHECKPOINT...]")
    if not is_loopback(settings.host) and not settings.token:
        raise SttsError(f"--host {settings.host} is not a loopback address: serving beyond this machine needs "
                        "--token SECRET (clients send Authorization: Bearer SECRET)")
    if settings.token is not None and len(settings.token) < 8:
        raise SttsError("--token must be at least 8 characters")
    if not 0 <= settings.port <= 65535:
        raise SttsError(f"--port {settings.port}: not a port number (0-65535)")
    for flag, value in (("--max-upload-mb", settings.max_upload_mb), ("--max-duration", settings.max_duration),
                        ("--request-timeout", settings.request_timeout)):
        if not value > 0:
            raise SttsError(f"{flag} must be positive, got {value}")
    for flag, value in (("--queue-size", settings.queue_size), ("--batch-size", settings.batch_size)):
        if value < 1:
            raise SttsError(f"{flag} must be at least 1, got {value}")
    if settings.batch_wait_ms < 0 or settings.decode_workers < 0:
        raise SttsError("--batch-wait-ms and --decode-workers cannot be negative")


def model_names(checkpoints: list[Path]) -> list[str]:
    """A name per checkpoint for the ``model`` form field: its stem, with its folder's name while stems collide."""
    names = [path.stem for path in checkpoints]
    if len(set(names)) < len(names):
        names = [f"{path.parent.name}/{path.stem}" if names.count(path.stem) > 1 else path.stem
                 for path in checkpoints]
    if len(set(names)) < len(names):
        names = [f"{name}#{index}" for index, name in enumerate(names)]
    return names
