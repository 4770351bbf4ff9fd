"""The original STTS code's R(2+1)D, STTS and STTS-A, rebuilt with its module names, for the conversion tests.

Written from the structure in shared/seed/networks.md and the original's naming (feature.convN,
block1/blocks.N, conv1/bn1/conv2/bn2/downsampleconv/downsamplebn, spatial_conv/temporal_conv,
attn.W_l/W_g/phi and the fusing conv, linear): an independent implementation whose state dict
has the original's keys, so that `stts convert` is checked against real logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def triple(value):
    return (value, value, value) if isinstance(value, int) else tuple(value)


class GridAttentionBlock(nn.Module):
    def __init__(self, in_l, in_g):
        super().__init__()
        inter = max(in_l // 2, 1)
        self.W_l = nn.Conv3d(in_l, inter, 1, bias=False)
        self.W_g = nn.Conv3d(in_g, inter, 1, bias=True)
        self.phi = nn.Conv3d(inter, 1, 1, bias=True)

    def forward(self, l, g):
        if l.shape[2:] != g.shape[2:]:
            l = F.interpolate(l, size=g.shape[2:], mode="trilinear", align_corners=False)
        return torch.sigmoid(self.phi(F.relu(self.W_l(l) + self.W_g(g)))) * l


class FactoredConv(nn.Module):
    """``spatial_first``: SpatioTemporalConv; else TemporalSpatioConv."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, spatial_first=True, use_attn=False, mid=None):
        super().__init__()
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = triple(kernel), triple(stride), triple(padding)
        full = kt * kh * kw * cin * cout
        mid = mid or full // ((kh * kw * cin + kt * cout) if spatial_first else (kh * kw * cout + kt * cin))
        spatial = dict(kernel_size=(1, kh, kw), stride=(1, sh, sw), padding=(0, ph, pw), bias=False)
        temporal = dict(kernel_size=(kt, 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0), bias=False)
        self.spatial_first = spatial_first
        if spatial_first:
            self.spatial_conv = nn.Conv3d(cin, mid, **spatial)
            self.bn1 = nn.BatchNorm3d(mid)
            self.temporal_conv = nn.Conv3d(mid, cout, **temporal)
        else:
            self.temporal_conv = nn.Conv3d(cin, mid, **temporal)
            self.bn1 = nn.BatchNorm3d(mid)
            self.spatial_conv = nn.Conv3d(mid, cout, **spatial)
        self.bn2 = nn.BatchNorm3d(cout)
        self.use_attn = use_attn
        if use_attn:
            self.attn = GridAttentionBlock(cin, cout)
            self.conv = nn.Conv3d(cin + cout, cout, 1, bias=False)

    def forward(self, x):
        first, second = ((self.spatial_conv, self.temporal_conv) if self.spatial_first
                         else (self.temporal_conv, self.spatial_conv))
        res = F.relu(self.bn2(second(F.relu(self.bn1(first(x))))))
        if self.use_attn:
            return self.conv(torch.cat([self.attn(x, res), res], 1))
        return res


class SideBySide(nn.Module):
    """An STTS conv: ST and TS branches, half the channels each (the branch names are the test's choice)."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, use_attn=False):
        super().__init__()
        self.spatio_temporal = FactoredConv(cin, cout // 2, kernel, stride, padding, True, use_attn)
        self.temporal_spatio = FactoredConv(cin, cout // 2, kernel, stride, padding, False, use_attn)

    def forward(self, x):
        return torch.cat([self.spatio_temporal(x), self.temporal_spatio(x)], 1)


class ResBlock(nn.Module):
    def __init__(self, make, cin, cout, downsample, use_attn):
        super().__init__()
        self.downsample = downsample
        stride = 2 if downsample else 1
        self.conv1 = make(cin, cout, 3, stride, 1, use_attn)
        if downsample:
            self.downsampleconv = make(cin, cout, 1, 2, 0, use_attn)
            self.downsamplebn = nn.BatchNorm3d(cout)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = make(cout, cout, 3, 1, 1, use_attn)
        self.bn2 = nn.BatchNorm3d(cout)

    def forward(self, x):
        res = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.downsample:
            x = self.downsamplebn(self.downsampleconv(x))
        return F.relu(x + res)


class ResLayer(nn.Module):
    def __init__(self, make, cin, cout, downsample, use_attn):
        super().__init__()
        self.block1 = ResBlock(make, cin, cout, downsample, use_attn)
        self.blocks = nn.ModuleList([ResBlock(make, cout, cout, False, use_attn)])

    def forward(self, x):
        x = self.block1(x)
        for block in self.blocks:
            x = block(x)
        return x


class FeatureLayer(nn.Module):
    def __init__(self, make, stem, use_attn):
        super().__init__()
        self.conv1 = stem
        self.conv2 = ResLayer(make, 64, 64, False, False)
        self.conv3 = ResLayer(make, 64, 128, True, use_attn)
        self.conv4 = ResLayer(make, 128, 256, True, use_attn)
        self.conv5 = ResLayer(make, 256, 512, True, use_attn)

    def forward(self, x):
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        return F.adaptive_avg_pool3d(x, 1).flatten(1)


class OriginalNetwork(nn.Module):
    def __init__(self, model_type: str, num_classes: int):
        super().__init__()
        stem_args = dict(kernel=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3))
        if model_type == "r2plus1d":
            def make(cin, cout, k, s, p, use_attn):
                return FactoredConv(cin, cout, k, s, p, True, False)

            stem = FactoredConv(3, 64, **stem_args, mid=45)
        else:
            def make(cin, cout, k, s, p, use_attn):
                return SideBySide(cin, cout, k, s, p, use_attn)

            stem = SideBySide(3, 64, **stem_args)
        self.feature = FeatureLayer(make, stem, use_attn=model_type == "stts-a")
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.linear(self.feature(x))


def original_network(model_type: str, num_classes: int, seed: int = 0) -> OriginalNetwork:
    """In eval mode, with random BatchNorm statistics and affine parameters (so that they matter)."""
    torch.manual_seed(seed)
    model = OriginalNetwork(model_type, num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()
