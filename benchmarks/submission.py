"""Benchmark: `odinw submit` and `odinw submission check` (streaming, one pass) against the
in-memory alternative in Python (json.load everything, build the dict, json.dump; check by
walking the loaded object), on a synthetic few-shot run of all 35 ODinW tasks × 3 seeds.

Usage: python3 benchmarks/submission.py [--odinw BIN] [--dets N] [--work DIR]
Prints wall time and peak memory (max RSS) of each, and the ratios.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEEDS = [3, 30, 300]


def tasks():
    out = []
    for f in sorted((REPO / "odinw_35").glob("*.json")):
        t = json.loads(f.read_text())
        out.append(t)
    return sorted(out, key=lambda t: t["index"])


def make_data(work, dets, images):
    rng = random.Random(0)
    root, run = work / "DATASET", work / "run"
    run.mkdir(parents=True)
    names = [t["name"] for t in tasks()]
    manifest = {
        "format": 1, "odinw_version": "bench", "command": ["bench"], "track": "few-shot",
        "suite": "odinw35", "split": "test", "prompts": "odinw35", "tasks": names,
        "shots": 3, "seeds": SEEDS,
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    for t in tasks():
        cats = [c["id"] for c in t["categories"]]
        ann = root / t["splits"]["test"]["ann_file"]
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(json.dumps({
            "images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(images)],
            "annotations": [],
            "categories": [{"id": c, "name": str(c)} for c in cats],
        }))
        for s in SEEDS:
            d = run / t["name"] / f"seed{s}"
            d.mkdir(parents=True)
            preds = [
                {"image_id": rng.randrange(images), "category_id": rng.choice(cats),
                 "bbox": [rng.uniform(0, 500), rng.uniform(0, 500), rng.uniform(1, 100), rng.uniform(1, 100)],
                 "score": rng.random()}
                for _ in range(dets)
            ]
            (d / "predictions.json").write_text(json.dumps(preds))
    return root, run


PY_SUBMIT = r"""
import json, sys
run, out = sys.argv[1], sys.argv[2]
m = json.load(open(f"{run}/manifest.json"))
sub = {t: {str(s): json.load(open(f"{run}/{t}/seed{s}/predictions.json")) for s in m["seeds"]} for t in m["tasks"]}
json.dump(sub, open(out, "w"))
"""

PY_CHECK = r"""
import json, math, sys
sub_path, root, reg = sys.argv[1], sys.argv[2], sys.argv[3]
sub = json.load(open(sub_path))
problems = 0
for task, seeds in sub.items():
    t = json.load(open(f"{reg}/{task}.json"))
    ann = json.load(open(f"{root}/{t['splits']['test']['ann_file']}"))
    images = {i["id"] for i in ann["images"]}
    cats = {c["id"] for c in ann["categories"]}
    for s in ("3", "30", "300"):
        for r in seeds.get(s, []):
            if r["image_id"] not in images: problems += 1
            if r["category_id"] not in cats: problems += 1
            b = r["bbox"]
            if len(b) != 4 or not all(math.isfinite(v) for v in b) or b[2] < 0 or b[3] < 0: problems += 1
            if not math.isfinite(r["score"]): problems += 1
print(problems)
sys.exit(3 if problems else 0)
"""


def measure(cmd):
    """Runs cmd under /usr/bin/time (Linux keeps a forked child's pre-exec peak in its own
    max RSS, so the peak is measured from a small parent); returns (seconds, max RSS MiB)."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{cmd[:3]} failed with {p.returncode}: {p.stderr.decode()[-2000:]}")
    return seconds, int(p.stderr.decode().strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--odinw", default=os.environ.get("ODINW_BIN", str(REPO / "target/release/odinw")))
    ap.add_argument("--dets", type=int, default=10000, help="detections per task and seed")
    ap.add_argument("--images", type=int, default=500, help="test images per task")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="odinw-bench-"))
    try:
        root, run = make_data(work, args.dets, args.images)
        n = 35 * 3 * args.dets
        sub_rs, sub_py = work / "sub_rs.json", work / "sub_py.json"
        rows = []
        a = measure([args.odinw, "submit", str(run), "--out", str(sub_rs)])
        b = measure([sys.executable, "-c", PY_SUBMIT, str(run), str(sub_py)])
        same = subprocess.run([sys.executable, "-c", "import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))", str(sub_rs), str(sub_py)])
        assert same.returncode == 0, "the two submissions differ"
        rows.append(("submit", a, b))
        a = measure([args.odinw, "submission", "check", str(sub_rs), "--root", str(root)])
        b = measure([sys.executable, "-c", PY_CHECK, str(sub_rs), str(root), str(REPO / "odinw_35")])
        rows.append(("check", a, b))
        size = sub_rs.stat().st_size / 2**20
        print(f"{n} detections (35 tasks x 3 seeds x {args.dets}), submission {size:.0f} MiB; odinw = {args.odinw}")
        print(f"{'step':8} {'odinw s':>9} {'python s':>9} {'time ratio':>10} {'odinw MiB':>10} {'python MiB':>11} {'memory ratio':>12}")
        for name, (ta, ma), (tb, mb) in rows:
            print(f"{name:8} {ta:9.2f} {tb:9.2f} {tb / ta:9.1f}x {ma:10.0f} {mb:11.0f} {mb / ma:11.1f}x")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
