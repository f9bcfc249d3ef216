"""Grounding DINO detections from the graphs' outputs, as mmdetection's ODinW evaluation computes
them (PROTOCOL.md §3): the reference the Rust side mirrors.

Source: open-mmlab/mmdetection `mmdet/models/dense_heads/grounding_dino_head.py`
`GroundingDINOHead._predict_by_feat_single` with `convert_grounding_to_cls_scores`
(`dense_heads/atss_vlfusion_head.py`): class score = mean over the class's tokens of
sigmoid(token logit); top `max_per_img` over all (query, class) pairs; boxes cx,cy,w,h ->
x1,y1,x2,y2 scaled by the resized image size, clamped to it, divided by the resize scale factor.
With chunked captions (`GroundingDINO.predict`), each chunk's detections get their labels offset
by the number of classes before the chunk and the lists are concatenated.
"""
from __future__ import annotations

import numpy as np

MAX_PER_IMG = 300


def class_scores(logits: np.ndarray, tokens: list[list[int]]) -> np.ndarray:
    """[Q, T] token logits -> [Q, K] class scores (mean of the sigmoids over each class's tokens; 0
    for a class without tokens, where mmdet would produce NaN)."""
    prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
    out = np.zeros((logits.shape[0], len(tokens)), dtype=np.float64)
    for k, toks in enumerate(tokens):
        if toks:
            out[:, k] = prob[:, toks].mean(-1)
    return out


def detect(logits: np.ndarray, boxes: np.ndarray, tokens: list[list[int]], resized_hw, orig_hw,
           max_per_img: int = MAX_PER_IMG):
    """One image, one caption: -> scores [k], labels [k] (0-based class index), xyxy [k, 4] in
    original-image pixels, sorted by score (descending)."""
    scores = class_scores(logits, tokens)
    k = scores.shape[1]
    flat = scores.reshape(-1)
    n = min(max_per_img, flat.size)
    order = np.argsort(-flat, kind="stable")[:n]
    labels, query = order % k, order // k
    cx, cy, w, h = (boxes[query, i].astype(np.float64) for i in range(4))
    rh, rw = resized_hw
    oh, ow = orig_hw
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2] * rw, 0, rw) / (rw / ow)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2] * rh, 0, rh) / (rh / oh)
    return flat[order], labels, xyxy


def detect_chunked(per_chunk, resized_hw, orig_hw, max_per_img: int = MAX_PER_IMG):
    """per_chunk: [(logits, boxes, tokens)] for the chunks in order -> the concatenated detections
    with global labels."""
    out_s, out_l, out_b, offset = [], [], [], 0
    for logits, boxes, tokens in per_chunk:
        s, lab, b = detect(logits, boxes, tokens, resized_hw, orig_hw, max_per_img)
        out_s.append(s)
        out_l.append(lab + offset)
        out_b.append(b)
        offset += len(tokens)
    return np.concatenate(out_s), np.concatenate(out_l), np.concatenate(out_b)
