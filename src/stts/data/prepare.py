"""Sources -> records -> clip store -> manifests: the one preparation path for every dataset.

UCF101, HMDB51, a user's folder and synthetic-motion differ only in how ``*_records`` below read
their file list and labels; storing, manifests and the report are shared.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from tqdm import tqdm

from ..errors import SttsError
from . import splits
from .archives import archive_kind, extract
from .store import IndexWriter, ShardWriter, encode_frames, open_store, read_index
from .video import read_kept_frames

MANIFESTS = "manifests"
STORE = "store"
REPORT = "report.txt"
INFO = "dataset.json"
CLASSES = "classes.txt"


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


def ucf_records(roots: list[Path], split: int, val_from_test: bool, seed: int):
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


def hmdb_records(roots: list[Path], split: int):
    files = find_files(roots, f"*_test_split{split}.txt")
    if not files:
        raise SttsError(f"no HMDB51 split files (*_test_split{split}.txt) in {', '.join(map(str, roots))}; "
                        "give test_train_splits.rar or its extracted folder")
    classes, records = splits.hmdb_records({f.name: splits.read_lines(f) for f in files}, split)
    return classes, records, find_videos_root(roots, classes)


def folder_records(root: Path, seed: int):
    """ROOT/<class>/<video>; ROOT's train.txt/val.txt/test.txt if any, else a stratified 70/10/20 split."""
    root = Path(root)
    if not root.is_dir():
        raise SttsError(f"{root}: not a folder of class folders")
    by_class = {d.name: sorted(f.relative_to(root).as_posix() for f in d.rglob("*")
                               if f.is_file() and not f.name.startswith("."))
                for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not by_class:
        raise SttsError(f"{root}: no class folders (expected ROOT/<class>/<video>)")
    lists = {s: splits.read_lines(root / f"{s}.txt") for s in splits.SPLITS if (root / f"{s}.txt").is_file()}
    if lists:
        classes = sorted(by_class)
        return classes, splits.listed_records(classes, lists, str(root)), root
    classes, records = splits.stratified_split(by_class, seed=seed)
    return classes, records, root


_writer: ShardWriter | None = None


def _init_worker(store: Path) -> None:
    global _writer
    _writer = ShardWriter(store)


def _store_video(task: tuple[str, str, int, int, int]) -> tuple[dict | None, tuple[str, str] | None]:
    key, path, size, clip_len, quality = task
    try:
        frames, step, count, fps = read_kept_frames(Path(path), size, clip_len)
        entry = _writer.append(key, encode_frames(frames, quality), height=frames[0].shape[0],
                               width=frames[0].shape[1], step=step, source_frames=count, fps=fps)
        return entry, None
    except SttsError as error:
        return None, (key, str(error))
    except Exception as error:  # noqa: BLE001 - any decoder failure means "skip this video", never stop the run
        return None, (key, f"{path}: unreadable ({type(error).__name__}: {error})")


def store_videos(tasks: list[tuple], store: Path, workers: int, desc: str, progress: bool) -> dict[str, str]:
    """Decode and store ``tasks`` in parallel; commit each finished video to the index. Returns skipped -> why."""
    skipped, index, pool = {}, IndexWriter(store), None
    bar = tqdm(total=len(tasks), unit="video", desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(tasks) <= 1:
            _init_worker(store)
            results = map(_store_video, tasks)
        else:
            pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (store,))
            results = pool.imap_unordered(_store_video, tasks, chunksize=1)
        for entry, failure in results:
            if entry is not None:
                index.commit(entry)
            else:
                skipped[failure[0]] = failure[1]
            bar.update()
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
        index.close()
    return skipped


def read_records(dataset: str, sources: list[Path], out: Path, split: int, val_from_test: bool, seed: int):
    if dataset == "ucf101":
        return ucf_records(source_roots(sources, out), split, val_from_test, seed)
    if dataset == "hmdb51":
        return hmdb_records(source_roots(sources, out), split)
    if dataset == "folder":
        if len(sources) != 1:
            raise SttsError("`stts prepare folder` takes one ROOT folder of class folders")
        return folder_records(sources[0], seed)
    raise SttsError(f"unknown dataset {dataset!r}; choose ucf101, hmdb51, folder or synthetic-motion")


def prepare_dataset(dataset: str, sources: list[str | Path], out: str | Path, *, split: int = 1, size: int = 128,
                    clip_len: int = 32, quality: int = 90, val_from_test: bool = False, allow_missing: bool = False,
                    workers: int | None = None, seed: int = 0, name: str | None = None,
                    flip_pairs: tuple[tuple[str, str], ...] = (), progress: bool = True) -> dict:
    """Prepare ``out`` from ``sources``; returns the counts, the skipped and missing videos and any warnings.

    ``flip_pairs`` names classes that a horizontal flip turns into each other (moving left and
    moving right); training swaps their labels when it flips a clip. Resumable: videos already
    in the store are not decoded again.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes, records, videos_root = read_records(dataset, [Path(s) for s in sources], out, split, val_from_test, seed)
    missing = sorted({r.path for r in records if not (videos_root / r.path).is_file()})
    if missing and not allow_missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SttsError(f"{len(missing)} videos named in the split lists are not in {videos_root}: {shown}; "
                        "pass --allow-missing to prepare the rest")
    store = out / STORE
    done = read_index(store)
    todo = sorted({r.path for r in records} - set(missing) - set(done))
    tasks = [(key, str(videos_root / key), size, clip_len, quality) for key in todo]
    workers = workers or len(os.sched_getaffinity(0))
    skipped = store_videos(tasks, store, workers, f"prepare {name or dataset}", progress)
    stored = read_index(store)
    kept = [r for r in records if r.path in stored]
    counts = splits.split_counts(kept)
    write_outputs(out, classes, kept, skipped, missing, {
        "name": name or dataset, "classes": len(classes), "size": size, "quality": quality, "clip_len": clip_len,
        "frame_rule": f"every 4th frame, else every 3rd/2nd/1st when fewer than {clip_len} would be kept",
        "split": split, "val": "20% sample of test (leaky)" if val_from_test else "whole train groups, about 8%",
        "counts": counts, "skipped": len(skipped), "missing": len(missing), "videos_root": str(videos_root),
        "flip_pairs": [list(pair) for pair in flip_pairs if set(pair) <= set(classes)],
    })
    warnings = ["val is a 20% sample of the test list, so it overlaps test: selecting checkpoints on it "
                "leaks test data into model selection"] if val_from_test else []
    return {"classes": len(classes), **counts, "skipped": sorted(skipped), "missing": missing,
            "reasons": skipped, "warnings": warnings, "out": str(out)}


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def write_outputs(out: Path, classes: list[str], records, skipped: dict[str, str], missing: list[str],
                  info: dict) -> None:
    (out / MANIFESTS).mkdir(exist_ok=True)
    for split in splits.SPLITS:
        lines = [f"{r.path}\t{r.label}\n" for r in records if r.split == split]
        _write_atomic(out / MANIFESTS / f"{split}.tsv", "".join(lines))
    _write_atomic(out / CLASSES, "".join(f"{c}\n" for c in classes))
    report = [f"skipped\t{key}\t{why}\n" for key, why in sorted(skipped.items())]
    report += [f"missing\t{key}\tnamed in the split lists, not found\n" for key in missing]
    _write_atomic(out / REPORT, "".join(report))
    _write_atomic(out / INFO, json.dumps(info, indent=2) + "\n")


def verify_prepared(out: str | Path, progress: bool = True) -> dict[str, str]:
    """Check every store entry (CRC, JPEG headers, sizes) and that every manifest video is stored: video -> problem."""
    out = Path(out)
    store = open_store(out / STORE)
    problems = {video: why for video in tqdm(sorted(store.entries), unit="video", desc="verify",
                                             disable=not progress, dynamic_ncols=True)
                if (why := store.verify(video))}
    for manifest in sorted((out / MANIFESTS).glob("*.tsv")):
        for line in manifest.read_text(encoding="utf-8").splitlines():
            video = line.rsplit("\t", 1)[0]
            if video not in store:
                problems[video] = f"listed in {manifest.name} but not in the store"
    store.close()
    return problems
