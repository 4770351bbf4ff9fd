"""Size and cost of a network: parameters, forward FLOPs and the largest activation."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, clip: tuple[int, int, int], in_channels: int = 3) -> int:
    """FLOPs of one forward pass on one (T, H, W) clip; a multiply-add counts as 2.

    Runs on the meta device, so even full-width networks cost no memory or time.
    """
    model = model.to("meta").eval()
    x = torch.empty(1, in_channels, *clip, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def largest_activation(model: nn.Module, clip: tuple[int, int, int], in_channels: int = 3) -> int:
    """Elements of the largest tensor a module outputs in one forward pass on one (T, H, W) clip (meta device).

    A forward pass's peak memory is a few times this: the tensors a block keeps alive at once.
    """
    model = model.to("meta").eval()
    largest = 0

    def keep(module, inputs, output):
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    handles = [module.register_forward_hook(keep) for module in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty(1, in_channels, *clip, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return largest
