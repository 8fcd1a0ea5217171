"""The exported graph carries no shape arithmetic, and the config-sized formulation computes what
PyTorch's own modules (the previous formulation) compute."""
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from tmca.config import build_config
from tmca.export import export_onnx, verify_onnx
from tmca.model import TMCA
from tmca.static_ops import encoder_layer, key_padding_bias, l2_normalize, multi_head_attention, resize_bilinear

torch.set_num_threads(2)


def _tiny(variant="full"):
    return build_config("compact", variant, image_size=32, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1),
                        vocab_size=60, text_width=32, text_heads=2, decoder_widths=(8, 16, 16, 32),
                        head_width=8, attn_heads=2, embed_dim=16)


def test_export_has_no_shape_plumbing(tmp_path):
    for variant in ("full", "no-text"):
        cfg = _tiny(variant)
        path = tmp_path / f"{variant}.onnx"
        export_onnx(TMCA(cfg).eval(), path)
        verify_onnx(path, cfg)
        ops = [n.op_type for n in onnx.load(str(path)).graph.node]
        assert ops.count("Shape") == 0, variant
        assert ops.count("ConstantOfShape") == 0 and ops.count("Expand") == 0, variant
        assert ops.count("Gather") <= 1, variant  # the token embedding lookup only


def _mask():
    am = torch.ones(3, 24, dtype=torch.long)
    am[0, 7:] = 0
    am[2, 20:] = 0
    return am


def test_attention_equals_nn_multihead_attention():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(32, 4, dropout=0.0, batch_first=True)
    q, kv, am = torch.randn(3, 36, 32), torch.randn(3, 24, 32), _mask()
    want, _ = attn(q, kv, kv, key_padding_mask=am == 0, need_weights=False)
    got = multi_head_attention(attn, q, kv, 36, 24, key_padding_bias(am))
    assert torch.allclose(got, want, atol=1e-6)


def test_encoder_layer_equals_nn_transformer_layer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    x, am = torch.randn(3, 24, 32), _mask()
    want = layer(x, src_key_padding_mask=am == 0)
    got = encoder_layer(layer, x, 24, key_padding_bias(am))
    assert torch.allclose(got, want, atol=1e-6)
    with torch.no_grad():  # eval mode's fused fast path too
        layer.eval()
        assert torch.allclose(encoder_layer(layer, x, 24, key_padding_bias(am)), layer(x, src_key_padding_mask=am == 0), atol=1e-5)


def test_normalize_and_resize_equal_torch():
    x = torch.randn(2, 5, 6, 6)
    assert torch.equal(l2_normalize(x, 1), F.normalize(x, dim=1))
    assert torch.equal(resize_bilinear(x, (6, 6), (12, 12)),
                       F.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False))


def test_text_encoder_shorter_text_still_runs():
    cfg = _tiny()
    model = TMCA(cfg).eval()
    ids = torch.randint(5, 60, (2, 10))
    with torch.no_grad():
        tokens, sent = model.text_encoder(ids, torch.ones(2, 10, dtype=torch.long))
    assert tokens.shape == (2, 10, 32) and sent.shape == (2, 32)
