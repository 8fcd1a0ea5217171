"""Write the shared Go/Python test vectors (docs/CONTRACTS.md).

* ``testdata/vectors/tokenizer.jsonl`` — phantom reports, radiology phrases and
  edge cases (punctuation, digits, accents, CJK, emoji, controls, whitespace,
  truncation, empty input, 100/101-character words), encoded with
  ``models/tmca-cxr-compact/vocab.txt``; mostly ``max_length`` 24, a few others.
* ``testdata/vectors/tokenizer_30522.jsonl`` — the same texts encoded with
  ``testdata/vectors/vocab_30522.txt``, a vocabulary of BERT-base's size (30522
  entries: the compact vocab, then every two- and three-letter piece as a word
  start and as a ``##`` continuation), the size a paper-preset model's text
  checkpoint brings.
* ``testdata/vectors/preprocess.json`` — ``prepare_frame`` cases (fixed/minmax
  windows, MONOCHROME1, slope/intercept, constant frames, non-square, up/down
  sampling, a long axis that exposes float32 source-index rounding).
* ``testdata/vectors/postprocess.json`` — ``prob_to_mask`` cases; every expected
  probability is at least 1e-4 away from the threshold.
* ``testdata/vectors/guide_text.jsonl`` — realistic reports and the guide text the
  report normaliser must render for them (``tmca.report_corpus``): every phrasing
  family and the left/right-swapped controls, ``GUIDE_CASES`` each, one JSON per
  line: ``family``, ``held_out``, ``modality``, ``report``, ``guide`` and the truth
  the guide encodes (``zones`` ``[[level, side], ...]`` for CR, ``side`` for CT).

Everything is deterministic: re-running rewrites identical files.
Command: ``/usr/bin/python3 -m tmca.vectors [--out testdata/vectors]``
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import preprocess as P
from .phantoms import SPLIT_SEEDS, ct_series, cxr_case
from .report_corpus import FAMILIES, SWAPPED_CONTROLS, expected_zones, realistic_report, swapped_report
from .report_text import ZONES, cxr_report, ct_report
from .tokenizer import WordPieceTokenizer
from .vocab_build import DEFAULT_OUT as VOCAB_PATH, RADIOLOGY_PHRASES

OUT_DIR = Path("testdata/vectors")

EDGE_TEXTS: list[str] = [
    "",
    " ",
    "\t\n\r ",
    ".",
    "Lung",
    "LUNG lung LuNg",
    "Hello, world!",
    "CT-1, CT-2; CT-3: CT-4?",
    "involvement 25-50%.",
    "COVID-19 pneumonia (SARS-CoV-2), day 7.",
    "Nodule 8mm/12mm at 3 o'clock; 1.5 cm × 2.0 cm.",
    "3.14159 2,718 1e-5 -40 HU +120 HU",
    "a@b.com #tag $5 ^2 &amp; *bold* _x_ `code` {brace} [bracket] |pipe| ~tilde \\back",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "Crème brûlée, naïve café, jalapeño, Ångström, Müller, São Paulo, façade.",
    "ÉPANCHEMENT PLEURAL GAUCHE, opacité alvéolaire",
    "Lungenentzündung beidseits, Röntgen-Thorax unauffällig; Straße",
    "neumonía bilateral, niño de 5 años",
    "Æther, Øresund, Þór, Łódź, Đà Nẵng, œuvre",
    "ﬁbrosis ﬂuid",  # ligatures (compatibility chars, NFD keeps them)
    "e\u0301 a\u0308 n\u0303",  # decomposed accents
    "\u0301\u0308 lone combining marks",
    "肺炎 右肺 左肺下叶",
    "COVID肺炎bilateral",
    "日本語のテキスト と カタカナ",
    "한국어 폐렴",
    "Пневмония двусторонняя",
    "Greek: α-1 antitrypsin, β-blocker, μm, µm",
    "ΠΝΕΥΜΟΝΙΑ",
    "emoji 😀 lung 🫁 heart ❤️ ok 👍🏽",
    "pneumonia😷",
    "tab\tseparated\tvalues",
    "line1\nline2\r\nline3\rline4",
    "nul\x00byte and bell\x07 and escape\x1b[0m",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "soft\u00adhyphen and\u00a0nbsp and\u3000ideographic space",
    "para\u2029graph line\u2028sep",
    "replacement \ufffd char",
    "private \ue000 use",
    "«Guillemets» „Anführung“ ‘single’ “double” — dash – en … ellipsis • bullet",
    "¿Qué? ¡Sí! 37°C ±2 ½ ² ³ §4 ¶ ©®",
    "[CLS] [SEP] [PAD] [UNK] [MASK] ##s",
    "##lung ## #",
    "x" * 100,
    "x" * 101,
    "a" + "é" * 99,
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "lung " * 40,
    "Bilateral pulmonary infection, " * 6,
    "upper left lung and lower right lung " * 3,
    "   leading and trailing spaces   ",
    "multiple     internal      spaces",
    "UPPER RIGHT LUNG.",
    "upper-right-lung",
    "left/right lungs",
    "(right lung)",
    "x-ray X-Ray XRAY x_ray",
    "qwzrtp xkcdq vvvvv",
    "12345678901234567890",
    "0.5 0,5 ½",
    "Mr. O'Brien's chest: no acute findings.",
    "https://example.org/report?id=42&x=1",
]


def _cxr_random_report(rng: np.random.Generator) -> str:
    k = int(rng.integers(1, 4))
    return cxr_report([ZONES[i] for i in rng.choice(6, k, replace=False)], rng)


def _fuzz_text(rng: np.random.Generator) -> str:
    """Random mixtures of words, punctuation, accents, CJK, emoji and whitespace."""
    pool = [
        "lung", "left", "right", "upper", "Lower", "MIDDLE", "opacity", "zone", "é", "ü", "ñ", "Å", "ß",
        ",", ".", "-", "%", "(", ")", "/", "25", "7", "肺", "炎", "😀", "\t", "\n", " ", "  ", "\u00a0",
        "glass", "ground-glass", "infection", "xyz", "café", "naïve", "“", "”", "—", "°", "µ", "\u200b",
    ]
    n = int(rng.integers(1, 30))
    parts = [pool[int(i)] for i in rng.integers(0, len(pool), n)]
    seps = [" " if rng.random() < 0.7 else "" for _ in parts]
    return "".join(p + s for p, s in zip(parts, seps))


def tokenizer_texts() -> list[tuple[str, int]]:
    """``(text, max_length)`` pairs: ≥ 250 of them, deterministic."""
    rng = np.random.default_rng(20241213)
    texts: list[tuple[str, int]] = []
    seed = SPLIT_SEEDS["test"]
    texts += [(cxr_case(seed, i, size=64).report, 24) for i in range(40)]
    texts += [(_cxr_random_report(rng), 24) for _ in range(40)]
    for side in ("right", "left", "both"):
        for frac in (0.05, 0.3, 0.6, 0.9):
            for _ in range(3):
                texts.append((ct_report(side, frac, rng), 24))
    texts += [(ct_series(seed, i, slices=4, size=32).report, 24) for i in range(4)]
    texts += [(line, 24) for line in RADIOLOGY_PHRASES]
    texts += [(t, 24) for t in EDGE_TEXTS]
    texts += [(_fuzz_text(rng), 24) for _ in range(60)]
    # Other lengths: truncation and padding at different max_length.
    for t in ("Bilateral pulmonary infection, three infected areas, upper left lung, middle right lung and lower right lung.",
              "lung", "", "Ground-glass opacities in the right lung, CT-1, involvement under 25%."):
        texts += [(t, L) for L in (2, 3, 8, 16, 32, 64)]
    return texts


def tokenizer_vectors(vocab_path: Path = VOCAB_PATH) -> list[dict[str, Any]]:
    """One record per text, in the CONTRACTS.md format."""
    tok = WordPieceTokenizer.from_vocab(vocab_path)
    out = []
    for text, L in tokenizer_texts():
        ids, mask = tok.encode(text, L)
        out.append({"text": text, "tokens": tok.encode_tokens(text, L), "input_ids": ids, "attention_mask": mask})
    return out


BERT_BASE_VOCAB_SIZE = 30522


def bert_sized_vocab() -> list[str]:
    """A deterministic vocabulary of BERT-base's size: the compact vocab, then letter pieces.

    Two- and three-letter pieces, each as a word start and as a ``##`` continuation, in
    alphabetical order, up to 30522 entries: WordPiece's greedy longest match then works
    over a table as large as a real BERT checkpoint's, with many competing pieces.
    """
    tokens = VOCAB_PATH.read_text(encoding="utf-8").splitlines()
    seen = set(tokens)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = [a + b for a in letters for b in letters] + [a + b + c for a in letters for b in letters for c in letters]
    for p in pieces:
        for t in (p, "##" + p):
            if len(tokens) == BERT_BASE_VOCAB_SIZE:
                return tokens
            if t not in seen:
                seen.add(t)
                tokens.append(t)
    raise AssertionError("not enough pieces for a BERT-base-sized vocabulary")


def _floats(a: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that parse back to the same float32."""
    return [float(str(v)) for v in np.asarray(a, np.float32).ravel()]


def _pre_case(name: str, raw: np.ndarray, modality: str, photometric: str, slope: float, intercept: float,
              window: dict[str, Any], height: int, width: int, mean: float = 0.5, std: float = 0.25) -> dict[str, Any]:
    manifest = {"windows": {modality: window, "default": window}, "image": {"height": height, "width": width},
                "normalize": {"mean": mean, "std": std}}
    expected = P.prepare_frame(raw, slope, intercept, modality, photometric, manifest)
    return {
        "name": name, "modality": modality, "photometric": photometric, "slope": slope, "intercept": intercept,
        "rows": int(raw.shape[0]), "cols": int(raw.shape[1]), "raw": [int(v) for v in raw.ravel()],
        "window": window, "height": height, "width": width, "mean": mean, "std": std,
        "expected": _floats(expected),
    }


def preprocess_vectors() -> list[dict[str, Any]]:
    """The ``preprocess.json`` cases."""
    rng = np.random.default_rng(7)
    mm = {"mode": "minmax"}
    lung = {"mode": "fixed", "center": -600, "width": 1500}
    u12 = lambda r, c: rng.integers(0, 4096, (r, c)).astype(np.uint16)  # noqa: E731
    cxr = cxr_case(SPLIT_SEEDS["test"], 0, size=64)
    ct = ct_series(SPLIT_SEEDS["test"], 0, slices=3, size=40).slices[1]
    cases = [
        _pre_case("cr_minmax_down_37x53_to_24x20", u12(37, 53), "CR", "MONOCHROME2", 1.0, 0.0, mm, 24, 20),
        _pre_case("cr_minmax_monochrome1_up_9x7_to_16x12", u12(9, 7), "CR", "MONOCHROME1", 1.0, 0.0, mm, 16, 12),
        _pre_case("ct_fixed_lung_window_hu_30x30_to_17x17",
                  rng.integers(-200, 2600, (30, 30)).astype(np.int16), "CT", "MONOCHROME2", 1.0, -1024.0, lung, 17, 17),
        _pre_case("ct_fixed_fractional_window_slope", rng.integers(0, 2000, (12, 10)).astype(np.int16), "CT",
                  "MONOCHROME2", 0.75, -1024.0, {"mode": "fixed", "center": 40.5, "width": 350.25}, 10, 14),
        _pre_case("dx_slope_intercept_minmax_11x13_to_24x24", rng.integers(0, 65536, (11, 13)).astype(np.uint16),
                  "DX", "MONOCHROME1", 0.37, -100.5, mm, 24, 24),
        _pre_case("constant_frame_monochrome2", np.full((6, 5), 1234, np.uint16), "CR", "MONOCHROME2", 1.0, 0.0, mm, 4, 4),
        _pre_case("constant_frame_monochrome1", np.full((5, 6), 99, np.uint16), "CR", "MONOCHROME1", 1.0, 0.0, mm, 3, 7),
        _pre_case("single_pixel_up_1x1_to_4x4", np.array([[500]], np.uint16), "CR", "MONOCHROME2", 1.0, 0.0, mm, 4, 4),
        _pre_case("identity_size_non_square_24x20", u12(24, 20), "DX", "MONOCHROME2", 1.0, 0.0, mm, 24, 20),
        _pre_case("strong_down_64x48_to_5x7_imagenet_norm", u12(64, 48), "CR", "MONOCHROME2", 1.0, 0.0, mm, 5, 7,
                  mean=0.485, std=0.229),
        _pre_case("long_axis_downsample_3x1997_to_2x96", u12(3, 1997), "CR", "MONOCHROME2", 1.0, 0.0, mm, 2, 96),
        _pre_case("fixed_window_all_outside_clip", rng.integers(3000, 4000, (7, 7)).astype(np.int16), "CT",
                  "MONOCHROME1", 1.0, -1024.0, lung, 5, 5),
        _pre_case("phantom_cxr_64_to_24", cxr.raw, "CR", cxr.photometric, 1.0, 0.0, mm, 24, 24),
        _pre_case("phantom_ct_slice_40_to_24", ct.raw, "CT", "MONOCHROME2", 1.0, -1024.0, lung, 24, 24),
    ]
    return cases


def _post_case(name: str, rng: np.random.Generator, h: int, w: int, rows: int, cols: int,
               threshold: float = 0.5) -> dict[str, Any]:
    for _ in range(1000):
        prob = rng.random((h, w)).astype(np.float32)
        p, m = P.prob_to_mask(prob, rows, cols, threshold)
        if np.abs(p.astype(np.float64) - threshold).min() >= 1e-4:
            break
    else:  # pragma: no cover
        raise RuntimeError(f"{name}: could not keep probabilities away from the threshold")
    return {"name": name, "height": h, "width": w, "prob": _floats(prob), "rows": rows, "cols": cols,
            "threshold": threshold, "expected_prob": _floats(p), "expected_mask": [int(v) for v in m.ravel()]}


def postprocess_vectors() -> list[dict[str, Any]]:
    """The ``postprocess.json`` cases."""
    rng = np.random.default_rng(11)
    return [
        _post_case("up_8x8_to_37x53", rng, 8, 8, 37, 53),
        _post_case("down_24x20_to_12x10", rng, 24, 20, 12, 10),
        _post_case("identity_5x5", rng, 5, 5, 5, 5),
        _post_case("non_square_16x16_to_3x40_threshold_0.3", rng, 16, 16, 3, 40, threshold=0.3),
        _post_case("up_6x6_to_50x45_threshold_0.7", rng, 6, 6, 50, 45, threshold=0.7),
    ]


#: Phantom seed of the guide-text vectors: the e2e split's seed moved by 100, used nowhere else.
GUIDE_SEED = SPLIT_SEEDS["e2e"] + 100
GUIDE_CASES = 25


def guide_text_vectors(n: int = GUIDE_CASES) -> list[dict[str, Any]]:
    """``n`` records per report family and per swapped control, sorted by family.

    Family number ``j`` (its place in ``FAMILIES``) uses phantoms ``25j .. 25j + n - 1``
    of ``GUIDE_SEED`` and the phrasing generator ``default_rng([GUIDE_SEED, j, i])``; a
    swapped control reuses its base family's phantoms and generator, so its report
    is exactly the base report with the sides swapped.
    """
    place = {f.name: j for j, f in enumerate(FAMILIES)}
    jobs = [(f.name, f.name) for f in FAMILIES] + [(c, base) for c, base in SWAPPED_CONTROLS]
    out = []
    for name, base in jobs:
        fam = next(f for f in FAMILIES if f.name == base)
        j = place[base]
        for i in range(n):
            rng = np.random.default_rng([GUIDE_SEED, j, i])
            index = GUIDE_CASES * j + i
            rec: dict[str, Any] = {"family": name, "held_out": fam.held_out, "modality": fam.modality}
            if fam.modality == "CT":
                series = ct_series(GUIDE_SEED, index, slices=8, size=32)
                rec["report"], rec["guide"] = realistic_report(name, series, rng)
                rec["side"] = series.side
            else:
                case = cxr_case(GUIDE_SEED, index, size=64)
                if name == base:
                    rec["report"], rec["guide"] = realistic_report(name, case, rng)
                else:
                    rec["report"], rec["guide"] = swapped_report(name, case, rng)
                rec["zones"] = [list(z) for z in expected_zones(name, case)]
            out.append(rec)
    return sorted(out, key=lambda r: r["family"])


def _json_line(rec: dict[str, Any]) -> str:
    """UTF-8 JSON, but with the characters some readers take as line breaks escaped."""
    line = json.dumps(rec, ensure_ascii=False)
    for ch in ("\u2028", "\u2029", "\x85"):
        line = line.replace(ch, f"\\u{ord(ch):04x}")
    return line


def write_all(out_dir: Path = OUT_DIR) -> None:
    """Write every vector file under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "tokenizer.jsonl", "w", encoding="utf-8") as f:
        for rec in tokenizer_vectors():
            f.write(_json_line(rec) + "\n")
    big = out_dir / "vocab_30522.txt"
    big.write_text("\n".join(bert_sized_vocab()) + "\n", encoding="utf-8")
    with open(out_dir / "tokenizer_30522.jsonl", "w", encoding="utf-8") as f:
        for rec in tokenizer_vectors(big):
            f.write(_json_line(rec) + "\n")
    (out_dir / "preprocess.json").write_text(json.dumps(preprocess_vectors()) + "\n", encoding="utf-8")
    (out_dir / "postprocess.json").write_text(json.dumps(postprocess_vectors()) + "\n", encoding="utf-8")
    with open(out_dir / "guide_text.jsonl", "w", encoding="utf-8") as f:
        for rec in guide_text_vectors():
            f.write(_json_line(rec) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args()
    write_all(args.out)
    print(f"wrote tokenizer.jsonl, tokenizer_30522.jsonl (vocab_30522.txt), preprocess.json, postprocess.json, "
          f"guide_text.jsonl to {args.out}")


if __name__ == "__main__":
    main()
