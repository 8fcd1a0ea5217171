"""Appearance phantom benchmark: determinism, masks of the named targets, distinct appearances,
reports that name the target by appearance, and the run vocab."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tmca import phantoms_appearance as pa
from tmca.report_split import text_bucket
from tmca.tokenizer import WordPieceTokenizer

VOCAB = Path(__file__).resolve().parents[2] / "models/tmca-cxr-compact/vocab.txt"
FAMILIES = ("appearance-cxr", "appearance-ct")
# one word that names each kind in every phrasing of it, and no other kind
KIND_WORD = {"ggo": "ground", "consolidation": "consolidation", "nodule": "nodule", "reticular": "reticular",
             "cavity": "cavit"}
ZONE_RE = re.compile(r"(upper|middle|lower) (left|right) lung|(left|right) (upper|middle|lower) zone|(left|right) lung")


def _zones(report: str) -> set[tuple[str, str]]:
    out = set()
    for m in ZONE_RE.finditer(report):
        if m.group(1):
            out.add((m.group(1), m.group(2)))
        elif m.group(3):
            out.add((m.group(4), m.group(3)))
        else:
            out.add(("", m.group(5)))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic(family):
    a, b = pa.case(3000, family, 5), pa.case(3000, family, 5)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.report == b.report and a.opacities == b.opacities
    assert not np.array_equal(a.raw, pa.case(3000, family, 6).raw)
    assert not np.array_equal(a.raw, pa.case(2000, family, 5).raw)
    assert pa.split_texts("test", 6, family) == [pa.case(3000, family, i).report for i in range(6)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("index", range(12))
def test_masks_are_the_named_distinct_opacities(family, index):
    c = pa.case(3000, family, index)
    kinds = [o.kind for o in c.opacities]
    assert 2 <= len(kinds) <= 3 and len(set(kinds)) == len(kinds)  # distinct appearances
    assert 1 <= len(c.targets) < len(kinds)
    union = np.zeros_like(c.mask)
    for n, m in enumerate(c.opacity_masks):
        assert m.sum() > 0
        assert not (m & union).any()  # opacities do not overlap
        union |= m
    np.testing.assert_array_equal(c.lesion_mask, union)
    want = np.zeros_like(c.mask)
    for i in c.targets:
        want |= c.opacity_masks[i]
    np.testing.assert_array_equal(c.mask, want)
    assert c.lesion_mask.sum() > c.mask.sum()  # an opacity is left out of the target


@pytest.mark.parametrize("family", FAMILIES)
def test_reports_name_the_targets_by_appearance(family):
    with_zone = 0
    for split_seed in (1000, 3000):
        for i in range(40):
            c = pa.case(split_seed, family, i)
            low = c.report.lower()
            for n, o in enumerate(c.opacities):
                assert (KIND_WORD[o.kind] in low) == (n in c.targets), (c.report, c.opacities, c.targets)
            named = _zones(c.report)
            if named:
                with_zone += 1
                assert named <= {c.opacities[i].zone for i in c.targets}
    assert 20 <= with_zone <= 70  # the zone in part of the cases


def test_image_shows_the_appearance():
    """A cavity's centre is darker than its wall; ground glass is fainter than a nodule."""
    seen = set()
    for i in range(30):
        c = pa.case(3000, "appearance-ct", i)
        hu = c.raw.astype(np.float32) - 1024
        for o, m in zip(c.opacities, c.opacity_masks):
            u, v = o.centre
            r0, c0 = int(v * hu.shape[0]), int(u * hu.shape[1])
            if o.kind == "cavity":
                assert hu[r0, c0] < hu[m > 0].mean() - 150
            if o.kind in ("ggo", "nodule"):
                seen.add((o.kind, float(np.median(hu[m > 0]))))
    ggo = [h for k, h in seen if k == "ggo"]
    nod = [h for k, h in seen if k == "nodule"]
    assert ggo and nod and max(ggo) < min(nod)


def test_reports_fit_and_splits_disjoint():
    base = [t for t in VOCAB.read_text(encoding="utf-8").split("\n") if t]
    tokens = pa.appearance_vocab(base)
    assert tokens[:len(base)] == base and len(set(tokens)) == len(tokens)
    tok = WordPieceTokenizer({t: i for i, t in enumerate(tokens)})
    train = set(pa.split_texts("train", 150, "appearance-cxr") + pa.split_texts("train", 50, "appearance-ct"))
    test = pa.split_texts("test", 150, "appearance-cxr") + pa.split_texts("test", 50, "appearance-ct")
    assert not train & set(test)
    assert all(text_bucket(t) == 0 for t in test)
    for t in list(train) + test:
        toks = tok.tokenize(t)
        assert len(toks) <= 22 and "[UNK]" not in toks


def test_load_split_appearance(tmp_path, monkeypatch):
    from tmca.data_source import load_split
    monkeypatch.setenv("TMCA_CACHE", str(tmp_path))
    vocab = tmp_path / "vocab.txt"
    base = [t for t in VOCAB.read_text(encoding="utf-8").split("\n") if t]
    vocab.write_text("\n".join(pa.appearance_vocab(base)) + "\n", encoding="utf-8")
    d = load_split("val", 8, "appearance", 48, str(vocab))
    assert d["image"].shape == d["mask"].shape == (8, 1, 48, 48)
    assert d["input_ids"].shape == (8, 24) and d["mask"].sum() > 0
    assert list(d["report"][:6]) == pa.split_texts("val", 6, "appearance-cxr")
    assert list(d["report"][6:]) == pa.split_texts("val", 2, "appearance-ct")


def test_train_on_appearance_family(tmp_path, monkeypatch):
    """`tmca.train --family appearance`: the run vocab gains the appearance words, the model's
    vocab size follows it, and both appearance test splits are evaluated."""
    import json

    import torch

    from tmca import train as tmca_train
    monkeypatch.setenv("TMCA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    tiny = ["--image-size", "32", "--set", "widths=8,16,16,32", "--set", "depths=1,1,1,1",
            "--set", "decoder_widths=8,16,16,32", "--set", "head_width=8", "--set", "attn_heads=2",
            "--set", "embed_dim=16", "--set", "text_width=16", "--set", "text_layers=1"]
    assert tmca_train.main(["--family", "appearance", "--steps", "2", "--batch-size", "2", "--n-train", "8",
                            "--n-test", "4", "--warmup", "1", "--vocab", str(VOCAB), "--out", str(out), *tiny]) == 0
    tokens = (out / "vocab.txt").read_text(encoding="utf-8").split()
    assert {"cavity", "dense", "ill", "defined"} <= set(tokens)
    ck = torch.load(out / "checkpoint.pt")
    assert ck["config"]["vocab_size"] == len(tokens) == len(ck["vocab"])
    cxr = json.loads((out / "test_metrics.json").read_text())
    ct = json.loads((out / "test_metrics_appearance-ct.json").read_text())
    assert cxr["family"] == "appearance-cxr" and ct["family"] == "appearance-ct" and cxr["n"] == ct["n"] == 4
