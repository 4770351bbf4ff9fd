"""Start or resume a training run from options given by name: what ``stts train`` and ``stts.train`` call."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from ..errors import SttsError
from .config import TrainConfig, resolve_config, resume_config

# what a recipe file (`stts train --config RUN/config.json`) does not give: where the run goes and what its data decided
NOT_REREAD = ("out", "classes", "num_classes", "decided")


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The options of an earlier run's config.json that make its recipe (not where it went or what it decided)."""
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SttsError(f"--config {path}: unreadable ({error}); give the config.json of an earlier `stts train`") from None
    if not isinstance(saved, dict) or "model_type" not in saved:
        raise SttsError(f"--config {path}: not the config.json of a `stts train` run")
    return {k: v for k, v in saved.items() if k not in NOT_REREAD}


def train_run(options: dict[str, Any], resume: str | Path | None = None,
              recipe: str | Path | None = None) -> dict[str, Any]:
    """Train with ``options`` (TrainConfig field names; None means not given), or resume the run folder ``resume``.
    ``recipe``: an earlier run's config.json whose recipe the options start from (they win).

    Returns what :func:`stts.engine.train.fit` returns on rank 0 (``run``, ``history``, ``interrupted``...).
    """
    from .distributed import launch, parse_gpu_ids
    from .train import fit

    unknown = sorted(set(options) - set(TrainConfig.option_names()))
    if unknown:
        raise SttsError(f"unknown training option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(TrainConfig.option_names()))}")
    if recipe is not None:
        if resume is not None:
            raise SttsError("--config and --resume: a resumed run keeps its own config; give one of them")
        options = {**read_recipe(recipe), **{k: v for k, v in options.items() if v is not None}}
    if resume is not None:
        folder = Path(resume)
        folder = folder.parent if folder.is_file() else folder
        if not (folder / "last.pt").is_file():
            raise SttsError(f"--resume {resume}: no last.pt there; give the run folder of an earlier `stts train`")
        config = resume_config(load_checkpoint(folder / "last.pt")["config"], options, folder)
    else:
        out = options.get("out")
        if out and (Path(out) / "last.pt").exists():
            raise SttsError(f"--out {out} already holds a run; continue it with --resume {out} "
                            "or choose another folder")
        config = resolve_config(options)
    devices = parse_gpu_ids(config.gpu_ids)
    if devices[0].type == "cpu" and os.environ.get("RANK", "0") == "0":
        ignored = f" (--gpu_ids {config.gpu_ids} ignored)" if config.gpu_ids else ""
        print(f"stts train: no CUDA GPU visible: training on the CPU{ignored}")
    return launch(functools.partial(fit, resume=resume is not None), config, devices) or {}
