#!/usr/bin/env python3
"""How closely two sets of COCO detections agree, on the images of the first set.

    compare_predictions.py A.json B.json [--images 1,2,3] [--json OUT]

A and B are lists of {"image_id", "category_id", "bbox" xywh, "score"} (odinw's
predictions.json, or torch_eager.py's parity output). Every detection of A is matched greedily
(highest score first) to the unused detection of B on the same image and category with the
highest IoU; reported: counts, how many matched with IoU >= 0.99 and |score difference| <= 0.01
(the agreement a GPU and a CPU run of the same fp32 graphs should show), the largest score
difference and the smallest IoU among matches. Exit status 0 unless a file cannot be read: the
numbers are the verdict.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def compare(a: list, b: list, images: set | None = None) -> dict:
    if images is None:
        images = {d["image_id"] for d in a}
    a = [d for d in a if d["image_id"] in images]
    b = [d for d in b if d["image_id"] in images]
    used = [False] * len(b)
    close, max_score_diff, min_iou, matched = 0, 0.0, 1.0, 0
    for d in sorted(a, key=lambda d: -d["score"]):
        best, best_iou = None, -1.0
        for j, e in enumerate(b):
            if used[j] or e["image_id"] != d["image_id"] or e["category_id"] != d["category_id"]:
                continue
            v = iou(d["bbox"], e["bbox"])
            if v > best_iou:
                best, best_iou = j, v
        if best is None:
            continue
        used[best] = True
        matched += 1
        diff = abs(d["score"] - b[best]["score"])
        max_score_diff = max(max_score_diff, diff)
        min_iou = min(min_iou, best_iou)
        if best_iou >= 0.99 and diff <= 0.01:
            close += 1
    return {"images": sorted(images), "a": len(a), "b": len(b), "matched": matched, "close": close,
            "max_score_diff": round(max_score_diff, 6), "min_iou": round(min_iou, 6) if matched else None,
            "top_score_a": max((d["score"] for d in a), default=None),
            "top_score_b": max((d["score"] for d in b), default=None)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--images", help="comma-separated image ids (default: those in A)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    try:
        a, b = json.loads(args.a.read_text()), json.loads(args.b.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    images = {int(i) for i in args.images.split(",")} if args.images else None
    result = compare(a, b, images)
    text = json.dumps(result)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
