"""Checkpoints in the published layouts, at the paper preset's sizes, for the paper-preset test.

No pretrained weights can be downloaded where tmcad is tested, so this writes files of the same
layouts with random weights: torchvision's ConvNeXt-Tiny state dict (Debian's python3-torchvision,
`convnext_tiny()` as torchvision builds it) and a BERT-base-sized Hugging Face folder
(BertForMaskedLM parameter names, safetensors, config.json, vocab.txt — the compact model's vocab).

    /usr/bin/python3 testdata/gen/paper/checkpoints.py --out DIR
    # DIR/convnext_tiny.pth, DIR/bert/{config.json,vocab.txt,model.safetensors}
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tmca.hf_folder import write_safetensors  # noqa: E402

VOCAB = ROOT / "models" / "tmca-cxr-compact" / "vocab.txt"


def write_bert(folder: Path, d: int = 768, layers: int = 12, heads: int = 12, positions: int = 512) -> None:
    """A BERT-base-sized folder with random weights under BertForMaskedLM's names."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = VOCAB.read_text(encoding="utf-8").splitlines()
    g = torch.Generator().manual_seed(0)
    r = lambda *s: 0.02 * torch.randn(*s, generator=g)  # noqa: E731
    n = len(tokens)
    sd = {"bert.embeddings.word_embeddings.weight": r(n, d), "bert.embeddings.position_embeddings.weight": r(positions, d),
          "bert.embeddings.token_type_embeddings.weight": r(2, d), "bert.embeddings.LayerNorm.weight": 1 + r(d),
          "bert.embeddings.LayerNorm.bias": r(d), "cls.predictions.bias": r(n)}
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name, shape in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                            ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                            ("intermediate.dense", (4 * d, d)), ("output.dense", (d, 4 * d))):
            sd[p + name + ".weight"], sd[p + name + ".bias"] = r(*shape), r(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            sd[p + name + ".weight"], sd[p + name + ".bias"] = 1 + r(d), r(d)
    write_safetensors(folder / "model.safetensors", sd)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": d, "num_hidden_layers": layers,
        "num_attention_heads": heads, "intermediate_size": 4 * d, "hidden_act": "gelu",
        "max_position_embeddings": positions, "type_vocab_size": 2, "vocab_size": n, "layer_norm_eps": 1e-12}) + "\n")


def write_convnext_tiny(path: Path) -> None:
    """torchvision's ConvNeXt-Tiny as Debian's torchvision builds it (random initialisation)."""
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.convnext_tiny().state_dict(), path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    write_convnext_tiny(a.out / "convnext_tiny.pth")
    write_bert(a.out / "bert")


if __name__ == "__main__":
    main()
