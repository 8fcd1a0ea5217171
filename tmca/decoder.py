"""Text-guided top-down decoder in the GuideDecoder style.

From F4 up to F1: upsample, concatenate the encoder skip, convolve; then image-query / text-key
cross-attention (pixels attend to the report's tokens; padded tokens masked out); then LTE. A
head takes the stride-4 map to one channel at input resolution (logits; the model applies the
sigmoid).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TMCAConfig
from .lte import LTE
from .static_ops import key_padding_bias, multi_head_attention, resize_bilinear, static_dim


def conv_bn_act(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class TextCrossAttention(nn.Module):
    """Pixels (queries, with a learned position embedding) attend to text tokens (keys/values)."""

    def __init__(self, channels: int, text_width: int, heads: int, hw: Tuple[int, int],
                 max_length: Optional[int] = None):
        super().__init__()
        self.max_length = max_length
        self.channels, self.hw = channels, (int(hw[0]), int(hw[1]))
        self.pos = nn.Parameter(torch.zeros(1, hw[0] * hw[1], channels))
        nn.init.normal_(self.pos, std=0.02)
        self.norm_q = nn.LayerNorm(channels)
        self.kv = nn.Linear(text_width, channels)
        self.norm_kv = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, dropout=0.0, batch_first=True)
        self.ffn = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, 2 * channels), nn.GELU(),
                                 nn.Linear(2 * channels, channels))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, attention_mask: torch.Tensor,
                key_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        # sizes from the config (x is [B,C,h,w] with C, h, w fixed), the batch as -1
        c, (h, w) = self.channels, self.hw
        q = x.reshape(-1, c, h * w).transpose(1, 2)  # [B,hw,C]
        kv = self.norm_kv(self.kv(tokens))
        if key_bias is None:
            key_bias = key_padding_bias(attention_mask)
        n_kv = static_dim(tokens.shape[1], self.max_length)
        a = multi_head_attention(self.attn, self.norm_q(q) + self.pos, kv, h * w, n_kv, key_bias)
        q = q + a
        q = q + self.ffn(q)
        return q.transpose(1, 2).reshape(-1, c, h, w)


class GuideLevel(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, cfg: TMCAConfig, level: int):
        super().__init__()
        self.fuse = nn.Sequential(conv_bn_act(cin + cskip, cout), conv_bn_act(cout, cout))
        side = cfg.image_size // (2 ** (level + 1))
        self.size = (side, side)  # static, so the exported graph keeps H and W fixed
        prev = cfg.image_size // (2 ** (level + 2))
        # the input's size when the image size divides by 32 (every stage halves exactly); else unknown
        self.in_size = (prev, prev) if cfg.image_size % 32 == 0 else None
        self.xattn = (TextCrossAttention(cout, cfg.text_width, cfg.attn_heads, (side, side), cfg.max_length)
                      if cfg.use_text and level in cfg.cross_attn_levels else None)
        self.lte = LTE(cout, cfg.text_width, cfg.embed_dim, cfg.use_text) if cfg.use_lte else None

    def forward(self, x, skip, tokens, attention_mask, sent, key_bias=None):
        if skip is not None:
            if self.in_size is not None:
                x = resize_bilinear(x, self.in_size, self.size)
            else:
                x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
            x = torch.cat([x, skip], 1)
        x = self.fuse(x)
        if self.xattn is not None:
            x = self.xattn(x, tokens, attention_mask, key_bias)
        lte_logits = None
        if self.lte is not None:
            x, lte_logits = self.lte(x, sent)
        return x, lte_logits


class GuideDecoder(nn.Module):
    def __init__(self, cfg: TMCAConfig):
        super().__init__()
        w, d = cfg.widths, cfg.decoder_widths
        self.levels = nn.ModuleList()
        # index 0 -> level 4 (F4, no skip) ... index 3 -> level 1 (F1)
        self.levels.append(GuideLevel(w[3], 0, d[3], cfg, 4))
        for l in (3, 2, 1):
            self.levels.append(GuideLevel(d[l], w[l - 1], d[l - 1], cfg, l))
        h = cfg.head_width
        self.head1 = conv_bn_act(d[0], 2 * h)
        self.head2 = conv_bn_act(2 * h, h)
        self.out = nn.Conv2d(h, 1, 1)
        s = cfg.image_size
        self.head_sizes = ((s // 2, s // 2), (s, s))
        self.head_in = (s // 4, s // 4) if s % 32 == 0 else None

    def forward(self, feats: List[torch.Tensor], tokens: Optional[torch.Tensor], attention_mask: torch.Tensor,
                sent: Optional[torch.Tensor], key_bias: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x, lte_maps = None, []
        if tokens is not None and key_bias is None:
            key_bias = key_padding_bias(attention_mask)
        for i, level in enumerate(self.levels):
            l = 4 - i
            if i == 0:
                x, m = level(feats[3], None, tokens, attention_mask, sent, key_bias)
            else:
                x, m = level(x, feats[l - 1], tokens, attention_mask, sent, key_bias)
            if m is not None:
                lte_maps.append(m)
        if self.head_in is not None:
            x = resize_bilinear(self.head1(x), self.head_in, self.head_sizes[0])
            x = resize_bilinear(self.head2(x), self.head_sizes[0], self.head_sizes[1])
        else:
            x = F.interpolate(self.head1(x), size=self.head_sizes[0], mode="bilinear", align_corners=False)
            x = F.interpolate(self.head2(x), size=self.head_sizes[1], mode="bilinear", align_corners=False)
        return self.out(x), lte_maps
