"""One name -> data set table, beside the model registry: ``stts prepare``'s choices, where prepared data
lives, how its sources are read, its flip behaviour and its default training preset all come from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SttsError
from . import records


@dataclass(frozen=True)
class DatasetKind:
    name: str
    help: str
    read_records: Callable[..., tuple[list[str], list, Path]]  # (sources, out, **options) -> classes, records, root
    sources: str = ""  # what to give `stts prepare` (the files users download); empty for generated sets
    height: int = 128  # stored frame height by default
    hflip: bool = True  # whether a horizontal flip keeps every class (or turns flip_pairs into each other)
    flip_pairs: tuple[tuple[str, str], ...] = ()
    # a built-in set makes its own sources: generate(out, seed, options, workers, progress) -> sources
    generate: Callable[..., list[Path]] | None = None
    preset: str | None = None  # the training preset it uses unless told otherwise
    options: dict[str, Any] = field(default_factory=dict)  # generator options and their defaults

    @property
    def built_in(self) -> bool:
        """Lives at ``data_root/<name>`` (every kind but a user's folder)."""
        return self.name != "folder"

    def prepare_command(self, root: Path) -> str:
        sources = self.sources or ("VIDEOS_ROOT" if self.name == "folder" else "")
        return " ".join(part for part in ("stts prepare", self.name, sources, f"--out {root}") if part)


_KINDS: dict[str, DatasetKind] = {}


def register_dataset(kind: DatasetKind) -> DatasetKind:
    if kind.name in _KINDS:
        raise ValueError(f"data set {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def list_datasets() -> list[str]:
    return list(_KINDS)


def get_dataset(name: str) -> DatasetKind:
    if name not in _KINDS:
        raise SttsError(f"unknown data set {name!r}; choose one of: {', '.join(_KINDS)}")
    return _KINDS[name]


def kind_of(data_type: str) -> DatasetKind | None:
    """The registered built-in kind named ``data_type``, or None for a prepared folder's path."""
    kind = _KINDS.get(data_type)
    return kind if kind is not None and kind.built_in else None


def _synthetic(out: Path, seed: int, options: dict[str, Any], workers: int | None, progress: bool) -> list[Path]:
    from .synthetic import generate_synthetic_motion

    return [generate_synthetic_motion(out / "videos", seed, workers=workers, progress=progress, **options)]


register_dataset(DatasetKind(
    "ucf101", "UCF101: 101 classes, 13,320 videos", records.ucf_records,
    sources="UCF101.rar UCF101TrainTestSplits-RecognitionTask.zip"))
register_dataset(DatasetKind(
    "hmdb51", "HMDB51: 51 classes, 6,766 videos", records.hmdb_records,
    sources="hmdb51_org.rar test_train_splits.rar"))
# a user's classes may be turned into each other by a flip (left/right): no flips unless the folder says
register_dataset(DatasetKind(
    "folder", "a folder of your own videos, ROOT/<class>/<video>", records.folder_records, hflip=False))
register_dataset(DatasetKind(
    "synthetic-motion", "built in: 8 classes that differ only in how a shape moves", records.ucf_records,
    height=64, flip_pairs=(("MoveLeft", "MoveRight"), ("RotateClockwise", "RotateAnticlockwise")),
    generate=_synthetic, preset="small",
    options={"train_per_class": 60, "test_per_class": 21, "frames": 32, "width": 128, "height": 96, "classes": 8}))


def _motion(family: str):
    def generate(out: Path, seed: int, options: dict[str, Any], workers: int | None, progress: bool) -> list[Path]:
        from .motion import generate_family

        return [generate_family(family, out / "videos", seed=seed, workers=workers, progress=progress, **options)]

    return generate


def _register_motion_suite() -> None:
    from .motion import SUITE

    for family, suite in SUITE.items():
        register_dataset(DatasetKind(
            f"motion-{family}", f"motion suite: {suite.about}", records.folder_records, flip_pairs=suite.flip_pairs,
            generate=_motion(family), preset="small",
            options=dict(zip(("train_per_class", "val_per_class", "test_per_class"), suite.videos, strict=True))))


_register_motion_suite()
