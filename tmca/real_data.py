"""Training data for the paper's set-up: QaTa-COV19 / MosMedData+ folders (`tmca.datasets`), the
tokenizer of the run (its vocab travels in the checkpoint), and a batch order that a resumed run
continues exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from . import datasets, preprocess
from .tokenizer import SPECIAL_TOKENS, WordPieceTokenizer

DATASETS = ("qata", "mosmed")
# the guide-text form of each data set's annotations and the modalities it covers (manifest.json)
FORMS = {"qata": {"CR": "qata-cov19", "DX": "qata-cov19"}, "mosmed": {"CT": "mosmeddata"}}


def read_vocab_tokens(path: str | Path) -> List[str]:
    """vocab.txt as a token list (id = index), checked like `tokenizer.load_vocab`."""
    from .tokenizer import load_vocab
    v = load_vocab(path)
    return sorted(v, key=v.get)


def tokenizer_of(tokens: Sequence[str], lower_case: bool = True, strip_accents: bool = True) -> WordPieceTokenizer:
    vocab = {t: i for i, t in enumerate(tokens)}
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing or len(vocab) != len(tokens):
        raise ValueError(f"vocab: duplicate tokens or missing specials {missing}")
    return WordPieceTokenizer(vocab, lower_case=lower_case, strip_accents=strip_accents)


def manifest_like(image_size: int) -> Dict[str, object]:
    """The pre-processing part of the manifest at the model's input size (what tmcad will do)."""
    return preprocess.manifest_at(image_size)


def has_split(root: str | Path, split: str) -> bool:
    root = Path(root)
    return any((root / d).is_dir() for d in datasets.SPLIT_DIRS[split])


def split_dataset(root: str | Path, split: str, image_size: int, max_length: int,
                  tokenizer: WordPieceTokenizer, kind: str = "qata") -> datasets.TextSegDataset:
    """One split of a QaTa-COV19 / MosMedData+ folder as model inputs at `image_size`."""
    if kind not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {kind!r}")
    samples = datasets.load_split(root, split)
    if not samples:
        raise ValueError(f"{root}: the {split} split has no samples")
    return datasets.TextSegDataset(samples, tokenizer, manifest_like(image_size), max_length=max_length)


class BatchOrder:
    """Batches of indices for step 0, 1, 2, ...: a random permutation per pass, drawn from a generator
    seeded by `seed` (a new pass when fewer than `batch` indices are left). `skip(k)` replays k steps,
    so a resumed run sees the batches the uninterrupted run would have seen."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch = n, batch
        self.g = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(n, generator=self.g), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.g), 0
        idx = self.perm[self.pos: self.pos + self.batch]
        self.pos += self.batch
        return idx

    def skip(self, k: int) -> None:
        for _ in range(k):
            self.next()

    def take(self, k: int) -> List[List[int]]:
        return [self.next().tolist() for _ in range(k)]


def loader(ds: datasets.TextSegDataset, batches: List[List[int]], workers: int = 0,
           pin: bool = False) -> Iterator[Dict[str, object]]:
    """Collated batches of `ds` in the given order (worker processes read and pre-process PNGs)."""
    return iter(torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=workers, pin_memory=pin))


def eval_loader(ds: datasets.TextSegDataset, batch: int, workers: int = 0,
                pin: bool = False) -> Iterator[Dict[str, object]]:
    idx = list(range(len(ds)))
    return loader(ds, [idx[i:i + batch] for i in range(0, len(idx), batch)], workers, pin)


def data_root_of(args: Dict[str, object]) -> Optional[str]:
    r = args.get("data_root")
    return str(r) if r else None
