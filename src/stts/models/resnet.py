"""The ResNet-18 skeleton shared by STTS, STTS-A and R(2+1)D; only the conv differs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..lazy import onnx_exporting
from .layers import FactorisedConv, STTSConv

# conv_factory(in_channels, out_channels, kernel, stride, padding, attention) -> module
ConvFactory = Callable[..., nn.Module]


def stts_conv(in_channels, out_channels, kernel, stride, padding, attention):
    return STTSConv(in_channels, out_channels, kernel, stride, padding, attention=attention)


def st_conv(in_channels, out_channels, kernel, stride, padding, attention):
    return FactorisedConv(in_channels, out_channels, kernel, stride, padding, order="st")


class BasicBlock(nn.Module):
    def __init__(self, make_conv: ConvFactory, in_channels: int, out_channels: int, downsample: bool, attention: bool):
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Sequential(
            make_conv(in_channels, out_channels, 3, stride, 1, attention),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            make_conv(out_channels, out_channels, 3, 1, 1, attention),
            nn.BatchNorm3d(out_channels),
        )
        self.shortcut = nn.Identity()
        if downsample or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                make_conv(in_channels, out_channels, 1, stride, 0, attention),
                nn.BatchNorm3d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class VideoResNet(nn.Module):
    """Stem, four stages of residual blocks, global average pooling and a linear classifier."""

    def __init__(
        self,
        make_conv: ConvFactory,
        stem: nn.Module,
        num_classes: int,
        width: int = 64,
        blocks: Sequence[int] = (2, 2, 2, 2),
        attention: bool = False,
        contiguous_start_on_cpu: bool = False,
    ):
        super().__init__()
        self.contiguous_start_on_cpu = contiguous_start_on_cpu  # see to_training_layout
        if len(blocks) != 4:
            raise ValueError(f"blocks needs one count per stage (4), got {tuple(blocks)}")
        self.stem = stem
        stages = []
        in_channels = width
        for index, count in enumerate(blocks):
            out_channels = width * 2**index
            # the first stage keeps the resolution and never carries attention
            gated = attention and index > 0
            layers = [BasicBlock(make_conv, in_channels, out_channels, downsample=index > 0, attention=gated)]
            layers += [BasicBlock(make_conv, out_channels, out_channels, False, gated) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # each part computes in its weights' memory layout (see to_training_layout)
        x = self.stages[0](self.stem(in_layout_of(self.stem, x)))
        x = self.stages[1:](in_layout_of(self.stages[1], x))  # (N, 8*width, T/8, H/16, W/16)
        return self.fc(self.pool(x).flatten(1))


def in_layout_of(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` in ``module``'s memory layout (ONNX has no layouts: an export leaves ``x`` as it is)."""
    layout = layout_of(module)
    if x.is_contiguous(memory_format=layout) or onnx_exporting():
        return x
    return x.contiguous(memory_format=layout)


def layout_of(module: nn.Module) -> torch.memory_format:
    """The memory layout of ``module``'s first 5-D weight: channels-last-3d or contiguous."""
    weight = next(p for p in module.parameters() if p.dim() == 5)
    cl = torch.channels_last_3d
    return cl if weight.is_contiguous(memory_format=cl) and not weight.is_contiguous() else torch.contiguous_format


def to_training_layout(model: nn.Module) -> nn.Module:
    """``model`` with channels-last-3d weights (oneDNN's and cuDNN's fast layout), in place; but on a CPU the
    STTS networks' stem and first stage keep contiguous weights, and so compute in that layout.

    Why: there their batch norms see few channels (the branches' halves: 2 to 28 at width 16), and
    PyTorch's CPU batch norm over channels-last tensors of so few channels ran 3-20x slower than over
    contiguous ones. Measured at the preset small's sizes (benchmarks/bench_train.py): the STTS-A train
    step ran 13 % faster, STTS 10 %; R(2+1)D's, whose first stage is wider, 8 % slower, so it stays as is.
    """
    model.to(memory_format=torch.channels_last_3d)
    parameter = next(model.parameters(), None)
    if getattr(model, "contiguous_start_on_cpu", False) and parameter is not None and parameter.device.type == "cpu":
        for part in (model.stem, model.stages[0]):
            part.to(memory_format=torch.contiguous_format)
    return model


def init_weights(model: nn.Module) -> None:
    """He initialisation; a network built on the meta device (to take a checkpoint's tensors) is left as is,
    since random numbers on meta tensors import torch's whole compiler stack (~76 MB) for nothing."""
    for module in model.modules():
        if any(p.is_meta for p in module.parameters(recurse=False)):
            continue
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


STEM = dict(kernel=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3))


def stts(
    num_classes: int,
    width: int = 64,
    blocks: Sequence[int] = (2, 2, 2, 2),
    in_channels: int = 3,
    attention: bool = False,
) -> VideoResNet:
    stem = STTSConv(in_channels, width, **STEM)
    return VideoResNet(stts_conv, stem, num_classes, width, blocks, attention, contiguous_start_on_cpu=True)


def r2plus1d(num_classes: int, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2), in_channels: int = 3) -> VideoResNet:
    # the seed fixes the stem's mid width at 45 for width 64 (as torchvision's R(2+1)D does)
    stem = FactorisedConv(in_channels, width, **STEM, order="st", mid_channels=max(45 * width // 64, 1))
    return VideoResNet(st_conv, stem, num_classes, width, blocks)
