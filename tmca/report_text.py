"""Report sentences for the phantom benchmark, in the styles of the public data sets.

* CXR (QaTa-COV19 text annotations, as released with LViT):
  ``"Bilateral pulmonary infection, two infected areas, lower left lung and middle right lung."``
* CT (MosMedData+ style, one report per series, naming the lung(s)):
  ``"Ground-glass opacities in the right lung, CT-1, involvement under 25%."``

Sides are the *patient's* sides. In a PA chest radiograph and in an axial CT
slice viewed from the feet (radiological convention) the patient's right is on
the image's left: ``side == "right"`` means columns ``< cols / 2``.

Every sentence produced here tokenizes to at most 22 WordPiece tokens with the
shipped vocab, so ``[CLS] ... [SEP]`` fits ``max_length = 24`` without truncation
(checked in tests).
"""
from __future__ import annotations

import numpy as np

LEVELS: tuple[str, ...] = ("upper", "middle", "lower")
SIDES: tuple[str, ...] = ("right", "left")
#: The six lung zones, ``(level, side)``; index order is used everywhere.
ZONES: tuple[tuple[str, str], ...] = tuple((lv, sd) for sd in SIDES for lv in LEVELS)

NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

_CXR_HEADS = (("pulmonary infection", 6), ("lung infection", 2), ("pneumonia", 2))
_CXR_COUNT_NOUNS = ((("infected area", "infected areas"), 7), (("lesion", "lesions"), 3))


def _pick(rng: np.random.Generator, weighted: tuple) -> object:
    """Choose one item from ``((item, weight), ...)``."""
    weights = np.array([w for _, w in weighted], dtype=np.float64)
    return weighted[int(rng.choice(len(weighted), p=weights / weights.sum()))][0]


def zone_phrase(level: str, side: str, variant: int = 0) -> str:
    """``"upper left lung"`` (variant 0) or ``"left upper zone"`` (variant 1)."""
    return f"{level} {side} lung" if variant == 0 else f"{side} {level} zone"


def join_list(items: list[str]) -> str:
    """``a``; ``a and b``; ``a, b and c``."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def cxr_report(zones: list[tuple[str, str]], rng: np.random.Generator) -> str:
    """QaTa-COV19-style sentence describing exactly ``zones`` (1..3 of them).

    The zone order in the sentence is random; so is the phrasing variant.
    """
    if not 1 <= len(zones) <= 3:
        raise ValueError(f"cxr_report describes 1..3 zones, got {len(zones)}")
    sides = {sd for _, sd in zones}
    lateral = "Bilateral" if len(sides) == 2 else "Unilateral"
    head = _pick(rng, _CXR_HEADS)
    singular, plural = _pick(rng, _CXR_COUNT_NOUNS)
    n = len(zones)
    noun = singular if n == 1 else plural
    variant = 0 if rng.random() < 0.8 else 1
    order = rng.permutation(n)
    places = join_list([zone_phrase(*zones[i], variant=variant) for i in order])
    return f"{lateral} {head}, {NUMBER_WORDS[n]} {noun}, {places}."


#: CT severity (MosMedData / MosMedData+): share of the described lung(s) involved.
CT_CATEGORIES: tuple[tuple[str, float, str], ...] = (
    ("CT-1", 0.25, "involvement under 25%"),
    ("CT-2", 0.50, "involvement 25-50%"),
    ("CT-3", 0.75, "involvement 50-75%"),
    ("CT-4", 1.01, "involvement over 75%"),
)


def ct_category(fraction: float) -> tuple[str, str]:
    """Map an involved-volume fraction to ``(category, phrase)``."""
    for cat, upper, phrase in CT_CATEGORIES:
        if fraction < upper:
            return cat, phrase
    return CT_CATEGORIES[-1][0], CT_CATEGORIES[-1][2]


def ct_report(side: str, fraction: float, rng: np.random.Generator) -> str:
    """MosMedData+-style series report. ``side`` is ``"right"``, ``"left"`` or ``"both"``."""
    if side not in ("right", "left", "both"):
        raise ValueError(f"side must be right, left or both, got {side!r}")
    cat, phrase = ct_category(fraction)
    where = "both lungs" if side == "both" else f"the {side} lung"
    t = int(rng.integers(3))
    if t == 0:
        return f"Ground-glass opacities in {where}, {cat}, {phrase}."
    if t == 1:
        if side == "both":
            return f"Bilateral ground-glass opacities, {cat}, {phrase}."
        return f"Ground-glass opacity of {where}, {cat}, {phrase}."
    affected = "both lungs affected" if side == "both" else f"{side} lung affected"
    return f"Viral pneumonia, {affected}, {cat}, {phrase}."


def all_report_words() -> list[str]:
    """Every word the generators above can emit (for the vocab builder)."""
    words = set(LEVELS) | set(SIDES) | set(NUMBER_WORDS[1:4])
    words |= {"bilateral", "unilateral", "lung", "lungs", "zone", "and", "the", "in", "of", "both", "affected"}
    for h, _ in _CXR_HEADS:
        words |= set(h.split())
    for (s, p), _ in _CXR_COUNT_NOUNS:
        words |= set(s.split()) | set(p.split())
    words |= {"ground", "glass", "opacities", "opacity", "ct", "viral", "pneumonia", "involvement",
              "under", "over", "25", "50", "75", "1", "2", "3", "4"}
    return sorted(words)
