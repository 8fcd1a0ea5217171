"""Realistic report corpus: families, ground-truth guides, swapped controls, typos, the shared vectors."""
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tmca import report_corpus as rc
from tmca import vectors
from tmca.phantoms import cxr_case, ct_series
from tmca.report_text import ZONES, ct_guide_text, guide_text
from tmca.tokenizer import WordPieceTokenizer

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "models/tmca-cxr-compact/vocab.txt"
PATH = ROOT / "testdata/vectors/guide_text.jsonl"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    if not PATH.exists():
        pytest.fail(f"{PATH} is missing: regenerate with /usr/bin/python3 -m tmca.vectors")
    return [json.loads(line) for line in PATH.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tok() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(VOCAB)


def _by_family(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["family"], []).append(r)
    return out


def test_vectors_regenerate_identically(records):
    want = [vectors._json_line(r) for r in vectors.guide_text_vectors()]
    assert PATH.read_text(encoding="utf-8").splitlines() == want, \
        "guide_text.jsonl is stale: regenerate with /usr/bin/python3 -m tmca.vectors"
    assert [r["family"] for r in records] == sorted(r["family"] for r in records)


def test_every_family_present(records):
    counts = Counter(r["family"] for r in records)
    names = [f.name for f in rc.FAMILIES] + [c for c, _ in rc.SWAPPED_CONTROLS]
    assert set(counts) == set(names)
    assert all(counts[n] >= 20 for n in names), counts


def test_held_out_families():
    held = [f for f in rc.FAMILIES if f.held_out]
    assert len(held) == 3
    assert all(f.modality == "CR" and f.name not in ("template", "negative") for f in held)
    assert len({f.name for f in rc.FAMILIES}) == len(rc.FAMILIES)


def test_guides_fit_the_model(records, tok):
    for r in records:
        assert len(tok.tokenize(r["guide"])) <= 22, r["guide"]


def test_sectioned_reports_are_long(records, tok):
    for r in _by_family(records)["sectioned"]:
        assert len(tok.tokenize(r["report"])) > 60
        assert "FINDINGS:" in r["report"] and "IMPRESSION:" in r["report"]


def test_negative_guides_are_empty(records):
    for r in _by_family(records)["negative"]:
        assert r["guide"] == "" and r["zones"] == []


def test_cr_truth_is_the_target_zones(records):
    """The expected guide encodes exactly the phantom's target zones (mirrored for a swapped control)."""
    place = {f.name: j for j, f in enumerate(rc.FAMILIES)}
    controls = dict(rc.SWAPPED_CONTROLS)
    for fam, recs in _by_family(records).items():
        if recs[0]["modality"] != "CR" or fam == "negative":
            continue
        j = place[controls.get(fam, fam)]
        for i, r in enumerate(recs):
            case = cxr_case(vectors.GUIDE_SEED, vectors.GUIDE_CASES * j + i, size=64)
            targets = rc.swap_zones(case.target_zones) if fam in controls else case.target_zones
            assert [tuple(z) for z in r["zones"]] == sorted(targets, key=ZONES.index)
            assert r["guide"] == guide_text(targets)
            assert 1 <= len(r["zones"]) <= 3
            assert r["report"].strip() and "{" not in r["report"]


def test_swapped_controls(records):
    fams = _by_family(records)
    for control, base in rc.SWAPPED_CONTROLS:
        n_differ = 0
        for s, b in zip(fams[control], fams[base]):
            assert s["report"] == rc.swap_sides(b["report"])
            mirror = sorted(rc.swap_zones([tuple(z) for z in b["zones"]]), key=ZONES.index)
            assert [tuple(z) for z in s["zones"]] == mirror
            if set(mirror) != {tuple(z) for z in b["zones"]}:  # not left/right symmetric
                assert s["guide"] != b["guide"] and s["report"] != b["report"]
                n_differ += 1
        assert n_differ >= 15


def test_ct_guides(records):
    for fam in ("ct_template", "ct_realistic"):
        for r in _by_family(records)[fam]:
            m = re.search(r"\bCT-([1-4])\b", r["report"])
            assert r["guide"] == ct_guide_text(r["side"], m and m.group(0))


def test_swap_sides_words():
    assert rc.swap_sides("Right upper lobe and LEFT base; RUL, LLL.") == "Left upper lobe and RIGHT base; LUL, RLL."
    assert rc.swap_sides("Lingular opacity, left-sided drain.") == "Right middle lobe opacity, right-sided drain."
    assert rc.swap_sides("Consolidation RML.") == "Consolidation lingula."
    assert rc.swap_sides("No acute process.") == "No acute process."


def _damerau1(a: str, b: str) -> bool:
    """One deletion, insertion or adjacent transposition apart."""
    if abs(len(a) - len(b)) == 1:
        short, long_ = sorted((a, b), key=len)
        return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    return False


def test_typos_are_one_safe_edit():
    rng = np.random.default_rng(0)
    for word in sorted(rc._TYPO_WORDS):
        for _ in range(30):
            t = rc.typo(word, rng)
            assert _damerau1(word, t), (word, t)
            assert t[0] == word[0] and len(t) >= 4 and t.lower() not in rc._PROTECTED


def test_locations_cover_exactly_the_zones():
    rng = np.random.default_rng(1)
    for _ in range(300):
        k = int(rng.integers(1, 4))
        zones = [ZONES[int(i)] for i in rng.choice(6, k, replace=False)]
        for style in ("zone", "lobe", "abbr", "adjective"):
            locs = rc.locations(zones, style, rng)
            covered = [z for loc in locs for z in loc.zones]
            assert sorted(covered) == sorted(zones)


def test_realistic_report_checks_its_arguments():
    rng = np.random.default_rng(0)
    case = cxr_case(vectors.GUIDE_SEED, 0, size=32)
    with pytest.raises(ValueError, match="unknown family"):
        rc.realistic_report("nope", case, rng)
    with pytest.raises(TypeError, match="PhantomSeries"):
        rc.realistic_report("ct_realistic", case, rng)
    with pytest.raises(TypeError, match="PhantomCase"):
        rc.realistic_report("lobes", ct_series(vectors.GUIDE_SEED, 0, slices=2, size=16), rng)
