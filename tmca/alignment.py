"""Multi-level alignment: the TSD loss at every encoder level F1..F4, weighted.

Aligning the low levels too (not only F4) directs the text's guidance onto the low-level features
the decoder reads through its skip connections. `align_levels=(4,)` (the `--align-levels 4`
ablation) is the usual high-level-only alignment.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from .config import TMCAConfig
from .tsd import TSD


class MultiLevelAlignment(nn.Module):
    def __init__(self, cfg: TMCAConfig):
        super().__init__()
        for l in cfg.align_levels:
            if l not in (1, 2, 3, 4):
                raise ValueError(f"align level {l} not in 1..4")
        self.levels = tuple(sorted(cfg.align_levels))
        self.weights = {l: float(cfg.level_weights[l - 1]) for l in self.levels}
        self.tsd = nn.ModuleDict({
            str(l): TSD(cfg.widths[l - 1], cfg.text_width, cfg.embed_dim,
                        target_sensitive=cfg.use_tsd, init_temperature=cfg.init_temperature)
            for l in self.levels})

    def forward(self, feats: List[torch.Tensor], sent: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        per = {}
        total = sent.new_zeros(())
        wsum = sum(self.weights.values())
        for l in self.levels:
            loss = self.tsd[str(l)](feats[l - 1], sent, mask)
            per[f"align_F{l}"] = loss.detach()
            total = total + self.weights[l] * loss
        return total / wsum, per
