"""Device and numeric precision, chosen once before a loop so the loop has no branches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from ..errors import SttsError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # oneDNN runs bf16 convolutions fast only with AVX-512 BF16 / AMX; elsewhere it emulates them slowly
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' becomes bf16 where the hardware runs it natively, else fp32; others are checked."""
    if precision not in PRECISIONS:
        raise SttsError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise SttsError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    return precision


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for ``precision`` (already resolved) on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


def to_model_input(clip: torch.Tensor, device: torch.device, mean: float = 0.0, std: float = 255.0) -> torch.Tensor:
    """uint8 clips (N, C, T, H, W) -> float on ``device``, scaled, in channels-last-3d memory.

    The division by 255 matches the seed (values / 255); the conversion runs on the
    device so that loader workers only move bytes.
    """
    x = clip.to(device, non_blocking=True).float().sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last_3d)
