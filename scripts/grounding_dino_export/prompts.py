"""Grounding DINO's caption, token spans and text masks for a list of class names, as mmdetection's
ODinW evaluation builds them (see PROTOCOL.md §2).

Source: open-mmlab/mmdetection `mmdet/models/detectors/grounding_dino.py`: `clean_label_name`,
`GroundingDINO.to_plain_text_prompts` (every cleaned name followed by the separator ". ", so the
caption ends with ". ") and `to_enhance_text_prompts` (with a dataset's `caption_prompt` dict: a
class whose cleaned name is a key is written prefix + (its 'name', else the class name) + suffix,
its span over the middle part only; the dataset passes the dict with custom_entities=True, so
both the whole and the chunked paths use it), `get_tokens_positive_and_prompts_chunked` + `chunks` (classes in groups
of `chunked_size` when the test config sets it), `get_positive_map` -> `glip.create_positive_map`
(the same character-to-token fallbacks as GLIP: start, start+1, start+2; end-1, end-2, end-3) and
`create_positive_map_label_to_token` (class j+1 -> its token positions). The text self-attention
mask and position ids are transformers' `generate_masks_with_special_tokens_and_transfer_map`
(mmdet's `generate_masks_with_special_tokens_and_transfer_map` in `language_models/bert.py`),
transcribed in numpy so the host can feed `text_encoder.onnx`.
"""
from __future__ import annotations

import re

import numpy as np

from glip_export.prompts import span_tokens

SEPARATOR = ". "
SPECIAL_TOKENS = ("[CLS]", "[SEP]", ".", "?")  # transformers' SPECIAL_TOKENS = ids 101, 102, 1012, 1029
SOURCE = ("open-mmlab/mmdetection mmdet/models/detectors/grounding_dino.py: clean_label_name, to_plain_text_prompts, "
          "to_enhance_text_prompts, chunks / get_tokens_positive_and_prompts_chunked, "
          "get_positive_map (glip.create_positive_map)")


def clean_label_name(name: str) -> str:
    """mmdet's `clean_label_name`: drop a parenthesised part, '_' -> ' ', one pass of '  ' -> ' '."""
    name = re.sub(r"\(.*\)", "", name)
    name = re.sub(r"_", " ", name)
    return re.sub(r"  ", " ", name)


def chunks(items: list, size: int) -> list[list]:
    """Consecutive groups of `size` (mmdet's `chunks`); one group when size <= 0."""
    if size <= 0:
        return [list(items)]
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def build_caption(names: list[str], caption_prompt: dict | None = None) -> tuple[str, list[tuple[int, int]]]:
    """-> (caption, [(start, end)] character span per class): each cleaned name, then '. '.

    With `caption_prompt` (an mmdetection dataset's dict: class name -> optional 'prefix',
    'name', 'suffix'), a class whose cleaned name is a key is written prefix + name + suffix with
    the span over the name only (`to_enhance_text_prompts`); None is `to_plain_text_prompts`."""
    caption, spans = "", []
    for word in map(clean_label_name, names):
        entry = (caption_prompt or {}).get(word)
        if entry is None:
            spans.append((len(caption), len(caption) + len(word)))
            caption += word
        else:
            caption += entry.get("prefix", "")
            start = len(caption)
            caption += entry.get("name", word)
            spans.append((start, len(caption)))
            caption += entry.get("suffix", "")
        caption += SEPARATOR
    return caption, spans


def tokenize(tokenizer, caption: str, max_len: int):
    """The caption's encoding, truncated to `max_len` tokens ([SEP] kept), as mmdet's BertModel
    language model (`truncation=True`, `max_length=max_tokens`) and transformers' processor do."""
    return tokenizer(caption, truncation=True, max_length=max_len)


def class_tokens(encoding, spans: list[tuple[int, int]], max_len: int) -> list[list[int]]:
    """Token positions of each class (mmdet's positive_map_label_to_token, in class order)."""
    return [span_tokens(encoding, s, e, max_len) for s, e in spans]


def special_ids(tokenizer) -> list[int]:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ValueError(f"tokenizer lacks one of {SPECIAL_TOKENS}")
    return ids


def text_masks(input_ids: np.ndarray, specials=(101, 102, 1012, 1029)) -> tuple[np.ndarray, np.ndarray]:
    """[N, L] ids -> (text_self_attention_mask [N, L, L] bool, position_ids [N, L] int64).

    A token attends to the tokens of its block (those sharing the next special token at or after
    it), unless that special token is the first or last position or there is none; every token
    attends to itself. Position id = distance to the previous special token - 1 inside a valid
    block, 0 elsewhere (transformers' generate_masks_with_special_tokens_and_transfer_map)."""
    ids = np.asarray(input_ids)
    n, length = ids.shape
    special = np.isin(ids, np.asarray(specials))
    idx = np.broadcast_to(np.arange(length), (n, length))
    prev = np.maximum.accumulate(np.where(special, idx, -1), axis=1)
    prev = np.concatenate([np.full((n, 1), -1), prev[:, :-1]], axis=1)
    nxt = np.where(special, idx, length)
    nxt = np.flip(np.minimum.accumulate(np.flip(nxt, 1), axis=1), 1)
    valid = (nxt != 0) & (nxt != length - 1) & (nxt != length)
    mask = (nxt[:, :, None] == nxt[:, None, :]) & valid[:, None, :]
    mask |= np.eye(length, dtype=bool)[None]
    pos = np.where(valid, idx - prev - 1, 0)
    return mask, np.clip(pos, 0, None).astype(np.int64)
