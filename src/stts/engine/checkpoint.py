"""Checkpoints: written atomically, read with ``weights_only=True``, checked before use.

A checkpoint is a dict holding at least ``format`` (``"stts-checkpoint"``), ``version``,
``model`` (a state dict), ``config`` (the resolved run options: ``model_type``,
``num_classes``, ``width``, ``blocks``, ``clip_len``, ``crop_size``, ``data_type``, ...)
and ``classes`` (class names, index order). Training adds optimizer, scheduler,
scaler, epoch, RNG states and the best metric.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SttsError
from ..models import build_model

FORMAT = "stts-checkpoint"
VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or an error while writing leaves any previous file at ``path`` intact;
    the error is raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state}
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a stts checkpoint with ``weights_only=True``; anything else is refused with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise SttsError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if not found:
            # torch's own text suggests weights_only=False, which is exactly what must not be done here
            raise SttsError(f"{path}: not a readable PyTorch checkpoint (not a torch.save archive of "
                            "tensors and plain data)") from None
        raise SttsError(f"{path}: refused to load with weights_only=True: it holds {found.group(1)}, "
                        "not only tensors and plain data; not a stts checkpoint") from None
    except Exception as error:  # a truncated or foreign file fails deep inside the unpickler in many ways
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise SttsError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SttsError(f"{path}: not a stts checkpoint (no '{FORMAT}' marker); train one with `stts train`")
    for key in ("model", "config", "classes"):
        if key not in state:
            raise SttsError(f"{path}: stts checkpoint is missing '{key}'")
    return state


def model_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild the checkpoint's network from its config and load its weights."""
    config = state["config"]
    model = build_model(
        config["model_type"],
        len(state["classes"]),
        width=config.get("width", 64),
        blocks=config.get("blocks", (2, 2, 2, 2)),
    )
    load_weights(model, state["model"], path)
    return model


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, skip_classifier: bool = False) -> None:
    """Load ``weights`` into ``model``, explaining a mismatch instead of dumping a key list.

    With ``skip_classifier`` the final linear layer is left as initialised (warm start
    from a network trained on another dataset, as the seed does).
    """
    own = model.state_dict()
    if skip_classifier:
        classifier = last_linear_prefix(model)
        weights = {k: v for k, v in weights.items() if not k.startswith(classifier)}
    missing = [k for k in own if k not in weights and not (skip_classifier and k.startswith(classifier))]
    unexpected = [k for k in weights if k not in own]
    wrong_shape = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if missing or unexpected or wrong_shape:
        details = []
        if wrong_shape:
            k = wrong_shape[0]
            details.append(f"{k} has shape {tuple(weights[k].shape)}, the network expects {tuple(own[k].shape)}")
        if missing:
            details.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        raise SttsError(f"{path}: weights do not fit this network: {'; '.join(details)}")
    model.load_state_dict(weights, strict=not skip_classifier)


def last_linear_prefix(model: nn.Module) -> str:
    """State-dict prefix of the classifier (the last ``nn.Linear``), e.g. ``'fc.'``."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return name + "."


def capture_rng() -> dict[str, Any]:
    """This process's random states (torch, CUDA, numpy, random) in a ``weights_only``-loadable form."""
    import random

    import numpy as np

    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")), "position": position,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["position"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
