#!/usr/bin/env python3
"""The host side of GLIP inference with Pillow + numpy on one core, the alternative
`odinw`'s Rust pipeline is measured against (benchmarks/host_pipeline.sh): decode with Pillow,
GLIP's resize (Pillow BILINEAR), normalise + pad with numpy, and GLIP's post-processing in
vectorised numpy on recorded head outputs.

    host_pipeline.py --make-heads DIR   writes synthetic head outputs (seeded) for the benchmark
    host_pipeline.py IMAGE_LIST DIR     times the pipeline, prints one JSON line
"""
import json
import math
import os
import sys
import time

import numpy as np
from PIL import Image

F = np.float32
MEAN = np.array([103.530, 116.280, 123.675], F)
STD = np.array([57.375, 57.120, 58.395], F)
STRIDES = [8, 16, 32, 64, 128]


def make_heads(d, size=(1088, 800), tokens=256):
    """Head outputs for a 1088x800 image: logits ~ N(-5, 2), Aquarium's 7 classes' tokens."""
    rng = np.random.default_rng(0)
    os.makedirs(d, exist_ok=True)
    classes = [[1], [3, 4], [6], [14, 15], [21], [23, 24], [26, 27]]
    levels = []
    for s in STRIDES:
        h, w = -(-size[1] // s), -(-size[0] // s)
        files = {}
        for name, shape, scale, loc in (
            ("bbox_pred", (4, h, w), 0.5, 0.0),
            ("centerness", (h * w,), 1.5, 0.0),
            ("dot_product_logits", (h * w, tokens), 2.0, -5.0),
        ):
            fn = f"s{s}_{name}.f32"
            rng.normal(loc, scale, shape).astype("<f4").tofile(os.path.join(d, fn))
            files[name] = fn
        levels.append({"stride": s, "height": h, "width": w, **files})
    meta = {"size": list(size), "num_tokens": tokens, "classes": classes, "levels": levels}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)


def get_size(w, h, size=800, max_size=1333):
    lo, hi = float(min(w, h)), float(max(w, h))
    if hi / lo * size > max_size:
        size = int(round(max_size * lo / hi))
    if (w <= h and w == size) or (h <= w and h == size):
        return w, h
    return (size, int(size * h / w)) if w < h else (int(size * w / h), size)


def normalize_pad(img):
    x = np.asarray(img, np.uint8).astype(F) / F(255)
    x = x.transpose(2, 0, 1)[::-1] * F(255)
    x = (x - MEAN[:, None, None]) / STD[:, None, None]
    h, w = x.shape[1:]
    out = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), F)
    out[0, :, :h, :w] = x
    return out


def postprocess(levels, classes, size, thresh=F(0.05), top_n=1000, nms_th=0.6, cap=100):
    used = sorted({t for c in classes for t in c})
    boxes_all, scores_all, labels_all = [], [], []
    for lv in levels:
        s, h, w = lv["stride"], lv["height"], lv["width"]
        logits = lv["dot_product_logits"]
        probs = np.zeros((h * w, logits.shape[1]), F)
        probs[:, used] = F(1) / (F(1) + np.exp(-logits[:, used]))
        cls = np.stack([probs[:, c].mean(-1) for c in classes], 1)
        cand = cls > thresh
        sc = (cls * (F(1) / (F(1) + np.exp(-lv["centerness"])))[:, None])[cand]
        a_idx, c_idx = np.nonzero(cand)
        n = min(len(sc), top_n)
        order = np.argsort(-sc, kind="stable")[:n]
        a_idx, c_idx, sc = a_idx[order], c_idx[order], sc[order]
        ys, xs = np.divmod(a_idx, w)
        half = F(0.5) * (F(8 * s) - 1)
        ctr = F(0.5) * (F(s) - 1)
        ax1 = xs.astype(F) * s + ctr - half
        ay1 = ys.astype(F) * s + ctr - half
        wa = F(2) * half + 1
        d = lv["bbox_pred"].reshape(4, -1)[:, a_idx]
        clamp = F(math.log(1000.0 / 16))
        pcx = d[0] / F(10) * wa + (ax1 + half)
        pcy = d[1] / F(10) * wa + (ay1 + half)
        pw = np.exp(np.minimum(d[2] / F(5), clamp)) * wa
        ph = np.exp(np.minimum(d[3] / F(5), clamp)) * wa
        b = np.stack([pcx - (pw - 1) / 2, pcy - (ph - 1) / 2, pcx + (pw - 1) / 2, pcy + (ph - 1) / 2], 1)
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, size[0] - 1)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, size[1] - 1)
        boxes_all.append(b)
        scores_all.append(np.sqrt(sc))
        labels_all.append(c_idx + 1)
    boxes, scores, labels = map(np.concatenate, (boxes_all, scores_all, labels_all))
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    suppressed = np.zeros(len(scores), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[:, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[:, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(xx2 - xx1 + 1, 0) * np.maximum(yy2 - yy1 + 1, 0)
        iou = inter / (area[i] + area - inter)
        suppressed |= (iou > nms_th) & (labels == labels[i])
    keep = np.sort(np.array(keep))
    scores = scores[keep]
    if len(scores) > cap:
        thr = np.partition(scores, len(scores) - cap)[len(scores) - cap]
        keep = keep[scores >= thr]
    return keep


def main():
    if sys.argv[1] == "--make-heads":
        make_heads(sys.argv[2])
        return
    paths = [l for l in open(sys.argv[1]).read().splitlines() if l]
    d = sys.argv[2]
    meta = json.load(open(os.path.join(d, "meta.json")))
    load = lambda fn: np.fromfile(os.path.join(d, fn), "<f4")
    levels = []
    for lv in meta["levels"]:
        levels.append(
            {
                **lv,
                "bbox_pred": load(lv["bbox_pred"]),
                "centerness": load(lv["centerness"]),
                "dot_product_logits": load(lv["dot_product_logits"]).reshape(-1, meta["num_tokens"]),
            }
        )
    times = [0.0] * 4
    dets = 0
    for p in paths:
        t0 = time.perf_counter()
        with Image.open(p) as im:
            img = im.convert("RGB")
        t1 = time.perf_counter()
        img = img.resize(get_size(*img.size), Image.BILINEAR)
        t2 = time.perf_counter()
        normalize_pad(img)
        t3 = time.perf_counter()
        dets += len(postprocess(levels, meta["classes"], meta["size"]))
        t4 = time.perf_counter()
        for i, (a, b) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
            times[i] += b - a
    n = len(paths)
    print(
        json.dumps(
            {
                "images": n,
                "decode": n / times[0],
                "resize": n / times[1],
                "normalize_pad": n / times[2],
                "postprocess": n / times[3],
                "total": n / sum(times),
                "detections_per_image": dets / n,
            }
        )
    )


if __name__ == "__main__":
    main()
