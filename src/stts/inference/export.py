"""ONNX export of a checkpoint's network with its input conversion, the class names and the clip spec in the file.

The exported graph takes what the clip spec's functions make, uint8 RGB clips (batch, 3, T, H, W),
and does the network's own conversion (scaling, normalisation, channel order) inside, so that a
consumer of the ONNX file cannot feed it differently from training. The ``onnx`` extra
(``pip install stts[onnx]``) provides onnx, onnxruntime and onnxscript.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..clip import ClipSpec
from ..errors import SttsError
from ..files import atomic_path
from ..runtime import LoadedModel, load_model

INPUT, OUTPUT = "clip", "logits"
OPSET = 17
# fp32 rounding differs between any two backends; a difference of 1e-3 of the logits' scale is
# rounding, more is a different computation (measured: 2e-6..2e-5 on trained and random networks)
RELATIVE_TOLERANCE = 1e-3


class ClipInput(nn.Module):
    """The network behind the clip spec's input conversion: uint8 RGB clips in, logits out."""

    def __init__(self, model: nn.Module, spec: ClipSpec):
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(self.spec.normalise(clips))


class SlicedAdaptiveMaxPool3d(nn.Module):
    """``nn.AdaptiveMaxPool3d`` as slices and max reductions, with PyTorch's bins (start = floor(i * n / k),
    end = ceil((i + 1) * n / k)): ONNX has no adaptive max pooling to sizes that do not divide the input,
    which C3D needs at the seed's 112-pixel crop (7 -> 4)."""

    def __init__(self, output_size: tuple[int, int, int]):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dim, size in zip((2, 3, 4), self.output_size, strict=True):
            n = int(x.shape[dim])  # a constant in the exported graph: only the batch is dynamic
            starts = [i * n // size for i in range(size)]
            ends = [((i + 1) * n + size - 1) // size for i in range(size)]
            x = torch.cat([x[(slice(None),) * dim + (slice(a, b),)].amax(dim, keepdim=True)
                           for a, b in zip(starts, ends, strict=True)], dim)
        return x


def exportable(model: nn.Module) -> nn.Module:
    """``model`` with the layers ONNX cannot express replaced by equivalent ones (in place)."""
    for name, module in model.named_children():
        if isinstance(module, nn.AdaptiveMaxPool3d):
            setattr(model, name, SlicedAdaptiveMaxPool3d(tuple(module.output_size)))
        else:
            exportable(module)
    return model


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise SttsError(f"ONNX export needs {module}: pip install 'stts[onnx]'") from None


def export_onnx(checkpoint: str | Path, out: str | Path | None = None, opset: int = OPSET) -> Path:
    """Export ``checkpoint``'s network (fp32, eval mode) to ONNX; returns the written path.

    Input ``clip``: uint8 (batch, 3, T, H, W) RGB, batch dynamic and (T, H, W) from the clip spec;
    output ``logits``: (batch, classes). The metadata holds ``stts_classes`` (JSON list, index
    order), ``stts_spec`` (the clip spec as JSON) and ``stts_model`` (network, width, precision).
    """
    onnx = _require("onnx")
    _require("onnxscript")
    checkpoint = Path(checkpoint)
    loaded = load_model(checkpoint, "cpu", "fp32")
    out = Path(out) if out else checkpoint.with_suffix(".onnx")
    example = torch.randint(0, 256, (2, *loaded.spec.input_shape()), dtype=torch.uint8)
    with atomic_path(out, suffix=".onnx") as temporary:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes used as Python values: fixed here but batch
            torch.onnx.export(ClipInput(exportable(loaded.model), loaded.spec).eval(), (example,), str(temporary),
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset_version=opset,
                              dynamo=False)
        proto = onnx.load(str(temporary))
        for key, value in metadata(loaded).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
    return out


def metadata(loaded: LoadedModel) -> dict[str, str]:
    return {
        "stts_classes": json.dumps(loaded.classes),
        "stts_spec": json.dumps(loaded.spec.to_dict()),
        "stts_model": json.dumps({"model_type": loaded.config["model_type"], "width": loaded.config.get("width", 64),
                                  "trained_precision": loaded.precision}),
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    onnx = _require("onnx")
    return {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}


def check_clips(spec: ClipSpec, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Random uint8 clips of ``spec``'s input shape; for a stabilising spec, a random smooth scene that the camera
    pans across, since the camera fitted to pure noise is chaotic (rounding decides it) where a real clip's is not."""
    channels, frames, height, width = spec.input_shape()
    if not spec.stabilise:
        return torch.randint(0, 256, (batch, channels, frames, height, width), generator=generator, dtype=torch.uint8)
    coarse = torch.rand((batch, channels, height // 4 + 2, width // 4 + 2), generator=generator)
    scene = torch.nn.functional.interpolate(coarse, size=(height + frames, width + frames), mode="bicubic")
    panned = torch.stack([scene[..., k:k + height, k:k + width] for k in range(frames)], 2)
    return (panned.clamp(0, 1) * 255).round().to(torch.uint8)


def check_onnx(onnx_path: str | Path, checkpoint: str | Path, batches: tuple[int, ...] = (1, 3),
               rtol: float = RELATIVE_TOLERANCE, seed: int = 0) -> dict[str, Any]:
    """Run random clips through onnxruntime and PyTorch (fp32); both must agree.

    Agreement: the largest logit difference is at most ``rtol`` times the logits' scale (their
    largest magnitude, at least 1), and the top-1 class is the same for every clip whose top
    two logits are further apart than that tolerance. Returns the measured difference and scale.
    """
    ort = _require("onnxruntime")
    loaded = load_model(checkpoint, "cpu", "fp32")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst, scale, disagree = 0.0, 1.0, 0
    for batch in batches:
        clips = check_clips(loaded.spec, batch, generator)
        expected = loaded.logits(clips).numpy()
        (got,) = session.run([OUTPUT], {INPUT: clips.numpy()})
        if got.shape != expected.shape:
            raise SttsError(f"{onnx_path}: ONNX output shape {got.shape} for batch {batch}, PyTorch gives {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
        top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((batch, 2))
        clear = (top2[:, 1] - top2[:, 0]) > rtol * scale
        disagree += int((clear & (got.argmax(1) != expected.argmax(1))).sum())
    if worst > rtol * scale:
        raise SttsError(f"{onnx_path}: ONNX logits differ from PyTorch by {worst:.2e}, more than {rtol:g} of their "
                        f"scale {scale:.3g}")
    if disagree:
        raise SttsError(f"{onnx_path}: ONNX and PyTorch pick different classes for {disagree} clip(s)")
    return {"max_difference": worst, "scale": scale, "relative": worst / scale}
