"""BERT BasicTokenizer + greedy WordPiece, the exact rule shared with Go ``reports``.

This is the reference implementation behind ``testdata/vectors/tokenizer.jsonl``;
the Go tokenizer must reproduce it token for token. The rules (see
docs/CONTRACTS.md, "Tokenizer"):

1. Clean: drop U+0000, U+FFFD and control characters (Unicode category Cc or Cf,
   except TAB/LF/CR); every whitespace character (TAB, LF, CR, space, category Zs)
   becomes a plain space.
2. CJK ideographs (the BERT code-point ranges below) get a space on each side.
3. Split on whitespace (Python ``str.split()``: after step 1 this means space,
   U+2028 and U+2029).
4. Per word: lower-case (``str.lower``), strip accents (NFD, then drop category Mn),
   then split so that every punctuation character is a word of its own.
   Punctuation = ASCII 33-47, 58-64, 91-96, 123-126, or any Unicode category P*.
5. WordPiece per word: a word longer than 100 code points is ``[UNK]``; otherwise
   greedy longest-match-first with ``##`` continuation pieces; if any position
   cannot be matched the whole word is ``[UNK]``.

Special tokens in the input text (``"[MASK]"``) are *not* recognised: they are
split like any other text. Encoding is ``[CLS] tokens... [SEP]`` truncated to at
most ``max_length`` (``[SEP]`` kept) and padded with ``[PAD]``.

Usage (model side)::

    tok = WordPieceTokenizer.from_vocab("models/tmca-cxr-compact/vocab.txt")
    ids, mask = tok.encode_batch(reports, max_length=24)   # int64 [B, L] arrays
"""
from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)
MAX_CHARS_PER_WORD = 100

# BERT's "Chinese character" ranges (CJK Unified Ideographs and extensions,
# compatibility ideographs). Hiragana/Katakana/Hangul are NOT in them.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_whitespace(ch: str) -> bool:
    """TAB, LF, CR, space, or Unicode category Zs."""
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    """Category Cc or Cf, except TAB/LF/CR (which count as whitespace)."""
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_punctuation(ch: str) -> bool:
    """ASCII 33-47, 58-64, 91-96, 123-126, or Unicode category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp: int) -> bool:
    """True for code points in BERT's CJK ideograph ranges."""
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def clean_text(text: str) -> str:
    """Step 1: drop NUL, U+FFFD and controls; map whitespace to a space."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def space_cjk(text: str) -> str:
    """Step 2: surround every CJK ideograph with spaces."""
    return "".join(f" {ch} " if is_cjk(ord(ch)) else ch for ch in text)


def strip_accents(text: str) -> str:
    """NFD, then drop combining marks (category Mn)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def split_punctuation(word: str) -> list[str]:
    """Split a word so that each punctuation character stands alone."""
    pieces: list[list[str]] = []
    start_new = True
    for ch in word:
        if is_punctuation(ch):
            pieces.append([ch])
            start_new = True
        else:
            if start_new:
                pieces.append([])
            start_new = False
            pieces[-1].append(ch)
    return ["".join(p) for p in pieces]


def basic_tokenize(text: str, lower_case: bool = True, do_strip_accents: bool = True) -> list[str]:
    """BERT BasicTokenizer: steps 1-4 of the module docstring."""
    text = space_cjk(clean_text(text))
    words: list[str] = []
    for word in text.split():
        if lower_case:
            word = word.lower()
        if do_strip_accents:
            word = strip_accents(word)
        words.extend(split_punctuation(word))
    # BERT re-splits the joined result; this drops empty pieces (e.g. a word that
    # was only combining marks).
    return " ".join(words).split()


def wordpiece(word: str, vocab: dict[str, int]) -> list[str]:
    """Greedy longest-match-first WordPiece for one basic token."""
    if len(word) > MAX_CHARS_PER_WORD:
        return [UNK]
    pieces: list[str] = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return [UNK]
        pieces.append(found)
        start = end
    return pieces


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read vocab.txt: one token per line, id = 0-based line number."""
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            tok = line.rstrip("\r\n")
            if tok in vocab:
                raise ValueError(f"{path}: line {i + 1}: duplicate token {tok!r}")
            vocab[tok] = i
    for tok in SPECIAL_TOKENS:
        if tok not in vocab:
            raise ValueError(f"{path}: special token {tok} missing")
    return vocab


class WordPieceTokenizer:
    """BERT-style tokenizer over a WordPiece vocab (see module docstring)."""

    def __init__(self, vocab: dict[str, int], lower_case: bool = True, strip_accents: bool = True):
        self.vocab = vocab
        self.inv_vocab = {i: t for t, i in vocab.items()}
        self.lower_case = lower_case
        self.strip_accents = strip_accents
        self.pad_id, self.unk_id = vocab[PAD], vocab[UNK]
        self.cls_id, self.sep_id = vocab[CLS], vocab[SEP]

    @classmethod
    def from_vocab(cls, path: str | Path, lower_case: bool = True, strip_accents: bool = True) -> "WordPieceTokenizer":
        """Load ``vocab.txt`` (the manifest's ``tokenizer.vocab``)."""
        return cls(load_vocab(path), lower_case=lower_case, strip_accents=strip_accents)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        """Text → WordPiece tokens (no [CLS]/[SEP])."""
        out: list[str] = []
        for word in basic_tokenize(text, self.lower_case, self.strip_accents):
            out.extend(wordpiece(word, self.vocab))
        return out

    def encode_tokens(self, text: str, max_length: int = 24) -> list[str]:
        """``[CLS] tokens... [SEP]`` truncated to ``max_length``, padded with [PAD]."""
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        toks = [CLS] + self.tokenize(text)[: max_length - 2] + [SEP]
        return toks + [PAD] * (max_length - len(toks))

    def encode(self, text: str, max_length: int = 24) -> tuple[list[int], list[int]]:
        """Return ``(input_ids, attention_mask)``, each of length ``max_length``."""
        toks = self.encode_tokens(text, max_length)
        n_real = max_length - toks.count(PAD)
        ids = [self.vocab.get(t, self.unk_id) for t in toks]
        mask = [1] * n_real + [0] * (max_length - n_real)
        return ids, mask

    def encode_batch(self, texts: Sequence[str] | Iterable[str], max_length: int = 24) -> tuple[np.ndarray, np.ndarray]:
        """Encode many texts: int64 arrays ``input_ids`` and ``attention_mask`` of shape [B, L]."""
        pairs = [self.encode(t, max_length) for t in texts]
        ids = np.array([p[0] for p in pairs], dtype=np.int64).reshape(len(pairs), max_length)
        mask = np.array([p[1] for p in pairs], dtype=np.int64).reshape(len(pairs), max_length)
        return ids, mask

    def decode(self, ids: Sequence[int]) -> str:
        """Rough inverse for debugging: join pieces, drop specials and padding."""
        toks = [self.inv_vocab.get(int(i), UNK) for i in ids]
        toks = [t for t in toks if t not in (PAD, CLS, SEP)]
        return " ".join(toks).replace(" ##", "")
