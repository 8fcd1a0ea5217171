"""TMCA: Target-informed Multi-level Contrastive Alignments for language-guided segmentation.

    image ──ImageEncoder──► F1..F4 ─────────────────────────────┐ (skips)
                              │  (training) MultiLevelAlignment │
    report ──TextEncoder──► tokens, sentence ──TSD at F1..F4    ▼
                              └──────────────► GuideDecoder: cross-attention + LTE per level ──► head ──► prob

`forward(image, input_ids, attention_mask) -> prob` is the inference / export graph;
`forward_train(..., mask)` also returns the logits and the auxiliary terms (alignment, LTE maps).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn

from .alignment import MultiLevelAlignment
from .config import TMCAConfig
from .decoder import GuideDecoder
from .image_encoder import ImageEncoder
from .static_ops import key_padding_bias
from .text_encoder import TextEncoder


class TMCA(nn.Module):
    def __init__(self, cfg: TMCAConfig):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.text_encoder = TextEncoder(cfg) if cfg.use_text else None
        self.alignment = MultiLevelAlignment(cfg) if (cfg.use_text and cfg.align_levels) else None
        self.decoder = GuideDecoder(cfg)

    def _guided(self, image, input_ids, attention_mask):
        feats = self.image_encoder(image)
        tokens = sent = key_bias = None
        if self.text_encoder is not None:
            key_bias = key_padding_bias(attention_mask)  # once, shared by every attention
            tokens, sent = self.text_encoder(input_ids, attention_mask, key_bias)
        logits, lte_maps = self.decoder(feats, tokens, attention_mask, sent, key_bias)
        return feats, sent, logits, lte_maps

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        _, _, logits, _ = self._guided(image, input_ids, attention_mask)
        return torch.sigmoid(logits)

    def forward_train(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      mask: Optional[torch.Tensor] = None) -> Dict[str, object]:
        feats, sent, logits, lte_maps = self._guided(image, input_ids, attention_mask)
        out: Dict[str, object] = {"logits": logits, "lte_logits": lte_maps, "align": None, "align_levels": {}}
        if self.alignment is not None and mask is not None:
            out["align"], out["align_levels"] = self.alignment(feats, sent, mask)
        return out


def count_parameters(model: nn.Module, inference_only: bool = False) -> int:
    n = 0
    for name, p in model.named_parameters():
        if inference_only and name.startswith("alignment."):
            continue
        n += p.numel()
    return n
