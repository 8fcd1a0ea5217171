"""Language-guided Target Enhancement (LTE), part of the inference graph.

At a decoder level: a pixel-to-text similarity map between the projected pixel features and the
projected sentence embedding (cosine, with a learnable scale and bias), passed through a sigmoid
to S in (0,1), re-weights the features as F * (1 + S). The map's logits are returned so the loss
can supervise them with the ground truth downsampled to the level.

Without text (the `--no-text` ablation) a learned query vector stands in for the sentence.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .static_ops import l2_normalize


class LTE(nn.Module):
    def __init__(self, channels: int, text_width: int, embed_dim: int, use_text: bool = True):
        super().__init__()
        self.embed_dim = embed_dim
        self.pix_proj = nn.Conv2d(channels, embed_dim, 1)
        self.use_text = use_text
        if use_text:
            self.txt_proj = nn.Linear(text_width, embed_dim)
        else:
            self.query = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def similarity_logits(self, x: torch.Tensor, sent: Optional[torch.Tensor]) -> torch.Tensor:
        p = l2_normalize(self.pix_proj(x), dim=1)  # [B,d,h,w]
        if self.use_text:
            t = l2_normalize(self.txt_proj(sent), dim=-1)  # [B,d]
        else:
            t = l2_normalize(self.query, dim=0)  # [d], broadcast over the batch
        cos = (p * t.reshape(-1, self.embed_dim, 1, 1)).sum(1, keepdim=True)  # [B,1,h,w]
        return self.scale * cos + self.bias

    def forward(self, x: torch.Tensor, sent: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.similarity_logits(x, sent)
        s = torch.sigmoid(logits)
        return x * (1.0 + s), logits
