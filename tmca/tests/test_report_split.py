"""Report strings: train and held-out splits disjoint, both answerable; training text variation."""
import itertools
import re

import numpy as np
import pytest

from tmca import phantoms as ph
from tmca import report_split as rs
from tmca import report_text as rt
from tmca import text_augment as ta
from tmca.data_source import split_texts

CT_SIDES = ("right", "left", "both")
ZONE_SETS = [list(zs) for n in range(1, rt.MAX_GUIDE_ZONES + 1) for zs in itertools.combinations(rt.ZONES, n)]
_ZONE_RE = re.compile(r"(upper|middle|lower) (left|right) lung|(left|right) (upper|middle|lower) zone")


def _zones_named(text: str) -> set[tuple[str, str]]:
    out = set()
    for m in _ZONE_RE.finditer(text):
        out.add((m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3)))
    return out


def test_train_and_test_reports_share_no_string():
    """What the shipped recipe trains on (4000 `--family mix` cases) against the test split."""
    train = split_texts("train", 4000, "mix")
    test = split_texts("test", 300, "cxr") + split_texts("test", 300, "ct")
    assert len(train) == 4000 and len(test) == 600
    assert not set(train) & set(test)
    assert all(rs.in_train_side(t) for t in train)
    assert all(rs.in_held_out_side(t) for t in test)
    for split in ("val", "e2e"):
        assert not set(train) & set(split_texts(split, 300, "cxr") + split_texts(split, 300, "ct"))


def test_every_zone_set_has_wordings_on_both_sides():
    for zs in ZONE_SETS:
        texts = rt.cxr_phrasings(zs)
        assert rt.guide_text(zs) in texts
        assert any(rs.in_held_out_side(t) for t in texts), zs
        assert any(rs.in_train_side(t) for t in texts), zs
    for side in CT_SIDES:
        for cat, _, _ in rt.CT_CATEGORIES:
            texts = rt.ct_phrasings(side, cat)
            assert rt.ct_guide_text(side, cat) in texts
            assert any(rs.in_held_out_side(t) for t in texts), (side, cat)


def test_every_generator_wording_fits_the_model():
    for zs in ZONE_SETS:
        assert all(ta.fits(t) for t in rt.cxr_phrasings(zs)), zs
    for side in CT_SIDES:
        assert ta.fits(rt.ct_guide_text(side))
        for cat, _, _ in rt.CT_CATEGORIES:
            assert all(ta.fits(t) for t in rt.ct_phrasings(side, cat)), (side, cat)


def test_canonical_texts_are_on_the_train_side():
    can = rs.canonical_texts()
    assert len(can) == len(ZONE_SETS) + len(CT_SIDES) * (1 + len(rt.CT_CATEGORIES))
    assert all(rs.in_train_side(t) for t in can)
    assert any(rs.text_bucket(t) == 0 for t in can)  # train side whatever the hash
    for side in CT_SIDES:  # the canonical CT forms are the generator's first body
        assert rt.ct_guide_text(side) == rt.ct_sentence(side, 0, None)
        for cat, _, _ in rt.CT_CATEGORIES:
            assert rt.ct_guide_text(side, cat) == rt.ct_sentence(side, 0, rt.ct_severity(cat))


def test_held_out_draw_terminates_for_every_zone_set():
    rng = np.random.default_rng(0)
    for zs in ZONE_SETS:
        text = rs.cxr_split_report(zs, rng, train=False)
        assert rs.in_held_out_side(text) and _zones_named(text) == set(zs)


def test_split_texts_match_rendered_cases():
    for split, seed in (("train", 1000), ("test", 3000)):
        reports = ph.split_texts(split, 6, "cxr")
        guides = ph.split_texts(split, 6, "cxr", text="canonical")
        for i in range(6):
            c = ph.cxr_case(seed, i, size=64)
            assert reports[i] == c.report and guides[i] == rt.guide_text(c.target_zones)
        series = [ph.ct_series(seed, i, slices=5, size=48) for i in range(3)]
        assert ph.split_texts(split, 12, "ct", size=48, ct_slices=5) == [s.report for s in series for _ in range(5)][:12]
        want = [rt.ct_guide_text(s.side, rt.ct_category(s.involvement)[0]) for s in series for _ in range(5)][:12]
        assert ph.split_texts(split, 12, "ct", text="canonical", size=48, ct_slices=5) == want


def test_training_texts_name_the_truth_and_vary():
    train = ph.split_texts("train", 600, "cxr")
    truth = [ph.cxr_target_zones(1000, i) for i in range(600)]
    canonical = sum(t == rt.guide_text(z) for t, z in zip(train, truth))
    assert 0.3 < canonical / 600 < 0.7
    beyond = 0
    for t, z in zip(train, truth):
        assert _zones_named(t) <= set(z)  # a typo may hide a zone phrase from the regex, never change it
        beyond += t not in rt.cxr_phrasings(z)
    assert beyond > 20  # typos and mixed zone variants go beyond the generator's wordings
    ct = ph.split_texts("train", 1000, "ct")
    assert any("CT-" not in t for t in ct) and any("CT-" in t for t in ct)


def test_typos_are_one_edit_and_never_a_report_word():
    rng = np.random.default_rng(1)
    words = ["pulmonary", "infection", "right", "left", "upper", "middle", "lower", "lung", "three", "Bilateral"]
    for _ in range(200):
        for w in words:
            t = ta.typo(w, rng)
            assert t != w and t.lower() not in ta.protected_words()
            assert _edit_distance(t.lower(), w.lower()) == 1


def test_typo_rate_and_short_words():
    rng = np.random.default_rng(2)
    text = "Bilateral pulmonary infection, two infected areas, upper right lung and lower left lung."
    changed = total = 0
    for _ in range(400):
        out = ta.add_typos(text, rng)
        a, b = re.findall(r"[A-Za-z]+", text), re.findall(r"[A-Za-z]+", out)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            if len(x) < ta.MIN_TYPO_LENGTH:
                assert x == y
            else:
                total += 1
                changed += x != y
    assert 0.07 < changed / total < 0.13


def test_training_texts_fit_the_model_and_are_deterministic():
    assert ph.split_texts("train", 200, "cxr") == ph.split_texts("train", 200, "cxr")
    for t in ph.split_texts("train", 1000, "cxr") + ph.split_texts("train", 400, "ct"):
        assert ta.fits(t), t


@pytest.mark.parametrize("split", ["test", "val"])
def test_held_out_reports_are_clean_generator_sentences(split):
    texts = ph.split_texts(split, 100, "cxr")
    truth = [ph.cxr_target_zones(ph.SPLIT_SEEDS[split], i) for i in range(100)]
    for t, z in zip(texts, truth):
        assert t in rt.cxr_phrasings(z) and t != rt.guide_text(z)


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
