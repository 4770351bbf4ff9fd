"""Sources -> records -> clip store -> manifests: the one preparation path for every data set.

UCF101, HMDB51, a user's folder and the built-in sets differ only in how their readers (records.py,
chosen through the data set registry) find their file list and labels; storing, splitting,
manifests, the clip spec and the report are shared.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..clip import ClipSpec
from ..errors import SttsError
from ..files import write_text
from . import splits
from .records import AUTO_SPLIT, folder_flip_pairs
from .registry import get_dataset, list_datasets
from .store import IndexWriter, ShardWriter, encode_frames, open_store, read_index
from .video import read_kept_frames

MANIFESTS = "manifests"
STORE = "store"
REPORT = "report.txt"
INFO = "dataset.json"
CLASSES = "classes.txt"


_writer: ShardWriter | None = None


def _init_worker(store: Path) -> None:
    global _writer
    _writer = ShardWriter(store)


def _init_pool_worker(store: Path) -> None:
    # the parent alone answers Ctrl-C and SIGTERM (it stops the pool): no traceback from every worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init_worker(store)


def _interrupt(number, frame) -> None:
    raise KeyboardInterrupt


def _store_video(task: tuple[str, str, ClipSpec, int]) -> tuple[dict | None, tuple[str, str] | None]:
    key, path, spec, quality = task
    try:
        video = read_kept_frames(Path(path), spec)
        frame = video.frames[0]
        entry = _writer.append(key, encode_frames(video.frames, quality), height=frame.shape[0],
                               width=frame.shape[1], step=video.step, source_frames=video.decoded, fps=video.fps,
                               announced_frames=video.announced)
        return entry, None
    except SttsError as error:
        return None, (key, str(error))
    except Exception as error:  # noqa: BLE001 - any decoder failure means "skip this video", never stop the run
        return None, (key, f"{path}: unreadable ({type(error).__name__}: {error})")


def store_videos(tasks: list[tuple], store: Path, workers: int, desc: str, progress: bool) -> dict[str, str]:
    """Decode and store ``tasks`` in parallel; commit each finished video to the index. Returns skipped -> why."""
    skipped, index, pool = {}, IndexWriter(store), None
    bar = tqdm(total=len(tasks), unit="video", desc=desc, disable=not progress, dynamic_ncols=True)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        if workers <= 1 or len(tasks) <= 1:
            _init_worker(store)
            results = map(_store_video, tasks)
        else:
            pool = multiprocessing.get_context("fork").Pool(workers, _init_pool_worker, (store,))
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
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        bar.close()
        index.close()
    return skipped


def default_out(dataset: str, sources: list[Path]) -> Path:
    """Where ``stts prepare`` puts a data set when not told: ``data/<dataset>``, a folder's own name for ``folder``."""
    return Path("data") / (sources[0].name if dataset == "folder" and sources else dataset)


def check_generator_options(dataset: str, options: dict[str, Any]) -> None:
    """Generator options (videos per class, frames, frame size, classes) are for the built-in sets only."""
    if options and get_dataset(dataset).generate is None:
        built_in = [name for name in list_datasets() if get_dataset(name).generate is not None]
        raise SttsError(f"{dataset} makes no videos of its own: the generator options ({', '.join(sorted(options))}) "
                        f"are for {', '.join(built_in)}")


def prepare_dataset(dataset: str, sources: list[str | Path], out: str | Path, *, split: int = 1,
                    height: int | None = None, quality: int = 90, val_from_test: bool = False,
                    allow_missing: bool = False, workers: int | None = None, seed: int = 0,
                    hflip: bool | None = None, options: dict[str, Any] | None = None, progress: bool = True) -> dict:
    """Prepare ``out`` from ``sources`` (a built-in set makes its own); returns counts, skipped, missing, warnings.

    The clip spec's storage part (frame rule, stored ``height``) and flip behaviour are written
    into ``out/dataset.json``. Resumable: videos already in the store are not decoded again (an
    interrupted run keeps them); a refused one (SttsError) removes ``out`` when it made it.
    """
    out = Path(out)
    made = not out.exists()
    try:
        return _prepare(dataset, sources, out, split=split, height=height, quality=quality,
                        val_from_test=val_from_test, allow_missing=allow_missing, workers=workers, seed=seed,
                        hflip=hflip, options=options, progress=progress)
    except SttsError:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise


def check_classes(out: Path, classes: list[str], stored: str = "") -> None:
    """A data set needs at least 2 classes to tell apart (one trains to a perfect, empty score)."""
    if len(classes) < 2:
        named = f" ({', '.join(classes)})" if classes else ""
        raise SttsError(f"{out}: {len(classes)} class{'' if len(classes) == 1 else 'es'}{named}{stored}; a data set "
                        "needs at least 2 to tell apart: give each class its own folder of videos")


def _prepare(dataset: str, sources: list[str | Path], out: Path, *, split: int, height: int | None, quality: int,
             val_from_test: bool, allow_missing: bool, workers: int | None, seed: int, hflip: bool | None,
             options: dict[str, Any] | None, progress: bool) -> dict:
    kind = get_dataset(dataset)
    out.mkdir(parents=True, exist_ok=True)
    spec = ClipSpec(height=height or kind.height, hflip=kind.hflip if hflip is None else hflip)
    check_storage(out, spec)
    sources = [Path(s) for s in sources]
    if kind.generate is not None:
        unknown = sorted(set(options or {}) - set(kind.options))
        if unknown:
            raise SttsError(f"{dataset} has no option {', '.join(unknown)}; it takes {', '.join(kind.options)}")
        sources = kind.generate(out, seed, {**kind.options, **(options or {})}, workers, progress)
    elif not sources:
        raise SttsError(f"give the {dataset} sources to prepare: {kind.prepare_command(out)}")
    classes, records, videos_root = kind.read_records(sources, out, split=split, val_from_test=val_from_test, seed=seed)
    check_classes(out, classes)
    flip_pairs = list(kind.flip_pairs) or (folder_flip_pairs(sources, classes) if dataset == "folder" else [])
    if flip_pairs and hflip is None:
        spec = spec.replace(hflip=True)
    missing = sorted({r.path for r in records if not (videos_root / r.path).is_file()})
    if missing and not allow_missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SttsError(f"{len(missing)} videos named in the split lists are not in {videos_root}: {shown}; "
                        "pass --allow-missing to prepare the rest")
    store = out / STORE
    done = read_index(store)
    todo = sorted({r.path for r in records} - set(missing) - set(done))
    tasks = [(key, str(videos_root / key), spec, quality) for key in todo]
    workers = workers or len(os.sched_getaffinity(0))
    skipped = store_videos(tasks, store, workers, f"prepare {dataset}", progress)
    stored = read_index(store)
    with_videos = sorted({classes[r.label] for r in records if r.path in stored})
    first = min(skipped, default=None)
    check_classes(out, with_videos, " with a video stored" + (
        f" ({len(skipped)} skipped, the first: {skipped[first]})" if skipped else ""))
    kept, warnings = assign_splits([r for r in records if r.path in stored], classes, seed)
    counts = splits.split_counts(kept)
    partial = {key: f"decoded {e['source_frames']} of the {e['announced_frames']} frames it announces (truncated?)"
               for key, e in stored.items() if e.get("announced_frames") and e["source_frames"] < 0.9 * e["announced_frames"]}
    write_outputs(out, classes, kept, skipped, missing, partial, {
        "name": dataset, "classes": len(classes),
        # the spec's part decided here; training adds how clips are sampled
        "spec": spec.prepared_dict(), "quality": quality,
        "split": split, "val": val_description(dataset, val_from_test),
        "counts": counts, "skipped": len(skipped), "missing": len(missing), "partial": len(partial),
        "videos_root": str(videos_root), "flip_pairs": [list(pair) for pair in flip_pairs if set(pair) <= set(classes)],
        "fingerprint": fingerprint(spec, classes, kept, stored),
    })
    if val_from_test:
        warnings.append("val is a 20% sample of the test list, so it overlaps test: selecting checkpoints on it "
                        "leaks test data into model selection")
    empty = [name for name in splits.SPLITS if not counts[name]]
    if empty:
        raise SttsError(f"{out}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty after "
                        f"preparation ({counts['train']} train, {counts['val']} val, {counts['test']} test videos; "
                        f"see {out / REPORT}); give each split videos, or more videos per class")
    return {"classes": len(classes), **counts, "skipped": sorted(skipped), "missing": missing,
            "partial": sorted(partial), "reasons": {**skipped, **partial}, "warnings": warnings, "out": str(out)}


def check_storage(out: Path, spec: ClipSpec) -> None:
    """Refuse to add frames stored another way to a folder prepared before (they would mix in one store)."""
    if not (out / INFO).is_file():
        return
    before = ClipSpec.from_dict(json.loads((out / INFO).read_text(encoding="utf-8")).get("spec"), str(out / INFO))
    if before.storage() != spec.storage():
        raise SttsError(f"{out} was prepared with {before.storage()}, not {spec.storage()}; "
                        "choose another --out (or the same options)")


def assign_splits(records: list[splits.VideoRecord], classes: list[str], seed: int):
    """Splits among the videos actually stored, so that a skipped video cannot empty a split.

    A folder without lists is split here (stratified); one whose lists name no val video gets
    about 10 % of each class's train videos moved to val. Returns the records and warnings.
    """
    warnings = []
    if any(r.split == AUTO_SPLIT for r in records):
        by_class = {name: [r.path for r in records if r.label == label] for label, name in enumerate(classes)}
        _, records = splits.stratified_split(by_class, seed=seed)
        small = [name for name, paths in by_class.items() if len(paths) < 3]
        if small:
            warnings.append(f"{len(small)} class(es) with fewer than 3 videos ({', '.join(small[:5])}) went to "
                            "train whole: val and test measure nothing of them")
    elif records and not any(r.split == "val" for r in records):
        train = {name: [r.path for r in records if r.label == label and r.split == "train"]
                 for label, name in enumerate(classes)}
        _, carved = splits.stratified_split(train, fractions=(0.9, 0.1, 0.0), seed=seed)
        moved = {r.path for r in carved if r.split in ("val", "test")}
        records = [splits.VideoRecord(r.path, r.label, "val") if r.path in moved else r for r in records]
        warnings.append(f"no val videos listed: {len(moved)} train videos (about 10% of each class of 3 or more) "
                        "moved to val, so that best.pt is chosen on videos it was not trained on")
    return records, warnings


def val_description(dataset: str, val_from_test: bool) -> str:
    if val_from_test:
        return "20% sample of test (leaky)"
    return {"ucf101": "whole train groups, about 8%", "synthetic-motion": "whole train groups, about 8%",
            "hmdb51": "the videos tagged 0"}.get(dataset, "listed, or 10% of each class")


def fingerprint(spec: ClipSpec, classes: list[str], records: list[splits.VideoRecord], stored: dict[str, dict]) -> str:
    """A short hash of what training reads: classes, splits, labels, the stored bytes' CRCs and the storage spec."""
    digest = hashlib.sha256(json.dumps([spec.storage(), classes]).encode())
    for record in sorted(records, key=lambda r: r.path):
        digest.update(f"{record.path}\t{record.label}\t{record.split}\t{stored[record.path]['crc']}\n".encode())
    return digest.hexdigest()[:16]


def write_outputs(out: Path, classes: list[str], records, skipped: dict[str, str], missing: list[str],
                  partial: dict[str, str], info: dict) -> None:
    (out / MANIFESTS).mkdir(exist_ok=True)
    for split in splits.SPLITS:
        lines = [f"{r.path}\t{r.label}\n" for r in records if r.split == split]
        write_text(out / MANIFESTS / f"{split}.tsv", "".join(lines))
    write_text(out / CLASSES, "".join(f"{c}\n" for c in classes))
    report = [f"skipped\t{key}\t{why}\n" for key, why in sorted(skipped.items())]
    report += [f"missing\t{key}\tnamed in the split lists, not found\n" for key in missing]
    report += [f"partial\t{key}\t{why}\n" for key, why in sorted(partial.items())]
    write_text(out / REPORT, "".join(report))
    write_text(out / INFO, json.dumps(info, indent=2) + "\n")


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
