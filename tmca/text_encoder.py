"""BERT-style text encoder over WordPiece ids and an attention mask.

Gives token features [B, L, D] and a sentence embedding [B, D] (masked mean of the tokens).
Two layer forms: pre-norm (`text_norm_first`, the default, trained from scratch; a final LayerNorm)
and BERT's post-norm (`text_norm_first=False`, no final norm), used when the weights come from a
BERT checkpoint (`tmca.pretrained_text`) so that the loaded encoder computes what BERT computes.
The layers live in an `nn.TransformerEncoder` (its parameter names are the checkpoint's), built with
`enable_nested_tensor=False`, but `forward` runs them one by one through `static_ops.encoder_layer`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from .config import TMCAConfig
from .static_ops import encoder_layer, key_padding_bias, static_dim


class TextEncoder(nn.Module):
    def __init__(self, cfg: TMCAConfig):
        super().__init__()
        d = cfg.text_width
        self.tok = nn.Embedding(cfg.vocab_size, d, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_length, d))
        eps = cfg.text_layer_norm_eps
        self.emb_norm = nn.LayerNorm(d, eps=eps)
        layer = nn.TransformerEncoderLayer(
            d_model=d, nhead=cfg.text_heads, dim_feedforward=4 * d, dropout=0.0,
            activation="gelu", batch_first=True, norm_first=cfg.text_norm_first, layer_norm_eps=eps)
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        # a post-norm stack already ends in a LayerNorm (BERT has no final norm)
        self.norm = nn.LayerNorm(d, eps=eps) if cfg.text_norm_first else nn.Identity()
        self.max_length = cfg.max_length
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                key_bias: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        # the encoder layers are run through static_ops.encoder_layer (what nn.TransformerEncoder
        # computes, with config-sized reshapes so the exported graph has no shape arithmetic)
        n = static_dim(input_ids.shape[1], self.max_length)
        pos = self.pos if n == self.max_length else self.pos[:, :n]
        x = self.emb_norm(self.tok(input_ids) + pos)
        if key_bias is None:
            key_bias = key_padding_bias(attention_mask)  # 0 for tokens, -inf for padding
        for layer in self.encoder.layers:
            x = encoder_layer(layer, x, n, key_bias)
        if self.encoder.norm is not None:
            x = self.encoder.norm(x)
        x = self.norm(x)
        m = attention_mask.to(x.dtype).unsqueeze(-1)
        sent = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return x, sent
