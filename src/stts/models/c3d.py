"""C3D (Tran et al., 2015) with an adaptive pool so any clip of 8x32x32 or more fits."""

from __future__ import annotations

import torch
from torch import nn

from .layers import Conv3d


class C3D(nn.Module):
    def __init__(self, num_classes: int, width: int = 64, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        w = width
        # (out channels, pool after it); a pool of None keeps the resolution
        plan = [
            (w, (1, 2, 2)),
            (2 * w, (2, 2, 2)),
            (4 * w, None), (4 * w, (2, 2, 2)),
            (8 * w, None), (8 * w, (2, 2, 2)),
            (8 * w, None), (8 * w, None),
        ]
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, pool in plan:
            layers += [Conv3d(channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool3d(pool, pool))
            channels = out_channels
        layers.append(nn.AdaptiveMaxPool3d((1, 4, 4)))
        self.features = nn.Sequential(*layers)
        hidden = 64 * width  # 4096 at the default width
        self.classifier = nn.Sequential(
            nn.Linear(channels * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)) and not module.weight.is_meta:  # see resnet.init_weights
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 8*width, 1, 4, 4)
        return self.classifier(x.flatten(1))
