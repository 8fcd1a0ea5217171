"""BERT weights into tmca's text encoder: the loaded encoder computes what BERT computes."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from tmca.config import build_config
from tmca.hf_folder import read_safetensors, write_safetensors
from tmca.model import TMCA
from tmca.pretrained_text import load_bert, read_folder
from tmca.text_encoder import TextEncoder

torch.set_num_threads(2)
D, LAYERS, HEADS, VOCAB, MAXPOS = 32, 2, 4, 40, 64
HF_CONFIG = {"model_type": "bert", "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
             "intermediate_size": 4 * D, "hidden_act": "gelu", "max_position_embeddings": MAXPOS,
             "type_vocab_size": 2, "vocab_size": VOCAB, "layer_norm_eps": 1e-12,
             "position_embedding_type": "absolute"}


def bert_state(prefix="bert.", seed=0):
    """A random BERT-base-layout state dict (tiny), with the extras real checkpoints carry."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: 0.2 * torch.randn(*s, generator=g)  # noqa: E731
    ln = lambda: 1.0 + r(D)  # noqa: E731
    sd = {prefix + "embeddings.word_embeddings.weight": r(VOCAB, D),
          prefix + "embeddings.position_embeddings.weight": r(MAXPOS, D),
          prefix + "embeddings.token_type_embeddings.weight": r(2, D),
          prefix + "embeddings.LayerNorm.weight": ln(), prefix + "embeddings.LayerNorm.bias": r(D),
          prefix + "embeddings.position_ids": torch.arange(MAXPOS)[None],
          prefix + "pooler.dense.weight": r(D, D), prefix + "pooler.dense.bias": r(D)}
    for i in range(LAYERS):
        p = f"{prefix}encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[p + f"attention.self.{n}.weight"], sd[p + f"attention.self.{n}.bias"] = r(D, D), r(D)
        sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"] = r(D, D), r(D)
        sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"] = ln(), r(D)
        sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"] = r(4 * D, D), r(4 * D)
        sd[p + "output.dense.weight"], sd[p + "output.dense.bias"] = r(D, 4 * D), r(D)
        sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"] = ln(), r(D)
    if prefix:  # BertForMaskedLM's head (CXR-BERT also has cls_projection_head.*)
        sd["cls.predictions.bias"] = r(VOCAB)
        sd["cls.predictions.transform.dense.weight"] = r(D, D)
        sd["cls_projection_head.dense_to_hidden.weight"] = r(8, D)
    return sd


def reference_bert(sd, ids, mask, prefix="bert.", eps=1e-12):
    """BERT's forward written out in plain torch (embeddings, post-norm layers, exact GELU)."""
    w = lambda n: sd[prefix + n]  # noqa: E731
    L = ids.shape[1]
    x = w("embeddings.word_embeddings.weight")[ids] + w("embeddings.position_embeddings.weight")[:L][None] \
        + w("embeddings.token_type_embeddings.weight")[torch.zeros_like(ids)]
    x = F.layer_norm(x, (D,), w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), eps)
    ext = (1.0 - mask[:, None, None, :].float()) * -10000.0  # HF's extended attention mask
    hd = D // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: F.linear(t, w(p + n + ".weight"), w(p + n + ".bias"))  # noqa: E731
        split = lambda t: t.view(t.shape[0], L, HEADS, hd).transpose(1, 2)  # noqa: E731
        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + ext, -1) @ v
        a = a.transpose(1, 2).reshape(x.shape[0], L, D)
        x = F.layer_norm(x + lin(a, "attention.output.dense"), (D,), w(p + "attention.output.LayerNorm.weight"),
                         w(p + "attention.output.LayerNorm.bias"), eps)
        h = lin(F.gelu(lin(x, "intermediate.dense")), "output.dense")
        x = F.layer_norm(x + h, (D,), w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), eps)
    return x


def _inputs(L=24):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, VOCAB, (3, L), generator=g)
    mask = torch.ones(3, L, dtype=torch.long)
    mask[1, 10:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _write_folder(path, sd, fmt):
    path.mkdir()
    (path / "config.json").write_text(json.dumps(HF_CONFIG))
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    (path / "vocab.txt").write_text("\n".join(toks) + "\n")
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    if fmt == "safetensors":
        write_safetensors(path / "model.safetensors", sd, {"format": "pt"})
    else:
        torch.save(sd, path / "pytorch_model.bin")


@pytest.mark.parametrize("fmt,prefix", [("safetensors", "bert."), ("bin", "")])
def test_loaded_text_encoder_equals_reference_bert(tmp_path, fmt, prefix):
    sd = bert_state(prefix)
    _write_folder(tmp_path / "hf", sd, fmt)
    f = read_folder(tmp_path / "hf", max_length=24)
    assert f["tokenizer"] == {"lower_case": True, "strip_accents": True}
    cfg = build_config("compact", max_length=24, **f["overrides"])
    assert cfg.text_norm_first is False and cfg.text_layer_norm_eps == 1e-12
    enc = TextEncoder(cfg).eval()
    rep = load_bert(enc, f["state_dict"], cfg.max_length)
    assert len(rep.loaded) == len(enc.state_dict())
    assert all(k.startswith(("cls", prefix + "pooler", prefix + "embeddings.position_ids")) for k in rep.unused)
    assert len(rep.loaded) + len(rep.unused) < len(sd)  # q/k/v are 3 -> 1, position + token type 2 -> 1
    ids, mask = _inputs()
    with torch.no_grad():
        tokens, sent = enc(ids, mask)
        ref = reference_bert(sd, ids, mask, prefix)
    real = mask.bool()
    diff = float((tokens - ref)[real].abs().max())
    print(f"{fmt}/{prefix or 'no prefix'}: max abs diff on real tokens {diff:.2e}, max |x| {float(ref.abs().max()):.2f}")
    assert diff < 1e-5
    m = mask[..., None].float()
    assert float((sent - (ref * m).sum(1) / m.sum(1)).abs().max()) < 1e-5


def test_safetensors_roundtrip_dtypes(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.randn(5).half(), "c": torch.randn(2, 2).to(torch.bfloat16),
         "d": torch.arange(6).reshape(2, 3)}
    write_safetensors(tmp_path / "x.safetensors", t)
    back = read_safetensors(tmp_path / "x.safetensors")
    assert list(back) == list(t)
    for k in t:
        assert back[k].dtype == t[k].dtype and torch.equal(back[k], t[k]), k


def test_errors_name_the_parameter(tmp_path):
    sd = bert_state()
    cfg = build_config("compact", max_length=24, vocab_size=VOCAB, text_width=D, text_layers=LAYERS,
                       text_heads=HEADS, text_norm_first=False, text_layer_norm_eps=1e-12)
    bad = dict(sd)
    bad["bert.encoder.layer.1.intermediate.dense.weight"] = torch.randn(4 * D + 1, D)
    with pytest.raises(ValueError, match=r"bert\.encoder\.layer\.1\.intermediate\.dense\.weight -> text_encoder\.encoder\.layers\.1\.linear1\.weight"):
        load_bert(TextEncoder(cfg), bad, 24)
    with pytest.raises(ValueError, match="cannot place: bert.encoder.layer.0.attention.self.distance_embedding.weight"):
        load_bert(TextEncoder(cfg), {**sd, "bert.encoder.layer.0.attention.self.distance_embedding.weight": torch.ones(1)}, 24)
    with pytest.raises(ValueError, match="pre-norm"):
        load_bert(TextEncoder(build_config("compact", vocab_size=VOCAB, text_width=D, text_layers=LAYERS)), sd, 24)


def test_post_norm_model_exports(tmp_path):
    """The post-norm text encoder goes through static_ops.encoder_layer into a valid dynamic-batch graph,
    and that path equals nn.TransformerEncoderLayer's own post-norm forward."""
    from tmca.export import export_onnx, verify_onnx
    cfg = build_config("compact", image_size=32, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), vocab_size=VOCAB,
                       text_width=D, text_heads=HEADS, text_layers=LAYERS, text_norm_first=False,
                       text_layer_norm_eps=1e-12, decoder_widths=(8, 16, 16, 32), head_width=8, attn_heads=2,
                       embed_dim=16)
    torch.manual_seed(0)
    model = TMCA(cfg).eval()
    ids, mask = _inputs()
    x = model.text_encoder.emb_norm(model.text_encoder.tok(ids) + model.text_encoder.pos)
    with torch.no_grad():
        ours, _ = model.text_encoder(ids, mask)
        theirs = model.text_encoder.encoder(x, src_key_padding_mask=mask == 0)
    assert float((ours - theirs)[mask.bool()].abs().max()) < 1e-5
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    verify_onnx(path, cfg)
