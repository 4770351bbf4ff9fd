"""ONNX export of a checkpoint's network with its input conversion, the class names and the clip spec in the file.

The exported graph takes what the clip spec's functions make, uint8 RGB clips (batch, 3, T, H, W),
and does the network's own conversion (scaling, normalisation, channel order) inside, so that a
consumer of the ONNX file cannot feed it differently from training. The ``onnx`` extra
(``pip install stts[onnx]``) provides onnx, onnxruntime and onnxscript.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
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


def batch_dependence(module: nn.Module, shape: tuple[int, ...], batches: tuple[int, int] = (2, 3)) -> str | None:
    """Where ``module``'s traced graph depends on the example's batch size, or None where it does not.

    The tracer records what Python reads from a tensor's shape as constants (its TracerWarnings): fixed there for
    the clip's (T, H, W), which the spec decides, but a graph that kept the example's batch (``torch.ones(len(x))``)
    breaks at any other batch. Two traces at different batches must give the same graph; the answer names the
    first operation where they differ, with the tracer's warning from that line when there was one.
    """
    graphs, warned = [], {}
    for batch in batches:
        example = torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", torch.jit.TracerWarning)
            graph = torch.jit.trace(module, (example,), check_trace=False).graph
        warned.update({(w.filename, w.lineno): str(w.message).split(".")[0] for w in caught
                       if issubclass(w.category, torch.jit.TracerWarning)})
        graph = torch._C._jit_pass_canonicalize(graph)
        torch._C._jit_pass_inline(graph)
        torch._C._jit_pass_erase_shape_information(graph)
        graphs.append([_MANGLED.sub("", str(node)) for node in graph.nodes()])
    for index, (first, second) in enumerate(zip(*graphs, strict=False)):
        if first != second:
            place = _SOURCE.search(first)
            if not place:
                return f"operation {index} ({first.strip()[:80]})"
            where = f"{Path(place[1]).name}:{place[2]}"
            reason = warned.get((place[1], int(place[2])))
            return f"{where}" + (f" ({reason})" if reason else "")
    return None if len(graphs[0]) == len(graphs[1]) else "the number of operations"


_MANGLED = re.compile(r"___torch_mangle_[0-9]+\.")
_SOURCE = re.compile(r"# (\S+):(\d+):\d+")


def export_onnx(checkpoint: str | Path, out: str | Path | None = None, opset: int = OPSET,
                check: Callable[[Path], Any] | None = None) -> Path:
    """Export ``checkpoint``'s network (fp32, eval mode) to ONNX; returns the written path.

    Input ``clip``: uint8 (batch, 3, T, H, W) RGB, batch dynamic and (T, H, W) from the clip spec;
    output ``logits``: (batch, classes). The metadata holds ``stts_classes`` (JSON list, index
    order), ``stts_spec`` (the clip spec as JSON) and ``stts_model`` (network, width, precision).
    A network whose traced graph keeps the example's batch size is refused (SttsError naming the line).
    ``check`` (e.g. :func:`check_onnx` bound to the checkpoint) runs on the written graph before it takes
    ``out``'s name: when it raises, no file is left.
    """
    onnx = _require("onnx")
    _require("onnxscript")
    checkpoint = Path(checkpoint)
    loaded = load_model(checkpoint, "cpu", "fp32")
    out = Path(out) if out else checkpoint.with_suffix(".onnx")
    module = ClipInput(exportable(loaded.model), loaded.spec).eval()
    depends = batch_dependence(module, loaded.spec.input_shape())
    if depends:
        raise SttsError(f"{checkpoint}: the traced graph keeps the example's batch size at {depends}, so it would "
                        "fail at any other batch; not exported")
    example = torch.randint(0, 256, (2, *loaded.spec.input_shape()), dtype=torch.uint8)
    with atomic_path(out, suffix=".onnx") as temporary:
        with torch.no_grad(), warnings.catch_warnings():
            # what is left are warnings on (T, H, W) read as Python values: fixed by the spec (batch_dependence
            # above has shown that the batch is not among them), and the exporter's notes on its own passes
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(temporary), input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset_version=opset,
                              dynamo=False)
        proto = onnx.load(str(temporary))
        for key, value in metadata(loaded).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
        if check is not None:
            try:
                check(temporary)
            except SttsError as error:
                raise SttsError(f"{out} not written: {error}") from None
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
    pans across, since the camera fitted to pure noise is chaotic (rounding decides it) where a real clip's is not,
    with a square moving against the pan: without it the stabilised clip would be still, and its normal flow
    (each clip's own, scaled to unit size) would be the resampling's rounding made as large as motion."""
    channels, frames, height, width = spec.input_shape()
    if not spec.stabilise:
        return torch.randint(0, 256, (batch, channels, frames, height, width), generator=generator, dtype=torch.uint8)
    coarse = torch.rand((batch, channels, height // 4 + 2, width // 4 + 2), generator=generator)
    scene = torch.nn.functional.interpolate(coarse, size=(height + frames, width + frames), mode="bicubic")
    panned = torch.stack([scene[..., k:k + height, k:k + width] for k in range(frames)], 2).clamp(0, 1)
    side, colour = max(2, min(height, width) // 4), torch.rand((batch, channels, 1, 1), generator=generator)
    for k in range(frames):
        top, left = (height - side) // 2, max(0, min(width - side, width - side - 1 - k))
        panned[:, :, k, top:top + side, left:left + side] = colour
    return (panned * 255).round().to(torch.uint8)


class _Conversion(nn.Module):
    def __init__(self, spec: ClipSpec):
        super().__init__()
        self.spec = spec

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.spec.normalise(clips)


def _conversion_session(spec: ClipSpec, opset: int):
    """An onnxruntime session of the spec's input conversion alone, as the exported graph holds it."""
    ort = _require("onnxruntime")
    buffer = io.BytesIO()
    example = torch.randint(0, 256, (2, *spec.input_shape()), dtype=torch.uint8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Conversion(spec), (example,), buffer, input_names=[INPUT], output_names=["input"],
                          dynamic_axes={INPUT: {0: "batch"}, "input": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    return ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


def _run(session, name: str, clips: torch.Tensor, batch: int) -> np.ndarray:
    try:
        (out,) = session.run([name], {INPUT: clips.numpy()})
    except Exception as error:  # onnxruntime's own exception types; its message's first line names the node
        raise SttsError(f"onnxruntime fails at batch {batch}: {str(error).strip().splitlines()[0]}") from None
    return out


def check_onnx(onnx_path: str | Path, checkpoint: str | Path, batches: tuple[int, ...] = (1, 3),
               rtol: float = RELATIVE_TOLERANCE, seed: int = 0, opset: int = OPSET) -> dict[str, Any]:
    """Run random clips through onnxruntime and PyTorch (fp32); both must agree.

    Agreement, for each batch: the graph's logits differ from those of PyTorch's network, fed the network input
    that the graph's own conversion makes, by at most ``rtol`` times the logits' scale (their largest magnitude,
    at least 1); that conversion differs from PyTorch's by at most ``rtol`` times the input's scale; and the
    top-1 class end to end is the same for every clip whose top two logits are further apart than the tolerance.
    The two halves are compared on the same input because a spec that cancels the camera and standardises each
    clip turns the last bits of fp32 rounding (where two runtimes always differ) into differences of the input
    that a network may amplify far beyond that tolerance (measured: 1e-6 of the stabilised frames moved the
    logits of a --preset small checkpoint 2 epochs in by 1e-4 of their scale); the end-to-end difference is
    returned as well. Returns the measured differences and scales.
    """
    ort = _require("onnxruntime")
    loaded = load_model(checkpoint, "cpu", "fp32")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    conversion = _conversion_session(loaded.spec, opset)
    generator = torch.Generator().manual_seed(seed)
    worst, end_to_end, scale, input_worst, input_scale, disagree = 0.0, 0.0, 1.0, 0.0, 1.0, 0
    for batch in batches:
        clips = check_clips(loaded.spec, batch, generator)
        expected = loaded.logits(clips).numpy()
        got = _run(session, OUTPUT, clips, batch)
        if got.shape != expected.shape:
            raise SttsError(f"ONNX output shape {got.shape} for batch {batch}, PyTorch gives {expected.shape}")
        converted = _run(conversion, "input", clips, batch)
        with torch.no_grad():
            wanted = loaded.spec.normalise(clips).numpy()
            reference = loaded.model(torch.from_numpy(converted)).float().numpy()
        input_worst = max(input_worst, float(np.abs(converted - wanted).max()))
        input_scale = max(input_scale, float(np.abs(wanted).max()))
        worst = max(worst, float(np.abs(got - reference).max()))
        end_to_end = max(end_to_end, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
        top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((batch, 2))
        clear = (top2[:, 1] - top2[:, 0]) > rtol * scale
        disagree += int((clear & (got.argmax(1) != expected.argmax(1))).sum())
    if input_worst > rtol * input_scale:
        raise SttsError(f"the ONNX graph's input conversion differs from PyTorch's by {input_worst:.2e}, more than "
                        f"{rtol:g} of its scale {input_scale:.3g}")
    if worst > rtol * scale:
        raise SttsError(f"ONNX logits differ from PyTorch by {worst:.2e}, more than {rtol:g} of their scale {scale:.3g}")
    if disagree:
        raise SttsError(f"ONNX and PyTorch pick different classes for {disagree} clip(s)")
    return {"max_difference": worst, "scale": scale, "relative": worst / scale, "end_to_end": end_to_end,
            "input_difference": input_worst, "input_scale": input_scale}
