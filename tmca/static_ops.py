"""Export-lean building blocks: every non-batch size is a Python int from the config.

The ONNX graph is traced; a size read from a tensor (`x.shape`, `size()`) becomes Shape / Gather /
Unsqueeze / Concat nodes that ONNX Runtime runs on every call. Here every reshape is written as
`(-1, <ints>)` with the ints known from the config, so the only dynamic dimension (the batch) is the
`-1` and the graph carries no shape arithmetic. The functions compute what PyTorch's own modules
compute (`nn.MultiheadAttention`, `nn.TransformerEncoderLayer` (pre- or post-norm), `F.normalize`,
`F.interpolate`) in the same order of operations, using those modules' parameters, so checkpoints
and state_dict keys are unchanged.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def key_padding_bias(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B,L] 1/0 mask -> additive attention bias [B,1,1,L]: 0 for tokens, -inf for padding
    (what nn.MultiheadAttention makes of key_padding_mask = attention_mask == 0)."""
    # float32 tensors, not Python scalars: scalars make a float64 bias that promotes the scores
    neg, zero = torch.tensor(float("-inf")), torch.tensor(0.0)
    return torch.where(attention_mask == 0, neg, zero).unsqueeze(1).unsqueeze(2)


def static_dim(actual, expected: int):
    """`expected` (a Python int, so tracing records a constant) when the tensor's size equals it,
    else the size itself (a shorter text in training or a test)."""
    return expected if actual == expected else actual


def multi_head_attention(attn: nn.MultiheadAttention, query: torch.Tensor, key_value: torch.Tensor,
                         n_q: int, n_kv: int, key_bias: torch.Tensor) -> torch.Tensor:
    """nn.MultiheadAttention(batch_first=True)(query, key_value, key_value, key_padding_mask, need_weights=False)
    with query [B,n_q,E], key_value [B,n_kv,E] and key_bias [B,1,1,n_kv] from key_padding_bias."""
    e, h = attn.embed_dim, attn.num_heads
    hd = e // h
    w, b = attn.in_proj_weight, attn.in_proj_bias
    q = F.linear(query, w[:e], b[:e]).reshape(-1, n_q, h, hd).transpose(1, 2)            # [B,h,n_q,hd]
    k = F.linear(key_value, w[e:2 * e], b[e:2 * e]).reshape(-1, n_kv, h, hd).permute(0, 2, 3, 1)  # [B,h,hd,n_kv]
    v = F.linear(key_value, w[2 * e:], b[2 * e:]).reshape(-1, n_kv, h, hd).transpose(1, 2)  # [B,h,n_kv,hd]
    scores = torch.matmul(q / math.sqrt(hd), k) + key_bias
    p = torch.softmax(scores, dim=-1)
    if attn.training and attn.dropout > 0.0:
        p = F.dropout(p, p=attn.dropout)
    out = torch.matmul(p, v).transpose(1, 2).reshape(-1, n_q, e)
    return attn.out_proj(out)


def encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, n: int, key_bias: torch.Tensor) -> torch.Tensor:
    """nn.TransformerEncoderLayer(batch_first=True)(x, src_key_padding_mask=...), pre-norm
    (norm_first=True) or post-norm (norm_first=False, BERT's layer)."""
    if not layer.norm_first:
        x = layer.norm1(x + layer.dropout1(multi_head_attention(layer.self_attn, x, x, n, n, key_bias)))
        return layer.norm2(x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))))
    h = layer.norm1(x)
    x = x + layer.dropout1(multi_head_attention(layer.self_attn, h, h, n, n, key_bias))
    x = x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(x))))))
    return x


def l2_normalize(x: torch.Tensor, dim: int, eps: float = 1e-12) -> torch.Tensor:
    """F.normalize(x, dim=dim) by broadcasting instead of expand_as (no Shape/Expand in the graph)."""
    return x / x.norm(2, dim, keepdim=True).clamp_min(eps)


def resize_bilinear(x: torch.Tensor, in_hw: Tuple[int, int], out_hw: Tuple[int, int]) -> torch.Tensor:
    """F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False). When out is exactly twice
    in on both axes, pass the scale (PyTorch then uses 1/scale = in/out, the same numbers) so the
    exported Resize takes constant scales rather than sizes built from the input's shape."""
    if out_hw[0] == 2 * in_hw[0] and out_hw[1] == 2 * in_hw[1]:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False)
