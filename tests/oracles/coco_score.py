"""Oracle for odinw's COCO evaluation: pycocotools' COCOeval(iouType="bbox") with default
parameters, run on many (gt, dt) pairs in one process.

Usage: coco_score.py MANIFEST.json
MANIFEST is a list of jobs {"gt": path, "dt": path, "out": path, "fix_id0": bool,
"fill_defaults": bool}. For each job it writes `out` (JSON) with:
  stats         the 12 numbers as Python reprs (exact doubles);
  per_category  {category id (as text): {"AP", "AP50", "APs", "APm", "APl"}} computed as
                GLIP's summarize_per_category (bbox.csv) does: np.mean over one category's
                slice of eval['precision'];
  numpy         the numpy version pycocotools ran on (its `np.mean` decides the last bits);
and `out`.precision.bin / `out`.recall.bin / `out`.scores.bin: eval['precision'] and
eval['scores'] ([T,R,K,A,M]) and eval['recall'] ([T,K,A,M]) as raw little-endian float64 in C
order.

Two switches mirror odinw options, so pycocotools itself scores the same question:
  fix_id0        GT annotations with id 0 get an unused id, so they can be matched (odinw
                 --fix-id0);
  fill_defaults  GT annotations without "area" get w*h and without "iscrowd" get 0 (odinw reads
                 them so; pycocotools would raise KeyError).
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def load_gt(path, fix_id0, fill_defaults):
    with open(path) as f:
        data = json.load(f)
    anns = data.get("annotations", [])
    if fix_id0:
        ids = [a["id"] for a in anns if isinstance(a["id"], (int, float))]
        spare = int(max(ids, default=0)) + 1
        for a in anns:
            if a["id"] == 0:
                a["id"] = spare
    if fill_defaults:
        for a in anns:
            a.setdefault("area", a["bbox"][2] * a["bbox"][3])
            a.setdefault("iscrowd", 0)
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


def per_category(E):
    """GLIP's bbox.csv rows (AP, AP50, APs, APm, APl) for every category."""
    p = E.params
    prec = E.eval["precision"]
    m = [i for i, d in enumerate(p.maxDets) if d == p.maxDets[2]]
    rows = {
        "AP": (None, "all"),
        "AP50": (0.5, "all"),
        "APs": (None, "small"),
        "APm": (None, "medium"),
        "APl": (None, "large"),
    }
    out = {}
    for name, (thr, area) in rows.items():
        a = [i for i, lbl in enumerate(p.areaRngLbl) if lbl == area]
        s = prec
        if thr is not None:
            s = s[np.where(thr == p.iouThrs)[0]]
        s = s[:, :, :, a, m]
        for k, cid in enumerate(p.catIds):
            out.setdefault(str(cid), {})[name] = repr(float(np.mean(s[:, :, k, :])))
    return out


def run(job):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = load_gt(job["gt"], job.get("fix_id0", False), job.get("fill_defaults", False))
        dt = gt.loadRes(job["dt"])
        E = COCOeval(gt, dt, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    result = {"stats": [repr(float(v)) for v in E.stats], "per_category": per_category(E),
              "numpy": np.__version__}
    with open(job["out"], "w") as f:
        json.dump(result, f)
    np.ascontiguousarray(E.eval["precision"], dtype="<f8").tofile(job["out"] + ".precision.bin")
    np.ascontiguousarray(E.eval["recall"], dtype="<f8").tofile(job["out"] + ".recall.bin")
    np.ascontiguousarray(E.eval["scores"], dtype="<f8").tofile(job["out"] + ".scores.bin")


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        try:
            run(job)
        except Exception as e:  # reported per job; the test decides what it means
            with open(job["out"], "w") as f:
                json.dump({"error": type(e).__name__, "message": str(e)}, f)


if __name__ == "__main__":
    main()
