#!/usr/bin/env python3
"""Oracle for post-processing: GLIP's ATSS post-processor written in numpy from the protocol
(§5.4 MEAN aggregation, §6.2 anchors, §6.3 candidates and top-k, §6.4 decoding, §6.5 NMS, cap,
COCO output), all in float32 as torch computes it.

Where torch leaves an order unspecified (topk among equal scores, sort in NMS), the lower index
goes first: within a level candidates are ranked by (score desc, anchor*K + class), levels are
concatenated P3..P7.

    postprocess.py DIR   (DIR/meta.json + raw little-endian float32 files)  ->  JSON on stdout
"""
import json
import math
import os
import sys

import numpy as np

F = np.float32


def anchors(stride, h, w):
    size = 8 * stride
    ctr = F(0.5) * (F(stride) - F(1))
    half = F(0.5) * (F(size) - F(1))
    base = np.array([ctr - half, ctr - half, ctr + half, ctr + half], F)
    ys, xs = np.meshgrid(np.arange(h, dtype=F) * F(stride), np.arange(w, dtype=F) * F(stride), indexing="ij")
    shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], 1)
    return shifts + base


def decode(deltas, boxes):
    widths = boxes[:, 2] - boxes[:, 0] + F(1)
    heights = boxes[:, 3] - boxes[:, 1] + F(1)
    ctr_x = (boxes[:, 2] + boxes[:, 0]) / F(2)
    ctr_y = (boxes[:, 3] + boxes[:, 1]) / F(2)
    dx = deltas[:, 0] / F(10)
    dy = deltas[:, 1] / F(10)
    clamp = F(math.log(1000.0 / 16))
    dw = np.minimum(deltas[:, 2] / F(5), clamp)
    dh = np.minimum(deltas[:, 3] / F(5), clamp)
    pcx = dx * widths + ctr_x
    pcy = dy * heights + ctr_y
    pw = np.exp(dw) * widths
    ph = np.exp(dh) * heights
    return np.stack(
        [pcx - F(0.5) * (pw - F(1)), pcy - F(0.5) * (ph - F(1)), pcx + F(0.5) * (pw - F(1)), pcy + F(0.5) * (ph - F(1))],
        1,
    ).astype(F)


def level_detections(level, d, classes, size, cfg):
    h, w, t = level["height"], level["width"], level["num_tokens"]
    hw = h * w
    load = lambda name: np.fromfile(os.path.join(d, level[name]), "<f4")
    box = load("bbox_pred")
    deltas = box.reshape(4, hw).T if level["layout"] == "channels_first" else box.reshape(hw, 4)
    ctr = load("centerness")
    logits = load("dot_product_logits").reshape(hw, t)
    probs = F(1) / (F(1) + np.exp(-logits))
    cls = np.zeros((hw, len(classes)), F)
    for c, tokens in enumerate(classes):
        if tokens:
            cls[:, c] = probs[:, tokens].mean(-1, dtype=F)
    cand = cls > F(cfg["pre_nms_thresh"])
    n = min(int(cand.sum()), cfg["pre_nms_top_n"])
    s = cls * (F(1) / (F(1) + np.exp(-ctr)))[:, None]
    a_idx, c_idx = np.nonzero(cand)
    flat = a_idx * len(classes) + c_idx
    sc = s[a_idx, c_idx]
    order = np.lexsort((flat, -sc))[:n]
    a_idx, c_idx, sc = a_idx[order], c_idx[order], sc[order]
    boxes = decode(deltas[a_idx], anchors(level["stride"], h, w)[a_idx])
    boxes[:, 0] = np.clip(boxes[:, 0], 0, size[0] - 1)
    boxes[:, 1] = np.clip(boxes[:, 1], 0, size[1] - 1)
    boxes[:, 2] = np.clip(boxes[:, 2], 0, size[0] - 1)
    boxes[:, 3] = np.clip(boxes[:, 3], 0, size[1] - 1)
    keep = (boxes[:, 2] - boxes[:, 0] + 1 >= 0) & (boxes[:, 3] - boxes[:, 1] + 1 >= 0)
    return boxes[keep], np.sqrt(sc[keep]), c_idx[keep] + 1


def iou(a, b):
    left, right = max(a[0], b[0]), min(a[2], b[2])
    top, bottom = max(a[1], b[1]), min(a[3], b[3])
    width = max(right - left + F(1), F(0))
    height = max(bottom - top + F(1), F(0))
    inter = F(width * height)
    area_a = (a[2] - a[0] + F(1)) * (a[3] - a[1] + F(1))
    area_b = (b[2] - b[0] + F(1)) * (b[3] - b[1] + F(1))
    return F(inter / (area_a + area_b - inter))


def ml_nms(boxes, scores, labels, thresh):
    order = np.lexsort((np.arange(len(scores)), -scores))
    suppressed = np.zeros(len(scores), bool)
    keep = []
    for i, a in enumerate(order):
        if suppressed[a]:
            continue
        keep.append(a)
        for b in order[i + 1 :]:
            if not suppressed[b] and labels[a] == labels[b] and iou(boxes[a], boxes[b]) > F(thresh):
                suppressed[b] = True
    return np.array(sorted(keep), int)


def image_detections(image, d, classes, cfg):
    size = image["size"]
    parts = [level_detections(l, d, classes, size, cfg) for l in image["levels"]]
    boxes = np.concatenate([p[0] for p in parts]).astype(F)
    scores = np.concatenate([p[1] for p in parts]).astype(F)
    labels = np.concatenate([p[2] for p in parts])
    keep = ml_nms(boxes, scores, labels, cfg["nms_thresh"])
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    cap = cfg["detections_per_img"]
    n = len(scores)
    if n > cap > 0:
        thresh = np.sort(scores)[n - cap]  # torch.kthvalue(scores, n - cap + 1)
        keep = scores >= thresh
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    return boxes, scores, labels


def to_coco(boxes, scores, labels, image, category_ids):
    (w, h), (ow, oh) = image["size"], image["original"]
    rw, rh = float(ow) / float(w), float(oh) / float(h)
    if rw == rh:
        scaled = boxes * F(rw)
    else:
        scaled = boxes * np.array([rw, rh, rw, rh], F)
    xywh = np.stack(
        [scaled[:, 0], scaled[:, 1], scaled[:, 2] - scaled[:, 0] + F(1), scaled[:, 3] - scaled[:, 1] + F(1)], 1
    )
    return [
        {"image_id": image["image_id"], "category_id": category_ids[l - 1], "bbox": b.tolist(), "score": float(s)}
        for b, s, l in zip(xywh, scores, labels)
    ]


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    out = []
    for image in meta["images"]:
        boxes, scores, labels = image_detections(image, d, meta["classes"], meta["config"])
        out.append(
            {
                "detections": [
                    {"bbox": b.tolist(), "score": float(s), "label": int(l)}
                    for b, s, l in zip(boxes, scores, labels)
                ],
                "coco": to_coco(boxes, scores, labels, image, meta["category_ids"]),
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
