"""The one atomic writer: every file stts leaves is complete or absent, never half-written.

A file is written under a temporary name in its own folder, flushed to disk, given the mode a
plain ``open`` would give it under the process's umask (``mkstemp`` alone makes 0600 files), and
renamed into place. A crash or an error leaves any earlier file at the path untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends without error.

    ``suffix`` keeps the temporary name's extension for writers that choose a format from it
    (matplotlib, FFmpeg).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(descriptor)
    try:
        yield Path(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, 0o666 & ~UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """``open(path, mode)`` through :func:`atomic_path`; text modes write ``newline=""`` (no translation)."""
    with atomic_path(path) as temporary:
        if "b" in mode:
            with open(temporary, mode) as file:
                yield file
        else:
            with open(temporary, mode, encoding=encoding, newline="") as file:
                yield file


def write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w") as file:
        file.write(text)
    return Path(path)
