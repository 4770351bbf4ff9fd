"""ONNX export of a checkpoint's network, with the class names in the file and a check against PyTorch.

The ``onnx`` extra (``pip install stts[onnx]``) provides onnx, onnxruntime and onnxscript.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.checkpoint import load_checkpoint, model_from_checkpoint
from ..errors import SttsError
from .preprocess import clip_shape, resolve_preprocessing

INPUT, OUTPUT = "clip", "logits"
OPSET = 17


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise SttsError(f"ONNX export needs {module}: pip install 'stts[onnx]'") from None


def export_onnx(checkpoint: str | Path, out: str | Path | None = None, opset: int = OPSET) -> Path:
    """Export ``checkpoint``'s network (fp32, eval mode) to ONNX; returns the written path.

    Input ``clip``: (batch, 3, T, H, W) float, values / 255 as in training, batch
    dynamic and (T, H, W) from the checkpoint; output ``logits``: (batch, classes).
    The metadata holds ``stts_classes`` (JSON list, index order) and ``stts_config``
    (JSON: model type, clip shape, input height and normalisation).
    """
    onnx = _require("onnx")
    _require("onnxscript")
    checkpoint = Path(checkpoint)
    state = load_checkpoint(Path(checkpoint))
    model = model_from_checkpoint(state, checkpoint).eval()
    shape = clip_shape(state["config"])
    out = Path(out) if out else checkpoint.with_suffix(".onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, *shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes used as Python values: fixed here but batch
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(out))
    for key, value in metadata(state).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def metadata(state: dict[str, Any]) -> dict[str, str]:
    config = state["config"]
    return {
        "stts_classes": json.dumps(list(state["classes"])),
        "stts_config": json.dumps({
            "model_type": config["model_type"],
            "clip_shape": list(clip_shape(config)),
            **resolve_preprocessing(config).as_dict(),
        }),
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    onnx = _require("onnx")
    return {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}


def check_onnx(
    onnx_path: str | Path, checkpoint: str | Path, batches: tuple[int, ...] = (1, 3), atol: float = 1e-4, seed: int = 0
) -> float:
    """Run random clips through onnxruntime and PyTorch (fp32); returns the largest logit difference.

    Raises SttsError when it exceeds ``atol``. The tolerance is absolute, so it suits networks
    whose logits are moderate: fp32 rounding differs between any two backends (PyTorch with and
    without oneDNN included) by up to ~1e-4..1e-3 on a randomly initialised full-depth STTS-A,
    whose activations grow layer after layer; raise ``atol`` for such a network.
    """
    ort = _require("onnxruntime")
    state = load_checkpoint(Path(checkpoint))
    model = model_from_checkpoint(state, checkpoint).eval()
    shape = clip_shape(state["config"])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in batches:
        clip = torch.rand(batch, *shape, generator=generator)
        with torch.no_grad():
            expected = model(clip).numpy()
        (got,) = session.run([OUTPUT], {INPUT: clip.numpy()})
        if got.shape != expected.shape:
            raise SttsError(f"{onnx_path}: ONNX output shape {got.shape} for batch {batch}, PyTorch gives {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol:
        raise SttsError(f"{onnx_path}: ONNX logits differ from PyTorch by {worst:.2e} (> {atol:.0e})")
    return worst
