"""Oracle: COCO bbox metrics of a results file against an annotation file, with pycocotools.

Usage: coco_metrics.py ANNOTATIONS RESULTS
Prints {"stats": [12 numbers], "per_category": {name: AP}} (AP@[.5:.95], -1 where undefined),
the shape odinw's run store keeps in metrics.json.
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main(ann_path, res_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_category = {}
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_category[gt.cats[cat_id]["name"]] = float(np.mean(p)) if p.size else -1.0
    print(json.dumps({"stats": [float(s) for s in ev.stats], "per_category": per_category}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
