"""Shapes for both presets, TSD pooling honours the mask, no nested-tensor shortening."""
import torch

from tmca.config import build_config
from tmca.model import TMCA
from tmca.text_encoder import TextEncoder
from tmca.tsd import TSD, target_background_pool

torch.set_num_threads(2)


def _batch(cfg, b, pad_from=None):
    g = torch.Generator().manual_seed(0)
    s, L = cfg.image_size, cfg.max_length
    ids = torch.randint(5, cfg.vocab_size, (b, L), generator=g)
    am = torch.ones(b, L, dtype=torch.long)
    if pad_from is not None:
        am[:, pad_from:] = 0
        ids[:, pad_from:] = 0
    return torch.randn(b, 1, s, s, generator=g), ids, am


def test_compact_shapes_all_variants():
    for variant in ("full", "no-tsd", "align-levels-4", "no-lte", "no-text"):
        cfg = build_config("compact", variant, vocab_size=200)
        torch.manual_seed(0)
        m = TMCA(cfg)
        x, ids, am = _batch(cfg, 3, pad_from=10)
        feats = m.image_encoder(x)
        s = cfg.image_size
        assert [tuple(f.shape) for f in feats] == [(3, w, s // st, s // st) for w, st in zip(cfg.widths, (4, 8, 16, 32))]
        y = (torch.rand(3, 1, s, s) > 0.8).float()
        out = m.forward_train(x, ids, am, y)
        assert out["logits"].shape == (3, 1, s, s)
        assert len(out["lte_logits"]) == (4 if cfg.use_lte else 0)
        assert (out["align"] is not None) == (variant != "no-text")
        if variant == "align-levels-4":
            assert set(out["align_levels"]) == {"align_F4"}
        m.eval()
        with torch.no_grad():
            p = m(x, ids, am)
        assert p.shape == (3, 1, s, s) and float(p.min()) >= 0 and float(p.max()) <= 1


def test_paper_preset_forward():
    cfg = build_config("paper")
    assert cfg.widths == (96, 192, 384, 768) and cfg.depths == (3, 3, 9, 3)
    assert cfg.image_size == 224 and cfg.text_width == 768 and cfg.max_length == 24
    torch.manual_seed(0)
    m = TMCA(cfg).eval()
    x, ids, am = _batch(cfg, 1, pad_from=12)
    with torch.no_grad():
        feats = m.image_encoder(x)
        assert [f.shape[-1] for f in feats] == [56, 28, 14, 7]
        p = m(x, ids, am)
    assert p.shape == (1, 1, 224, 224)


def test_text_encoder_keeps_all_positions_in_eval():
    cfg = build_config("compact", vocab_size=100)
    enc = TextEncoder(cfg).eval()
    _, ids, am = _batch(cfg, 2, pad_from=7)
    with torch.no_grad():
        tok, sent = enc(ids, am)
    assert tok.shape == (2, cfg.max_length, cfg.text_width)  # not shortened to the 7 real tokens
    assert sent.shape == (2, cfg.text_width)
    # padding must not change the sentence embedding of the real tokens
    ids2 = ids.clone()
    ids2[:, 7:] = 42
    with torch.no_grad():
        _, sent2 = enc(ids2, am)
    assert torch.allclose(sent, sent2, atol=1e-5)


def test_tsd_pooling_honours_the_mask():
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 12, 12)
    mask = torch.zeros(2, 1, 48, 48)
    mask[:, :, 8:24, 16:40] = 1  # aligned to the 4x grid: whole cells
    tgt, bg, frac = target_background_pool(feat, mask)
    feat2 = feat.clone()
    outside = torch.ones(12, 12, dtype=torch.bool)
    outside[2:6, 4:10] = False
    feat2[:, :, outside] = torch.randn(2, 8, int(outside.sum()))
    tgt2, bg2, _ = target_background_pool(feat2, mask)
    assert torch.allclose(tgt, tgt2, atol=1e-6)
    assert not torch.allclose(bg, bg2)
    assert torch.allclose(frac, torch.full((2,), 24 / 144))
    # through the module: image pixels outside the target do not move the target embedding
    tsd = TSD(8, 16, 4)
    v1, _, _ = tsd.embeddings(feat, mask)
    v2, _, _ = tsd.embeddings(feat2, mask)
    assert torch.allclose(v1, v2, atol=1e-6)
    # --no-tsd: global pooling does see them
    g = TSD(8, 16, 4, target_sensitive=False)
    w1, b1, _ = g.embeddings(feat, mask)
    w2, _, _ = g.embeddings(feat2, mask)
    assert b1 is None and not torch.allclose(w1, w2)


def test_tsd_background_is_a_negative():
    torch.manual_seed(0)
    tsd = TSD(4, 4, 4)
    with torch.no_grad():
        tsd.img_proj.weight.copy_(torch.eye(4)[:, :, None, None]); tsd.img_proj.bias.zero_()
        tsd.txt_proj.weight.copy_(torch.eye(4)); tsd.txt_proj.bias.zero_()
    text = torch.eye(4)[:2]
    feat = torch.zeros(2, 4, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1
    feat[0, 0, :2] = 1; feat[1, 1, :2] = 1  # targets match their own text
    far = tsd(feat, text, mask)
    feat[0, 0, 2:] = 1; feat[1, 1, 2:] = 1  # backgrounds now look like the text too
    near = tsd(feat, text, mask)
    assert near > far


def test_config_from_dict_rejects_unknown_keys():
    import pytest

    from tmca.config import TMCAConfig, build_config

    d = build_config("compact", "full").to_dict()
    assert TMCAConfig.from_dict(d) == build_config("compact", "full")
    with pytest.raises(ValueError, match="unknown TMCAConfig keys"):
        TMCAConfig.from_dict({**d, "use_magic": True})
