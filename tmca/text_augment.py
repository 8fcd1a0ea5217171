"""Training-only variation of the phantom reports.

tmcad does not feed the model the report as written: its report normaliser renders the
canonical guide text of the findings (``report_text.guide_text`` for CR/DX,
``report_text.ct_guide_text`` for CT). The training split therefore mixes

* the canonical guide text itself, in ``CANONICAL_SHARE`` of the cases, so the model is at
  its best on exactly what tmcad feeds it (CT: with and without the category part);
* the generator's other wordings with a random zone order, heads, count nouns and zone
  variants (CXR; a zone variant per zone, where the generator keeps one per sentence), and
  the CT bodies and severity forms, or no severity at all;
* character-level typos in the non-canonical texts: an edit-distance-1 change (substitute,
  delete or insert one letter) in about ``TYPO_RATE`` of the words of at least
  ``MIN_TYPO_LENGTH`` letters. A typo never yields a word the generator uses, so it can not
  turn "left" into "lest" and then into another side or level word by accident.

Every text fits the model's 24 tokens with the shipped vocab (``MAX_TOKENS`` word pieces
plus ``[CLS]``/``[SEP]``, no ``[UNK]``); a typo that breaks this is dropped. Everything is
drawn from the generator passed in, so a case's text is fixed by its seed.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from . import report_text as rt

CANONICAL_SHARE = 0.4
TYPO_RATE = 0.1
MIN_TYPO_LENGTH = 4
MAX_TOKENS = 22
#: Share of non-canonical CXR texts whose zones each pick their own phrase variant.
MIXED_VARIANT_SHARE = 0.15
#: Share of non-canonical CT texts without a severity part.
CT_NO_SEVERITY_SHARE = 0.25

VOCAB_PATH = Path(__file__).resolve().parent.parent / "models" / "tmca-cxr-compact" / "vocab.txt"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORD_RE = re.compile(r"[A-Za-z]+")


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """The shipped WordPiece tokenizer (loaded once)."""
    from .tokenizer import WordPieceTokenizer
    return WordPieceTokenizer.from_vocab(VOCAB_PATH)


@functools.lru_cache(maxsize=1)
def protected_words() -> frozenset[str]:
    """Words a typo must never produce: every word the report generators use."""
    return frozenset(w.lower() for w in rt.all_report_words()) | frozenset(rt.NUMBER_WORDS)


def fits(text: str) -> bool:
    """Whether ``text`` tokenizes to at most ``MAX_TOKENS`` pieces, none of them ``[UNK]``."""
    toks = _tokenizer().tokenize(text)
    return len(toks) <= MAX_TOKENS and "[UNK]" not in toks


def typo(word: str, rng: np.random.Generator, attempts: int = 20) -> str:
    """One edit-distance-1 change of ``word`` that is not a generator word (else ``word``)."""
    low = word.lower()
    for _ in range(attempts):
        op = int(rng.integers(3))
        if op == 0:  # substitute
            i = int(rng.integers(len(low)))
            new = low[:i] + _LETTERS[int(rng.integers(26))] + low[i + 1:]
        elif op == 1:  # delete
            i = int(rng.integers(len(low)))
            new = low[:i] + low[i + 1:]
        else:  # insert
            i = int(rng.integers(len(low) + 1))
            new = low[:i] + _LETTERS[int(rng.integers(26))] + low[i:]
        if new != low and new not in protected_words():
            return new.capitalize() if word[:1].isupper() else new
    return word


def add_typos(text: str, rng: np.random.Generator, rate: float = TYPO_RATE) -> str:
    """``text`` with each word of ``MIN_TYPO_LENGTH``+ letters changed by ``typo`` with probability ``rate``."""
    def one(m: re.Match) -> str:
        w = m.group(0)
        if len(w) < MIN_TYPO_LENGTH or rng.random() >= rate:
            return w
        return typo(w, rng)
    return _WORD_RE.sub(one, text)


def _with_typos(text: str, rng: np.random.Generator, attempts: int = 5) -> str:
    """``add_typos`` until the result fits the model's tokens; ``text`` itself if none does."""
    for _ in range(attempts):
        out = add_typos(text, rng)
        if fits(out):
            return out
    return text


def train_cxr_text(zones: list[tuple[str, str]], rng: np.random.Generator) -> str:
    """A training text naming exactly ``zones``: canonical, or a varied wording with typos."""
    if rng.random() < CANONICAL_SHARE:
        return rt.guide_text(zones)
    head, nouns, variant = rt.draw_cxr_wording(rng)
    order = [zones[i] for i in rng.permutation(len(zones))]
    if rng.random() < MIXED_VARIANT_SHARE:
        variants = [int(v) for v in rng.integers(0, 2, len(zones))]
    else:
        variants = [variant] * len(zones)
    return _with_typos(rt.cxr_sentence(order, head, nouns, variants), rng)


def train_ct_text(side: str, category: str, rng: np.random.Generator) -> str:
    """A training text for a CT series: canonical (with or without the category), or varied with typos."""
    if rng.random() < CANONICAL_SHARE:
        return rt.ct_guide_text(side, category if rng.random() < 0.5 else None)
    body = int(rng.integers(rt.CT_BODY_COUNT))
    if rng.random() < CT_NO_SEVERITY_SHARE:
        severity = None
    else:
        severity = rt.ct_severity(category, int(rng.integers(rt.CT_SEVERITY_FORM_COUNT)))
    return _with_typos(rt.ct_sentence(side, body, severity), rng)
