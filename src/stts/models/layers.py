"""Factorised 3-D convolutions and the grid attention gate the networks are made of.

Shapes follow PyTorch's video layout, (N, C, T, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

Triple = tuple[int, int, int]


def _triple(value: int | Triple) -> Triple:
    return (value, value, value) if isinstance(value, int) else tuple(value)


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that computes in fp32 where PyTorch's CPU bf16 kernels give wrong gradients.

    Measured with torch 2.13 on an AVX-512 BF16 CPU (oneDNN): under bf16 autocast, the weight
    gradient of a convolution whose input has fewer frames than its temporal kernel (a (3, 1, 1)
    conv on 2-frame inputs: the last stage of a 16-frame clip) is garbage, often inf or NaN,
    and finite garbage otherwise. Such inputs are a few frames deep, so fp32 costs little there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.shape[2] < self.kernel_size[0] and torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def conv_bn_relu(in_channels: int, out_channels: int, kernel: Triple, stride: Triple, padding: Triple) -> list[nn.Module]:
    return [
        Conv3d(in_channels, out_channels, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    ]


def st_mid_channels(in_channels: int, out_channels: int, kernel: Triple) -> int:
    """Mid width that keeps a space-then-time pair near the full 3-D conv's parameter count."""
    kt, kh, kw = kernel
    return (kt * kh * kw * in_channels * out_channels) // (kh * kw * in_channels + kt * out_channels)


def ts_mid_channels(in_channels: int, out_channels: int, kernel: Triple) -> int:
    kt, kh, kw = kernel
    return (kt * kh * kw * in_channels * out_channels) // (kh * kw * out_channels + kt * in_channels)


class FactorisedConv(nn.Sequential):
    """A 3-D conv split into a spatial and a temporal conv, each followed by BN and ReLU.

    ``order="st"`` is space then time (R(2+1)D); ``order="ts"`` is time then space.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | Triple,
        stride: int | Triple = 1,
        padding: int | Triple = 0,
        order: str = "st",
        mid_channels: int | None = None,
    ):
        kernel, stride, padding = _triple(kernel), _triple(stride), _triple(padding)
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = kernel, stride, padding
        spatial = dict(kernel=(1, kh, kw), stride=(1, sh, sw), padding=(0, ph, pw))
        temporal = dict(kernel=(kt, 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0))
        if order == "st":
            mid = mid_channels or st_mid_channels(in_channels, out_channels, kernel)
            first, second = spatial, temporal
        elif order == "ts":
            mid = mid_channels or ts_mid_channels(in_channels, out_channels, kernel)
            first, second = temporal, spatial
        else:
            raise ValueError(f"order must be 'st' or 'ts', got {order!r}")
        super().__init__(*conv_bn_relu(in_channels, mid, **first), *conv_bn_relu(mid, out_channels, **second))


class GridAttentionGate(nn.Module):
    """Weights a conv's input ``l`` by a gate computed from ``l`` and the conv's output ``g``.

    The gate gives one weight in [0, 1] per (t, h, w) position; the gated input and
    ``g`` are fused back to ``g``'s width by a 1x1x1 conv.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        inter = max(in_channels // 2, 1)
        self.theta_l = nn.Conv3d(in_channels, inter, 1, bias=False)
        self.theta_g = nn.Conv3d(out_channels, inter, 1, bias=True)
        self.psi = nn.Conv3d(inter, 1, 1, bias=True)
        self.fuse = nn.Conv3d(in_channels + out_channels, out_channels, 1, bias=False)

    def attention(self, l: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(N, 1, T, H, W) weights on ``g``'s grid; ``l`` must already be on that grid."""
        return torch.sigmoid(self.psi(F.relu(self.theta_l(l) + self.theta_g(g))))

    def forward(self, l: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if l.shape[2:] != g.shape[2:]:
            # a strided conv shrank g: bring l onto g's (T, H, W) grid
            l = F.interpolate(l, size=g.shape[2:], mode="trilinear", align_corners=False)
        return self.fuse(torch.cat([self.attention(l, g) * l, g], dim=1))


class GatedConv(nn.Module):
    """A factorised conv whose output is fused with its attention-gated input."""

    def __init__(self, conv: FactorisedConv, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = conv
        self.gate = GridAttentionGate(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x, self.conv(x))


class STTSConv(nn.Module):
    """ST and TS factorised convs side by side, each making half the output channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | Triple,
        stride: int | Triple = 1,
        padding: int | Triple = 0,
        attention: bool = False,
    ):
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"STTSConv needs an even number of output channels, got {out_channels}")
        half = out_channels // 2
        branches = []
        for order in ("st", "ts"):
            conv = FactorisedConv(in_channels, half, kernel, stride, padding, order=order)
            branches.append(GatedConv(conv, in_channels, half) if attention else conv)
        self.st, self.ts = branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.st(x), self.ts(x)], dim=1)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """For inference only: every Conv3d followed by a BatchNorm3d in a Sequential becomes one Conv3d with
    the normalisation folded into its weights and bias (the BN becomes an Identity), in place.

    Same function in eval mode, to float rounding; a full-width STTS-A then runs ~20 % faster on a CPU
    and never holds a convolution's output and its normalised copy at once. The state dict changes:
    never train or save a folded network.
    """
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for index in range(len(module) - 1):
                conv, norm = module[index], module[index + 1]
                if isinstance(conv, nn.Conv3d) and isinstance(norm, nn.BatchNorm3d):
                    module[index], module[index + 1] = fuse_conv_bn_eval(conv.eval(), norm.eval()), nn.Identity()
    return model
