"""Paired tests over seeds (numpy) and the appearance table writer of tmca.reproduce."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from tmca import reproduce
from tmca.paired_stats import betainc, paired_t, sign_flip_p, t_two_sided_p, welch_t


def test_t_distribution_tails():
    # two-sided 5 % and 1 % critical values of Student's t (standard tables)
    assert t_two_sided_p(2.776445, 4) == pytest.approx(0.05, abs=1e-5)
    assert t_two_sided_p(4.604095, 4) == pytest.approx(0.01, abs=1e-5)
    assert t_two_sided_p(1.959964, 1e6) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(0.0, 3) == pytest.approx(1.0)
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-4)  # I_0.4(2,3) = 0.5248


def test_paired_t_and_sign_flip():
    full = [0.90, 0.91, 0.89, 0.92, 0.905]
    other = [0.88, 0.90, 0.885, 0.90, 0.90]
    r = paired_t(other, full)
    assert r["n"] == 5 and r["diff_mean"] == pytest.approx(-0.012)
    assert r["t"] == pytest.approx(-3.5386, abs=1e-3) and r["p"] == pytest.approx(0.02404, abs=1e-4)
    assert sign_flip_p(other, full) == pytest.approx(2 / 32)  # all 5 differences negative
    assert sign_flip_p([1, 2, 3], [1, 2, 3]) == 1.0
    # an offset that flips sign across seeds is not significant
    assert paired_t([0.9, 0.8, 0.9, 0.8], [0.85] * 4)["p"] > 0.5
    with pytest.raises(ValueError):
        paired_t([0.9], [0.8])


def test_welch_from_summaries():
    w = welch_t(0.9, 0.01, 3, 0.88, 0.02, 3)
    assert w["t"] == pytest.approx(1.5492, abs=1e-3) and w["p"] == pytest.approx(0.2209, abs=1e-3)
    assert math.isinf(welch_t(0.9, 0.0, 3, 0.8, 0.0, 3)["t"])


def _run(root, variant, seed, dice_cxr, dice_ct):
    d = root / f"{variant}-s{seed}"
    d.mkdir()
    (d / "vocab.txt").write_text("[PAD]\n")
    for name, dice in (("test_metrics.json", dice_cxr), (reproduce.APPEARANCE_CT_METRICS, dice_ct)):
        (d / name).write_text(json.dumps({"dice_mean": dice, "miou_mean": dice - 0.1, "dataset_dice": dice,
                                          "seed": seed, "n": 300, "steps": 700, "train_seconds": 10.0}))


def test_appearance_tables_keep_the_rest(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    for s in range(5):
        _run(out, "full", s, 0.90 + 0.001 * s, 0.85)
        _run(out, "no-lte", s, 0.88 + 0.001 * s + (0.002 if s % 2 else 0.0), 0.85 + 0.001 * s)
    metrics = tmp_path / "metrics.json"
    pos = {"full": {"dice_mean": 0.9, "dice_std": 0.002, "seeds": 3},
           "no-lte": {"dice_mean": 0.89, "dice_std": 0.002, "seeds": 3}}
    metrics.write_text(json.dumps({"variants": pos, "shipped": {"x": 1}}))
    card = tmp_path / "card.md"
    card.write_text("# card\n\n<!-- table -->\nkept\n<!-- /table -->\n\n## Export and parity\n")
    a = SimpleNamespace(n_test=300, steps=700, out=str(out), seeds=list(range(5)))
    doc = reproduce.appearance_doc(out, ["full", "no-lte"], a, None)
    q = doc["cxr"]["paired_vs_full"]["no-lte"]
    assert q["seeds"] == [0, 1, 2, 3, 4] and q["diff_mean"] == pytest.approx(-0.0192, abs=1e-4)
    assert q["p_paired_t"] < 1e-4 and q["p_sign_flip"] == pytest.approx(0.0625)
    assert doc["cxr"]["variants"]["full"]["seeds"] == 5 and doc["train_seconds_total"] == 100.0
    reproduce.write_appearance(doc, str(metrics), str(card), None)
    m = json.loads(metrics.read_text())
    assert m["variants"] == pos and m["shipped"] == {"x": 1}
    assert m["appearance_variants"]["position_vs_full_welch"]["cxr"]["no-lte"]["diff_mean"] == pytest.approx(-0.01)
    text = card.read_text()
    assert "<!-- table -->\nkept\n<!-- /table -->" in text
    assert text.index("<!-- appearance-table -->") < text.index("## Export and parity")
    assert "| no-lte | 0.883 ± 0.002 | -0.019 ± 0.001 |" in text
    reproduce.write_appearance(doc, str(metrics), str(card), None)  # rewriting replaces, not appends
    assert card.read_text().count("<!-- appearance-table -->") == 1 and card.read_text() == text
