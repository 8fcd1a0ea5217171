"""Which report strings each split of the phantom benchmark may use.

The space of report strings is cut in two by a stable hash of the rendered text, so no
string of the training split ever occurs in the held-out splits (val, test, e2e and any
other seed), while every zone set (CXR) and every side and category (CT) occurs in both:

* ``text_bucket(text)`` = SHA-1 of the UTF-8 text, read as an integer, modulo
  ``BUCKETS`` (4);
* the **train side** holds the strings of buckets 1..3 and, whatever their bucket, every
  canonical guide text (``report_text.guide_text`` of 1..3 zones,
  ``report_text.ct_guide_text`` of each side, with and without a category): the training
  split is where the model learns exactly what tmcad feeds it;
* the **held-out side** holds the other strings of bucket 0. A held-out report is therefore
  never a canonical guide text: the test split's report Dice measures wordings the model
  has not seen, and ``tmca.eval --text canonical`` measures the canonical text of the same
  cases (the in-distribution number for tmcad).

Each side of every CXR zone set and every CT side/category holds at least one of the
generator's wordings (checked in tests), so both splits stay answerable.

A case's wording is drawn from its own generator, ``phrasing_rng``, separate from the one
that builds its image, and redrawn from it until it lands on its split's side: the images
are those of the benchmark without the partition.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
from typing import Callable

import numpy as np

from . import report_text as rt
from .text_augment import train_ct_text, train_cxr_text

BUCKETS = 4
#: Appended to a case's seed for the generator of its wording.
PHRASING_STREAM = 1
MAX_DRAWS = 100_000


def text_bucket(text: str) -> int:
    """SHA-1 of the UTF-8 text as an integer, modulo ``BUCKETS``."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % BUCKETS


@functools.lru_cache(maxsize=1)
def canonical_texts() -> frozenset[str]:
    """Every canonical guide text: CXR zone sets of 1..3 zones, CT sides with and without category."""
    out = {rt.guide_text(list(zs)) for n in range(1, rt.MAX_GUIDE_ZONES + 1)
           for zs in itertools.combinations(rt.ZONES, n)}
    for side in ("right", "left", "both"):
        out.add(rt.ct_guide_text(side))
        out |= {rt.ct_guide_text(side, cat) for cat, _, _ in rt.CT_CATEGORIES}
    return frozenset(out)


def in_train_side(text: str) -> bool:
    """Whether the training split may use ``text``."""
    return text in canonical_texts() or text_bucket(text) != 0


def in_held_out_side(text: str) -> bool:
    """Whether the held-out splits may use ``text``."""
    return not in_train_side(text)


def phrasing_rng(split_seed: int, family_code: int, index: int) -> np.random.Generator:
    """The generator of case ``index``'s wording (its image uses the same seed without the stream)."""
    return np.random.default_rng([int(split_seed), int(family_code), int(index), PHRASING_STREAM])


def draw_until(draw: Callable[[], str], accept: Callable[[str], bool]) -> str:
    """Call ``draw`` until ``accept`` takes its text."""
    for _ in range(MAX_DRAWS):
        text = draw()
        if accept(text):
            return text
    raise RuntimeError(f"no accepted text in {MAX_DRAWS} draws (last: {text!r})")


def cxr_split_report(zones: list[tuple[str, str]], rng: np.random.Generator, train: bool) -> str:
    """The report of a CXR case: augmented training text, or a held-out generator sentence."""
    if train:
        return draw_until(lambda: train_cxr_text(zones, rng), in_train_side)
    return draw_until(lambda: rt.cxr_report(zones, rng), in_held_out_side)


def ct_split_report(side: str, involvement: float, rng: np.random.Generator, train: bool) -> str:
    """The report of a CT series: augmented training text, or a held-out generator sentence."""
    if train:
        category = rt.ct_category(involvement)[0]
        return draw_until(lambda: train_ct_text(side, category, rng), in_train_side)
    return draw_until(lambda: rt.ct_report(side, involvement, rng), in_held_out_side)
