"""Safe extraction of the archives users download: zip (Python's zipfile) and RAR (``unar`` or ``bsdtar``).

Every entry name is checked before anything is written, so an archive cannot write outside its
target folder. RARs found inside an extracted RAR (HMDB51 ships a RAR of 51 RARs) are extracted in
place and removed. Extraction goes to a temporary folder that is renamed into place, and a marker
file records it, so an interrupted extraction is redone and a finished one is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import SttsError

RAR_MAGIC = b"Rar!\x1a\x07"
ZIP_MAGIC = b"PK\x03\x04"
INSTALL_HINT = (
    "install a RAR extractor: `apt-get install unar` or `apt-get install libarchive-tools` (bsdtar); "
    "on other systems the unar or libarchive package (PyPI has none that works alone)"
)


def archive_kind(path: Path) -> str | None:
    """'zip', 'rar' or None, from the file's first bytes (names lie, magic numbers rarely do)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(RAR_MAGIC):
        return "rar"
    return None


def check_entry_name(name: str, archive: Path) -> None:
    """Refuse absolute paths, drive letters and '..' components, in either slash style."""
    unsafe = name.startswith(("/", "\\")) or PureWindowsPath(name).drive or ".." in PureWindowsPath(name).parts
    unsafe = unsafe or ".." in PurePosixPath(name).parts
    if unsafe:
        raise SttsError(f"{archive}: refusing entry {name!r}: an absolute path or '..' would write outside the target")


def rar_tool() -> tuple[str, str]:
    """The (lister, extractor) programs for RAR, preferring unar; SttsError naming the packages if none."""
    if shutil.which("unar") and shutil.which("lsar"):
        return "lsar", "unar"
    if shutil.which("bsdtar"):
        return "bsdtar", "bsdtar"
    raise SttsError(f"no RAR extractor found on PATH; {INSTALL_HINT}")


def list_entries(archive: Path) -> list[tuple[str, bool]]:
    """(name, is a symbolic link) of every entry."""
    kind = archive_kind(archive)
    if kind == "zip":
        try:
            with zipfile.ZipFile(archive) as zf:
                return [(info.filename, stat.S_ISLNK(info.external_attr >> 16)) for info in zf.infolist()]
        except zipfile.BadZipFile as error:
            raise SttsError(f"{archive}: not a readable zip archive ({error})") from None
    if kind == "rar":
        lister, _ = rar_tool()
        if lister == "lsar":
            out = _run([lister, "-j", str(archive)], archive)
            return [(item["XADFileName"], bool(item.get("XADIsLink"))) for item in json.loads(out)["lsarContents"]]
        names = [line for line in _run([lister, "-tf", str(archive)], archive).splitlines() if line]
        modes = [line[:1] for line in _run([lister, "-tvf", str(archive)], archive).splitlines() if line]
        return [(name, mode == "l") for name, mode in zip(names, modes, strict=False)]
    raise SttsError(f"{archive}: not a zip or RAR archive")


def _run(command: list[str], archive: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SttsError(f"{archive}: {command[0]} failed ({detail[-1] if detail else result.returncode})")
    return result.stdout


def _extract_once(archive: Path, target: Path) -> None:
    for name, is_link in list_entries(archive):
        check_entry_name(name, archive)
        if is_link:
            raise SttsError(f"{archive}: refusing entry {name!r}: a symbolic link (data sets hold none, and a link "
                            "could lead a later entry outside the target)")
    if archive_kind(archive) == "zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
        return
    _, extractor = rar_tool()
    if extractor == "unar":
        _run(["unar", "-q", "-f", "-D", "-o", str(target), str(archive)], archive)
    else:
        _run(["bsdtar", "-x", "-f", str(archive), "-C", str(target)], archive)


def _check_inside(target: Path, archive: Path) -> None:
    root = target.resolve()
    for path in target.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise SttsError(f"{archive}: refusing link {path.relative_to(target)} that points outside the target")


def extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` (and any RARs inside it) into ``target``; skip if done before. Returns ``target``."""
    archive, target = Path(archive), Path(target)
    marker = target / f".extracted-{archive.name}"
    if marker.exists():
        return target
    temp = target / f".partial-{archive.name}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    _extract_once(archive, temp)
    _check_inside(temp, archive)
    for inner in sorted(temp.rglob("*")):
        if inner.is_file() and inner.suffix.lower() == ".rar" and archive_kind(inner) == "rar":
            _extract_once(inner, inner.parent)
            _check_inside(temp, inner)
            inner.unlink()
    for child in temp.iterdir():
        destination = target / child.name
        if destination.exists():
            _merge(child, destination)
        else:
            os.replace(child, destination)
    shutil.rmtree(temp)
    marker.touch()
    return target


def _merge(source: Path, destination: Path) -> None:
    if source.is_dir() and destination.is_dir():
        for child in source.iterdir():
            _merge(child, destination / child.name)
    elif not destination.exists() or destination.is_file():
        os.replace(source, destination)
