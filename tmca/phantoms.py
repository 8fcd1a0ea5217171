"""Language-dependent phantom benchmark: CXR-like radiographs and CT-like series.

The image alone is ambiguous by construction: every CXR holds 2-4 opacities of
the *same* appearance in distinct lung zones, and the report describes only
1..k-1 of them; the ground-truth mask holds only the described ones. CT series
carry ground-glass opacities (GGO) in both lungs, and the series report names
the lung(s) whose GGOs are the target. A model must read the text to win.

Conventions
-----------
* Orientation: PA radiograph / axial slice viewed from the feet, so the
  patient's RIGHT lung is on the image LEFT (columns ``< cols/2``); rows go
  head → feet (CXR) or anterior → posterior (CT).
* Zones (CXR): each lung's vertical extent is cut into thirds, upper / middle /
  lower; ``report_text.ZONES`` lists the six ``(level, side)`` pairs.
* Stored values: CXR are 12-bit ``uint16`` (0..4095), slope 1, intercept 0,
  ``MONOCHROME2`` (high = bright = dense) or ``MONOCHROME1`` (inverted stored
  values), chosen at random per case and recorded. CT slices are ``int16`` with
  slope 1, intercept -1024 (stored = HU + 1024): air -1000, lung about -850,
  fat -100, soft tissue 40, bone 300-900, GGO about -500 HU.
* Determinism: case ``i`` of a split uses ``numpy.random.default_rng([split_seed,
  family_code, i])`` for its image and truth; same arguments → identical arrays, on any machine.
* Reports: drawn from the case's own phrasing generator (``report_split.phrasing_rng``), on the
  split's side of the report-string partition (``report_split``): the train split's strings never
  occur in the other splits. The train split's reports are varied for training
  (``text_augment``); the others are the generator's sentences. ``split_texts`` gives a split's
  reports, or the canonical guide texts of its truth, without rendering pixels.

Model-side entry point::

    from tmca.phantoms import prepared_split
    images, masks, reports = prepared_split("train", 2000, family="cxr")
    # images float32 [N,1,H,W] (preprocess.prepare_frame, manifest's H×W),
    # masks float32 [N,1,H,W] in {0,1} (bilinear resize then >= 0.5),
    # reports list[str]; tokenize with tokenizer.WordPieceTokenizer.encode_batch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import preprocess
from .report_split import ct_split_report, cxr_split_report, phrasing_rng
from .report_text import SIDES, ZONES, ct_category, ct_guide_text, guide_text

SPLIT_SEEDS: dict[str, int] = {"train": 1000, "val": 2000, "test": 3000, "e2e": 4000}
FAMILY_CODES: dict[str, int] = {"cxr": 1, "ct": 2}
CT_INTERCEPT = -1024.0


@dataclass
class PhantomCase:
    """One frame: stored values, how to read them, the target mask and the report."""

    raw: np.ndarray  # rows × cols, uint16 (CR) or int16 (CT) stored values
    slope: float
    intercept: float
    modality: str  # "CR" or "CT"
    photometric: str  # "MONOCHROME1" or "MONOCHROME2"
    mask: np.ndarray  # rows × cols uint8 {0,1}: the described (target) lesions only
    report: str
    pixel_spacing: tuple[float, float]  # mm, (row spacing, column spacing)
    lesion_mask: np.ndarray  # rows × cols uint8 {0,1}: every lesion, described or not
    zones: list[tuple[str, str]] = field(default_factory=list)  # CXR: zone of each opacity
    target_zones: list[tuple[str, str]] = field(default_factory=list)  # CXR: the described ones


@dataclass
class PhantomSeries:
    """A CT-like axial series: slices ordered feet→head is NOT used; index 0 = most cranial."""

    slices: list[PhantomCase]
    report: str
    side: str  # described side: "right", "left" or "both"
    slice_spacing: float  # mm between slice centres (= SliceThickness)
    involvement: float  # target GGO volume / volume of the described lung(s)


def case_rng(split_seed: int, family: str, index: int) -> np.random.Generator:
    """The per-case generator: seeded by ``(split_seed, family code, index)``."""
    return np.random.default_rng([int(split_seed), FAMILY_CODES[family], int(index)])


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates ``u`` (columns) and ``v`` (rows) in (0, 1)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, :], c[:, None]


def _ell_dist(u: np.ndarray, v: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Normalised elliptical distance (1 on the ellipse)."""
    return np.sqrt(((u - cx) / ax) ** 2 + ((v - cy) / ay) ** 2)


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """Soft inside-indicator of ``d <= 1`` with a sigmoid edge of width ``edge``."""
    return 1.0 / (1.0 + np.exp(np.clip((d - 1.0) / edge, -30, 30)))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a ``cells``² uniform grid, bilinearly upsampled."""
    coarse = torch.from_numpy(rng.random((1, 1, cells, cells), dtype=np.float32))
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


# ----------------------------------------------------------------------------- CXR


def _cxr_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    """Random (jittered) anatomy in normalised coordinates."""
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731
    lung_cy = 0.47 + j(0.02)
    return {
        "body": (0.5 + j(0.01), 0.56, 0.44 + j(0.03), 0.55),
        "neck": (0.5, 0.0, 0.11 + j(0.02), 0.16),
        "lungs": {  # patient's right lung = image left
            "right": (0.315 + j(0.015), lung_cy + j(0.01), 0.125 + j(0.01), 0.28 + j(0.015)),
            "left": (0.685 + j(0.015), lung_cy + j(0.01), 0.12 + j(0.01), 0.27 + j(0.015)),
        },
        "heart": (0.56 + j(0.02), 0.68 + j(0.02), 0.13 + j(0.015), 0.105 + j(0.01)),
        "rib_period": 0.072 + j(0.006),
        "rib_phase": float(rng.uniform(0, 2 * np.pi)),
    }


def _sample_opacity_centre(
    rng: np.random.Generator, anat: dict[str, Any], level: str, side: str, ry: float
) -> tuple[float, float]:
    """A centre inside the zone band (with margin ``ry``), deep in the lung, off the heart."""
    cx, cy, ax, ay = anat["lungs"][side]
    li = ("upper", "middle", "lower").index(level)
    v0 = cy - ay + li * (2 * ay / 3)
    v1 = v0 + 2 * ay / 3
    lo, hi = v0 + ry + 0.006, v1 - ry - 0.006
    if hi <= lo:
        lo = hi = 0.5 * (v0 + v1)
    hx, hy, hax, hay = anat["heart"]
    us = rng.uniform(cx - ax, cx + ax, 64)
    vs = rng.uniform(lo, hi, 64)
    ok = (_ell_dist(us, vs, cx, cy, ax, ay) < 0.72) & (_ell_dist(us, vs, hx, hy, hax, hay) > 1.05)
    if ok.any():
        k = int(np.argmax(ok))
        return float(us[k]), float(vs[k])
    return float(cx), float(0.5 * (lo + hi))


def _cxr_layout(rng: np.random.Generator) -> tuple[dict[str, Any], list[int], int]:
    """Anatomy, the zones of the k opacities (2..4, distinct) and how many of them are targets."""
    anat = _cxr_anatomy(rng)
    k = int(rng.integers(2, 5))
    zone_ids = [int(z) for z in rng.choice(len(ZONES), size=k, replace=False)]
    n_target = int(rng.integers(1, k))
    return anat, zone_ids, n_target


def cxr_target_zones(split_seed: int, index: int) -> list[tuple[str, str]]:
    """The described zones of ``cxr_case(split_seed, index)``, without rendering it."""
    _, zone_ids, n_target = _cxr_layout(case_rng(split_seed, "cxr", index))
    return [ZONES[z] for z in zone_ids[:n_target]]


def is_train_seed(split_seed: int) -> bool:
    """Whether ``split_seed`` is the training split's (its reports are on the train side)."""
    return int(split_seed) == SPLIT_SEEDS["train"]


def cxr_report_of(split_seed: int, index: int, targets: list[tuple[str, str]]) -> str:
    """The report of CXR case ``index`` of a split (``report_split``: the split's side of the wordings)."""
    rng = phrasing_rng(split_seed, FAMILY_CODES["cxr"], index)
    return cxr_split_report(targets, rng, train=is_train_seed(split_seed))


def cxr_case(split_seed: int, index: int, size: int = 256) -> PhantomCase:
    """One CXR-like phantom (``size × size``) with its QaTa-COV19-style report."""
    rng = case_rng(split_seed, "cxr", index)
    u, v = _grid(size)
    anat, zone_ids, n_target = _cxr_layout(rng)

    body = _soft(_ell_dist(u, v, *anat["body"]), 0.01)
    body = np.maximum(body, _soft(_ell_dist(u, v, *anat["neck"]), 0.02))
    a = 0.55 * body
    lung_d = {sd: _ell_dist(u, v, *anat["lungs"][sd]) for sd in SIDES}
    lung_soft = np.maximum(_soft(lung_d["right"], 0.04), _soft(lung_d["left"], 0.04))
    a -= 0.36 * lung_soft
    a += 0.22 * _soft(_ell_dist(u, v, *anat["heart"]), 0.05)
    a += 0.12 * body * np.exp(-(((u - 0.5) / 0.035) ** 2))  # spine / mediastinum
    rib_v = v + 0.9 * (u - 0.5) ** 2
    ribs = (0.5 + 0.5 * np.sin(2 * np.pi * rib_v / anat["rib_period"] + anat["rib_phase"])) ** 6
    a += 0.07 * ribs * body

    # Opacities: k of them, same size/shape/density, distinct zones (drawn in _cxr_layout).
    r = float(rng.uniform(0.04, 0.065))
    aspect = float(rng.uniform(0.8, 1.25))
    rx, ry = r * np.sqrt(aspect), r / np.sqrt(aspect)
    amp = float(rng.uniform(0.14, 0.26))
    texture = 0.65 + 0.35 * _smooth_noise(rng, size, 14)
    lesion = np.zeros((size, size), np.uint8)
    target = np.zeros((size, size), np.uint8)
    lesion_density = np.zeros((size, size), np.float32)
    in_lung = (lung_d["right"] <= 1.0) | (lung_d["left"] <= 1.0)
    for n, zi in enumerate(zone_ids):
        level, side = ZONES[zi]
        ox, oy = _sample_opacity_centre(rng, anat, level, side, ry)
        d = _ell_dist(u, v, ox, oy, rx, ry)
        lesion_density = np.maximum(lesion_density, _soft(d, 0.08))
        m = ((d <= 1.0) & in_lung).astype(np.uint8)
        lesion |= m
        if n < n_target:
            target |= m
    a += amp * lesion_density * texture

    # Exposure → 12-bit stored values.
    gamma = float(rng.uniform(0.8, 1.25))
    gain = float(rng.uniform(2500, 3600))
    offset = float(rng.uniform(60, 300))
    noise = rng.normal(0.0, float(rng.uniform(12, 35)), (size, size))
    stored = offset + gain * np.clip(a, 0, None) ** gamma + noise
    stored = np.clip(np.rint(stored), 0, 4095).astype(np.uint16)
    photometric = "MONOCHROME1" if rng.random() < 0.5 else "MONOCHROME2"
    if photometric == "MONOCHROME1":
        stored = (4095 - stored).astype(np.uint16)

    zones = [ZONES[z] for z in zone_ids]
    targets = zones[:n_target]
    spacing = round(400.0 / size, 6)
    return PhantomCase(
        raw=stored, slope=1.0, intercept=0.0, modality="CR", photometric=photometric,
        mask=target, report=cxr_report_of(split_seed, index, targets), pixel_spacing=(spacing, spacing),
        lesion_mask=lesion, zones=zones, target_zones=targets,
    )


# ----------------------------------------------------------------------------- CT


class _CTGeometry(NamedTuple):
    """What fixes a CT series' lungs and GGOs (and so its masks and involvement)."""

    body: tuple[float, float, float, float]
    lungs: dict[str, tuple[float, float, float, float]]
    spine: tuple[float, float, float, float]
    side: str  # described side: "right", "left" or "both"
    ggos: list[tuple[str, float, float, float, float, float]]  # (side, du, dv, r_inplane, tc, rz)


def _ct_geometry(rng: np.random.Generator) -> _CTGeometry:
    """The first draws of a CT series: body, lungs, spine, the described side and the GGOs."""
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731
    body = (0.5 + j(0.01), 0.52 + j(0.01), 0.44 + j(0.02), 0.33 + j(0.02))
    lungs = {
        "right": (0.315 + j(0.01), 0.47 + j(0.01), 0.145 + j(0.01), 0.22 + j(0.01)),
        "left": (0.685 + j(0.01), 0.47 + j(0.01), 0.135 + j(0.01), 0.21 + j(0.01)),
    }
    spine = (0.5, 0.77 + j(0.01), 0.055, 0.05)
    side = str(rng.choice(["right", "left", "both"], p=[0.4, 0.4, 0.2]))
    ggos = []
    for sd in SIDES:
        for _ in range(int(rng.integers(1, 4))):
            ang, rad = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1)) * 0.55
            ggos.append((sd, rad * np.cos(ang), rad * np.sin(ang), float(rng.uniform(0.03, 0.07)),
                         float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.12, 0.3))))
    return _CTGeometry(body, lungs, spine, side, ggos)


def _ct_target_sides(side: str) -> set[str]:
    """The lungs a CT report's side names."""
    return set(SIDES) if side == "both" else {side}


def _ct_slice_masks(geo: _CTGeometry, t: float, u: np.ndarray, v: np.ndarray
                    ) -> tuple[float, dict[str, np.ndarray], list[tuple[str, np.ndarray, np.ndarray]]]:
    """At slice position ``t`` in (0, 1): the lungs' scale, each lung's mask, and each GGO the
    slice cuts as ``(side, elliptical distance, inside-the-lung mask)``."""
    scale = float(np.sin(np.pi * (0.08 + 0.84 * t)) ** 0.6)
    lung_m = {}
    for sd in SIDES:
        cx, cy, ax, ay = geo.lungs[sd]
        lung_m[sd] = _ell_dist(u, v, cx, cy, ax * scale, ay * scale) <= 1.0
    hits = []
    for sd, du, dv, r, tc, rz in geo.ggos:
        if abs(t - tc) >= rz:
            continue
        cx, cy, ax, ay = geo.lungs[sd]
        rr = r * np.sqrt(1 - ((t - tc) / rz) ** 2)
        if rr < 0.006:
            continue
        d = _ell_dist(u, v, cx + du * ax * scale, cy + dv * ay * scale, rr, rr)
        hits.append((sd, d, (d <= 1.0) & lung_m[sd]))
    return scale, lung_m, hits


def _ct_slice_truth(hits: list[tuple[str, np.ndarray, np.ndarray]], targets: set[str], size: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A slice's lesion mask (every GGO) and target mask (the GGOs of the described lungs), uint8."""
    lesion = np.zeros((size, size), np.uint8)
    target = np.zeros((size, size), np.uint8)
    for sd, _, inside in hits:
        lesion |= inside.astype(np.uint8)
        if sd in targets:
            target |= inside.astype(np.uint8)
    return lesion, target


def ct_side_and_involvement(split_seed: int, index: int, slices: int = 20, size: int = 128) -> tuple[str, float]:
    """The described side and involvement of ``ct_series(split_seed, index, slices, size)``,
    from its masks alone (no pixel values rendered)."""
    geo = _ct_geometry(case_rng(split_seed, "ct", index))
    u, v = _grid(size)
    targets = _ct_target_sides(geo.side)
    target_vox, lung_vox = 0, 0
    for s in range(slices):
        _, lung_m, hits = _ct_slice_masks(geo, (s + 0.5) / slices, u, v)
        _, target = _ct_slice_truth(hits, targets, size)
        target_vox += int(target.sum())
        lung_vox += int(sum(lung_m[sd].sum() for sd in targets))
    return geo.side, target_vox / max(lung_vox, 1)


def ct_report_of(split_seed: int, index: int, side: str, involvement: float) -> str:
    """The report of CT series ``index`` of a split (``report_split``: the split's side of the wordings)."""
    rng = phrasing_rng(split_seed, FAMILY_CODES["ct"], index)
    return ct_split_report(side, involvement, rng, train=is_train_seed(split_seed))


def ct_series(split_seed: int, index: int, slices: int = 20, size: int = 128) -> PhantomSeries:
    """One CT-like axial series (``slices`` × ``size`` × ``size``) with a MosMedData+-style report.

    Slice 0 is the most cranial (apex); anatomy and GGO ellipsoids vary smoothly
    along z. Both lungs carry 1-3 GGOs; the report names the target side(s).
    """
    rng = case_rng(split_seed, "ct", index)
    u, v = _grid(size)
    geo = _ct_geometry(rng)
    body, lungs, spine, side = geo.body, geo.lungs, geo.spine, geo.side
    targets = _ct_target_sides(side)
    vessels = [(sd, *rng.uniform(-0.7, 0.7, 2), float(rng.uniform(-1, 1))) for sd in SIDES for _ in range(8)]
    rib_angles = rng.uniform(0, 2 * np.pi, 10)
    texture = 0.6 + 0.4 * _smooth_noise(rng, size, 12)
    noise_sd = float(rng.uniform(10, 25))

    frames, target_vox, lung_vox = [], 0, 0
    for s in range(slices):
        t = (s + 0.5) / slices
        scale, lung_m, hits = _ct_slice_masks(geo, t, u, v)
        hu = np.full((size, size), -1000.0, np.float32)
        db = _ell_dist(u, v, *body)
        hu[db <= 1.0] = -100.0  # subcutaneous fat
        hu[db <= 0.92] = 40.0  # soft tissue / mediastinum
        for ang in rib_angles:
            bx = body[0] + 0.9 * body[2] * np.cos(ang)
            by = body[1] + 0.9 * body[3] * np.sin(ang)
            hu[_ell_dist(u, v, bx, by, 0.018, 0.018) <= 1.0] = 500.0
        dsp = _ell_dist(u, v, *spine)
        hu[dsp <= 1.0] = 300.0
        hu[(dsp <= 1.0) & (dsp > 0.8)] = 900.0
        for sd in SIDES:
            cx, cy, ax, ay = lungs[sd]
            hu[lung_m[sd]] = -850.0
            for vs, vx, vy, phase in vessels:
                if vs != sd:
                    continue
                px = cx + vx * ax * scale + 0.02 * np.sin(6 * t + phase)
                py = cy + vy * ay * scale
                hu += (np.float32(700.0) * np.exp(-(((u - px) ** 2 + (v - py) ** 2) / (0.008**2)))
                       * lung_m[sd]).astype(np.float32)
        for sd, d, _ in hits:
            hu += (350.0 * _soft(d, 0.1) * texture * lung_m[sd]).astype(np.float32)
        lesion, target = _ct_slice_truth(hits, targets, size)
        target_vox += int(target.sum())
        lung_vox += int(sum(lung_m[sd].sum() for sd in targets))
        hu += rng.normal(0.0, noise_sd, (size, size)).astype(np.float32)
        stored = np.clip(np.rint(hu - CT_INTERCEPT), -32768, 32767).astype(np.int16)
        frames.append((stored, target, lesion))

    involvement = target_vox / max(lung_vox, 1)
    report = ct_report_of(split_seed, index, side, involvement)
    spacing = round(350.0 / size, 6)
    cases = [
        PhantomCase(raw=st, slope=1.0, intercept=CT_INTERCEPT, modality="CT", photometric="MONOCHROME2",
                    mask=tg, report=report, pixel_spacing=(spacing, spacing), lesion_mask=ls)
        for st, tg, ls in frames
    ]
    return PhantomSeries(slices=cases, report=report, side=side,
                         slice_spacing=round(240.0 / slices, 3), involvement=involvement)



# ----------------------------------------------------------------------------- splits


class PreparedSplit(NamedTuple):
    """Model-ready arrays; unpacks as ``images, masks, reports``."""

    images: np.ndarray  # float32 [N, 1, H, W], preprocess.prepare_frame output
    masks: np.ndarray  # float32 [N, 1, H, W] in {0, 1}
    reports: list[str]


_CACHE: dict[tuple, PreparedSplit] = {}


def prepared_split(
    split: str,
    n: int,
    family: str = "cxr",
    manifest_like: Mapping[str, Any] = preprocess.DEFAULT_MANIFEST,
    size: int | None = None,
    ct_slices: int = 20,
) -> PreparedSplit:
    """The first ``n`` frames of a split, pre-processed exactly as tmcad will at inference.

    * ``split``: a key of ``SPLIT_SEEDS`` (train/val/test/e2e) — disjoint seeds.
    * ``family``: ``"cxr"`` (case i = ``cxr_case(seed, i, size)``, native 256) or
      ``"ct"`` (frames of ``ct_series(seed, 0..), slices=ct_slices``, native 128).
    * images: ``preprocess.prepare_frame`` with the case's modality/photometric and
      ``manifest_like`` (its windows, image H×W, normalize).
    * masks: the native target mask resized with the post-processing rule
      (bilinear, ``align_corners=False``, then ``>= 0.5``), float32 {0,1}.

    Results are cached in memory per argument set (don't mutate them).
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; want one of {sorted(SPLIT_SEEDS)}")
    if family not in FAMILY_CODES:
        raise ValueError(f"unknown family {family!r}; want 'cxr' or 'ct'")
    size = size or (256 if family == "cxr" else 128)
    key = (split, n, family, json.dumps(manifest_like, sort_keys=True), size, ct_slices)
    if key in _CACHE:
        return _CACHE[key]
    seed = SPLIT_SEEDS[split]
    cases: list[PhantomCase] = []
    if family == "cxr":
        cases = [cxr_case(seed, i, size) for i in range(n)]
    else:
        i = 0
        while len(cases) < n:
            cases.extend(ct_series(seed, i, slices=ct_slices, size=size).slices)
            i += 1
        cases = cases[:n]
    h, w = int(manifest_like["image"]["height"]), int(manifest_like["image"]["width"])
    images = np.empty((n, 1, h, w), np.float32)
    masks = np.empty((n, 1, h, w), np.float32)
    for k, c in enumerate(cases):
        images[k, 0] = preprocess.prepare_frame(c.raw, c.slope, c.intercept, c.modality, c.photometric, manifest_like)
        masks[k, 0] = preprocess.resize_mask(c.mask, h, w)
    out = PreparedSplit(images, masks, [c.report for c in cases])
    _CACHE[key] = out
    return out


def split_texts(split: str, n: int, family: str = "cxr", text: str = "report",
                size: int | None = None, ct_slices: int = 20) -> list[str]:
    """The texts of the first ``n`` frames of a split, in ``prepared_split``'s order, without pixels.

    * ``text="report"``: each frame's report (``prepared_split(...).reports``);
    * ``text="canonical"``: the canonical guide text of each frame's truth, what tmcad's report
      normaliser renders: ``guide_text(target zones)`` (CXR), ``ct_guide_text(side, category)`` (CT,
      the category of the series' involvement, as its reports name it).

    ``size`` matters for CT only (the involvement, hence the category, is counted in pixels).
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; want one of {sorted(SPLIT_SEEDS)}")
    if text not in ("report", "canonical"):
        raise ValueError(f"text must be 'report' or 'canonical', got {text!r}")
    seed = SPLIT_SEEDS[split]
    if family == "cxr":
        out = []
        for i in range(n):
            targets = cxr_target_zones(seed, i)
            out.append(cxr_report_of(seed, i, targets) if text == "report" else guide_text(targets))
        return out
    if family != "ct":
        raise ValueError(f"unknown family {family!r}; want 'cxr' or 'ct'")
    out, i = [], 0
    while len(out) < n:
        side, inv = ct_side_and_involvement(seed, i, ct_slices, size or 128)
        t = ct_report_of(seed, i, side, inv) if text == "report" else ct_guide_text(side, ct_category(inv)[0])
        out.extend([t] * ct_slices)
        i += 1
    return out[:n]
