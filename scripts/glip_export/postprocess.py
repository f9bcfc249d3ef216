"""GLIP's detection post-processing (protocol §5.4, §6.3-6.5) on the head graph's outputs.

Per level: class score = mean over the class's tokens of sigmoid(token logit); candidates with
score > 0.05; the top 1000 (class, anchor) pairs by score * sigmoid(centerness); final score
sqrt(score * sigmoid(centerness)). Then clip to the resized image, class-aware NMS (IoU > 0.6 with
"+1" areas), keep the 100 best (ties at the threshold kept, as `kthvalue` does), and map to the
original image in COCO xywh with w = x2 - x1 + 1.
"""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def class_scores(token_logits: np.ndarray, pos_map: np.ndarray) -> np.ndarray:
    """[Q,T] logits, [K,T] 0/1 map -> [Q,K] mean token probability (0 for classes without tokens)."""
    t = min(token_logits.shape[1], pos_map.shape[1])
    probs = sigmoid(token_logits[:, :t].astype(np.float64))
    pm = pos_map[:, :t].astype(np.float64)
    counts = pm.sum(1)
    scores = probs @ pm.T
    return np.where(counts > 0, scores / np.maximum(counts, 1), 0.0)


def nms_plus_one(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1, 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1, 0, None)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > thresh]] = True
    return np.sort(np.asarray(keep, dtype=np.int64))


def detect(boxes, centerness, token_logits, pos_map, level_counts, resized_hw, cfg):
    """One image. boxes [Q,4] decoded, centerness [Q], token_logits [Q,T] -> (boxes, scores, labels 0-based)."""
    scores = class_scores(token_logits, pos_map)
    ctr = sigmoid(centerness.astype(np.float64))
    all_b, all_s, all_l = [], [], []
    start = 0
    for count in level_counts:
        s = scores[start:start + count]
        c = ctr[start:start + count]
        anchor_idx, cls = np.nonzero(s > cfg.pre_nms_thresh)
        combined = s[anchor_idx, cls] * c[anchor_idx]
        if len(combined) > cfg.pre_nms_top_n:
            top = np.argsort(-combined, kind="stable")[: cfg.pre_nms_top_n]
            anchor_idx, cls, combined = anchor_idx[top], cls[top], combined[top]
        all_b.append(boxes[start + anchor_idx].astype(np.float64))
        all_s.append(np.sqrt(combined))
        all_l.append(cls)
        start += count
    b = np.concatenate(all_b) if all_b else np.zeros((0, 4))
    s = np.concatenate(all_s) if all_s else np.zeros(0)
    lab = np.concatenate(all_l) if all_l else np.zeros(0, dtype=np.int64)
    h, w = resized_hw
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w - 1)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h - 1)
    keep = []
    for k in np.unique(lab):
        idx = np.nonzero(lab == k)[0]
        keep.append(idx[nms_plus_one(b[idx], s[idx], cfg.nms_thresh)])
    keep = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    b, s, lab = b[keep], s[keep], lab[keep]
    if len(s) > cfg.detections_per_img:
        thresh = np.sort(s)[len(s) - cfg.detections_per_img]
        sel = s >= thresh
        b, s, lab = b[sel], s[sel], lab[sel]
    return b, s, lab


def to_coco(boxes: np.ndarray, scale_xy: tuple[float, float]) -> list[list[float]]:
    """Resized-frame xyxy -> original-frame COCO xywh ("+1" widths)."""
    sx, sy = scale_xy
    out = []
    for x1, y1, x2, y2 in boxes:
        x1, x2 = x1 / sx, x2 / sx
        y1, y2 = y1 / sy, y2 / sy
        out.append([float(x1), float(y1), float(x2 - x1 + 1), float(y2 - y1 + 1)])
    return out
