"""Checkpoints: written atomically, read with ``weights_only=True``, checked before use.

A checkpoint is a dict holding ``format`` (``"stts-checkpoint"``), ``version``, ``model`` (a
state dict), ``config`` (the resolved run options: ``model_type``, ``width``, ``blocks``, ...),
``classes`` (class names, index order), ``spec`` (the clip spec: how a video becomes its input,
see :mod:`stts.clip`), ``precision`` (the one it was trained in) and ``dataset`` (the name and
fingerprint of the data it was trained on). Training adds optimizer, scheduler, scaler, epoch,
RNG states and the best metric.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .clip import ClipSpec
from .errors import SttsError
from .files import atomic_open
from .models import build_model

FORMAT = "stts-checkpoint"
VERSION = 2  # 2: the clip spec, the precision and the data set's fingerprint


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (a crash leaves any earlier file intact)."""
    with atomic_open(path, "wb") as file:
        torch.save({"format": FORMAT, "version": VERSION, **state}, file)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a stts checkpoint with ``weights_only=True``; anything else is refused with a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SttsError(f"{path}: checkpoint not found")
    state = read_torch_file(path, map_location)
    if isinstance(state, dict) and state.get("format") != FORMAT and all(isinstance(v, torch.Tensor)
                                                                         for v in state.values()) and state:
        raise SttsError(f"{path}: a bare state dict (the original STTS code's format?), not a stts checkpoint; "
                        "convert it with `stts convert ORIGINAL.pth --model_type NAME --classes CLASSES.txt`")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SttsError(f"{path}: not a stts checkpoint (no '{FORMAT}' marker); train one with `stts train`")
    if state.get("version", 1) < VERSION:
        raise SttsError(f"{path}: written by an older stts, without a clip spec (how frames become the network's "
                        "input); train it again with this version")
    for key in ("model", "config", "classes", "spec"):
        if key not in state:
            raise SttsError(f"{path}: stts checkpoint is missing '{key}'")
    return state


def read_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with its failures turned into one line naming the file."""
    try:
        # mmap: tensors are read from the page cache as they are used, not copied at load (torch.save's zip
        # format only; a legacy file is read whole)
        return torch.load(path, map_location=map_location, weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if not found:
            # torch's own text suggests weights_only=False, which is exactly what must not be done here
            raise SttsError(f"{path}: not a readable PyTorch checkpoint (not a torch.save archive of "
                            "tensors and plain data)") from None
        raise SttsError(f"{path}: refused to load with weights_only=True: it holds {found.group(1)}, "
                        "not only tensors and plain data") from None
    except Exception as error:  # a truncated or foreign file fails deep inside the unpickler in many ways
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise SttsError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {reason})") from None


def checkpoint_spec(state: dict[str, Any], path: str | Path = "checkpoint") -> ClipSpec:
    return ClipSpec.from_dict(state.get("spec"), str(path))


def meta_network(config: dict[str, Any], num_classes: int, in_channels: int) -> nn.Module:
    """The network a checkpoint's config describes, on the meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        return build_model(config["model_type"], num_classes, width=config.get("width", 64),
                           blocks=config.get("blocks", (2, 2, 2, 2)), in_channels=in_channels)


def model_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint") -> nn.Module:
    """Rebuild the checkpoint's network from its config, its parameters being the checkpoint's own tensors
    (channels-last-3d where 5-D).

    The network is built on the meta device and the loaded tensors are assigned, not copied: a
    full-width STTS-A then takes its weights' memory once, not twice (a fresh initialisation plus the
    loaded copy), and skips the random initialisation. The 5-D weights are made channels-last in
    ``state`` one by one, so the conversion holds at most one extra tensor at a time.
    """
    model = meta_network(state["config"], len(state["classes"]), checkpoint_spec(state, path).network_channels)
    weights = state["model"]
    for name, tensor in weights.items():
        if tensor.dim() == 5:
            weights[name] = tensor.contiguous(memory_format=torch.channels_last_3d)
    load_weights(model, weights, path, assign=True)
    return model


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, skip_classifier: bool = False,
                 assign: bool = False) -> None:
    """Load ``weights`` into ``model``, explaining a mismatch instead of dumping a key list.

    With ``skip_classifier`` the final linear layer is left as initialised (warm start
    from a network trained on another dataset, as the seed does).
    """
    own = model.state_dict()
    classifier = last_linear_prefix(model) if skip_classifier else None
    if classifier:
        weights = {k: v for k, v in weights.items() if not k.startswith(classifier)}
    missing = [k for k in own if k not in weights and not (classifier and k.startswith(classifier))]
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
    model.load_state_dict(weights, strict=not skip_classifier, assign=assign)


def last_linear_prefix(model: nn.Module) -> str:
    """State-dict prefix of the classifier (the last ``nn.Linear``), e.g. ``'fc.'``."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return name + "."


def convert_original(original: str | Path, model_type: str, out: str | Path, classes: list[str] | None = None,
                     data_type: str | None = None, spec: ClipSpec | None = None) -> Path:
    """An original STTS checkpoint (``torch.save(model.state_dict())``, with or without DataParallel's
    ``module.``) -> a stts checkpoint of ``model_type`` that infer, evaluate, export and
    ``train --pretrained`` accept.

    ``classes``: the names in the original's output order. ``data_type`` 'ucf101' or 'hmdb51'
    stands for the original's order (sorted folder names) and reorders the outputs into stts's
    order of that data set, so the checkpoint evaluates on it directly. The spec records the
    original's input: BGR frames (OpenCV, never converted), values / 255, the seed's frame rule,
    height 128, 32x112x112 clips.
    """
    from .data.classes import OFFICIAL
    from .models.original import convert_state_dict

    original = Path(original)
    weights = read_torch_file(original)
    if isinstance(weights, dict) and isinstance(weights.get("state_dict"), dict):
        weights = weights["state_dict"]
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise SttsError(f"{original}: not a state dict (a torch.save of the network's tensors by name)")
    converted = convert_state_dict(weights, model_type)
    rows = converted.get("fc.weight", torch.empty(0, 0)).shape[0]
    if data_type is not None:
        if data_type not in OFFICIAL:
            raise SttsError(f"--data_type {data_type!r}: choose {' or '.join(OFFICIAL)}, or give --classes")
        ours = list(OFFICIAL[data_type])
        theirs = sorted(ours)
        if rows != len(ours):
            raise SttsError(f"{original}: its classifier has {rows} outputs, {data_type} has {len(ours)} classes")
        order = torch.tensor([theirs.index(name) for name in ours])
        converted["fc.weight"], converted["fc.bias"] = converted["fc.weight"][order], converted["fc.bias"][order]
        classes = ours
    if not classes or len(classes) != rows:
        raise SttsError(f"{original}: its classifier has {rows} outputs, the class list {len(classes or [])} names")
    model = build_model(model_type, rows)
    load_weights(model, converted, original)
    spec = spec or ClipSpec(channels="BGR")
    config = {"model_type": model_type, "width": 64, "blocks": [2, 2, 2, 2], "data_type": data_type or "converted",
              "converted_from": str(original)}
    return save_checkpoint({"model": model.state_dict(), "config": config, "classes": list(classes),
                            "spec": spec.to_dict(), "precision": "fp32",
                            "dataset": {"name": data_type, "root": None, "fingerprint": None}}, out)
