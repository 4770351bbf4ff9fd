"""Split lists -> ``VideoRecord``s: UCF101, HMDB51 and a user's folder, as pure functions of the lists' text.

Labels always come from the class folder of a video's path (checked against ``classInd.txt``), never
from its file name: UCF101's ``HandstandPushups`` folder holds ``v_HandStandPushups_*.avi``.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import SttsError

SPLITS = ("train", "val", "test")
HMDB_TAGS = {"1": "train", "2": "test", "0": "val"}
UCF_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


@dataclass(frozen=True)
class VideoRecord:
    path: str  # relative to the videos root, '/'-separated
    label: int  # 0-based index into the class list
    split: str  # 'train', 'val' or 'test'


def read_lines(path: Path) -> list[str]:
    """Non-empty lines with CR, LF and trailing spaces removed (the official lists have CRLF and trailing spaces)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def parse_class_index(lines: list[str], source: str = "classInd.txt") -> list[str]:
    """``['1 ApplyEyeMakeup', '2 ApplyLipstick', ...]`` -> class names in index order."""
    classes = []
    for number, line in enumerate(lines, 1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[0] != str(number):
            raise SttsError(f"{source} line {number}: expected '{number} ClassName', got {line!r}")
        classes.append(parts[1].strip())
    return classes


def label_of(path: str, classes: list[str], source: str) -> int:
    folder = path.replace("\\", "/").split("/")[0]
    try:
        return classes.index(folder)
    except ValueError:
        raise SttsError(f"{source}: {path!r} is not in a class folder listed in the class index") from None


def parse_ucf_list(lines: list[str], classes: list[str], split: str, source: str) -> list[VideoRecord]:
    """trainlistNN (``Class/v_Class_g08_c01.avi 1``) or testlistNN (path alone) lines -> records."""
    records = []
    for line in lines:
        parts = line.rsplit(maxsplit=1)
        indexed = len(parts) == 2 and parts[1].isdigit()
        path = (parts[0] if indexed else line).strip().replace("\\", "/")
        label = label_of(path, classes, source)
        if indexed and int(parts[1]) != label + 1:
            raise SttsError(f"{source}: {path!r} is labelled {parts[1]} but its folder is class {label + 1}")
        records.append(VideoRecord(path, label, split))
    return records


def ucf_group(path: str) -> str:
    """'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi' -> 'ApplyEyeMakeup/g08': one actor and scene."""
    match = UCF_GROUP.search(path.rsplit("/", 1)[-1])
    folder = path.split("/")[0]
    return f"{folder}/g{match.group(1)}" if match else path


def _stable_key(text: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()


def val_from_train_groups(records: list[VideoRecord], fraction: float = 0.08, seed: int = 0) -> list[VideoRecord]:
    """Move whole groups of each class's train videos to val, about ``fraction`` of them, deterministically.

    Test is groups 1-7 and val comes only from the train list's groups, so no actor or scene of val
    is in test; whole groups move, so none is shared between train and val either.
    """
    groups_by_class: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        if record.split == "train":
            groups_by_class[record.label][ucf_group(record.path)] += 1
    val_groups = set()
    for groups in groups_by_class.values():
        target = fraction * sum(groups.values())
        chosen, size = [], 0
        for group in sorted(groups, key=lambda g: _stable_key(g, seed)):
            if chosen and abs(size + groups[group] - target) >= abs(size - target):
                break
            chosen.append(group)
            size += groups[group]
        if len(groups) > 1:
            val_groups.update(chosen)
    return [
        VideoRecord(r.path, r.label, "val") if r.split == "train" and ucf_group(r.path) in val_groups else r
        for r in records
    ]


def val_from_test_sample(records: list[VideoRecord], fraction: float = 0.2, seed: int = 0) -> list[VideoRecord]:
    """The seed's val: a random ``fraction`` of the test list, which therefore stays in test too (leaky)."""
    test = [r for r in records if r.split == "test"]
    sample = random.Random(seed).sample(test, max(1, int(len(test) * fraction)) if test else 0)
    return records + [VideoRecord(r.path, r.label, "val") for r in sample]


def ucf_records(class_lines: list[str], train_lines: list[str], test_lines: list[str], *, val_from_test: bool = False,
                seed: int = 0, source: str = "ucfTrainTestlist") -> tuple[list[str], list[VideoRecord]]:
    """UCF101's classInd, trainlistNN and testlistNN -> (classes, records with a group-wise val)."""
    classes = parse_class_index(class_lines, f"{source}/classInd.txt")
    records = parse_ucf_list(train_lines, classes, "train", f"{source} train list")
    records += parse_ucf_list(test_lines, classes, "test", f"{source} test list")
    if val_from_test:
        return classes, val_from_test_sample(records, seed=seed)
    return classes, val_from_train_groups(records, seed=seed)


def hmdb_records(split_files: dict[str, list[str]], split: int = 1) -> tuple[list[str], list[VideoRecord]]:
    """HMDB51's ``<class>_test_split<N>.txt`` files (name -> lines) -> (sorted classes, records).

    Tag 1 is train, 2 test and 0 (not used by that split) val, as in the seed.
    """
    suffix = f"_test_split{split}.txt"
    by_class = {name[: -len(suffix)]: lines for name, lines in split_files.items() if name.endswith(suffix)}
    if not by_class:
        raise SttsError(f"no HMDB51 split files named <class>{suffix} found")
    classes = sorted(by_class)
    records = []
    for label, name in enumerate(classes):
        for line in by_class[name]:
            video, _, tag = line.strip().rpartition(" ")
            if tag not in HMDB_TAGS or not video:
                raise SttsError(f"{name}{suffix}: expected '<video>.avi <0|1|2>', got {line!r}")
            records.append(VideoRecord(f"{name}/{video.strip()}", label, HMDB_TAGS[tag]))
    return classes, records


def stratified_split(paths_by_class: dict[str, list[str]], fractions=(0.7, 0.1, 0.2),
                     seed: int = 0) -> tuple[list[str], list[VideoRecord]]:
    """A deterministic per-class train/val/test split of ``{class: [relative paths]}``; classes sorted.

    A class of 3 videos or more gives at least one to val and one to test (``round`` alone gives
    none to val below 5 videos, and a split without a class's videos measures nothing of it);
    smaller classes go to train whole.
    """
    classes = sorted(paths_by_class)
    records = []
    for label, name in enumerate(classes):
        paths = sorted(paths_by_class[name], key=lambda p: _stable_key(p, seed))
        n_test = max(1, round(len(paths) * fractions[2])) if len(paths) >= 3 and fractions[2] else 0
        n_val = max(1, round(len(paths) * fractions[1])) if len(paths) >= 3 and fractions[1] else 0
        for i, path in enumerate(paths):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            records.append(VideoRecord(path, label, split))
    return classes, records


def listed_records(classes: list[str], lists: dict[str, list[str]], source: str) -> list[VideoRecord]:
    """A folder's own ``train.txt``/``val.txt``/``test.txt`` (one relative path a line) -> records."""
    return [VideoRecord(line.replace("\\", "/"), label_of(line, classes, f"{source}/{split}.txt"), split)
            for split, lines in lists.items() for line in lines]


def split_counts(records: list[VideoRecord]) -> dict[str, int]:
    counts = dict.fromkeys(SPLITS, 0)
    for record in records:
        counts[record.split] += 1
    return counts
