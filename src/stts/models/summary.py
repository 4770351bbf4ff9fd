"""Size and cost of a network: parameters and forward FLOPs."""

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
