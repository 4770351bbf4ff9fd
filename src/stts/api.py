"""The Python API: what the ``stts`` command does, as calls. Exported by ``stts`` itself (``stts.load``...).

Each call runs the code its command runs: :func:`load` is how ``stts infer`` and ``stts serve``
load a checkpoint, :meth:`Model.predict` reads a video as ``stts infer`` does (its windows,
batches and record), :func:`train` is ``stts train`` and :func:`prepare` is ``stts prepare``.
User errors (a missing file, a bad option) raise :class:`stts.SttsError` with the one-line message
the command prints.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .clip import ClipSpec
from .errors import SttsError
from .inference.events import RECORD_KEYS, Segment, SourceEvents, WindowPrediction, ranked, window_predictions
from .inference.predict import Predictor, VideoPrediction
from .inference.report import video_record
from .inference.sources import collect_sources

__all__ = ["Model", "Prediction", "Run", "Segment", "Stream", "WindowPrediction", "load", "prepare", "train"]

PathLike = str | os.PathLike


@dataclass
class Prediction:
    """What a trained network sees in one video: its class, windows and segments.

    ``to_dict()`` is the record ``stts infer --json`` prints for the video (same ``topk`` and ``stride``).
    """

    video: str  #: the source as ``stts infer`` names it (its path, URL, ``stdin``, or the name given for frames)
    classes: list[str]  #: the checkpoint's classes
    probabilities: np.ndarray  #: (classes,) float32: the mean of the windows' probabilities
    windows: list[WindowPrediction]  #: every window, in order
    segments: list[Segment]  #: which class when: the windows merged into stretches that tile the video
    fps: float  #: frames a second of the source
    frames: int  #: decoded frames
    warnings: list[str] = field(default_factory=list)  #: what ``stts infer`` prints as warnings for this video
    _record: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_record(cls, record: dict[str, Any], prediction: VideoPrediction, fps: float,
                    warnings: list[str] | None = None) -> Prediction:
        """Built from :func:`stts.inference.report.video_record`'s record and the windows it was made from."""
        return cls(record["video"], prediction.classes, prediction.probabilities, window_predictions(prediction, fps),
                   [Segment.from_dict(s) for s in record["segments"]], fps, record["frames"], list(warnings or []),
                   record)

    @property
    def label(self) -> str:
        """The most probable class over the whole video."""
        return self._record["top1"]

    @property
    def probability(self) -> float:
        """Its probability (the mean over the windows), rounded to 6 places as in the record."""
        return self._record["probability"]

    def topk(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes over the video as (class, probability), most probable first."""
        return ranked(self.classes, self.probabilities, k)

    def to_dict(self) -> dict[str, Any]:
        """The record ``stts infer --json`` prints for this video: ``video``, ``top1``, ``probability``, ``topk``,
        ``windows`` (each with its ``topk``) and ``segments``."""
        return {key: self._record[key] for key in RECORD_KEYS}


class Stream:
    """Windows and segments of one source as they come: iterate it once. Made by :meth:`Model.stream`.

    Yields a :class:`WindowPrediction` for each window as soon as the network has seen it and a
    :class:`Segment` as soon as no later window can change it; when the source ends, the segments
    still open. After the loop, :attr:`prediction` holds the whole video's :class:`Prediction`.
    :meth:`stop` (from any thread, or in the loop) ends a live source as if it had ended: the windows
    and segments left still come, and :attr:`prediction` is made. Leaving the loop with ``break``
    closes the source without them (``prediction`` stays None).
    """

    def __init__(self, events: SourceEvents, stop: threading.Event):
        self._events, self._stop = events, stop
        self.prediction: Prediction | None = None  #: the video's prediction, once the loop has ended

    def __iter__(self) -> Iterator[WindowPrediction | Segment]:
        yield from self._events
        events = self._events
        self.prediction = Prediction.from_record(events.record, events.prediction, events.record["fps"],
                                                 events.warnings)

    def stop(self) -> None:
        """End the source after the frame being read; the windows and segments left still come."""
        self._stop.set()


class Model:
    """A trained checkpoint loaded for use: made by :func:`load`."""

    def __init__(self, predictor: Predictor):
        self._predictor = predictor

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of the probabilities."""
        return list(self._predictor.classes)

    @property
    def spec(self) -> ClipSpec:
        """The clip spec: how decoded frames become the network's input (it travels in the checkpoint)."""
        return self._predictor.spec

    @property
    def network(self) -> nn.Module:
        """The network for inference: eval mode, batch norms folded into the convolutions, on :attr:`device`.

        It is not meant for training. To fine-tune, warm start a run from the checkpoint
        (``stts.train(data=..., pretrained="best.pt")``, the classifier re-initialised for the new
        classes), or rebuild the trainable network with its batch norms:
        ``stts.checkpoint.model_from_checkpoint(stts.checkpoint.load_checkpoint("best.pt"))``.
        """
        return self._predictor.loaded.model

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self._predictor.device

    @property
    def precision(self) -> str:
        """The precision it runs in: fp32, bf16 or fp16."""
        return self._predictor.precision

    @property
    def batch_size(self) -> int:
        """Windows a forward pass."""
        return self._predictor.batch_size

    @property
    def path(self) -> Path:
        """The checkpoint's path."""
        return self._predictor.path

    @property
    def config(self) -> dict[str, Any]:
        """The training run's options, as stored in the checkpoint."""
        return dict(self._predictor.config)

    def default_stride(self) -> int:
        """Kept frames between window starts when no ``stride`` is given: a quarter of a clip's span."""
        return self._predictor.default_stride()

    def predict(self, source: PathLike | np.ndarray, *, fps: float | None = None, stride: int | None = None,
                topk: int = 5, name: str = "frames", live: bool = False) -> Prediction:
        """The classes seen in one video: a file, a URL FFmpeg opens, ``-`` (stdin), a ``/dev/videoN`` camera,
        or decoded frames, a uint8 array (T, H, W, 3) RGB with their ``fps``. Writes no files.

        ``stride``: kept frames between window starts (default a quarter of a clip); ``topk``: classes
        listed for the video and each window in :meth:`Prediction.to_dict`; ``name``: the ``video`` of
        the record made from frames; ``live``: read the source at its own pace, skipping windows the
        network cannot keep up with (a camera always is). A file, URL or stream is read as
        ``stts infer`` reads it: ``predict(path).to_dict()`` is the record ``stts infer path --json``
        prints with the same ``--topk`` and ``--stride``. A camera or live stream runs until it ends;
        :meth:`stream` gives its windows as they come and can be stopped.
        """
        _check_counts(topk, stride)
        if isinstance(source, str | os.PathLike):
            if fps is not None:
                raise SttsError("fps= is for frames given as an array; a video file or stream says its own")
            stream = self.stream(source, stride=stride, topk=topk, live=live)
            for _ in stream:
                pass
            return stream.prediction
        return self._predict_frames(source, fps, stride, topk, name)

    def stream(self, source: PathLike, *, stride: int | None = None, topk: int = 5, live: bool = False) -> Stream:
        """Windows and segments of a file, URL, stdin (``-``) or camera (``/dev/videoN``) as they come: see
        :class:`Stream`. Options as :meth:`predict`'s."""
        _check_counts(topk, stride)
        sources = collect_sources([os.fspath(source)], live=live)
        if len(sources) != 1:
            raise SttsError(f"{source}: a folder of {len(sources)} videos; predict each of them")
        stop = threading.Event()
        return Stream(SourceEvents(self._predictor, sources[0], stride, topk, stop), stop)

    def predict_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Class probabilities of clips made as the spec says: uint8 RGB (N, 3, T, H, W), T, H and W those of
        ``spec.input_shape()``; (N, classes) float32 on the CPU. Runs :attr:`batch_size` clips a pass."""
        expected = self.spec.input_shape()
        if not isinstance(clips, torch.Tensor) or clips.dtype != torch.uint8 or clips.dim() != 5 \
                or tuple(clips.shape[1:]) != expected:
            shape = tuple(clips.shape) if hasattr(clips, "shape") else type(clips).__name__
            raise SttsError(f"clips must be a uint8 tensor (N, {', '.join(map(str, expected))}), got "
                            f"{getattr(clips, 'dtype', '')} {shape}")
        loaded, size = self._predictor.loaded, self.batch_size
        if len(clips) == 0:
            return torch.zeros(0, len(self.classes))
        return torch.cat([loaded.probabilities(clips[i:i + size]) for i in range(0, len(clips), size)])

    def _predict_frames(self, frames: Any, fps: float | None, stride: int | None, topk: int, name: str) -> Prediction:
        array = np.asarray(frames)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise SttsError(f"frames must be a uint8 array (T, H, W, 3) of RGB frames, got {array.dtype} {array.shape}")
        if fps is None or not fps > 0:
            raise SttsError(f"frames need their rate: predict(frames, fps=25), got fps={fps!r}")
        prediction = self._predictor.predict(array, stride, name=name)
        record = video_record(name, prediction, min(topk, len(self.classes)), fps, len(array))
        return Prediction.from_record(record, prediction, fps)

    def __repr__(self) -> str:
        return (f"Model({str(self.path)!r}, {self.config.get('model_type', '?')}, {len(self.classes)} classes, "
                f"{self.device}, {self.precision})")


def _check_counts(topk: int, stride: int | None) -> None:
    if topk < 1 or (stride is not None and stride < 1):
        raise SttsError(f"topk and stride must be at least 1, got topk={topk}, stride={stride}")


def load(checkpoint: PathLike, device: str = "auto", precision: str = "auto", batch_size: int | None = None) -> Model:
    """Load a checkpoint written by ``stts train`` (``best.pt``, ``last.pt``) for use.

    ``device``: ``auto`` (a GPU when there is one), ``cpu`` or ``cuda[:N]``. ``precision``: ``auto``
    (the precision it was trained in where this device runs it natively, else fp32), ``bf16``,
    ``fp16`` or ``fp32``. ``batch_size``: windows a forward pass (default: 8 on a GPU; on a CPU as
    many, 1 to 8, as keep a pass's activations small). The same loading as ``stts infer``.
    """
    return Model(Predictor(checkpoint, device, precision, batch_size))


@dataclass
class Run:
    """A training run's folder and what it learned. Made by :func:`train`."""

    folder: Path  #: the run folder (config.json, statistics.csv, best.pt, last.pt, plots, TensorBoard logs)
    interrupted: bool = False  #: stopped early (Ctrl-C, SIGTERM); ``train(resume=run.folder)`` continues it

    @property
    def best(self) -> Path:
        """The checkpoint of the best epoch on the val split, the lowest val loss over 3 epochs (``best.pt``)."""
        return self.folder / "best.pt"

    @property
    def last(self) -> Path:
        """The checkpoint of the last epoch, with the optimizer's state to resume from (``last.pt``)."""
        return self.folder / "last.pt"

    @property
    def statistics(self) -> list[dict[str, float]]:
        """One row per epoch from ``statistics.csv``: ``epoch``, then loss, top-1 and top-5 of each split, and more."""
        from .engine.reporting import read_statistics

        return read_statistics(self.folder / "statistics.csv")

    def load(self, device: str = "auto", precision: str = "auto") -> Model:
        """The best checkpoint, loaded for use (see :func:`load`)."""
        return load(self.best, device, precision)


def train(data: PathLike | None = None, *, preset: str | None = None, out: PathLike | None = None,
          resume: PathLike | None = None, config: PathLike | None = None, **options: Any) -> Run:
    """Train a network, as ``stts train`` does; returns the :class:`Run`.

    ``data``: a built-in data set's name (``synthetic-motion``, ``ucf101``...) or the folder
    :func:`prepare` made. ``preset``: ``small`` for a CPU (built-in sets use it unless told
    otherwise). ``out``: the run folder (default ``runs/<data>_<model>_<time>``). ``options``: the
    training options by name (``stts.engine.config.TrainConfig.option_names()``, the flags of
    ``stts train`` with underscores) with Python values, e.g. ``epochs=1``, ``width=16``, ``lr=3e-3``,
    ``model_type="c3d"``, ``clip_stride="auto"``, ``stabilise=True`` or ``"auto"``,
    ``train_views=(0.8, 1.0)``, ``pretrained="best.pt"`` (a warm start), ``tensorboard=False``:
    ``stts train --help`` says what each does. ``resume``: a run folder to continue with its saved
    config (then only ``epochs``, ``workers``, ``gpu_ids``, ``tensorboard``, ``visdom`` and
    ``data_root`` may be given). ``config``: an earlier run's ``config.json``, whose recipe is trained
    again (as ``stts train --config``; its auto options decided again from ``data``; the options given win).
    """
    from .engine.session import train_run

    if "data_type" in options:
        raise SttsError("give the data as data=..., not data_type=...")
    if data is None and resume is None and config is None:
        raise SttsError("give the data to train on: stts.train(data='synthetic-motion' or a prepared folder, ...)")
    given = {**options, "data_type": None if data is None else os.fspath(data), "preset": preset,
             "out": None if out is None else os.fspath(out)}
    result = train_run(given, resume=None if resume is None else os.fspath(resume),
                       recipe=None if config is None else os.fspath(config))
    folder = result.get("run") or out or (resume and (Path(resume).parent if Path(resume).is_file() else resume))
    if folder is None:  # several GPUs on this machine: the processes that trained do not hand their result back
        raise SttsError("trained on several GPUs; give out= to know where the run is")
    return Run(Path(folder), bool(result.get("interrupted")))


def prepare(kind: str, *sources: PathLike, out: PathLike | None = None, split: int = 1, size: int | None = None,
            quality: int = 90, hflip: bool | None = None, val_from_test: bool = False, allow_missing: bool = False,
            workers: int | None = None, seed: int = 0, progress: bool = False, **options: Any) -> dict[str, Any]:
    """Prepare a data set for training, as ``stts prepare`` does; returns its counts.

    ``kind``: ``ucf101``, ``hmdb51``, ``folder`` (a folder ROOT/<class>/<video>) or a built-in set
    (``synthetic-motion``, ``motion-*``, which make their own videos: no ``sources``). ``sources``: the
    archives or folders. ``out``: the prepared folder (default ``data/<kind>``, a folder's own name
    for ``folder``). ``size``: stored frame height; ``hflip``: whether training may mirror clips
    (None: as the data set says). ``options``: a built-in set's generator options, e.g.
    ``train_per_class=4``, ``test_per_class=2``, ``frames=24``, ``width=64``, ``height=48``, ``classes=4``.
    Returns ``classes``, ``train``, ``val``, ``test`` (video counts), ``skipped``, ``missing``,
    ``partial`` (lists of videos), ``warnings`` and ``out``. Preparing again resumes: videos already
    stored are kept.
    """
    from .data.prepare import check_generator_options, default_out, prepare_dataset

    check_generator_options(kind, options)
    target = Path(out) if out is not None else default_out(kind, [Path(s) for s in sources])
    return prepare_dataset(kind, list(sources), target, split=split, height=size, quality=quality,
                           val_from_test=val_from_test, allow_missing=allow_missing, workers=workers, seed=seed,
                           hflip=hflip, options=options, progress=progress)
