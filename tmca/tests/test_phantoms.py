"""Phantom benchmark: determinism, report <-> mask consistency, prepared splits."""
import re
from pathlib import Path

import numpy as np
import pytest
from skimage.measure import label, regionprops

from tmca import phantoms as ph
from tmca.report_text import LEVELS, ZONES, cxr_report, ct_category
from tmca.tokenizer import WordPieceTokenizer

VOCAB = Path(__file__).resolve().parents[2] / "models/tmca-cxr-compact/vocab.txt"

_ZONE_RE = re.compile(r"(upper|middle|lower) (left|right) lung|(left|right) (upper|middle|lower) zone")


def parse_zones(report: str) -> set[tuple[str, str]]:
    out = set()
    for m in _ZONE_RE.finditer(report):
        out.add((m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3)))
    return out


def test_cxr_deterministic():
    a, b = ph.cxr_case(1000, 7), ph.cxr_case(1000, 7)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.report == b.report and a.photometric == b.photometric
    c = ph.cxr_case(2000, 7)
    assert not np.array_equal(a.raw, c.raw)
    assert not np.array_equal(a.raw, ph.cxr_case(1000, 8).raw)


def test_ct_deterministic():
    a, b = ph.ct_series(1000, 1, slices=6, size=64), ph.ct_series(1000, 1, slices=6, size=64)
    for x, y in zip(a.slices, b.slices):
        np.testing.assert_array_equal(x.raw, y.raw)
        np.testing.assert_array_equal(x.mask, y.mask)
    assert a.report == b.report
    assert not np.array_equal(a.slices[3].raw, ph.ct_series(2000, 1, slices=6, size=64).slices[3].raw)


@pytest.mark.parametrize("index", range(25))
def test_cxr_report_matches_mask(index):
    c = ph.cxr_case(3000, index, size=128)
    assert c.raw.dtype == np.uint16 and c.raw.max() <= 4095 and c.mask.dtype == np.uint8
    assert 2 <= len(c.zones) <= 4 and 1 <= len(c.target_zones) < len(c.zones)
    assert parse_zones(c.report) == set(c.target_zones)
    assert ("Bilateral" in c.report) == (len({s for _, s in c.target_zones}) == 2)
    # every described opacity is one mask component, in the right lung and zone order
    assert np.all(c.lesion_mask >= c.mask)
    regions = regionprops(label(c.mask, connectivity=2))
    assert len(regions) == len(c.target_zones)
    assert label(c.lesion_mask, connectivity=2).max() == len(c.zones)
    cols = c.mask.shape[1]
    found = set()
    for r in regions:
        row, col = np.array(r.centroid) / cols
        side = "right" if col < 0.5 else "left"  # patient's right = image left
        # lung spans rows ~0.19..0.75 (±0.04 jitter): thirds are the zones
        level = LEVELS[int(np.clip((row - 0.19) / (0.56 / 3), 0, 2))]
        found.add((level, side))
    assert found == set(c.target_zones)


def test_cxr_reports_fit_24_tokens():
    tok = WordPieceTokenizer.from_vocab(VOCAB)
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 4))
        zones = [ZONES[i] for i in rng.choice(6, k, replace=False)]
        toks = tok.tokenize(cxr_report(zones, rng))
        assert len(toks) <= 22 and "[UNK]" not in toks


def test_ct_mask_only_on_described_side():
    seen_sides = set()
    for i in range(6):
        s = ph.ct_series(3000, i, slices=10, size=64)
        seen_sides.add(s.side)
        assert s.slices[0].raw.dtype == np.int16 and s.slices[0].intercept == -1024
        assert ct_category(s.involvement)[0] in s.report
        mask = np.stack([c.mask for c in s.slices])
        lesion = np.stack([c.lesion_mask for c in s.slices])
        assert np.all(lesion >= mask) and mask.sum() > 0
        half = 32
        assert lesion[:, :, :half].sum() > 0 and lesion[:, :, half:].sum() > 0  # GGOs in both lungs
        if s.side == "right":
            assert mask[:, :, half:].sum() == 0 and "right" in s.report
        elif s.side == "left":
            assert mask[:, :, :half].sum() == 0 and "left" in s.report
        hu = s.slices[5].raw.astype(np.float32) - 1024
        assert hu.min() < -900 and hu.max() > 200
    assert len(seen_sides) >= 2


def test_prepared_split_shapes_and_cache():
    m = {**ph.preprocess.DEFAULT_MANIFEST, "image": {"height": 48, "width": 48}}
    x = ph.prepared_split("val", 12, "cxr", m, size=96)
    images, masks, reports = x
    assert images.shape == masks.shape == (12, 1, 48, 48)
    assert images.dtype == masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0} and masks.sum() > 0
    assert len(reports) == 12 and reports[0] == ph.cxr_case(2000, 0, 96).report
    assert ph.prepared_split("val", 12, "cxr", m, size=96) is x
    ct = ph.prepared_split("val", 7, "ct", m, size=64, ct_slices=5)
    assert ct.images.shape == (7, 1, 48, 48) and ct.reports[0] == ct.reports[4]
    with pytest.raises(ValueError):
        ph.prepared_split("nope", 1)
