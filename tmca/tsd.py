"""Target-sensitive Semantic Distance (TSD), training only.

At one encoder level: project the image features and the report's sentence embedding into a
shared space; pool the image features inside the ground-truth target mask (resized to the level)
into a target embedding and outside it into a background embedding; the semantic distance is
1 - cosine. A symmetric InfoNCE over the batch pulls each target embedding to its own report and
away from the other reports; for each report its own background embedding is an extra negative.
The temperature is learnable per level (CLIP-style, stored as log(1/T)).

With `use_tsd=False` (the `--no-tsd` ablation) the image side is global average pooling over
the whole level and there is no background negative: plain global CLIP-style alignment.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def resize_mask(mask: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """Area-downsample a [B,1,H,W] {0,1} mask to the level's h x w (soft fractions in [0,1])."""
    if mask.shape[-2:] == torch.Size(hw):
        return mask
    return F.adaptive_avg_pool2d(mask, hw)


def masked_pool(feat: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Weighted mean of feat [B,C,h,w] with weight [B,1,h,w] -> [B,C]."""
    return (feat * weight).sum((2, 3)) / (weight.sum((2, 3)) + eps)


def target_background_pool(feat: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target and background embeddings at this level, and the target area fraction [B]."""
    m = resize_mask(mask.to(feat.dtype), feat.shape[-2:])
    return masked_pool(feat, m), masked_pool(feat, 1.0 - m), m.mean((1, 2, 3))


def semantic_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity, row-wise."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


class TSD(nn.Module):
    """The TSD alignment loss at one encoder level."""

    def __init__(self, image_channels: int, text_width: int, embed_dim: int,
                 target_sensitive: bool = True, init_temperature: float = 0.07):
        super().__init__()
        self.img_proj = nn.Conv2d(image_channels, embed_dim, 1)
        self.txt_proj = nn.Linear(text_width, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.target_sensitive = target_sensitive

    def embeddings(self, feat: torch.Tensor, mask: torch.Tensor):
        """(target, background or None, valid) embeddings in the shared space, L2-normalised."""
        z = self.img_proj(feat)
        if self.target_sensitive:
            tgt, bg, frac = target_background_pool(z, mask)
            valid = frac > 0
            return F.normalize(tgt, dim=-1), F.normalize(bg, dim=-1), valid
        g = z.mean((2, 3))
        return F.normalize(g, dim=-1), None, torch.ones(g.shape[0], dtype=torch.bool, device=g.device)

    def forward(self, feat: torch.Tensor, sent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        v, b, valid = self.embeddings(feat, mask)
        t = F.normalize(self.txt_proj(sent), dim=-1)
        if valid.sum() < 1:
            return feat.sum() * 0.0
        v, t = v[valid], t[valid]
        scale = self.logit_scale.exp().clamp(max=100.0)
        # similarity = 1 - distance; logits are scaled similarities
        sim = 1.0 - semantic_distance(v.unsqueeze(1), t.unsqueeze(0))  # [N(img), N(txt)]
        labels = torch.arange(v.shape[0], device=v.device)
        loss_i2t = F.cross_entropy(scale * sim, labels)
        sim_t2i = sim.t()  # [N(txt), N(img)]
        if b is not None:
            b = b[valid]
            bg_sim = 1.0 - semantic_distance(t, b)  # each report vs its own background
            sim_t2i = torch.cat([sim_t2i, bg_sim.unsqueeze(1)], dim=1)
        loss_t2i = F.cross_entropy(scale * sim_t2i, labels)
        return 0.5 * (loss_i2t + loss_t2i)
