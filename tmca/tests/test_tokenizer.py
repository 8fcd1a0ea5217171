"""Tokenizer: BERT basic rules, WordPiece, encoding, vocab determinism."""
from pathlib import Path

import numpy as np
import pytest

from tmca import vocab_build
from tmca.tokenizer import WordPieceTokenizer, basic_tokenize, wordpiece

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "models/tmca-cxr-compact/vocab.txt"


@pytest.fixture(scope="module")
def tok() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(VOCAB)


def test_basic_rules():
    assert basic_tokenize("Hello, World!") == ["hello", ",", "world", "!"]
    assert basic_tokenize("Crème BRÛLÉE Ångström") == ["creme", "brulee", "angstrom"]
    assert basic_tokenize("a\tb\nc\r\nd\u00a0e") == ["a", "b", "c", "d", "e"]
    assert basic_tokenize("x\x00y\ufffdz\u200bw\x07") == ["xyzw"]  # NUL, U+FFFD, Cf, Cc dropped
    assert basic_tokenize("肺炎ok") == ["肺", "炎", "ok"]
    assert basic_tokenize("CT-1, 25%.") == ["ct", "-", "1", ",", "25", "%", "."]
    assert basic_tokenize("«quoted»—dash") == ["«", "quoted", "»", "—", "dash"]
    assert basic_tokenize("$5^2`~|") == ["$", "5", "^", "2", "`", "~", "|"]
    assert basic_tokenize("") == [] and basic_tokenize(" \t\n ") == []


def test_wordpiece_greedy():
    vocab = {"un": 0, "##aff": 1, "##able": 2, "[UNK]": 3, "##a": 4}
    assert wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]
    assert wordpiece("unx", vocab) == ["[UNK]"]
    assert wordpiece("u" * 101, {"u": 0, "##u": 1}) == ["[UNK]"]
    assert wordpiece("u" * 100, {"u": 0, "##u": 1}) == ["u"] + ["##u"] * 99


def test_encode_layout(tok):
    ids, mask = tok.encode("Unilateral pulmonary infection, one infected area, upper right lung.", 24)
    toks = tok.encode_tokens("Unilateral pulmonary infection, one infected area, upper right lung.", 24)
    assert len(ids) == len(mask) == 24
    assert toks[0] == "[CLS]" and toks[13] == "[SEP]" and toks[14:] == ["[PAD]"] * 10
    assert "[UNK]" not in toks
    assert mask == [1] * 14 + [0] * 10
    assert ids[0] == 2 and ids[13] == 3 and ids[-1] == 0


def test_truncation_keeps_sep(tok):
    toks = tok.encode_tokens("lung " * 50, 24)
    assert len(toks) == 24 and toks[-1] == "[SEP]" and toks[0] == "[CLS]"
    _, mask = tok.encode("lung " * 50, 24)
    assert mask == [1] * 24


def test_unknown_and_cjk(tok):
    assert tok.tokenize("肺 😀") == ["[UNK]", "[UNK]"]
    assert tok.tokenize("[MASK]")[0] == "["  # specials are not recognised in text


def test_batch_dtype(tok):
    ids, mask = tok.encode_batch(["left lung", "", "right lung"], max_length=12)
    assert ids.dtype == np.int64 and mask.dtype == np.int64 and ids.shape == (3, 12)
    assert mask[1].tolist() == [1, 1] + [0] * 10


def test_vocab_is_deterministic_and_committed():
    tokens = vocab_build.build_vocab()
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(tokens) == len(set(tokens)) < 5000
    assert VOCAB.read_text(encoding="utf-8").splitlines() == tokens


def test_vectors_match_tokenizer(tok):
    import json

    path = ROOT / "testdata/vectors/tokenizer.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: regenerate with /usr/bin/python3 -m tmca.vectors")
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert len(lines) >= 250
    for line in lines:
        rec = json.loads(line)
        ids, mask = tok.encode(rec["text"], len(rec["input_ids"]))
        assert tok.encode_tokens(rec["text"], len(ids)) == rec["tokens"]
        assert ids == rec["input_ids"] and mask == rec["attention_mask"]


def test_vectors_file_is_reproducible():
    import json

    from tmca import vectors

    path = ROOT / "testdata/vectors/tokenizer.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: regenerate with /usr/bin/python3 -m tmca.vectors")
    want = [json.loads(line) for line in path.read_text(encoding="utf-8").rstrip("\n").split("\n")]
    assert want == vectors.tokenizer_vectors(VOCAB)


def test_bert_sized_vocab_vectors_reproducible():
    """vocab_30522.txt and its vectors are what tmca.vectors writes (the Go side checks them too)."""
    import json

    from tmca import vectors

    vocab = ROOT / "testdata/vectors/vocab_30522.txt"
    assert vocab.read_text(encoding="utf-8").splitlines() == vectors.bert_sized_vocab()
    assert len(vectors.bert_sized_vocab()) == 30522
    want = [json.loads(l) for l in (ROOT / "testdata/vectors/tokenizer_30522.jsonl").read_text(encoding="utf-8").splitlines()]
    assert want == vectors.tokenizer_vectors(vocab)
    assert want != vectors.tokenizer_vectors(VOCAB)  # the larger table changes some encodings
