"""Appearance phantom benchmark: targets told apart by what they look like, not where they are.

Every frame holds 2 or 3 opacities of *different* appearance, drawn from five kinds:

* ``ggo``: ground-glass opacity, faint hazy density with a smooth texture, mostly ill-defined;
* ``consolidation``: dense homogeneous opacity crossed by dark branching air bronchograms;
* ``nodule``: a small, round, solid, dense and mostly sharply marginated nodule;
* ``reticular``: a faint opacity carrying a criss-cross network of fine lines;
* ``cavity``: a thick dense wall around a lucent (air) centre.

Each opacity also has a margin (sharp or ill-defined, rendered as the width of its edge) and a
size. Positions are drawn independently of the kind: any lung zone, and in about a third of the
cases two opacities share one zone. The report names the target(s) by appearance (kind, often the
margin, sometimes the size) and, in about half of the cases, by zone; the mask holds only the
named opacities. The target is drawn uniformly among the opacities present, so neither kind, size
nor position predicts it: an image-only model can at best segment every opacity, which scores
about 0.6 Dice (2 opacities, 1 named: 2/3; 3 opacities, 1 named: 1/2; 3 opacities, 2 named: 4/5).

Families (``FAMILY_CODES``): ``appearance-cxr`` (CXR-like radiographs, native 256², 12-bit stored
values as in ``tmca.phantoms``) and ``appearance-ct`` (single CT-like axial slices, native 128²,
stored = HU + 1024; the zone is the lung's side). Case ``i`` of a split uses
``numpy.random.default_rng([split_seed, family_code, i])`` for its image and truth, and
``report_split.phrasing_rng`` for its wording, redrawn until it is on its split's side of the
report-string partition (``report_split.text_bucket``): train and held-out reports never share a
string. ``canonical_text`` (always on the train side) is the full description: margin, kind, zone.

The shipped vocab lacks some appearance words; ``appearance_vocab`` appends them (whole words) to
a run's vocab, so a report fits 24 tokens without ``[UNK]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from . import preprocess
from .phantoms import (CT_INTERCEPT, SPLIT_SEEDS, PreparedSplit, _cxr_anatomy, _ell_dist, _grid, _smooth_noise,
                       _soft)
from .report_split import draw_until, phrasing_rng, text_bucket
from .report_text import LEVELS, SIDES, zone_phrase

FAMILY_CODES: dict[str, int] = {"appearance-cxr": 3, "appearance-ct": 4}
#: Training family: appearance CXR with this fraction of appearance CT slices.
MIX_FAMILY = "appearance"
CT_FRACTION = 0.25
KINDS: tuple[str, ...] = ("ggo", "consolidation", "nodule", "reticular", "cavity")
MAX_TOKENS = 22  # [CLS] + 22 + [SEP] = 24

# radius range (normalised to the image side) and P(ill-defined margin) per kind
_RADIUS: dict[str, tuple[float, float]] = {"ggo": (0.055, 0.08), "consolidation": (0.05, 0.075),
                                            "nodule": (0.035, 0.045), "reticular": (0.055, 0.075),
                                            "cavity": (0.045, 0.065)}
_P_ILL: dict[str, float] = {"ggo": 0.8, "consolidation": 0.5, "nodule": 0.15, "reticular": 0.5, "cavity": 0.2}

# the report's names of each kind (canonical first)
_KIND_PHRASES: dict[str, tuple[str, ...]] = {
    "ggo": ("ground-glass opacity", "ground glass opacity", "hazy ground-glass opacity", "ground-glass haze"),
    "consolidation": ("dense consolidation with air bronchograms", "dense consolidation",
                      "consolidation with air bronchograms", "dense airspace consolidation"),
    "nodule": ("solid nodule", "round solid nodule", "dense nodule", "round nodule"),
    "reticular": ("reticular opacity", "reticular pattern", "reticular network of fine lines",
                  "reticular interstitial opacity"),
    "cavity": ("thick-walled cavity", "cavitary lesion", "cavity", "cavitating opacity"),
}
_MARGIN_ADJ: dict[bool, tuple[str, ...]] = {True: ("ill-defined", "poorly defined", "blurred"),
                                            False: ("well-defined", "sharply defined", "sharp")}
_MARGIN_TAIL: dict[bool, str] = {True: "with ill-defined margins", False: "with sharp margins"}
_OPENERS: tuple[tuple[str, str], ...] = (("", "the"), ("There is ", "a"), ("Findings: ", "a"),
                                          ("Segment ", "the"), ("Target: ", "the"), ("Note ", "the"))


@dataclass(frozen=True)
class Opacity:
    """One opacity: its kind, margin, size class, zone and ellipse (normalised coordinates)."""

    kind: str
    ill_defined: bool
    size: str  # "small", "large" or "" (neither)
    zone: tuple[str, str]  # CXR: (level, side); CT: ("", side)
    centre: tuple[float, float]  # (u, v)
    radii: tuple[float, float]  # (rx, ry)
    angle: float  # orientation of bronchograms / reticular lines


@dataclass
class AppearanceCase:
    """One frame of the appearance benchmark."""

    raw: np.ndarray  # rows × cols stored values: uint16 (CR) or int16 (CT)
    slope: float
    intercept: float
    modality: str  # "CR" or "CT"
    photometric: str
    mask: np.ndarray  # uint8 {0,1}: the named opacities only
    lesion_mask: np.ndarray  # uint8 {0,1}: every opacity
    opacity_masks: list[np.ndarray]  # uint8 {0,1} per opacity, in ``opacities`` order
    opacities: list[Opacity]
    targets: list[int]  # indices into ``opacities`` of the named ones
    report: str


def case_rng(split_seed: int, family: str, index: int) -> np.random.Generator:
    """The per-case image generator: seeded by ``(split_seed, family code, index)``."""
    return np.random.default_rng([int(split_seed), FAMILY_CODES[family], int(index)])


# ----------------------------------------------------------------------------- layout


class _Layout(NamedTuple):
    anatomy: dict[str, Any]
    opacities: list[Opacity]
    targets: list[int]


def _size_class(kind: str, r: float) -> str:
    lo, hi = _RADIUS[kind]
    t = (r - lo) / (hi - lo)
    if kind == "nodule":
        return "small"
    return "small" if t < 0.25 else ("large" if t > 0.75 else "")


def _draw_opacities(rng: np.random.Generator, lungs: Mapping[str, tuple[float, float, float, float]],
                    zoned: bool, heart: tuple[float, float, float, float] | None) -> tuple[list[Opacity], list[int]]:
    """2–3 opacities of distinct kinds at non-overlapping positions in the lungs, and the targets.

    ``zoned``: CXR (zones = level × side); else CT (zone = side). Positions do not depend on kind.
    """
    k = int(rng.integers(2, 4))
    kinds = [KINDS[int(i)] for i in rng.choice(len(KINDS), size=k, replace=False)]
    n_target = 1 if k == 2 or rng.random() < 0.75 else 2
    same_zone = rng.random() < 0.35
    placed: list[Opacity] = []
    for n, kind in enumerate(kinds):
        r = float(rng.uniform(*_RADIUS[kind]))
        aspect = 1.0 if kind == "nodule" else float(rng.uniform(0.8, 1.25))
        rx, ry = r * np.sqrt(aspect), r / np.sqrt(aspect)
        ill = bool(rng.random() < _P_ILL[kind])
        angle = float(rng.uniform(0, np.pi))
        centre = None
        for attempt in range(1000):
            if n == 1 and same_zone and attempt < 100:
                level, side = placed[0].zone
            elif attempt % 25 == 0:  # a zone keeps 25 tries, so cramped zones are not under-drawn
                level, side = (LEVELS[int(rng.integers(3))] if zoned else ""), SIDES[int(rng.integers(2))]
            cx, cy, ax, ay = lungs[side]
            # zones are the thirds of the lung's height (CXR); the level is drawn first, so every
            # zone is as likely as any other
            li = LEVELS.index(level) if zoned else 0
            v0, v1 = (cy - ay + li * 2 * ay / 3, cy - ay + (li + 1) * 2 * ay / 3) if zoned else (cy - ay, cy + ay)
            u = float(rng.uniform(cx - ax, cx + ax))
            v = float(rng.uniform(v0, v1))
            if _ell_dist(u, v, cx, cy, ax, ay) > 0.8 - 0.3 * r / min(ax, ay):
                continue
            if heart is not None and _ell_dist(u, v, *heart) < 1.1 + r / heart[3]:
                continue
            if any(np.hypot(u - o.centre[0], v - o.centre[1]) < 1.15 * (r + max(o.radii)) + 0.01 for o in placed):
                continue
            centre = (u, v, level, side)
            break
        if centre is None:  # no room: fewer opacities (always at least 2 placed in practice)
            continue
        u, v, level, side = centre
        placed.append(Opacity(kind, ill, _size_class(kind, r), (level, side), (u, v), (rx, ry), angle))
    if len(placed) < 2:
        raise RuntimeError("could not place two opacities")
    n_target = min(n_target, len(placed) - 1)
    targets = sorted(int(i) for i in rng.choice(len(placed), size=n_target, replace=False))
    return placed, targets


def _cxr_layout(rng: np.random.Generator) -> _Layout:
    anat = _cxr_anatomy(rng)
    ops, targets = _draw_opacities(rng, anat["lungs"], True, anat["heart"])
    return _Layout(anat, ops, targets)


def _ct_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731
    return {
        "body": (0.5 + j(0.01), 0.52 + j(0.01), 0.44 + j(0.02), 0.33 + j(0.02)),
        "lungs": {"right": (0.315 + j(0.01), 0.47 + j(0.01), 0.15 + j(0.01), 0.23 + j(0.01)),
                  "left": (0.685 + j(0.01), 0.47 + j(0.01), 0.14 + j(0.01), 0.22 + j(0.01))},
        "spine": (0.5, 0.77 + j(0.01), 0.055, 0.05),
    }


def _ct_layout(rng: np.random.Generator) -> _Layout:
    anat = _ct_anatomy(rng)
    ops, targets = _draw_opacities(rng, anat["lungs"], False, None)
    return _Layout(anat, ops, targets)


def _layout(split_seed: int, family: str, index: int) -> tuple[np.random.Generator, _Layout]:
    rng = case_rng(split_seed, family, index)
    return rng, (_cxr_layout(rng) if family == "appearance-cxr" else _ct_layout(rng))


# ----------------------------------------------------------------------------- reports


def _zone_text(zone: tuple[str, str], variant: int) -> str:
    level, side = zone
    if not level:
        return f"{side} lung"
    return zone_phrase(level, side, variant)


def describe(o: Opacity, rng: np.random.Generator | None = None, with_zone: bool = True) -> str:
    """A noun phrase naming ``o`` by appearance (and zone): canonical when ``rng`` is None."""
    if rng is None:
        phrase = f"{_MARGIN_ADJ[o.ill_defined][0]} {_KIND_PHRASES[o.kind][0]}"
        return phrase + (f" in the {_zone_text(o.zone, 0)}" if with_zone else "")
    kind = _KIND_PHRASES[o.kind][int(rng.integers(len(_KIND_PHRASES[o.kind])))]
    margin = int(rng.integers(3))  # 0 none, 1 adjective, 2 tail
    words = []
    if o.size and rng.random() < 0.3:
        words.append(o.size)
    if margin == 1:
        words.append(_MARGIN_ADJ[o.ill_defined][int(rng.integers(3))])
    words.append(kind)
    if margin == 2:
        words.append(_MARGIN_TAIL[o.ill_defined])
    if with_zone:
        words.append(f"in the {_zone_text(o.zone, int(rng.random() < 0.3))}")
    return " ".join(words)


def canonical_text(opacities: Sequence[Opacity], targets: Sequence[int]) -> str:
    """The full description of the targets in a fixed wording: margin, kind and zone of each (the
    zones left out when two targets would not fit 24 tokens)."""
    for with_zone in (True, False):
        parts = ["the " + describe(opacities[i], with_zone=with_zone) for i in targets]
        text = " and ".join(parts) + "."
        text = text[0].upper() + text[1:]
        if _fits(text):
            break
    return text


def _draw_report(opacities: Sequence[Opacity], targets: Sequence[int], rng: np.random.Generator) -> str:
    opener, article = _OPENERS[int(rng.integers(len(_OPENERS)))]
    with_zone = rng.random() < 0.5
    parts = []
    for n, i in enumerate(targets):
        desc = describe(opacities[i], rng, with_zone)
        art = article
        if art == "a" and desc[0] in "aeiou":
            art = "an"
        parts.append(f"{art} {desc}")
    text = opener + " and ".join(parts) + "."
    return text[0].upper() + text[1:]


def _fits(text: str) -> bool:
    toks = _tokenizer().tokenize(text)
    return len(toks) <= MAX_TOKENS and "[UNK]" not in toks


_TOK = None


def _tokenizer():
    """The shipped vocab extended by ``appearance_vocab`` (loaded once)."""
    global _TOK
    if _TOK is None:
        from .text_augment import VOCAB_PATH
        from .tokenizer import WordPieceTokenizer
        tokens = [t for t in VOCAB_PATH.read_text(encoding="utf-8").split("\n") if t]
        _TOK = WordPieceTokenizer({t: i for i, t in enumerate(appearance_vocab(tokens))})
    return _TOK


def report_of(split_seed: int, family: str, index: int, opacities: Sequence[Opacity], targets: Sequence[int]) -> str:
    """The report of case ``index``: on the train side of the string partition for the training
    split (bucket 1..3, or the canonical text), on the held-out side (bucket 0, never canonical) else."""
    rng = phrasing_rng(split_seed, FAMILY_CODES[family], index)
    canon = canonical_text(opacities, targets)
    train = int(split_seed) == SPLIT_SEEDS["train"]

    def accept(t: str) -> bool:
        on_train = t == canon or text_bucket(t) != 0
        return _fits(t) and on_train == train

    if train and rng.random() < 0.3:
        return canon
    return draw_until(lambda: _draw_report(opacities, targets, rng), accept)


def appearance_words() -> list[str]:
    """Every word the appearance reports use (lower case, punctuation split off), sorted."""
    from .tokenizer import basic_tokenize
    texts = [p for ps in _KIND_PHRASES.values() for p in ps] + [a for v in _MARGIN_ADJ.values() for a in v]
    texts += list(_MARGIN_TAIL.values()) + [o for o, _ in _OPENERS] + ["a an the and in small large lung zone"]
    texts += list(LEVELS) + list(SIDES)
    return sorted({w for t in texts for w in basic_tokenize(t) if w.isalpha()})


def appearance_vocab(tokens: Sequence[str]) -> list[str]:
    """``tokens`` with every appearance word that is not already a token appended (ids unchanged)."""
    have = set(tokens)
    return list(tokens) + [w for w in appearance_words() if w not in have]


# ----------------------------------------------------------------------------- rendering


def _opacity_density(o: Opacity, u: np.ndarray, v: np.ndarray, texture: np.ndarray, scale: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(density map in units of ``scale``, elliptical distance) of one opacity.

    CXR uses ``scale`` 1 (density added to the attenuation image); CT uses HU.
    """
    d = _ell_dist(u, v, o.centre[0], o.centre[1], o.radii[0], o.radii[1])
    edge = 0.12 if o.ill_defined else 0.03
    inside = _soft(d, edge)
    du, dv = u - o.centre[0], v - o.centre[1]
    if o.kind == "ggo":
        dens = 0.09 * inside * (0.6 + 0.4 * texture)
    elif o.kind == "consolidation":
        dens = 0.30 * inside
        # air bronchograms: 2 dark lines from near the centre, fanning out
        for da in (-0.45, 0.45):
            a = o.angle + da
            s = du * np.cos(a) + dv * np.sin(a)  # along the branch
            t = -du * np.sin(a) + dv * np.cos(a)  # across
            branch = np.exp(-(t / 0.009) ** 2) * (s > -0.2 * max(o.radii)) * (d < 0.85)
            dens = dens - 0.22 * branch * inside
    elif o.kind == "nodule":
        dens = 0.33 * inside
    elif o.kind == "reticular":
        period = 0.042
        s1 = du * np.cos(o.angle) + dv * np.sin(o.angle)
        s2 = du * np.cos(o.angle + 1.2) + dv * np.sin(o.angle + 1.2)
        lines = np.maximum((0.5 + 0.5 * np.cos(2 * np.pi * s1 / period)) ** 6,
                           (0.5 + 0.5 * np.cos(2 * np.pi * s2 / period)) ** 6)
        dens = inside * (0.04 + 0.2 * lines)
    elif o.kind == "cavity":
        wall = 0.30 * inside * (1.0 - _soft(d / 0.55, 0.06))
        dens = wall - 0.14 * _soft(d / 0.5, 0.06)
    else:
        raise ValueError(f"unknown kind {o.kind!r}")
    return (dens * scale).astype(np.float32), d


def _masks(layout: _Layout, u: np.ndarray, v: np.ndarray, in_lung: np.ndarray) -> list[np.ndarray]:
    out = []
    for o in layout.opacities:
        d = _ell_dist(u, v, o.centre[0], o.centre[1], o.radii[0], o.radii[1])
        out.append(((d <= 1.0) & in_lung).astype(np.uint8))
    return out


def cxr_case(split_seed: int, index: int, size: int = 256) -> AppearanceCase:
    """One CXR-like radiograph of the appearance family with its report."""
    rng, lay = _layout(split_seed, "appearance-cxr", index)
    anat = lay.anatomy
    u, v = _grid(size)
    body = _soft(_ell_dist(u, v, *anat["body"]), 0.01)
    body = np.maximum(body, _soft(_ell_dist(u, v, *anat["neck"]), 0.02))
    a = 0.55 * body
    lung_d = {sd: _ell_dist(u, v, *anat["lungs"][sd]) for sd in SIDES}
    lung_soft = np.maximum(_soft(lung_d["right"], 0.04), _soft(lung_d["left"], 0.04))
    a = a - 0.36 * lung_soft
    a += 0.22 * _soft(_ell_dist(u, v, *anat["heart"]), 0.05)
    a += 0.12 * body * np.exp(-(((u - 0.5) / 0.035) ** 2))
    rib_v = v + 0.9 * (u - 0.5) ** 2
    a += 0.07 * body * (0.5 + 0.5 * np.sin(2 * np.pi * rib_v / anat["rib_period"] + anat["rib_phase"])) ** 6
    texture = _smooth_noise(rng, size, 14)
    in_lung = (lung_d["right"] <= 1.0) | (lung_d["left"] <= 1.0)
    for o in lay.opacities:
        dens, _ = _opacity_density(o, u, v, texture, float(rng.uniform(0.85, 1.15)))
        a = a + dens * lung_soft
    gamma = float(rng.uniform(0.8, 1.25))
    gain = float(rng.uniform(2500, 3600))
    offset = float(rng.uniform(60, 300))
    noise = rng.normal(0.0, float(rng.uniform(12, 30)), (size, size))
    stored = np.clip(np.rint(offset + gain * np.clip(a, 0, None) ** gamma + noise), 0, 4095).astype(np.uint16)
    photometric = "MONOCHROME1" if rng.random() < 0.5 else "MONOCHROME2"
    if photometric == "MONOCHROME1":
        stored = (4095 - stored).astype(np.uint16)
    return _case(split_seed, "appearance-cxr", index, lay, stored, 0.0, "CR", photometric,
                 _masks(lay, u, v, in_lung))


def ct_case(split_seed: int, index: int, size: int = 128) -> AppearanceCase:
    """One CT-like axial slice of the appearance family with its report (zone = the lung's side)."""
    rng, lay = _layout(split_seed, "appearance-ct", index)
    anat = lay.anatomy
    u, v = _grid(size)
    hu = np.full((size, size), -1000.0, np.float32)
    db = _ell_dist(u, v, *anat["body"])
    hu[db <= 1.0] = -100.0
    hu[db <= 0.92] = 40.0
    for ang in rng.uniform(0, 2 * np.pi, 10):
        bx = anat["body"][0] + 0.9 * anat["body"][2] * np.cos(ang)
        by = anat["body"][1] + 0.9 * anat["body"][3] * np.sin(ang)
        hu[_ell_dist(u, v, bx, by, 0.018, 0.018) <= 1.0] = 500.0
    dsp = _ell_dist(u, v, *anat["spine"])
    hu[dsp <= 1.0] = 300.0
    hu[(dsp <= 1.0) & (dsp > 0.8)] = 900.0
    lung_m = {sd: _ell_dist(u, v, *anat["lungs"][sd]) <= 1.0 for sd in SIDES}
    in_lung = lung_m["right"] | lung_m["left"]
    hu[in_lung] = -850.0
    for sd in SIDES:
        cx, cy, ax, ay = anat["lungs"][sd]
        for vx, vy in rng.uniform(-0.7, 0.7, (6, 2)):
            hu += (600.0 * np.exp(-(((u - cx - vx * ax) ** 2 + (v - cy - vy * ay) ** 2) / 0.007 ** 2))
                   * lung_m[sd]).astype(np.float32)
    texture = _smooth_noise(rng, size, 12)
    for o in lay.opacities:
        # density 1 ≈ 2900 HU: ggo ≈ -590, consolidation / nodule ≈ +20..+100, cavity centre → air
        dens, _ = _opacity_density(o, u, v, texture, 2900.0 * float(rng.uniform(0.9, 1.1)))
        hu += dens * in_lung
    hu = np.maximum(hu, -1000.0) + rng.normal(0.0, float(rng.uniform(10, 25)), (size, size)).astype(np.float32)
    stored = np.clip(np.rint(hu - CT_INTERCEPT), -32768, 32767).astype(np.int16)
    return _case(split_seed, "appearance-ct", index, lay, stored, CT_INTERCEPT, "CT", "MONOCHROME2",
                 _masks(lay, u, v, in_lung))


def _case(split_seed: int, family: str, index: int, lay: _Layout, stored: np.ndarray, intercept: float,
          modality: str, photometric: str, masks: list[np.ndarray]) -> AppearanceCase:
    target = np.zeros_like(masks[0])
    lesion = np.zeros_like(masks[0])
    for n, m in enumerate(masks):
        lesion |= m
        if n in lay.targets:
            target |= m
    return AppearanceCase(raw=stored, slope=1.0, intercept=intercept, modality=modality, photometric=photometric,
                          mask=target, lesion_mask=lesion, opacity_masks=masks, opacities=lay.opacities,
                          targets=list(lay.targets),
                          report=report_of(split_seed, family, index, lay.opacities, lay.targets))


def case(split_seed: int, family: str, index: int) -> AppearanceCase:
    """Case ``index`` of ``family`` (``appearance-cxr`` or ``appearance-ct``) at its native size."""
    if family == "appearance-cxr":
        return cxr_case(split_seed, index)
    if family == "appearance-ct":
        return ct_case(split_seed, index)
    raise ValueError(f"unknown appearance family {family!r}; want one of {sorted(FAMILY_CODES)}")


# ----------------------------------------------------------------------------- splits


def prepared_split(split: str, n: int, family: str,
                   manifest_like: Mapping[str, Any] = preprocess.DEFAULT_MANIFEST) -> PreparedSplit:
    """The first ``n`` frames of a split, pre-processed as tmcad does (see ``phantoms.prepared_split``)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; want one of {sorted(SPLIT_SEEDS)}")
    seed = SPLIT_SEEDS[split]
    h, w = int(manifest_like["image"]["height"]), int(manifest_like["image"]["width"])
    images = np.empty((n, 1, h, w), np.float32)
    masks = np.empty((n, 1, h, w), np.float32)
    reports = []
    for k in range(n):
        c = case(seed, family, k)
        images[k, 0] = preprocess.prepare_frame(c.raw, c.slope, c.intercept, c.modality, c.photometric, manifest_like)
        masks[k, 0] = preprocess.resize_mask(c.mask, h, w)
        reports.append(c.report)
    return PreparedSplit(images, masks, reports)


def split_texts(split: str, n: int, family: str, text: str = "report") -> list[str]:
    """The reports (or canonical texts) of the first ``n`` frames of a split, without pixels."""
    if text not in ("report", "canonical"):
        raise ValueError(f"text must be 'report' or 'canonical', got {text!r}")
    seed = SPLIT_SEEDS[split]
    out = []
    for i in range(n):
        _, lay = _layout(seed, family, i)
        out.append(report_of(seed, family, i, lay.opacities, lay.targets) if text == "report"
                   else canonical_text(lay.opacities, lay.targets))
    return out
