"""Where each kind of source keeps its videos, file lists and labels: the part that differs between data sets.

Every reader takes the sources given to ``stts prepare`` and returns ``(classes, records,
videos_root)``; from there one path stores and describes them all (see prepare.py).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SttsError
from . import splits
from .archives import archive_kind, extract

AUTO_SPLIT = ""  # a record's split before a folder without lists is split (after decoding, among the stored)


def source_roots(sources: list[Path], out: Path) -> list[Path]:
    """Folders to search: each folder source as is, each archive extracted (once) into ``out/source``."""
    roots = []
    for source in map(Path, sources):
        if source.is_dir():
            roots.append(source)
        elif source.is_file():
            if archive_kind(source) is None:
                raise SttsError(f"{source}: not a zip or RAR archive nor a folder")
            roots.append(extract(source, out / "source"))
        else:
            raise SttsError(f"{source}: no such file or folder")
    return list(dict.fromkeys(roots))


def find_files(roots: list[Path], name: str) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob(name) if p.is_file() and ".partial-" not in str(p))


def find_videos_root(roots: list[Path], classes: list[str]) -> Path:
    """The folder holding the most class folders, among the roots and their subfolders two levels down."""
    candidates = [d for root in roots for d in (root, *root.glob("*/"), *root.glob("*/*/")) if d.is_dir()]
    best = max(candidates, key=lambda d: sum((d / c).is_dir() for c in classes), default=None)
    if best is None or not any((best / c).is_dir() for c in classes):
        raise SttsError(f"no folder of class folders ({classes[0]}/, ...) found in {', '.join(map(str, roots))}")
    return best


def ucf_records(sources: list[Path], out: Path, split: int = 1, val_from_test: bool = False, seed: int = 0):
    roots = source_roots(sources, out)
    found = {n: find_files(roots, n) for n in ("classInd.txt", f"trainlist0{split}.txt", f"testlist0{split}.txt")}
    for name, paths in found.items():
        if not paths:
            raise SttsError(f"{name} not found in {', '.join(map(str, roots))}; "
                            "give UCF101TrainTestSplits-RecognitionTask.zip or its extracted folder")
    class_file, train_file, test_file = (paths[0] for paths in found.values())
    classes, records = splits.ucf_records(splits.read_lines(class_file), splits.read_lines(train_file),
                                          splits.read_lines(test_file), val_from_test=val_from_test, seed=seed,
                                          source=str(class_file.parent))
    return classes, records, find_videos_root(roots, classes)


def hmdb_records(sources: list[Path], out: Path, split: int = 1, **_):
    roots = source_roots(sources, out)
    files = find_files(roots, f"*_test_split{split}.txt")
    if not files:
        raise SttsError(f"no HMDB51 split files (*_test_split{split}.txt) in {', '.join(map(str, roots))}; "
                        "give test_train_splits.rar or its extracted folder")
    classes, records = splits.hmdb_records({f.name: splits.read_lines(f) for f in files}, split)
    return classes, records, find_videos_root(roots, classes)


def folder_records(sources: list[Path], out: Path, **_):
    """ROOT/<class>/<video>; ROOT's train.txt/val.txt/test.txt if any, else split later (see AUTO_SPLIT)."""
    if len(sources) != 1:
        raise SttsError("`stts prepare folder` takes one ROOT folder of class folders")
    root = Path(sources[0])
    if not root.is_dir():
        raise SttsError(f"{root}: not a folder of class folders")
    by_class = {d.name: sorted(f.relative_to(root).as_posix() for f in d.rglob("*")
                               if f.is_file() and not f.name.startswith("."))
                for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not by_class:
        raise SttsError(f"{root}: no class folders (expected ROOT/<class>/<video>)")
    classes = sorted(by_class)
    lists = {s: splits.read_lines(root / f"{s}.txt") for s in splits.SPLITS if (root / f"{s}.txt").is_file()}
    if lists:
        return classes, splits.listed_records(classes, lists, str(root)), root
    records = [splits.VideoRecord(path, label, AUTO_SPLIT) for label, name in enumerate(classes)
               for path in by_class[name]]
    return classes, records, root


def folder_flip_pairs(sources: list[Path], classes: list[str]) -> list[tuple[str, str]]:
    """A folder's ``flip_pairs.txt``: one pair of class names a line that a horizontal flip swaps."""
    path = Path(sources[0]) / "flip_pairs.txt"
    if not path.is_file():
        return []
    pairs = []
    for number, line in enumerate(splits.read_lines(path), 1):
        names = line.replace(",", " ").split()
        if len(names) != 2 or not set(names) <= set(classes):
            raise SttsError(f"{path} line {number}: expected two class names of this folder, got {line!r}")
        pairs.append((names[0], names[1]))
    return pairs
