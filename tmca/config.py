"""TMCA configuration: one dataclass, two presets.

`paper` follows the public skeleton TMCA's peers share (GuideDecoder: ConvNeXt-Tiny
image encoder at 224x224, a BERT-base-sized text encoder, 24 tokens). `compact` is the
same architecture, narrower, sized so it trains on 2 CPU cores; it is what ships.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Tuple


@dataclass
class TMCAConfig:
    # image encoder (ConvNeXt-style, 4 stages at strides 4/8/16/32)
    image_size: int = 96
    in_channels: int = 1
    widths: Tuple[int, int, int, int] = (32, 64, 128, 256)
    depths: Tuple[int, int, int, int] = (1, 1, 2, 1)
    # text encoder (BERT-style)
    vocab_size: int = 1000
    max_length: int = 24
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    # True: pre-norm layers (trained from scratch). False: BERT's post-norm layers, no final norm;
    # what --init-text sets, so that loaded BERT weights compute what BERT computes
    text_norm_first: bool = True
    text_layer_norm_eps: float = 1e-5  # BERT: 1e-12
    # decoder (GuideDecoder-style) and shared alignment space
    decoder_widths: Tuple[int, int, int, int] = (32, 48, 64, 96)  # at F1..F4
    head_width: int = 16
    attn_heads: int = 4
    cross_attn_levels: Tuple[int, ...] = (1, 2, 3, 4)  # decoder levels with text cross-attention
    embed_dim: int = 64  # TSD / LTE shared space
    # TMCA switches (ablations)
    use_text: bool = True          # --no-text: no text to the decoder (image-only)
    use_tsd: bool = True           # --no-tsd: global average pooling instead of target pooling
    align_levels: Tuple[int, ...] = (1, 2, 3, 4)  # --align-levels 4: high level only
    use_lte: bool = True           # --no-lte
    # loss weights
    align_weight: float = 0.2
    level_weights: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    lte_weight: float = 0.5
    init_temperature: float = 0.07

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TMCAConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TMCAConfig keys {unknown}: a checkpoint of another version of tmca?")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def paper(**overrides) -> TMCAConfig:
    """ConvNeXt-Tiny (96/192/384/768, depths 3/3/9/3) at 224x224; text width 768, 24 tokens."""
    c = TMCAConfig(
        image_size=224, widths=(96, 192, 384, 768), depths=(3, 3, 9, 3),
        vocab_size=30522, max_length=24, text_width=768, text_layers=12, text_heads=12,
        decoder_widths=(96, 192, 384, 768), head_width=32, attn_heads=8, embed_dim=256,
    )
    return dataclasses.replace(c, **overrides)


def compact(**overrides) -> TMCAConfig:
    """The shipped size: widths 32/64/128/256, text width 128 with 2 layers, 96x96 input."""
    return dataclasses.replace(TMCAConfig(), **overrides)


PRESETS = {"paper": paper, "compact": compact}

# ablation variants: name -> config overrides
VARIANTS = {
    "full": {},
    "no-tsd": {"use_tsd": False},
    "align-levels-4": {"align_levels": (4,)},
    "no-lte": {"use_lte": False},
    "no-text": {"use_text": False},
    # an extra control: no alignment loss at all, to tell "TSD helps" from "global alignment hurts"
    "no-align": {"align_levels": ()},
}


def build_config(preset: str = "compact", variant: str = "full", **overrides) -> TMCAConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    kw = dict(VARIANTS[variant])
    kw.update(overrides)
    return PRESETS[preset](**kw)
