"""Model-side view of the training data: images, masks and tokenized reports as arrays.

Wraps `tmca.phantoms.prepared_split` (the phantom benchmark, pre-processed exactly as tmcad does at
inference) and `tmca.tokenizer.WordPieceTokenizer`. Family `mix` is CXR with a fraction of CT slices; the `appearance*` families are
`tmca.phantoms_appearance`'s (`appearance` = its CXR with a fraction of its CT slices).
Arrays are cached on disk (TMCA_CACHE, default ~/.cache/tmca) keyed by the arguments and the
generator's source, so parallel training runs do not regenerate them.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Dict

import numpy as np

CT_FRACTION = 0.25


def vocab_size(vocab: str) -> int:
    with open(vocab, encoding="utf-8") as f:
        return sum(1 for _ in f)


def is_appearance(family: str) -> bool:
    """Whether ``family`` is one of the appearance benchmark's (`tmca.phantoms_appearance`)."""
    return family.startswith("appearance")


@functools.lru_cache(maxsize=None)
def _source_hash(family: str = "cxr") -> str:
    """Hash of the generator's source, read once per process: a cache entry written at the end of a
    run (its test split) is keyed by the code the run imported, not by a file edited meanwhile."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    names = ["phantoms.py", "report_text.py", "report_split.py", "text_augment.py", "preprocess.py", "tokenizer.py"]
    if is_appearance(family):
        names.append("phantoms_appearance.py")
    for name in names:
        p = here / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _generate(split: str, n: int, family: str, image_size: int, vocab: str, max_length: int) -> Dict[str, np.ndarray]:
    from .phantoms import prepared_split
    from .preprocess import manifest_at
    from .tokenizer import WordPieceTokenizer
    ml = manifest_at(image_size)
    if is_appearance(family):
        from . import phantoms_appearance as pa
        if family == pa.MIX_FAMILY:
            n_ct = int(round(n * pa.CT_FRACTION))
            parts = [pa.prepared_split(split, n - n_ct, "appearance-cxr", ml),
                     pa.prepared_split(split, n_ct, "appearance-ct", ml)]
        else:
            parts = [pa.prepared_split(split, n, family, ml)]
        images = np.concatenate([p.images for p in parts])
        masks = np.concatenate([p.masks for p in parts])
        reports = [r for p in parts for r in p.reports]
    elif family == "mix":
        n_ct = int(round(n * CT_FRACTION))
        parts = [prepared_split(split, n - n_ct, "cxr", ml), prepared_split(split, n_ct, "ct", ml)]
        images = np.concatenate([p.images for p in parts])
        masks = np.concatenate([p.masks for p in parts])
        reports = [r for p in parts for r in p.reports]
    else:
        images, masks, reports = prepared_split(split, n, family, ml)
    tok = WordPieceTokenizer.from_vocab(vocab)
    ids, am = tok.encode_batch(reports, max_length=max_length)
    return {"image": np.ascontiguousarray(images, np.float32), "mask": np.ascontiguousarray(masks, np.float32),
            "input_ids": np.asarray(ids, np.int64), "attention_mask": np.asarray(am, np.int64),
            "report": np.array(reports)}


def split_texts(split: str, n: int, family: str = "cxr", text: str = "report") -> list[str]:
    """The texts of `load_split(split, n, family)`'s cases, in order, without rendering them:
    `text="report"` their reports, `text="canonical"` the canonical guide text of their truth
    (see `tmca.phantoms.split_texts`)."""
    from .phantoms import split_texts as phantom_texts
    if is_appearance(family):
        from . import phantoms_appearance as pa
        if family == pa.MIX_FAMILY:
            n_ct = int(round(n * pa.CT_FRACTION))
            return (pa.split_texts(split, n - n_ct, "appearance-cxr", text)
                    + pa.split_texts(split, n_ct, "appearance-ct", text))
        return pa.split_texts(split, n, family, text)
    if family == "mix":
        n_ct = int(round(n * CT_FRACTION))
        return phantom_texts(split, n - n_ct, "cxr", text) + phantom_texts(split, n_ct, "ct", text)
    return phantom_texts(split, n, family, text)


def with_texts(data: Dict[str, np.ndarray], texts: list[str], vocab: str, max_length: int) -> Dict[str, np.ndarray]:
    """A copy of `data` whose cases carry `texts` (tokenized) instead of their reports."""
    from .tokenizer import WordPieceTokenizer
    if len(texts) != len(data["image"]):
        raise ValueError(f"{len(texts)} texts for {len(data['image'])} cases")
    ids, am = WordPieceTokenizer.from_vocab(vocab).encode_batch(texts, max_length=max_length)
    return {**data, "input_ids": np.asarray(ids, np.int64), "attention_mask": np.asarray(am, np.int64),
            "report": np.array(texts)}


def load_split(split: str, n: int, family: str = "cxr", image_size: int = 96,
               vocab: str = "models/tmca-cxr-compact/vocab.txt", max_length: int = 24,
               seed: int | None = None, cache: bool = True) -> Dict[str, np.ndarray]:
    """`n` cases of a split as arrays: image [N,1,S,S] f32, mask [N,1,S,S] f32 {0,1},
    input_ids / attention_mask [N,L] int64, report [N] str. The split's content is fixed by the
    benchmark's split seeds; `seed` is accepted for symmetry and unused."""
    if not cache:
        return _generate(split, n, family, image_size, vocab, max_length)
    vh = hashlib.sha256(Path(vocab).read_bytes()).hexdigest()[:8]
    root = Path(os.environ.get("TMCA_CACHE", Path.home() / ".cache" / "tmca"))
    path = root / f"{split}-{family}-{n}-{image_size}-{max_length}-{vh}-{_source_hash(family)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    d = _generate(split, n, family, image_size, vocab, max_length)
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **d)
    os.replace(tmp, path)
    return d
