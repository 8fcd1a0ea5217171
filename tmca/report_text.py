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

import itertools

import numpy as np

LEVELS: tuple[str, ...] = ("upper", "middle", "lower")
SIDES: tuple[str, ...] = ("right", "left")
#: The six lung zones, ``(level, side)``; index order is used everywhere.
ZONES: tuple[tuple[str, str], ...] = tuple((lv, sd) for sd in SIDES for lv in LEVELS)

NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
#: The most target zones a CXR report (and its canonical guide text) names.
MAX_GUIDE_ZONES = 3

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


def draw_cxr_wording(rng: np.random.Generator) -> tuple[str, tuple[str, str], int]:
    """The generator's wording of a CXR sentence: head, ``(singular, plural)`` noun, zone variant."""
    head = _pick(rng, _CXR_HEADS)
    nouns = _pick(rng, _CXR_COUNT_NOUNS)
    variant = 0 if rng.random() < 0.8 else 1
    return head, nouns, variant


def cxr_sentence(zones: list[tuple[str, str]], head: str, nouns: tuple[str, str], variants: list[int]) -> str:
    """A QaTa-COV19-style sentence naming ``zones`` in the order given, one phrase variant per zone."""
    lateral = "Bilateral" if len({sd for _, sd in zones}) == 2 else "Unilateral"
    n = len(zones)
    noun = nouns[0] if n == 1 else nouns[1]
    places = join_list([zone_phrase(*z, variant=v) for z, v in zip(zones, variants)])
    return f"{lateral} {head}, {NUMBER_WORDS[n]} {noun}, {places}."


def cxr_report(zones: list[tuple[str, str]], rng: np.random.Generator) -> str:
    """QaTa-COV19-style sentence describing exactly ``zones`` (1..3 of them).

    The zone order in the sentence is random; so is the phrasing variant.
    """
    if not 1 <= len(zones) <= MAX_GUIDE_ZONES:
        raise ValueError(f"cxr_report describes 1..{MAX_GUIDE_ZONES} zones, got {len(zones)}")
    head, nouns, variant = draw_cxr_wording(rng)
    order = rng.permutation(len(zones))
    return cxr_sentence([zones[i] for i in order], head, nouns, [variant] * len(zones))


def cxr_phrasings(zones: list[tuple[str, str]]) -> set[str]:
    """Every sentence ``cxr_report`` can emit for this zone set."""
    out = set()
    for head, _ in _CXR_HEADS:
        for nouns, _ in _CXR_COUNT_NOUNS:
            for variant in (0, 1):
                for order in itertools.permutations(zones):
                    out.add(cxr_sentence(list(order), head, nouns, [variant] * len(zones)))
    return out


def guide_text(zones: list[tuple[str, str]]) -> str:
    """The canonical guide text for a set of CXR target zones (form ``qata-cov19``).

    What tmcad's report normaliser renders for the model (docs/CONTRACTS.md):
    zones deduplicated and in ``ZONES`` order, always the head "pulmonary
    infection" and the noun "infected area(s)", zones as "<level> <side> lung".
    ``[]`` renders ``""`` (no target described).
    """
    zs = sorted(set(zones), key=ZONES.index)
    if not zs:
        return ""
    lateral = "Bilateral" if len({sd for _, sd in zs}) == 2 else "Unilateral"
    noun = "infected area" if len(zs) == 1 else "infected areas"
    return f"{lateral} pulmonary infection, {NUMBER_WORDS[len(zs)]} {noun}, {join_list([zone_phrase(*z) for z in zs])}."


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


#: Sentence bodies of a CT report; ``{where}`` is "the right lung" / "both lungs", ``{lung}`` is
#: "right lung" / "both lungs". The first is the canonical form (``ct_guide_text``).
_CT_BODIES: tuple[str, ...] = (
    "Ground-glass opacities in {where}",
    "Ground-glass opacity of {where}",
    "Viral pneumonia, {lung} affected",
    "Viral pneumonia, ground-glass opacities in {where}",
    "Ground-glass opacities, {lung}",
)
#: How the severity follows the body, with the generator's weights; the first is the canonical form.
_CT_SEVERITY_FORMS: tuple[tuple[str, float], ...] = (("{cat}, {phrase}", 6), ("{phrase}, {cat}", 2), ("{cat}", 2))
CT_BODY_COUNT = len(_CT_BODIES)
CT_SEVERITY_FORM_COUNT = len(_CT_SEVERITY_FORMS)


def ct_severity(category: str, form: int = 0) -> str:
    """``"CT-2, involvement 25-50%"`` (form 0), ``"involvement 25-50%, CT-2"`` (1) or ``"CT-2"`` (2)."""
    phrases = {cat: phrase for cat, _, phrase in CT_CATEGORIES}
    return _CT_SEVERITY_FORMS[form][0].format(cat=category, phrase=phrases[category])


def ct_sentence(side: str, body: int, severity: str | None) -> str:
    """A CT report: body ``body`` of ``_CT_BODIES`` for ``side``, then the severity if any."""
    if side not in ("right", "left", "both"):
        raise ValueError(f"side must be right, left or both, got {side!r}")
    if body == 1 and side == "both":
        text = "Bilateral ground-glass opacities"
    else:
        where = "both lungs" if side == "both" else f"the {side} lung"
        lung = "both lungs" if side == "both" else f"{side} lung"
        text = _CT_BODIES[body].format(where=where, lung=lung)
    return f"{text}, {severity}." if severity else f"{text}."


def ct_report(side: str, fraction: float, rng: np.random.Generator) -> str:
    """MosMedData+-style series report. ``side`` is ``"right"``, ``"left"`` or ``"both"``.

    It always names the category of ``fraction``; body and severity form are random.
    """
    cat, _ = ct_category(fraction)
    body = int(rng.integers(len(_CT_BODIES)))
    form = _pick(rng, tuple((i, w) for i, (_, w) in enumerate(_CT_SEVERITY_FORMS)))
    return ct_sentence(side, body, ct_severity(cat, form))


def ct_phrasings(side: str, category: str) -> set[str]:
    """Every sentence ``ct_report`` can emit for this side and category."""
    return {ct_sentence(side, b, ct_severity(category, f))
            for b in range(len(_CT_BODIES)) for f in range(len(_CT_SEVERITY_FORMS))}


def ct_guide_text(side: str, category: str | None = None) -> str:
    """The canonical guide text for a CT series (form ``mosmeddata``).

    ``side`` is ``"right"``, ``"left"`` or ``"both"`` (``""`` renders ``""``: no
    target). With a MosMedData category (``"CT-1"`` .. ``"CT-4"``) its standard
    involvement phrase follows, as in ``ct_report``'s first form.
    """
    if not side:
        return ""
    if side not in ("right", "left", "both"):
        raise ValueError(f"side must be right, left or both, got {side!r}")
    where = "both lungs" if side == "both" else f"the {side} lung"
    if category is None:
        return f"Ground-glass opacities in {where}."
    phrases = {cat: phrase for cat, _, phrase in CT_CATEGORIES}
    if category not in phrases:
        raise ValueError(f"category must be one of {sorted(phrases)}, got {category!r}")
    return f"Ground-glass opacities in {where}, {category}, {phrases[category]}."


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
