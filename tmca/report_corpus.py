"""Realistic radiology reports for the phantoms, each with its ground-truth guide text.

tmcad turns a full report into the canonical sentence the model was trained on
(``report_text.guide_text`` for CXR, ``report_text.ct_guide_text`` for CT). This
module writes reports the way radiologists do, in *phrasing families* (lobes,
abbreviations, hedges, tubes and lines, full sectioned reports, typos...), so
that the normaliser can be measured family by family:

    text, guide = realistic_report("lobes", cxr_case(4000, 0), rng)
    # "Airspace opacity in the left lower lobe. No pleural effusion." ,
    # "Unilateral pulmonary infection, one infected area, lower left lung."

The semantics every report follows (the rules the Go normaliser, reports/guide, implements):

* The guide is the union of the zones named by the *positive* statements of
  the FINDINGS and IMPRESSION sections (the whole text when there are no
  headings). A statement needs a location and a target finding word.
* Negated, "cannot exclude" / "rule out" and history statements are dropped;
  they only ever name zones that hold no opacity at all in the phantom
  (``case.zones``), or general normals, so every report is true of its image.
* Hedged ("possible", "likely") and comparison ("new", "persistent")
  statements are kept.

The ``negative`` family has no positive statement (guide ``""``); its reports
are for the outcome (no SEG) only, not for Dice. Families marked
``held_out`` are never used to tune the normaliser's rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .phantoms import PhantomCase, PhantomSeries
from .report_text import LEVELS, SIDES, ZONES, ct_category, ct_guide_text, guide_text, join_list

Zone = tuple[str, str]


@dataclass(frozen=True)
class Family:
    """One phrasing family of the corpus."""

    name: str
    description: str
    held_out: bool = False
    modality: str = "CR"  # "CR" (a PhantomCase) or "CT" (a PhantomSeries)


FAMILIES: tuple[Family, ...] = (
    Family("template", "the phantom generator's own sentence (control)"),
    Family("lobes", "anatomical lobes and the lingula"),
    Family("abbreviations", "RUL/RML/RLL/LUL/LLL abbreviations"),
    Family("zone_adjectives", "apical, basal, perihilar, retrocardiac, costophrenic, bibasilar"),
    Family("synonyms", "infiltrate, airspace disease, ground-glass, pneumonia, haziness..."),
    Family("negated_other_side", "a clear lung or clear zones beside the targets"),
    Family("hedges", "hedged but positive statements", held_out=True),
    Family("comparisons", "statements relative to a prior study", held_out=True),
    Family("tubes_lines", "tubes, lines and drains naming sides, plus the targets"),
    Family("normal_statements", "heart, mediastinum, pleura and bone normals, plus the targets"),
    Family("sectioned", "a full report: examination, clinical history, comparison, findings, impression"),
    Family("several_one_negated", "the targets and one negated zone"),
    Family("history_uncertainty", "history and cannot-exclude statements about clear zones, plus the targets"),
    Family("typos", "one-edit typos in location and finding words"),
    Family("upper_case", "the whole report in capitals"),
    Family("numbered_list", "numbered impression items", held_out=True),
    Family("negative", "no target described (expected guide empty; outcome only, no Dice)"),
    Family("ct_template", "the CT phantom generator's own sentence (control)", modality="CT"),
    Family("ct_realistic", "CT chest reports: ground-glass opacities by side, with or without a CT-1..CT-4 category",
           modality="CT"),
)

FAMILY_BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}

#: Left/right-swapped controls: ``(name, family whose report is swapped)``.
SWAPPED_CONTROLS: tuple[tuple[str, str], ...] = (("template_swapped", "template"), ("lobes_swapped", "lobes"))


# ----------------------------------------------------------------------------- small helpers


def _choice(rng: np.random.Generator, items: Sequence):
    """One item of ``items``, uniformly."""
    return items[int(rng.integers(len(items)))]


def _cap(s: str) -> str:
    """First letter upper case, the rest untouched (keeps "RUL")."""
    return s[:1].upper() + s[1:]


def _free_zones(case: PhantomCase) -> list[Zone]:
    """Zones with no opacity at all (target or not), in ``ZONES`` order: safe to negate."""
    return [z for z in ZONES if z not in set(case.zones)]


def _free_sides(case: PhantomCase) -> list[str]:
    """Sides with no opacity in any zone."""
    return [sd for sd in SIDES if all(z[1] != sd for z in case.zones)]


def swap_zones(zones: Sequence[Zone]) -> list[Zone]:
    """The mirror zones (right <-> left)."""
    other = {"right": "left", "left": "right"}
    return [(lv, other[sd]) for lv, sd in zones]


# ----------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class Loc:
    """How to name a set of zones: after a preposition (``post``) or before a noun (``pre``)."""

    post: str  # "the right lower lobe", "both bases"
    pre: str | None  # "right lower lobe", "bibasilar"; None when it reads badly
    zones: tuple[Zone, ...]


_LOBE = {("upper", "right"): "right upper lobe", ("middle", "right"): "right middle lobe",
         ("lower", "right"): "right lower lobe", ("upper", "left"): "left upper lobe",
         ("middle", "left"): "lingula", ("lower", "left"): "left lower lobe"}
_ABBR = {("upper", "right"): "RUL", ("middle", "right"): "RML", ("lower", "right"): "RLL",
         ("upper", "left"): "LUL", ("middle", "left"): "lingula", ("lower", "left"): "LLL"}


def _zone_single(z: Zone, rng: np.random.Generator) -> Loc:
    lv, sd = z
    word = "mid" if lv == "middle" and rng.random() < 0.4 else lv
    noun = _choice(rng, ("zone", "zone", "zone", "lung", "region"))
    if noun == "lung" or rng.random() < 0.25:
        phrase = f"{word} {sd} {noun}"
    else:
        phrase = f"{sd} {word} {noun}"
    return Loc(f"the {phrase}", phrase, (z,))


def _lobe_single(z: Zone, rng: np.random.Generator) -> Loc:
    if z == ("middle", "left"):
        return Loc("the lingula", "lingular", (z,))
    return Loc(f"the {_LOBE[z]}", _LOBE[z], (z,))


def _abbr_single(z: Zone, rng: np.random.Generator) -> Loc:
    if z == ("middle", "left"):
        return Loc("the lingula", "lingular", (z,))
    return Loc(_choice(rng, (f"the {_ABBR[z]}", _ABBR[z])), _ABBR[z], (z,))


def _adjective_single(z: Zone, rng: np.random.Generator) -> Loc:
    lv, sd = z
    if lv == "upper":
        return _choice(rng, (Loc(f"the {sd} apex", f"{sd} apical", (z,)),
                             Loc(f"the {sd} apical region", f"{sd} apical", (z,))))
    if lv == "middle":
        return _choice(rng, (Loc(f"the {sd} perihilar region", f"{sd} perihilar", (z,)),
                             Loc(f"the {sd} mid zone", f"{sd} mid zone", (z,))))
    opts = [Loc(f"the {sd} base", f"{sd} basal", (z,)), Loc(f"the {sd} basal region", f"{sd} basilar", (z,)),
            Loc(f"the {sd} costophrenic angle", f"{sd} basal", (z,))]
    if sd == "left":
        opts.append(Loc("the retrocardiac region", "retrocardiac", (z,)))
    return _choice(rng, opts)


_SINGLE: dict[str, Callable[[Zone, np.random.Generator], Loc]] = {
    "zone": _zone_single, "lobe": _lobe_single, "abbr": _abbr_single, "adjective": _adjective_single,
}


def _same_side(style: str, zs: list[Zone], rng: np.random.Generator) -> Loc | None:
    """Several levels of one side, coordinated ("right upper and lower zones")."""
    sd = zs[0][1]
    lvs = [lv for lv in LEVELS if (lv, sd) in zs]
    t = tuple(sorted(zs, key=ZONES.index))
    if style == "zone":
        if rng.random() < 0.35:
            return Loc(f"the {join_list(lvs)} zones on the {sd}", None, t)
        return Loc(f"the {sd} {join_list(lvs)} zones", f"{sd} {join_list(lvs)} zone", t)
    if style == "lobe" and (sd == "right" or "middle" not in lvs):
        return Loc(f"the {sd} {join_list(lvs)} lobes", None, t)
    return None


def _bilateral(style: str, lv: str, rng: np.random.Generator) -> Loc | None:
    """The same level on both sides ("both lower zones", "bibasilar")."""
    t = ((lv, "right"), (lv, "left"))
    if style == "zone":
        word = "mid" if lv == "middle" and rng.random() < 0.4 else lv
        return _choice(rng, (Loc(f"both {word} zones", f"bilateral {word} zone", t),
                             Loc(f"the {word} zones bilaterally", None, t)))
    if style == "lobe" and lv != "middle":
        return _choice(rng, (Loc(f"both {lv} lobes", f"bilateral {lv} lobe", t),
                             Loc(f"the {lv} lobes bilaterally", None, t)))
    if style == "adjective":
        if lv == "lower":
            return _choice(rng, (Loc("both bases", "bibasilar", t), Loc("both bases", "bibasal", t)))
        if lv == "upper":
            return Loc("both apices", "bilateral apical", t)
        return Loc("both perihilar regions", "bilateral perihilar", t)
    return None


def _cross(style: str, a: Zone, b: Zone) -> Loc | None:
    """Two zones on different sides and levels ("right upper and left lower zones")."""
    a, b = sorted((a, b), key=lambda z: SIDES.index(z[1]))
    t = (a, b)
    if style == "zone":
        return Loc(f"the {a[1]} {a[0]} and {b[1]} {b[0]} zones", None, t)
    if style == "lobe" and "middle" not in (a[0], b[0]):
        return Loc(f"the {a[1]} {a[0]} and {b[1]} {b[0]} lobes", None, t)
    return None


def _joined(locs: list[Loc], style: str) -> Loc:
    """Single-zone locations joined with commas and "and"."""
    pre = join_list([l.pre for l in locs]) if style == "abbr" and all(l.pre for l in locs) else None
    return Loc(join_list([l.post for l in locs]), pre, tuple(z for l in locs for z in l.zones))


def locations(zones: Sequence[Zone], style: str, rng: np.random.Generator, group: float = 0.6) -> list[Loc]:
    """Name ``zones`` in ``style`` (zone, lobe, abbr, adjective) as one or more locations.

    With probability ``group`` a zone is coordinated with others (same side,
    same level both sides, or a cross pair) when the style has a form for it.
    The union of the returned locations' zones is exactly ``zones``.
    """
    rest = [zones[int(i)] for i in rng.permutation(len(zones))]
    out: list[Loc] = []
    while rest:
        z = rest.pop(0)
        loc = None
        if rest and rng.random() < group:
            same_side = [w for w in rest if w[1] == z[1]]
            same_level = [w for w in rest if w[0] == z[0]]
            cross = [w for w in rest if w[0] != z[0] and w[1] != z[1]]
            kinds = [k for k, ok in (("side", same_side), ("level", same_level), ("cross", cross)) if ok]
            kind = _choice(rng, kinds)
            if kind == "side":
                members, loc = [z] + same_side, _same_side(style, [z] + same_side, rng)
            elif kind == "level":
                members, loc = [z, same_level[0]], _bilateral(style, z[0], rng)
            else:
                members, loc = [z, cross[0]], _cross(style, z, cross[0])
            if loc is None:  # no coordinated form in this style: name each zone
                loc = _joined([_SINGLE[style](w, rng) for w in members], style)
            rest = [w for w in rest if w not in members]
        out.append(loc if loc is not None else _SINGLE[style](z, rng))
    return out


# ----------------------------------------------------------------------------- statements

_FINDINGS = ("opacity", "airspace opacity", "patchy opacity", "consolidation", "patchy consolidation",
             "airspace disease", "opacification", "ill-defined opacity")
_SYNONYMS = ("infiltrate", "patchy infiltrates", "airspace disease", "airspace shadowing", "ground-glass opacity",
             "hazy ground-glass opacities", "pneumonia", "infection", "shadowing", "hazy density",
             "patchy densities", "haziness", "consolidation", "opacification", "airspace consolidation")
_NEG_FINDINGS = ("consolidation", "focal consolidation", "opacity", "airspace disease", "focal opacity")


def positive(loc: Loc, rng: np.random.Generator, findings: Sequence[str] = _FINDINGS) -> str:
    """One positive sentence about ``loc``."""
    f = _choice(rng, findings)
    be = "are" if f.endswith(("ities", "ates", "ies")) else "is"
    forms = [f"{_cap(f)} in {loc.post}.", f"{_cap(f)} involving {loc.post}.", f"There {be} {f} in {loc.post}.",
             f"{_cap(f)} {be} seen in {loc.post}."]
    if loc.pre:
        forms += [f"{_cap(loc.pre)} {f}.", f"{_cap(loc.pre)} {f}.", f"There {be} {loc.pre} {f}."]
    return _choice(rng, forms)


def negated_zone(z: Zone, rng: np.random.Generator, style: str = "zone") -> str:
    """A truthful negation of one opacity-free zone."""
    loc = _SINGLE[style](z, rng)
    f = _choice(rng, _NEG_FINDINGS)
    return _choice(rng, (f"No {f} in {loc.post}.", f"{_cap(loc.post)} is clear.",
                         f"There is no {f} in {loc.post}.", f"{_cap(loc.post)} is unremarkable."))


def negated_side(sd: str, rng: np.random.Generator) -> str:
    """A truthful negation of a lung with no opacity."""
    return _choice(rng, (f"The {sd} lung is clear.", f"{_cap(sd)} lung is clear.",
                         f"No consolidation in the {sd} lung.", f"The {sd} lung is unremarkable.",
                         f"No focal opacity on the {sd}."))


#: General normal statements, one tuple of phrasings per topic (a report states a topic once).
_NORMALS: tuple[tuple[str, ...], ...] = (
    ("Heart size is normal.", "The heart is not enlarged."),
    ("The cardiomediastinal silhouette is within normal limits.", "Cardiomediastinal contours are normal.",
     "The mediastinum is unremarkable."),
    ("No pleural effusion or pneumothorax.", "No pleural effusion.", "There is no pleural effusion."),
    ("No pneumothorax.",),
    ("The hila are normal.",),
    ("No acute osseous abnormality.", "Osseous structures are intact."),
    ("Trachea is midline.",),
    ("No free air under the diaphragm.",),
)

_TUBES = (
    "Endotracheal tube tip 4 cm above the carina.", "Endotracheal tube in satisfactory position.",
    "Right internal jugular central venous catheter with tip in the SVC.",
    "Left internal jugular line terminates in the SVC.",
    "Left subclavian PICC line with tip at the cavoatrial junction.",
    "Right-sided PICC line in situ.", "Nasogastric tube courses below the left hemidiaphragm.",
    "Right chest drain in situ.", "Left-sided chest drain with its tip at the left apex.",
    "Right basal chest drain in place.", "Cardiac monitoring leads overlie the chest.",
    "Pacemaker generator over the left chest wall with leads in the right atrium and right ventricle.",
)


def _general_normals(rng: np.random.Generator, k: int) -> list[str]:
    """``k`` normal statements on distinct topics."""
    idx = rng.choice(len(_NORMALS), size=k, replace=False)
    return [_choice(rng, _NORMALS[int(i)]) for i in idx]


def _targets(case: PhantomCase, style: str, rng: np.random.Generator, findings: Sequence[str] = _FINDINGS,
             group: float = 0.6) -> list[str]:
    """Positive sentences naming exactly the case's target zones."""
    return [positive(loc, rng, findings) for loc in locations(case.target_zones, style, rng, group)]


def _style(rng: np.random.Generator) -> str:
    return _choice(rng, ("zone", "zone", "lobe", "abbr", "adjective"))


def _join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


# ----------------------------------------------------------------------------- CR families


def _template(case: PhantomCase, rng: np.random.Generator) -> str:
    return case.report


def _lobes(case: PhantomCase, rng: np.random.Generator) -> str:
    s = _targets(case, "lobe", rng)
    if rng.random() < 0.4:
        s += _general_normals(rng, 1)
    return _join(s)


def _abbreviations(case: PhantomCase, rng: np.random.Generator) -> str:
    out = []
    for loc in locations(case.target_zones, "abbr", rng, group=0.5):
        f = _choice(rng, _FINDINGS)
        bare = re.sub(r"\bthe ", "", loc.post)
        forms = [f"{_cap(f)} {bare}.", f"{_cap(f)} in {loc.post}."]
        if loc.pre:
            forms.append(f"{loc.pre} {f}.")
        out.append(_cap(_choice(rng, forms)))
    return _join(out)


def _zone_adjectives(case: PhantomCase, rng: np.random.Generator) -> str:
    return _join(_targets(case, "adjective", rng))


def _synonyms(case: PhantomCase, rng: np.random.Generator) -> str:
    return _join(_targets(case, _choice(rng, ("zone", "zone", "lobe")), rng, _SYNONYMS))


def _negated_other_side(case: PhantomCase, rng: np.random.Generator) -> str:
    pos = _targets(case, _choice(rng, ("zone", "lobe")), rng)
    target_sides = {sd for _, sd in case.target_zones}
    neg: list[str] = []
    for sd in SIDES:
        if sd in target_sides:
            continue
        if sd in _free_sides(case):
            neg.append(negated_side(sd, rng))
        else:
            free = [z for z in _free_zones(case) if z[1] == sd]
            if len(free) >= 2 and rng.random() < 0.5:
                lvs = [lv for lv in LEVELS if (lv, sd) in free]
                neg.append(f"The {sd} {join_list(lvs)} zones are clear.")
            else:
                neg += [negated_zone(z, rng) for z in free]
    if not neg:  # targets on both sides: negate one clear zone
        neg.append(negated_zone(_choice(rng, _free_zones(case)), rng))
    return _join(neg + pos if rng.random() < 0.6 else pos + neg)


def _hedges(case: PhantomCase, rng: np.random.Generator) -> str:
    out = []
    for loc in locations(case.target_zones, _choice(rng, ("zone", "lobe", "adjective")), rng):
        f = _choice(rng, _FINDINGS)
        forms = [f"Possible {f} in {loc.post}.", f"Probable {f} in {loc.post}.",
                 f"{_cap(f)} in {loc.post}, likely infection.",
                 f"Findings in {loc.post} are suspicious for pneumonia.",
                 f"{_cap(f)} in {loc.post}, concerning for pneumonia.",
                 f"{_cap(f)} in {loc.post} may represent atelectasis or pneumonia.",
                 f"{_cap(f)} in {loc.post}, consistent with infection.",
                 f"{_cap(f)} in {loc.post}, in keeping with pneumonia."]
        if loc.pre:
            forms += [f"Likely {loc.pre} pneumonia.", f"{_cap(loc.pre)} {f}, possibly infective."]
        out.append(_choice(rng, forms))
    if rng.random() < 0.4:
        out += _general_normals(rng, 1)
    return _join(out)


def _comparisons(case: PhantomCase, rng: np.random.Generator) -> str:
    out = []
    if rng.random() < 0.4:
        out.append(_choice(rng, ("Comparison is made with the prior radiograph.", "Compared with the prior study.",
                                 "Comparison with the radiograph of 2 days ago.")))
    for loc in locations(case.target_zones, _choice(rng, ("zone", "lobe", "adjective")), rng):
        f = _choice(rng, _FINDINGS)
        forms = [f"New {f} in {loc.post}.", f"Persistent {f} in {loc.post}.", f"Increased {f} in {loc.post}.",
                 f"Unchanged {f} in {loc.post}.", f"Stable {f} in {loc.post}.", f"Again seen is {f} in {loc.post}.",
                 f"Improved but persistent {f} in {loc.post}.", f"{_cap(f)} in {loc.post} is again seen."]
        if loc.pre:
            forms += [f"Interval increase in {loc.pre} {f}.", f"New {loc.pre} {f}."]
        out.append(_choice(rng, forms))
    if rng.random() < 0.5:
        loc = _SINGLE["zone"](_choice(rng, _free_zones(case)), rng)
        out.append(_choice(rng, (f"Previously seen opacity in {loc.post} has resolved.",
                                 f"The previously noted consolidation in {loc.post} has cleared.")))
    return _join(out)


def _tubes_lines(case: PhantomCase, rng: np.random.Generator) -> str:
    idx = rng.choice(len(_TUBES), size=int(rng.integers(1, 4)), replace=False)
    tubes = [_TUBES[int(i)] for i in idx]
    pos = _targets(case, _style(rng), rng)
    return _join(tubes + pos if rng.random() < 0.7 else pos + tubes)


def _normal_statements(case: PhantomCase, rng: np.random.Generator) -> str:
    normals = _general_normals(rng, int(rng.integers(1, 4)))
    pos = _targets(case, _style(rng), rng)
    k = int(rng.integers(len(normals) + 1))
    return _join(normals[:k] + pos + normals[k:])


_HISTORIES = ("Fever and productive cough.", "Shortness of breath.", "Cough for two weeks.",
              "Hypoxia, febrile.", "Chest pain.", "Follow-up of known infection.")
_HISTORY_SIDES = ("Right chest pain.", "Left-sided pleuritic pain.", "Reduced breath sounds on the right.",
                  "Crackles at the left base.", "Pain in the right upper chest.")
_COMPARISONS = ("None.", "None available.", "Chest radiograph from 3 months ago.", "Prior study dated 2023-11-02.",
                "Previous radiograph of last week.")


def _sectioned(case: PhantomCase, rng: np.random.Generator) -> str:
    history = [_choice(rng, _HISTORIES), _choice(rng, _HISTORY_SIDES)]
    others = [z for z in ZONES if z not in case.target_zones]
    if rng.random() < 0.5:
        history.append(f"Query {_lobe_single(_choice(rng, others), rng).pre} pneumonia.")
    style = _style(rng)
    findings = _general_normals(rng, int(rng.integers(2, 4)))
    findings[1:1] = _targets(case, style, rng)
    if rng.random() < 0.5:
        findings.append(negated_zone(_choice(rng, _free_zones(case)), rng))
    impression = _targets(case, _choice(rng, ("zone", "lobe")), rng, ("pneumonia", "consolidation", "opacity"))
    exam = _choice(rng, ("Chest radiograph, PA view.", "CHEST PA.", "Chest X-ray, single frontal view."))
    return "\n".join([f"EXAMINATION: {exam}", "", f"CLINICAL HISTORY: {_join(history)}", "",
                      f"COMPARISON: {_choice(rng, _COMPARISONS)}", "", "FINDINGS:", _join(findings), "",
                      "IMPRESSION:", _join(impression)])


def _several_one_negated(case: PhantomCase, rng: np.random.Generator) -> str:
    pos = _targets(case, _choice(rng, ("zone", "lobe")), rng, group=0.3)
    neg = negated_zone(_choice(rng, _free_zones(case)), rng, _choice(rng, ("zone", "lobe")))
    k = int(rng.integers(len(pos) + 1))
    if rng.random() < 0.3 and pos:
        pos[-1] = pos[-1][:-1] + "; " + neg[:1].lower() + neg[1:]
        return _join(pos)
    return _join(pos[:k] + [neg] + pos[k:])


def _history_uncertainty(case: PhantomCase, rng: np.random.Generator) -> str:
    free = _free_zones(case)
    z1, z2 = (free[int(i)] for i in rng.choice(len(free), size=2, replace=False))
    dropped = [
        _choice(rng, (f"History of {_lobe_single(z1, rng).pre} pneumonia.",
                      f"Prior {_lobe_single(z1, rng).pre} consolidation.",
                      f"Previous {_zone_single(z1, rng).pre} infection.")),
        _choice(rng, (f"Early infection in {_zone_single(z2, rng).post} cannot be excluded.",
                      f"Cannot exclude subtle consolidation in {_lobe_single(z2, rng).post}.",
                      f"Clinical question: rule out {_lobe_single(z2, rng).pre} pneumonia.")),
    ]
    pos = _targets(case, _style(rng), rng)
    return _join(dropped + pos if rng.random() < 0.5 else pos + dropped)


_TYPO_WORDS = frozenset({"right", "left", "upper", "middle", "lower", "zone", "zones", "lobe", "lobes", "lung",
                         "region", "opacity", "opacities", "consolidation", "opacification", "infiltrate",
                         "infiltrates", "pneumonia", "infection", "shadowing"})
#: Words a typo must never produce: other real location, finding or negation words.
_PROTECTED = _TYPO_WORDS | frozenset({
    "mid", "apex", "apical", "apices", "base", "bases", "basal", "basilar", "hilar", "perihilar", "lingula",
    "lingular", "retrocardiac", "both", "bilateral", "bibasilar", "bibasal", "lobar", "lungs", "side", "sided",
    "clear", "normal", "not", "no", "new", "prior", "density", "lesion"})


def typo(word: str, rng: np.random.Generator) -> str:
    """``word`` with one edit: two neighbouring letters swapped, one dropped or one doubled.

    The first letter is kept, and so is a length of at least 4. Never returns
    the word itself or another protected (meaningful) word.
    Case is kept letter by letter.
    """
    for _ in range(50):
        op = int(rng.integers(3))
        i = int(rng.integers(1, len(word) - 1)) if len(word) > 3 else 1
        if op == 0:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif op == 1:
            out = word[:i] + word[i + 1:]
        else:
            out = word[:i] + word[i] + word[i:]
        if out.lower() != word.lower() and len(out) >= 4 and out.lower() not in _PROTECTED:
            return out
    raise ValueError(f"no safe typo for {word!r}")


def _typos(case: PhantomCase, rng: np.random.Generator) -> str:
    pos = _targets(case, _choice(rng, ("zone", "zone", "lobe")), rng)
    text = _join(pos)
    spans = [m for m in re.finditer(r"[A-Za-z]+", text) if m.group().lower() in _TYPO_WORDS]
    k = min(len(spans), int(rng.integers(1, 3)))
    chosen = sorted(rng.choice(len(spans), size=k, replace=False).tolist(), reverse=True)
    for j in chosen:
        m = spans[j]
        text = text[:m.start()] + typo(m.group(), rng) + text[m.end():]
    if rng.random() < 0.4:
        text = _join([text] + _general_normals(rng, 1))
    return text


def _upper_case(case: PhantomCase, rng: np.random.Generator) -> str:
    s = _targets(case, _style(rng), rng)
    if rng.random() < 0.6:
        s += _general_normals(rng, int(rng.integers(1, 3)))
    return _join(s).upper()


def _numbered_list(case: PhantomCase, rng: np.random.Generator) -> str:
    items = _targets(case, _choice(rng, ("zone", "lobe", "abbr")), rng, group=0.4)
    items += _general_normals(rng, int(rng.integers(0, 3)))
    if rng.random() < 0.4:
        items.append(negated_zone(_choice(rng, _free_zones(case)), rng))
    paren = rng.random() < 0.3
    lines = [f"{k}{')' if paren else '.'} {s}" for k, s in enumerate(items, 1)]
    if rng.random() < 0.5:
        return "IMPRESSION:\n" + "\n".join(lines)
    if rng.random() < 0.5:
        return _join(lines)
    return "FINDINGS: See below.\nIMPRESSION:\n" + "\n".join(lines)


def _negative(case: PhantomCase, rng: np.random.Generator) -> str:
    free = _free_zones(case)
    pool = [
        "No acute cardiopulmonary process.", "The lungs are clear.", "Lungs are clear bilaterally.",
        "No focal consolidation.", "No acute cardiopulmonary abnormality.", "Clear lungs.",
        "The costophrenic angles are sharp.",
        negated_zone(_choice(rng, free), rng, _choice(rng, ("zone", "lobe"))),
        f"Cannot exclude early {_lobe_single(_choice(rng, free), rng).pre} pneumonia.",
        f"History of {_lobe_single(_choice(rng, free), rng).pre} pneumonia.",
    ] + list(_TUBES[:3])
    idx = rng.choice(len(pool), size=int(rng.integers(1, 3)), replace=False)
    s = [pool[int(i)] for i in idx] + _general_normals(rng, int(rng.integers(1, 3)))
    order = rng.permutation(len(s))
    return _join([s[int(i)] for i in order])


_CR_WRITERS: dict[str, Callable[[PhantomCase, np.random.Generator], str]] = {
    "template": _template, "lobes": _lobes, "abbreviations": _abbreviations, "zone_adjectives": _zone_adjectives,
    "synonyms": _synonyms, "negated_other_side": _negated_other_side, "hedges": _hedges,
    "comparisons": _comparisons, "tubes_lines": _tubes_lines, "normal_statements": _normal_statements,
    "sectioned": _sectioned, "several_one_negated": _several_one_negated,
    "history_uncertainty": _history_uncertainty, "typos": _typos, "upper_case": _upper_case,
    "numbered_list": _numbered_list, "negative": _negative,
}


# ----------------------------------------------------------------------------- CT families

_CT_NORMALS = ("No pleural or pericardial effusion.", "No mediastinal lymphadenopathy.",
               "The central airways are patent.", "Heart size is normal.", "No pleural effusion.")


def _ct_realistic(series: PhantomSeries, rng: np.random.Generator) -> tuple[str, str | None]:
    cat, phrase = ct_category(series.involvement)
    with_cat = rng.random() < 0.5
    sev = _choice(rng, (f", {cat}", f", {cat} ({phrase})", f". Severity {cat}")) if with_cat else ""
    if series.side == "both":
        main = _choice(rng, (
            f"Bilateral peripheral ground-glass opacities, more extensive on the right{sev}.",
            f"Multifocal ground-glass opacities in both lungs, predominantly peripheral and subpleural{sev}.",
            f"Patchy ground-glass opacities (GGO) in both lungs{sev}.",
            f"Bilateral ground-glass opacification with a peripheral distribution{sev}.",
            f"Ground-glass opacities are seen in both lungs{sev}."))
    else:
        sd = series.side
        main = _choice(rng, (
            f"Patchy ground-glass opacities (GGO) in the {sd} lung{sev}.",
            f"Peripheral ground-glass opacity in the {sd} lung{sev}.",
            f"{_cap(sd)}-sided ground-glass opacities, peripheral and subpleural{sev}.",
            f"Ground-glass opacification of the {sd} lung{sev}.",
            f"Multifocal ground-glass opacities are seen in the {sd} lung{sev}."))
    pre = [_choice(rng, ("Viral pneumonia pattern.", "Findings:", "CT chest without contrast."))] \
        if rng.random() < 0.3 else []
    normals = [_CT_NORMALS[int(i)] for i in rng.choice(len(_CT_NORMALS), size=int(rng.integers(0, 3)), replace=False)]
    return _join(pre + [main] + normals), (cat if with_cat else None)


def realistic_ct_report(family: str, series: PhantomSeries, rng: np.random.Generator) -> tuple[str, str]:
    """``(report, expected guide)`` for a CT series (``ct_template`` or ``ct_realistic``).

    The CT phantoms carry GGOs in both lungs (only the named side is the
    target), so no CT report negates a lung.
    """
    if family == "ct_template":
        return series.report, ct_guide_text(series.side, ct_category(series.involvement)[0])
    if family == "ct_realistic":
        text, cat = _ct_realistic(series, rng)
        return text, ct_guide_text(series.side, cat)
    raise ValueError(f"unknown CT family {family!r}; want one of ct_template, ct_realistic")


# ----------------------------------------------------------------------------- entry points


def realistic_report(family: str, case: PhantomCase | PhantomSeries, rng: np.random.Generator) -> tuple[str, str]:
    """``(report text, expected guide text)`` of ``family`` for a phantom.

    CR families take a ``PhantomCase`` (its ``target_zones`` are what the
    guide encodes; ``zones`` say which zones are safe to call clear); CT
    families take a ``PhantomSeries``. The guide of ``negative`` is ``""``.
    """
    fam = FAMILY_BY_NAME.get(family)
    if fam is None:
        raise ValueError(f"unknown family {family!r}; want one of {', '.join(FAMILY_BY_NAME)}")
    if fam.modality == "CT":
        if not isinstance(case, PhantomSeries):
            raise TypeError(f"family {family} needs a PhantomSeries, got {type(case).__name__}")
        return realistic_ct_report(family, case, rng)
    if not isinstance(case, PhantomCase):
        raise TypeError(f"family {family} needs a PhantomCase, got {type(case).__name__}")
    text = _CR_WRITERS[family](case, rng)
    return text, "" if family == "negative" else guide_text(case.target_zones)


def expected_zones(family: str, case: PhantomCase) -> list[Zone]:
    """The zones the expected guide of a CR family (or swapped control) encodes, in ``ZONES`` order."""
    if family == "negative":
        return []
    zs = swap_zones(case.target_zones) if family in dict(SWAPPED_CONTROLS) else case.target_zones
    return sorted(set(zs), key=ZONES.index)


_SWAP_WORDS = {"right": "left", "left": "right", "rul": "lul", "lul": "rul", "rll": "lll", "lll": "rll"}
_SWAP_RE = re.compile(r"\b(right|left|RUL|LUL|RLL|LLL|RML|lingular|lingula|retrocardiac)\b", re.IGNORECASE)


def _match_case(src: str, out: str) -> str:
    if src.isupper():
        return out.upper()
    if src[:1].isupper():
        return out[:1].upper() + out[1:]
    return out


def swap_sides(text: str) -> str:
    """The report with the patient's right and left swapped.

    right <-> left, RUL <-> LUL, RLL <-> LLL, RML -> lingula, lingula ->
    right middle lobe, lingular -> right middle lobe, retrocardiac -> right
    basal; the case of each word is kept.
    """
    def sub(m: re.Match) -> str:
        w = m.group()
        low = w.lower()
        if low in _SWAP_WORDS:
            return _match_case(w, _SWAP_WORDS[low])
        if low == "rml":
            return "lingula"
        if low in ("lingula", "lingular"):
            return _match_case(w, "right middle lobe")
        return _match_case(w, "right basal")

    return _SWAP_RE.sub(sub, text)


def swapped_report(control: str, case: PhantomCase, rng: np.random.Generator) -> tuple[str, str]:
    """``(swapped report, expected guide)`` of a left/right-swapped control (``SWAPPED_CONTROLS``)."""
    base = dict(SWAPPED_CONTROLS).get(control)
    if base is None:
        raise ValueError(f"unknown control {control!r}; want one of {', '.join(dict(SWAPPED_CONTROLS))}")
    text, _ = realistic_report(base, case, rng)
    return swap_sides(text), guide_text(swap_zones(case.target_zones))
