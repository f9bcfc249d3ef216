"""Tokenizers: bert-base-uncased WordPiece (GLIP-T/L) and the tiny demo vocabulary.

Both are `tokenizers`' BertWordPiece (lowercasing, BERT pre-tokenizer, `[CLS] ... [SEP]`), which
is what GLIP's `AutoTokenizer("bert-base-uncased")` does; `tokenizer.json` is that tokenizer
saved, so the Rust `tokenizers` crate reproduces it. The bert-base-uncased vocabulary is
committed beside this file (Apache-2.0, sha256 07eced37...).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

BERT_VOCAB = Path(__file__).parent / "vocab" / "bert-base-uncased-vocab.txt"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Words of the generated demo world (scripts/shapes_world.py) and of its prompts.
TINY_WORDS = [
    "red", "green", "blue", "yellow", "purple", "orange",
    "circle", "square", "triangle", "star", "cross",
    "plain", "striped", "dotted", "checkered",
    "a", "an", "the", "shape", "object", "with", "which", "is", "and", "of", "there", "are",
    "some", "on", "stripes", "dots",
]


def tiny_vocab() -> list[str]:
    """Specials, punctuation, letters and their continuations (so any ASCII word tokenizes
    without [UNK]), then the demo words."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    punct = list(".,-'!?")
    vocab = SPECIALS + punct + [str(d) for d in range(10)] + letters + ["##" + c for c in letters]
    return vocab + [w for w in TINY_WORDS if w not in vocab]


def make_tokenizer(kind: str) -> "BertWordPieceTokenizer":  # noqa: F821
    # Imported here so that the rest of glip_export (configs, graphs) works without `tokenizers`.
    from tokenizers import BertWordPieceTokenizer

    if kind == "bert-base-uncased":
        return BertWordPieceTokenizer(str(BERT_VOCAB), lowercase=True)
    if kind == "tiny-wordpiece":
        vocab = {tok: i for i, tok in enumerate(tiny_vocab())}
        return BertWordPieceTokenizer(vocab, lowercase=True)
    raise ValueError(f"unknown tokenizer {kind!r}")


def special_token_ids(tok: "BertWordPieceTokenizer") -> dict[str, int]:
    ids = {name.strip("[]").lower(): tok.token_to_id(name) for name in SPECIALS}
    ids["period"] = tok.token_to_id(".")
    return ids


def encode_batch(tok: "BertWordPieceTokenizer", texts: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 input_ids and attention_mask [B, max_len], truncated and zero-padded like GLIP."""
    ids = np.zeros((len(texts), max_len), dtype=np.int64)
    mask = np.zeros((len(texts), max_len), dtype=np.int64)
    sep = tok.token_to_id("[SEP]")
    for i, text in enumerate(texts):
        enc = tok.encode(text).ids
        if len(enc) > max_len:
            enc = enc[: max_len - 1] + [sep]
        ids[i, : len(enc)] = enc
        mask[i, : len(enc)] = 1
    return ids, mask
