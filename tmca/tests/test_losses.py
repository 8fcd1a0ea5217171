"""Each loss term decreases over a few optimisation steps on a tiny batch."""
import torch

from tmca.config import build_config
from tmca.losses import bce_loss, dice_loss, lte_loss, tmca_loss
from tmca.model import TMCA

torch.set_num_threads(2)


def _tiny(variant="full"):
    return build_config("compact", variant, image_size=32, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1),
                        vocab_size=50, text_width=32, text_heads=2, decoder_widths=(8, 16, 16, 32),
                        head_width=8, attn_heads=2, embed_dim=16)


def _data(cfg, b=4):
    g = torch.Generator().manual_seed(1)
    s, L = cfg.image_size, cfg.max_length
    y = torch.zeros(b, 1, s, s)
    ids = torch.zeros(b, L, dtype=torch.long)
    am = torch.zeros(b, L, dtype=torch.long)
    for i in range(b):  # each report names one quadrant; the image has blobs in two
        q = i % 4
        r, c = (q // 2) * (s // 2), (q % 2) * (s // 2)
        y[i, 0, r + 4: r + 12, c + 4: c + 12] = 1
        ids[i, :4] = torch.tensor([2, 10 + q, 20 + q, 3])
        am[i, :4] = 1
    x = y * 2 + torch.roll(y, s // 2, dims=3) * 2 + 0.1 * torch.randn(b, 1, s, s, generator=g)
    return x, ids, am, y


def test_each_loss_decreases():
    torch.manual_seed(0)
    cfg = _tiny()
    m = TMCA(cfg)
    x, ids, am, y = _data(cfg)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    hist = []
    for _ in range(12):
        terms = tmca_loss(m.forward_train(x, ids, am, y), y, cfg)
        hist.append({k: float(v) for k, v in terms.items()})
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    for k in ("dice", "bce", "align", "lte", "total"):
        assert hist[-1][k] < hist[0][k], (k, hist[0][k], hist[-1][k])


def test_loss_terms_follow_the_switches():
    for variant, keys in (("no-text", {"dice", "bce", "lte", "total"}),
                          ("no-lte", {"dice", "bce", "align", "total"}),
                          ("no-tsd", {"dice", "bce", "align", "lte", "total"})):
        cfg = _tiny(variant)
        x, ids, am, y = _data(cfg)
        terms = tmca_loss(TMCA(cfg).forward_train(x, ids, am, y), y, cfg)
        assert set(terms) == keys, variant


def test_dice_and_bce_values():
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :] = 1
    perfect = torch.where(t > 0, torch.tensor(20.0), torch.tensor(-20.0))
    assert float(dice_loss(perfect, t)) < 1e-3 and float(bce_loss(perfect, t)) < 1e-3
    assert float(dice_loss(-perfect, t)) > 0.9
    assert float(lte_loss([perfect[..., ::2, ::2]], t)) < 1e-3
