"""The original STTS code's parameter names -> stts's, for R(2+1)D, STTS and STTS-A: a pure renaming.

The original saved ``model.state_dict()`` of modules named after their role, under DataParallel
with a ``module.`` prefix: ``feature.conv1`` (the stem), ``feature.conv2`` .. ``feature.conv5``
(the stages), each holding ``block1`` and ``blocks.N``; a block holds ``conv1``, ``bn1``, ``conv2``,
``bn2`` and, when it downsamples, ``downsampleconv`` and ``downsamplebn``; a factorised conv holds
``spatial_conv``, ``bn1``, ``temporal_conv``, ``bn2`` (in the order it runs them) and, with
attention, ``attn.W_l``, ``attn.W_g``, ``attn.phi`` and the fusing ``conv``; an STTS conv holds an
ST and a TS factorised conv side by side, the ST one first, whatever they are called; the
classifier is ``linear`` (or ``fc``). The networks compute the same function, so a renaming is all
it takes (tests/original_networks.py rebuilds them with those names and checks the logits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..errors import SttsError

CONVERTIBLE = ("r2plus1d", "stts", "stts-a")
# position in stts's FactorisedConv (conv, BN, ReLU, conv, BN, ReLU) of the original's named parts
ST_PARTS = {"spatial_conv": "0", "bn1": "1", "temporal_conv": "3", "bn2": "4"}
TS_PARTS = {"temporal_conv": "0", "bn1": "1", "spatial_conv": "3", "bn2": "4"}
GATE_PARTS = {"attn.W_l": "gate.theta_l", "attn.W_g": "gate.theta_g", "attn.phi": "gate.psi", "conv": "gate.fuse"}
BLOCK_PARTS = {"conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv2.0", "bn2": "conv2.1",
               "downsampleconv": "shortcut.0", "downsamplebn": "shortcut.1"}


def strip_module_prefix(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DataParallel's ``module.`` prefix removed (from every key, or from none)."""
    if weights and all(key.startswith("module.") for key in weights):
        return {key[len("module."):]: value for key, value in weights.items()}
    return dict(weights)


def convert_state_dict(weights: Mapping[str, torch.Tensor], model_type: str) -> dict[str, torch.Tensor]:
    """The original's state dict of ``model_type`` with stts's names. SttsError names what does not fit."""
    if model_type == "c3d":
        raise SttsError("the original code's C3D has no ReLU between its convolutions, so its features are a "
                        "linear map of the input, unlike stts's c3d: stts does not run it; convert an R(2+1)D, "
                        "STTS or STTS-A network, or train c3d with stts")
    if model_type not in CONVERTIBLE:
        raise SttsError(f"--model_type {model_type!r}: choose one of {', '.join(CONVERTIBLE)}")
    weights = strip_module_prefix(weights)
    branches = branch_order(weights) if model_type != "r2plus1d" else {}
    converted = {}
    for key, value in weights.items():
        converted[rename(key, model_type, branches)] = value
    return converted


def branch_order(weights: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """For each STTS conv of the original, its two branch modules' names -> 'st' or 'ts' (the first is ST)."""
    order: dict[str, list[str]] = {}
    for key in weights:
        match = re.match(r"(.*?)\.([^.]+)\.(spatial_conv|temporal_conv)\.weight$", key)
        if match:
            names = order.setdefault(match.group(1), [])
            if match.group(2) not in names:
                names.append(match.group(2))
    branches = {}
    for prefix, names in order.items():
        if len(names) != 2:
            raise SttsError(f"the original's STTS conv {prefix} has {len(names)} factorised branches ({', '.join(names)}),"
                            " not an ST and a TS one: not an STTS network's weights (try --model_type r2plus1d)")
        branches[f"{prefix}.{names[0]}"], branches[f"{prefix}.{names[1]}"] = "st", "ts"
    return branches


def rename(key: str, model_type: str, branches: Mapping[str, str]) -> str:
    parts = key.split(".")
    if parts[0] in ("linear", "fc") and len(parts) == 2:
        return f"fc.{parts[1]}"
    base = 1 if parts[0] == "feature" else 0
    match = re.fullmatch(r"conv([1-5])", parts[base]) if len(parts) > base else None
    if not match:
        raise SttsError(f"unexpected weight {key!r} in the original's state dict: not an R(2+1)D/STTS network")
    layer = int(match.group(1))
    if layer == 1:
        return "stem." + conv_part(key, parts[: base + 1], parts[base + 1:], model_type, branches, attention=False)
    if parts[base + 1:base + 2] == ["block1"]:
        block, at = 0, base + 2
    elif parts[base + 1:base + 2] == ["blocks"] and len(parts) > base + 2 and parts[base + 2].isdigit():
        block, at = int(parts[base + 2]) + 1, base + 3
    else:
        raise SttsError(f"unexpected weight {key!r} in the original's state dict (a stage holds block1 and blocks.N)")
    role = parts[at] if len(parts) > at else ""
    if role not in BLOCK_PARTS:
        raise SttsError(f"unexpected weight {key!r} in the original's state dict (unknown block part {role!r})")
    ours = f"stages.{layer - 2}.{block}.{BLOCK_PARTS[role]}"
    if role in ("bn1", "bn2", "downsamplebn"):
        return f"{ours}.{'.'.join(parts[at + 1:])}"
    gated = model_type == "stts-a" and layer > 2
    return f"{ours}.{conv_part(key, parts[: at + 1], parts[at + 1:], model_type, branches, attention=gated)}"


def conv_part(key: str, prefix: list[str], rest: list[str], model_type: str, branches: Mapping[str, str],
              attention: bool) -> str:
    """Inside one conv module of the original (``prefix``): its factorised conv, or an STTS conv's branches."""
    branch = ""
    if model_type != "r2plus1d":
        branch = branches.get(".".join([*prefix, rest[0]])) if rest else None
        if branch is None:
            raise SttsError(f"unexpected weight {key!r}: not in an ST or TS branch of an STTS conv")
        rest = rest[1:]
    name, param = ".".join(rest[:-1]), rest[-1] if rest else ""
    parts = TS_PARTS if branch == "ts" else ST_PARTS
    if name in parts:
        inner = f"conv.{parts[name]}" if attention else parts[name]
    elif attention and name in GATE_PARTS:
        inner = GATE_PARTS[name]
    else:
        raise SttsError(f"unexpected weight {key!r} in the original's state dict (unknown part {name!r})")
    return ".".join(p for p in (branch, inner, param) if p)
