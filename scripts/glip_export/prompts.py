"""GLIP's detection prompt and token positive maps (protocol §5.1, `create_queries_and_maps`).

The caption joins the class names with ". " (or renders `prefix + name + suffix` per class when
a caption prompt is given); each class maps to the tokens from `char_to_token(start)` to
`char_to_token(end - 1)`, with GLIP's fallbacks (start+1, start+2; end-2, end-3). A class whose
span cannot be mapped gets no tokens (and a score of 0).
"""
from __future__ import annotations

import numpy as np


def build_caption(names: list[str], separator: str = ". ", prompts: list[dict] | None = None):
    """-> (caption, [(start, end)] character span per class)."""
    caption, spans = "", []
    for i, name in enumerate(names):
        if prompts is not None:
            caption += prompts[i].get("prefix", "")
            name = prompts[i].get("name", name)
        start = len(caption)
        caption += name
        spans.append((start, len(caption)))
        if prompts is not None:
            caption += prompts[i].get("suffix", "")
        if i != len(names) - 1:
            caption += separator
    return caption, spans


def _char_to_token(encoding, pos: int):
    if pos < 0:
        return None  # HF tokenizers raise on negative positions; GLIP catches it
    return encoding.char_to_token(pos)


def span_tokens(encoding, start: int, end: int, max_len: int) -> list[int]:
    """Token positions (with [CLS] at 0) of one character span, GLIP's fallbacks included."""
    b = None
    for p in (start, start + 1, start + 2):
        b = _char_to_token(encoding, p)
        if b is not None:
            break
    e = None
    for p in (end - 1, end - 2, end - 3):
        e = _char_to_token(encoding, p)
        if e is not None:
            break
    if b is None or e is None:
        return []
    return [t for t in range(b, e + 1) if t < max_len]


def positive_map(tokenizer, caption: str, spans: list[tuple[int, int]], max_len: int) -> np.ndarray:
    """[K, max_len] 0/1 map from each class span to its tokens."""
    enc = tokenizer.encode(caption)
    out = np.zeros((len(spans), max_len), dtype=np.float32)
    for k, (start, end) in enumerate(spans):
        out[k, span_tokens(enc, start, end, max_len)] = 1.0
    return out
