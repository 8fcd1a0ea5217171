"""ConvNeXt-style image encoder: a stem and 4 stages giving F1..F4 at strides 4, 8, 16, 32."""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TMCAConfig


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (ConvNeXt's channels_first LN)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 conv -> LN -> 1x1 (4x) -> GELU -> 1x1, with layer scale and residual."""

    def __init__(self, c: int, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = LayerNorm2d(c)
        self.pw1 = nn.Conv2d(c, 4 * c, 1)
        self.pw2 = nn.Conv2d(4 * c, c, 1)
        self.gamma = nn.Parameter(layer_scale * torch.ones(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(F.gelu(self.pw1(self.norm(self.dwconv(x)))))
        return x + self.gamma[:, None, None] * y


class ImageEncoder(nn.Module):
    """Returns [F1, F2, F3, F4] with channels cfg.widths at strides 4, 8, 16, 32."""

    def __init__(self, cfg: TMCAConfig):
        super().__init__()
        w = cfg.widths
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, w[0], 4, stride=4), LayerNorm2d(w[0]))
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i in range(4):
            if i > 0:
                self.downs.append(nn.Sequential(LayerNorm2d(w[i - 1]), nn.Conv2d(w[i - 1], w[i], 2, stride=2)))
            # small nets train faster with a larger layer scale than ConvNeXt's 1e-6
            ls = 1e-6 if w[0] >= 96 else 0.1
            self.stages.append(nn.Sequential(*[ConvNeXtBlock(w[i], ls) for _ in range(cfg.depths[i])]))
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        x = self.stem(x)
        for i in range(4):
            if i > 0:
                x = self.downs[i - 1](x)
            x = self.stages[i](x)
            feats.append(x)
        return feats


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
