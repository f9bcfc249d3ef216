"""ATSS assignment oracle (numpy only), written from the protocol (§6.2 anchors, §9 assignment).

    python atss_oracle.py cases.json  ->  JSON on stdout

Input: {"cases": [{"levels": [[height, width, stride], ...], "boxes": [[x1,y1,x2,y2], ...]}]}
with boxes in the "+1" convention. Output per case: the positive anchors ("pos", ascending),
their matched box ("gt"), regression targets ("reg") and centerness targets ("ctr"), plus
"ties": how many (box, level) selections had equal distances across the top-k boundary.

Arithmetic is float32 step by step, as torch computes it; the mean and the unbiased std of the
candidate IoUs are taken in float64 and rounded to float32. Which of several equally distant
anchors torch's CPU topk(largest=False) keeps is decided by libstdc++'s algorithms on
(value, index) pairs compared by value: partial_sort (heap select) when 64*k <= n, else
nth_element (introselect: median-of-three pivot, Hoare partition, heap select when the depth
budget 2*floor(log2 n) runs out, insertion sort below 4 elements). They are re-implemented here
from their definition.
"""
import json
import sys

import numpy as np

F = np.float32
TOPK = 9


# ---------------------------------------------------------------- libstdc++ selection
def _lt(a, b):
    return a[0] < b[0]


def _sift(a, base, hole, n, value):
    """__adjust_heap: move the hole down to a leaf, then push `value` up (max-heap)."""
    top = hole
    child = hole
    while child < (n - 1) // 2:
        child = 2 * (child + 1)
        if _lt(a[base + child], a[base + child - 1]):
            child -= 1
        a[base + hole] = a[base + child]
        hole = child
    if n % 2 == 0 and n >= 2 and child == (n - 2) // 2:
        child = 2 * (child + 1)
        a[base + hole] = a[base + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and _lt(a[base + parent], value):
        a[base + hole] = a[base + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[base + hole] = value


def _heap_select(a, base, middle, end):
    """Leaves the `middle - base` smallest-by-this-algorithm elements in a[base:middle]."""
    n = middle - base
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _sift(a, base, parent, n, a[base + parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, end):
        if _lt(a[i], a[base]):
            v = a[i]
            a[i] = a[base]
            _sift(a, base, 0, n, v)


def _introselect(a, nth):
    first, last = 0, len(a)
    depth = 2 * (len(a).bit_length() - 1)
    while last - first > 3:
        if depth == 0:
            _heap_select(a, first, nth + 1, last)
            a[first], a[nth] = a[nth], a[first]
            return
        depth -= 1
        mid = first + (last - first) // 2
        x, y, z = first + 1, mid, last - 1
        if _lt(a[x], a[y]):
            m = y if _lt(a[y], a[z]) else (z if _lt(a[x], a[z]) else x)
        else:
            m = x if _lt(a[x], a[z]) else (z if _lt(a[y], a[z]) else y)
        a[first], a[m] = a[m], a[first]
        lo, hi = first + 1, last
        while True:
            while _lt(a[lo], a[first]):
                lo += 1
            hi -= 1
            while _lt(a[first], a[hi]):
                hi -= 1
            if lo >= hi:
                break
            a[lo], a[hi] = a[hi], a[lo]
            lo += 1
        if lo <= nth:
            first = lo
        else:
            last = lo
    for i in range(first + 1, last):  # stable insertion sort
        v = a[i]
        j = i
        while j > first and _lt(v, a[j - 1]):
            a[j] = a[j - 1]
            j -= 1
        a[j] = v


def torch_cpu_smallest(values, k):
    """The index set torch.topk(values, k, largest=False) returns on the CPU."""
    pairs = [(float(v), i) for i, v in enumerate(values)]
    n = len(pairs)
    k = min(k, n)
    if k == 0:
        return []
    if 64 * k <= n:
        _heap_select(pairs, 0, k, n)
    else:
        _introselect(pairs, k - 1)
    return sorted(i for _, i in pairs[:k])


# ---------------------------------------------------------------- §6.2 anchors
def anchors_for(levels):
    out, counts = [], []
    for h, w, s in levels:
        size = 8 * s
        ctr = (s - 1) / 2.0
        half = (size - 1) / 2.0
        ys, xs = np.meshgrid(np.arange(h) * s, np.arange(w) * s, indexing="ij")
        xs = xs.reshape(-1).astype(F)
        ys = ys.reshape(-1).astype(F)
        lo, hi = F(ctr - half), F(ctr + half)
        out.append(np.stack([xs + lo, ys + lo, xs + hi, ys + hi], axis=1))
        counts.append(h * w)
    return np.concatenate(out).astype(F), counts


# ---------------------------------------------------------------- §9 assignment
def iou_one(anchors, box):
    one = F(1)
    area_a = (anchors[:, 2] - anchors[:, 0] + one) * (anchors[:, 3] - anchors[:, 1] + one)
    area_b = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    iw = np.maximum(np.minimum(anchors[:, 2], box[2]) - np.maximum(anchors[:, 0], box[0]) + one, F(0))
    ih = np.maximum(np.minimum(anchors[:, 3], box[3]) - np.maximum(anchors[:, 1], box[1]) + one, F(0))
    inter = iw * ih
    return inter / (area_a + area_b - inter)


def encode(box, anc):
    one, two = F(1), F(2)
    aw = anc[:, 2] - anc[:, 0] + one
    ah = anc[:, 3] - anc[:, 1] + one
    acx = (anc[:, 2] + anc[:, 0]) / two
    acy = (anc[:, 3] + anc[:, 1]) / two
    gw = box[:, 2] - box[:, 0] + one
    gh = box[:, 3] - box[:, 1] + one
    gcx = (box[:, 2] + box[:, 0]) / two
    gcy = (box[:, 3] + box[:, 1]) / two
    return np.stack([F(10) * (gcx - acx) / aw, F(10) * (gcy - acy) / ah,
                     F(5) * np.log(gw / aw), F(5) * np.log(gh / ah)], axis=1).astype(F)


def decode(d, anc):
    one, two, half = F(1), F(2), F(0.5)
    w = anc[:, 2] - anc[:, 0] + one
    h = anc[:, 3] - anc[:, 1] + one
    cx = (anc[:, 2] + anc[:, 0]) / two
    cy = (anc[:, 3] + anc[:, 1]) / two
    clamp = F(np.log(1000.0 / 16))
    dx, dy = d[:, 0] / F(10), d[:, 1] / F(10)
    dw, dh = np.minimum(d[:, 2] / F(5), clamp), np.minimum(d[:, 3] / F(5), clamp)
    pcx, pcy = dx * w + cx, dy * h + cy
    pw, ph = np.exp(dw) * w, np.exp(dh) * h
    return np.stack([pcx - half * (pw - one), pcy - half * (ph - one),
                     pcx + half * (pw - one), pcy + half * (ph - one)], axis=1)


def assign(levels, boxes):
    anchors, counts = anchors_for(levels)
    q = len(anchors)
    boxes = np.asarray(boxes, dtype=F).reshape(-1, 4)
    two = F(2)
    acx = (anchors[:, 2] + anchors[:, 0]) / two
    acy = (anchors[:, 3] + anchors[:, 1]) / two
    best = np.full(q, -np.inf, dtype=F)
    match = np.full(q, -1, dtype=np.int64)
    ties = 0
    for g, box in enumerate(boxes):
        gcx = (box[2] + box[0]) / two
        gcy = (box[3] + box[1]) / two
        dx, dy = acx - gcx, acy - gcy
        dist = np.sqrt(dx * dx + dy * dy)
        cand, start = [], 0
        for n in counts:
            d = dist[start:start + n]
            k = min(TOPK, n)
            chosen = torch_cpu_smallest(d, k)
            if k < n:
                s = np.sort(d)
                ties += int(s[k - 1] == s[k])
            cand.extend(start + i for i in chosen)
            start += n
        cand = np.array(cand, dtype=np.int64)
        ious = iou_one(anchors[cand], box)
        i64 = ious.astype(np.float64)
        mean = F(i64.mean())
        std = F(i64.std(ddof=1)) if len(i64) > 1 else F(np.nan)
        thr = mean + std
        c_x, c_y = acx[cand], acy[cand]
        margin = np.minimum(np.minimum(c_x - box[0], c_y - box[1]), np.minimum(box[2] - c_x, box[3] - c_y))
        pos = (ious >= thr) & (margin > F(0.01))
        for a, v in zip(cand[pos], ious[pos]):
            if v > best[a]:  # first box wins ties, as argmax does
                best[a] = v
                match[a] = g
    pos = np.nonzero(match >= 0)[0]
    reg = encode(boxes[match[pos]], anchors[pos]) if len(pos) else np.zeros((0, 4), F)
    if len(pos):
        gt = decode(reg, anchors[pos])
        cx, cy = acx[pos], acy[pos]
        l, r = cx - gt[:, 0], gt[:, 2] - cx
        t, b = cy - gt[:, 1], gt[:, 3] - cy
        ctr = np.sqrt((np.minimum(l, r) / np.maximum(l, r)) * (np.minimum(t, b) / np.maximum(t, b)))
    else:
        ctr = np.zeros(0, F)
    return {"pos": pos.tolist(), "gt": match[pos].tolist(), "reg": reg.astype(float).tolist(),
            "ctr": ctr.astype(float).tolist(), "ties": ties}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    json.dump({"cases": [assign(c["levels"], c["boxes"]) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
