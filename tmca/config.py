"""TMCA configuration: one dataclass, two presets.

`paper` follows the public skeleton TMCA's peers share (GuideDecoder: ConvNeXt-Tiny
image encoder at 224x224, a BERT-base-sized text encoder, 24 tokens). `compact` is the
same architecture, narrower, sized so it trains on 2 CPU cores; it is what ships.

The ablation variants are one table, `ABLATIONS`: `build_config` reads a variant's overrides from
it, `tmca.train` its switches, and `variant_name` names a config by matching it against it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Tuple


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
    # TMCA switches; the ablations that change them are ABLATIONS below
    use_text: bool = True          # False: no text to the decoder (image-only)
    use_tsd: bool = True           # False: global average pooling instead of target pooling
    align_levels: Tuple[int, ...] = (1, 2, 3, 4)  # decoder levels with the alignment loss
    use_lte: bool = True
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


@dataclass(frozen=True)
class Ablation:
    """One ablation variant: its name, the one config field it changes from `full` and that
    field's value, and whether `tmca.train` offers it as a switch of the same name (``--no-tsd``)."""

    name: str
    field: str
    value: Any
    help: str
    switch: bool = True

    @property
    def overrides(self) -> Dict[str, Any]:
        """The config overrides that turn `full` into this variant."""
        return {self.field: self.value}


# The ablation variants, in the order of the model card's table. Each changes exactly one field, so
# a config's variant name is the '+'-join of the names of its changed fields (see `variant_name`).
ABLATIONS: Tuple[Ablation, ...] = (
    Ablation("no-tsd", "use_tsd", False, "global average pooling instead of target pooling"),
    # no switch: `--align-levels 4` is the valued form of the same field
    Ablation("align-levels-4", "align_levels", (4,), "alignment at F4 only", switch=False),
    Ablation("no-lte", "use_lte", False, "no language-guided target enhancement"),
    Ablation("no-text", "use_text", False, "image-only: no text to the decoder"),
    # an extra control: no alignment loss at all, to tell "TSD helps" from "global alignment hurts"
    Ablation("no-align", "align_levels", (), "no alignment loss at any level"),
)

FULL = "full"
#: variant name -> config overrides; `full` changes nothing
VARIANTS: Dict[str, Dict[str, Any]] = {FULL: {}, **{a.name: a.overrides for a in ABLATIONS}}
#: the config fields the ablations change, in table order (the order of a composed name's parts)
ABLATION_FIELDS: Tuple[str, ...] = tuple(dict.fromkeys(a.field for a in ABLATIONS))


def _full_value(field_name: str) -> Any:
    """`field_name`'s value in the full model (the dataclass default; both presets keep it)."""
    return getattr(TMCAConfig(), field_name)


def _as_value(v: Any) -> Any:
    """A config value in comparable form (checkpoints store tuples as JSON lists)."""
    return tuple(v) if isinstance(v, list) else v


def _generic_name(field_name: str, value: Any) -> str:
    """The name of a value of an ablated field that no table row names: `align_levels` (3, 4)
    is "align-levels-34", the same form as the row "align-levels-4"."""
    text = "".join(str(x) for x in value) if isinstance(value, tuple) else str(value).lower()
    return f"{field_name.replace('_', '-')}-{text}"


def check_ablation(overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Validate ablation overrides against the table: only ablated fields, booleans for the
    switches, and for tuple fields (align levels) distinct members of the full model's tuple."""
    out = {}
    for k, v in overrides.items():
        if k not in ABLATION_FIELDS:
            raise ValueError(f"{k!r} is not an ablated field; ablations change {list(ABLATION_FIELDS)}")
        v, full = _as_value(v), _full_value(k)
        if isinstance(full, tuple):
            if not isinstance(v, tuple) or len(set(v)) != len(v) or not set(v) <= set(full):
                raise ValueError(f"{k} = {v!r}: want distinct values from {full}")
        elif type(v) is not type(full):
            raise ValueError(f"{k} = {v!r}: want a {type(full).__name__}")
        out[k] = v
    return out


def merge_ablations(parts: Iterable[Tuple[str, Mapping[str, Any]]]) -> Dict[str, Any]:
    """Merge (label, overrides) pairs into one overrides dict; two labels that set one field to
    different values are an error."""
    out: Dict[str, Any] = {}
    source: Dict[str, str] = {}
    for label, over in parts:
        for k, v in check_ablation(over).items():
            if k in out and out[k] != v:
                raise ValueError(f"{source[k]} and {label} both set {k} ({out[k]!r} vs {v!r})")
            out[k], source[k] = v, label
    return out


def _parse_part(part: str) -> Dict[str, Any]:
    """One '+'-separated part of a variant name -> its overrides."""
    if part in VARIANTS and part != FULL:
        return VARIANTS[part]
    for k in ABLATION_FIELDS:
        prefix = k.replace("_", "-") + "-"
        if isinstance(_full_value(k), tuple) and part.startswith(prefix) and part[len(prefix):].isdigit():
            return check_ablation({k: tuple(int(c) for c in part[len(prefix):])})
    raise ValueError(f"unknown variant part {part!r}")


def variant_overrides(name: str) -> Dict[str, Any]:
    """A variant name -> its config overrides. Names are the table's (`no-tsd`), composed with '+'
    (`no-tsd+no-lte`), or a tuple field's generic form (`align-levels-34`)."""
    if name == FULL:
        return {}
    try:
        return merge_ablations((part, _parse_part(part)) for part in name.split("+"))
    except ValueError as e:
        raise ValueError(f"invalid variant {name!r} ({e}); choose one of {sorted(VARIANTS)} "
                         f"or several joined by '+'") from None


def ablated_fields(cfg: TMCAConfig) -> Dict[str, Any]:
    """The ablated fields where `cfg` differs from the full model, in table order."""
    out = {}
    for k in ABLATION_FIELDS:
        v = _as_value(getattr(cfg, k))
        if v != _full_value(k):
            out[k] = v
    return out


def variant_name(cfg: TMCAConfig) -> str:
    """The variant `cfg` is: `full`, a table name, or table names joined by '+' in table order;
    a field value no row names gets its generic form. `build_config(preset, variant_name(cfg))`
    gives back `cfg`'s ablation fields."""
    names = {(a.field, a.value): a.name for a in ABLATIONS}
    parts = [names.get((k, v)) or _generic_name(k, v) for k, v in ablated_fields(cfg).items()]
    return "+".join(parts) or FULL


def build_config(preset: str = "compact", variant: str = FULL, **overrides) -> TMCAConfig:
    """A preset with a variant's overrides (see `variant_overrides`), then `overrides` on top."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    kw = variant_overrides(variant)
    kw.update(overrides)
    return PRESETS[preset](**kw)
