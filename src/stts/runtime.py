"""Device and numeric precision, chosen once before a loop, and a checkpoint loaded for use.

Training (``stts.engine``) and use (``stts.inference``, ``stts.serve``) both stand on this module:
the device and precision rules live here only, and :func:`load_model` is the one way evaluate,
infer, export and serve turn a checkpoint into a network with its clip spec and classes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import checkpoint_spec, load_checkpoint, model_from_checkpoint
from .choices import PRECISIONS
from .clip import ClipSpec
from .errors import SttsError
from .models.layers import fold_batch_norms

# side in pixels of the window largest_activation runs (C3D, the most downsampling network, needs 32)
PROBE_SIDE = 32


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' (a GPU when there is one), 'cpu' or 'cuda[:N]'; one-line SttsError for what cannot run here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SttsError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SttsError(f"--device {name}: no CUDA GPU is available; use cpu")
    return device


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # oneDNN runs bf16 convolutions fast only with AVX-512 BF16 / AMX; elsewhere it emulates them slowly.
        # Its own check (_is_mkldnn_bf16_supported) asks an x86 CPU only for AVX-512 BW/VL/DQ, which Skylake-SP and
        # Cascade Lake have without BF16 (onnxruntime measured bf16 there 3-4x slower than fp32): ask for the
        # instructions themselves on x86, and oneDNN's check (the CPU's BF16 extension) elsewhere (Arm)
        if not torch.backends.mkldnn.is_available() or isa_capped_below_bf16():
            return False
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def isa_capped_below_bf16() -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) keeps oneDNN below the bf16 instructions,
    e.g. ``AVX2`` or ``AVX512_CORE``: then oneDNN emulates bf16 however new the CPU. With ``ATEN_CPU_CAPABILITY=avx2``
    beside it, an AVX-512 machine runs stts as a CPU without native bf16 would (fp32 for ``auto``)."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    return cap not in ("", "ALL", "DEFAULT") and not any(name in cap for name in ("BF16", "FP16", "AMX", "AVX10"))


def runs_natively(precision: str, device: torch.device) -> bool:
    return precision == "fp32" or (precision == "bf16" and bf16_supported(device)) or (
        precision == "fp16" and device.type == "cuda")


def resolve_precision(precision: str, device: torch.device, trained: str | None = None) -> str:
    """The precision to run in.

    'auto': for training, bf16 where the hardware runs it natively, else fp32; for a trained
    network (``trained`` given), the precision it was trained in when this device runs it
    natively, else fp32 (an fp32-trained network is not evaluated in bf16 behind its back).
    """
    if precision not in PRECISIONS:
        raise SttsError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        wanted = trained or "bf16"
        return wanted if runs_natively(wanted, device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise SttsError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    return precision


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for ``precision`` (already resolved) on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


@dataclass
class LoadedModel:
    """A checkpoint's network in eval mode on its device, with its clip spec, classes and precision."""

    path: Path
    model: nn.Module
    spec: ClipSpec
    classes: list[str]
    precision: str
    device: torch.device
    config: dict[str, Any] = field(default_factory=dict)
    largest: int | None = None  # see largest_activation

    def __post_init__(self) -> None:
        self.autocast = autocast(self.precision, self.device)

    @property
    def name(self) -> str:
        return self.config.get("model_type", "?")

    @torch.inference_mode()
    def logits(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 RGB clips (N, 3, T, H, W) made by the spec's functions -> (N, classes) float32 logits on the CPU."""
        x = self.spec.model_input(clips, self.device)
        with self.autocast():
            return self.model(x).float().cpu()

    def probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(clips), dim=1)

    def largest_activation(self) -> int:
        """Elements of the largest tensor a module outputs in a forward pass of one window: the number the
        checkpoint carries (``stts train`` measures it once), else measured now by :func:`largest_activation`."""
        if self.largest is None:
            self.largest = largest_activation(self.model, self.spec, self.device)
        return self.largest


@torch.inference_mode()
def largest_activation(model: nn.Module, spec: ClipSpec, device: torch.device) -> int:
    """Elements of the largest tensor a module of ``model`` outputs in a forward pass of one of ``spec``'s windows,
    estimated cheaply (``model`` is put in eval mode for the pass and left as it was).

    Measured on a real pass over a window of at most ``PROBE_SIDE`` pixels a side (the clip's frames and
    channels), and scaled by the window's area: a video network's largest tensors are those of its first
    layers, whose size follows the frame's. A full-width STTS-A probes in ~0.1 s; the meta-device pass
    this replaces took 2-3 s and imported torch's compiler stack (its batch norm decompositions).
    """
    channels, frames = spec.network_channels, spec.network_frames
    height = width = spec.crop_size
    side_h, side_w = min(height, PROBE_SIDE), min(width, PROBE_SIDE)
    largest = 0

    def keep(module, inputs, output) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    training = model.training
    handles = [module.register_forward_hook(keep) for module in model.modules()]
    try:
        probe = torch.zeros(1, channels, frames, side_h, side_w, device=device)
        model.eval()(probe.contiguous(memory_format=torch.channels_last_3d))
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return -(-largest * height * width // (side_h * side_w))  # rounded up


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Tensors a forward pass frees stay in the heap's holes, so a process that runs a large network
    again and again grows by fragmentation; trimming after each pass keeps a long stream's memory
    flat. Costs well under a millisecond.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def load_model(path: str | Path, device: str | torch.device = "auto", precision: str = "auto") -> LoadedModel:
    """Checkpoint -> network (eval mode, batch norms folded, channels-last, on ``device``), clip spec, classes and
    precision. For inference: the network is not meant to be trained or saved again."""
    path = Path(path)
    state = load_checkpoint(path)
    spec = checkpoint_spec(state, path)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    classes, config = [str(c) for c in state["classes"]], dict(state["config"])
    precision = resolve_precision(precision, device, state.get("precision"))
    largest = state.get("largest_activation")
    model = model_from_checkpoint(state, path).eval()
    del state  # the network holds the weights now: folding replaces them one layer at a time, not all at once
    model = fold_batch_norms(model).to(device, memory_format=torch.channels_last_3d)
    release_free_memory()
    return LoadedModel(path, model, spec, classes, precision, device, config, largest)
