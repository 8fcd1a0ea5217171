"""BERT-family weights into `tmca.text_encoder` (`tmca.train --init-text DIR`).

DIR is a local Hugging Face folder (`tmca.hf_folder`): `config.json`, `vocab.txt`, and
`model.safetensors` or `pytorch_model.bin`. The BERT weights sit under a prefix found from the key
that ends in `embeddings.word_embeddings.weight`: `bert.` for `BertModel` saved inside
`BertForMaskedLM` and for CXR-BERT (its `CXRBertModel` subclasses `BertForMaskedLM`), none for a bare
`BertModel`, anything else (e.g. `text_model.bert.`) likewise. Tensors outside the prefix (the MLM
head `cls.*`, CXR-BERT's `cls_projection_head.*`) and the pooler are listed as unused; TF-converted
`LayerNorm.gamma` / `.beta` names are read as `.weight` / `.bias`.

What BERT computes, and how tmca's encoder reproduces it (`text_norm_first=False`, eps from the
config, 1e-12 for BERT):

* embeddings: LN(word[id] + position[i] + token_type[0]); tmca has no token types (one segment),
  so `pos = position[:max_length] + token_type[0]` (exact for single-segment input; in fine-tuning
  the sum is one parameter);
* each layer, post-norm: x = LN1(x + Wo·attn(Wq x, Wk x, Wv x)); x = LN2(x + W2·gelu(W1 x)), with
  the exact (erf) GELU; q/k/v become `in_proj_weight` = [Wq; Wk; Wv];
* padded keys: BERT adds a large negative number, tmca -inf; the same after the softmax;
* no final LayerNorm and no pooler (tmca's masked-mean sentence embedding is computed from the
  token features).

Not preserved: BERT's dropout (tmca's text encoder has none), token types other than 0, positions
beyond `max_length`, the pooler and the MLM / projection heads.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from .pretrained_image import LoadReport

# BERT name inside a layer -> (tmca name inside the layer, slot of in_proj or None)
_LAYER = {
    "attention.self.query.weight": ("self_attn.in_proj_weight", 0),
    "attention.self.key.weight": ("self_attn.in_proj_weight", 1),
    "attention.self.value.weight": ("self_attn.in_proj_weight", 2),
    "attention.self.query.bias": ("self_attn.in_proj_bias", 0),
    "attention.self.key.bias": ("self_attn.in_proj_bias", 1),
    "attention.self.value.bias": ("self_attn.in_proj_bias", 2),
    "attention.output.dense.weight": ("self_attn.out_proj.weight", None),
    "attention.output.dense.bias": ("self_attn.out_proj.bias", None),
    "attention.output.LayerNorm.weight": ("norm1.weight", None),
    "attention.output.LayerNorm.bias": ("norm1.bias", None),
    "intermediate.dense.weight": ("linear1.weight", None),
    "intermediate.dense.bias": ("linear1.bias", None),
    "output.dense.weight": ("linear2.weight", None),
    "output.dense.bias": ("linear2.bias", None),
    "output.LayerNorm.weight": ("norm2.weight", None),
    "output.LayerNorm.bias": ("norm2.bias", None),
}
_EMB = {"embeddings.word_embeddings.weight": "tok.weight", "embeddings.LayerNorm.weight": "emb_norm.weight",
        "embeddings.LayerNorm.bias": "emb_norm.bias"}


def find_prefix(keys) -> str:
    """The prefix before `embeddings.word_embeddings.weight` (e.g. "bert." or "")."""
    cands = [k[: -len("embeddings.word_embeddings.weight")] for k in keys
             if k.endswith("embeddings.word_embeddings.weight")]
    if len(cands) != 1:
        raise ValueError(f"want exactly one *embeddings.word_embeddings.weight in the checkpoint, found {cands}")
    return cands[0]


def config_overrides(hf: Mapping[str, object], max_length: int) -> Dict[str, object]:
    """TMCAConfig fields of a BERT config.json; refuses what tmca's encoder cannot compute."""
    d, ff = int(hf["hidden_size"]), int(hf["intermediate_size"])
    if ff != 4 * d:
        raise ValueError(f"config.json: intermediate_size {ff} != 4 * hidden_size {d} (tmca's FFN is 4x)")
    act = hf.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"config.json: hidden_act {act!r}; tmca's encoder uses the exact GELU ('gelu')")
    pe = hf.get("position_embedding_type", "absolute")
    if pe != "absolute":
        raise ValueError(f"config.json: position_embedding_type {pe!r}; only 'absolute' is supported")
    if int(hf.get("max_position_embeddings", 512)) < max_length:
        raise ValueError(f"config.json: max_position_embeddings {hf['max_position_embeddings']} < max_length {max_length}")
    return {"vocab_size": int(hf["vocab_size"]), "text_width": d, "text_layers": int(hf["num_hidden_layers"]),
            "text_heads": int(hf["num_attention_heads"]), "text_norm_first": False,
            "text_layer_norm_eps": float(hf.get("layer_norm_eps", 1e-12))}


def tokenizer_flags(tok_cfg: Mapping[str, object]) -> Dict[str, bool]:
    """lower_case / strip_accents of tokenizer_config.json (BertTokenizer's defaults: lower-case,
    and strip accents whenever lower-casing unless stated)."""
    lower = bool(tok_cfg.get("do_lower_case", True))
    sa = tok_cfg.get("strip_accents")
    return {"lower_case": lower, "strip_accents": lower if sa is None else bool(sa)}


def bert_to_tmca(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                 max_length: int) -> Tuple[Dict[str, torch.Tensor], LoadReport]:
    """Map a BERT state dict onto `target` (a post-norm TextEncoder's state dict)."""
    if "norm.weight" in target:
        raise ValueError("the text encoder is pre-norm (text_norm_first=True): BERT weights need text_norm_first=False")
    pre = find_prefix(state)
    rep = LoadReport("bert" + (f" (prefix {pre!r})" if pre else " (no prefix)"))
    out: Dict[str, torch.Tensor] = {}
    qkv: Dict[str, list] = {}
    pos = tt = None
    unexpected = []
    for k, v in state.items():
        if not k.startswith(pre):
            rep.unused[k] = "outside the encoder (pre-training head)"
            continue
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", k[len(pre):])
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        if name in _EMB:
            out[_EMB[name]] = v
            rep.loaded[_EMB[name]] = k
        elif name == "embeddings.position_embeddings.weight":
            pos = (k, v)
        elif name == "embeddings.token_type_embeddings.weight":
            tt = (k, v)
        elif name == "embeddings.position_ids" or name.startswith("pooler."):
            rep.unused[k] = "position ids buffer" if name.endswith("position_ids") else "pooler (tmca uses a masked mean)"
        elif (m := re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", name)) and m[2] in _LAYER:
            dst, slot = _LAYER[m[2]]
            dst = f"encoder.layers.{m[1]}.{dst}"
            if slot is None:
                out[dst] = v
                rep.loaded[dst] = k
            else:
                qkv.setdefault(dst, [None, None, None])[slot] = (k, v)
        else:
            unexpected.append(k)
    if unexpected:
        raise ValueError("BERT checkpoint: tensors tmca cannot place: " + ", ".join(unexpected[:8])
                         + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""))
    for dst, parts in qkv.items():
        if any(p is None for p in parts):
            raise ValueError(f"BERT checkpoint: {dst} needs query, key and value; some are missing")
        out[dst] = torch.cat([p[1] for p in parts], 0)
        rep.loaded[dst] = " + ".join(p[0] for p in parts)
    if pos is None:
        raise ValueError("BERT checkpoint: no embeddings.position_embeddings.weight")
    p = pos[1][:max_length].clone()
    src = pos[0] + f"[:{max_length}]"
    if tt is not None:
        p = p + tt[1][0]
        src += f" + {tt[0]}[0]"
        if tt[1].shape[0] > 1:
            rep.notes.append(f"token types 1..{tt[1].shape[0] - 1} unused (one segment)")
    out["pos"] = p.unsqueeze(0)
    rep.loaded["pos"] = src
    missing = sorted(set(target) - set(out))
    if missing:
        raise ValueError("BERT checkpoint: no tensor for text_encoder." + ", text_encoder.".join(missing[:8])
                         + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
                         + " (does config.json's num_hidden_layers match the weights?)")
    extra = sorted(set(out) - set(target))
    if extra:
        raise ValueError("BERT checkpoint: tmca's text encoder has no " + ", ".join(extra[:8])
                         + " (more layers than cfg.text_layers?)")
    for dst, v in out.items():
        if tuple(v.shape) != tuple(target[dst].shape):
            raise ValueError(f"{rep.loaded[dst]} -> text_encoder.{dst}: checkpoint shape {tuple(v.shape)}, "
                             f"tmca shape {tuple(target[dst].shape)}")
        out[dst] = v.to(target[dst].dtype)
    return out, rep


def load_bert(encoder: nn.Module, state: Mapping[str, torch.Tensor], max_length: int) -> LoadReport:
    """Load a BERT state dict into a post-norm TextEncoder (strict: every parameter set)."""
    new, rep = bert_to_tmca(state, encoder.state_dict(), max_length)
    encoder.load_state_dict(new, strict=True)
    return rep


def read_folder(folder: str | Path, max_length: int) -> dict:
    """A Hugging Face BERT folder -> {"overrides": TMCAConfig fields, "state_dict", "vocab": Path,
    "tokenizer": {"lower_case", "strip_accents"}, "config": config.json}."""
    from .hf_folder import read_hf_folder
    from .tokenizer import load_vocab
    f = read_hf_folder(folder)
    over = config_overrides(f["config"], max_length)
    n_vocab = len(load_vocab(f["vocab"]))
    if n_vocab != over["vocab_size"]:
        raise ValueError(f"{folder}: vocab.txt has {n_vocab} tokens but config.json says vocab_size {over['vocab_size']}")
    return {"overrides": over, "state_dict": f["state_dict"], "vocab": f["vocab"],
            "tokenizer": tokenizer_flags(f["tokenizer"]), "config": f["config"]}
