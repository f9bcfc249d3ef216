"""Times COCO bbox evaluation end to end (JSON loading included) for pycocotools,
faster-coco-eval, hotcoco and `odinw score` on the same files, in one run, and prints the
ratios. Each run is a fresh process. For the Python tools the time is measured inside the
process from before loading the GT to after summarize() (interpreter start and imports are
not counted); for odinw it is the wall time of the whole `odinw score` process (start-up
included), which is the stricter measure. Also checks that all tools print the same 12 stats.

Usage: bench.py --gt GT --dt DT --odinw BIN [--runs N] [--only NAME ...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SNIPPETS = {
    "pycocotools": """
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval as Eval
""",
    "faster-coco-eval": """
from faster_coco_eval import COCO
from faster_coco_eval import COCOeval_faster as Eval
""",
    "hotcoco": """
from hotcoco import COCO
from hotcoco import COCOeval as Eval
""",
}

BODY = """
import contextlib, io, json, sys, time
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    t1 = time.perf_counter()
    E = Eval(gt, dt, "bbox")
    E.evaluate()
    E.accumulate()
    E.summarize()
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "total": t2 - t0, "stats": [float(v) for v in E.stats]}))
"""


def run_python(name, gt, dt):
    code = SNIPPETS[name] + BODY
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, gt, dt], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"e2e": r["total"], "wall": wall, "stats": r["stats"]}


def run_odinw(binary, gt, dt):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "score.json")
        t = time.perf_counter()
        out = subprocess.run([binary, "score", "--gt", gt, "--dt", dt, "--json", report],
                             capture_output=True, text=True)
        wall = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(f"odinw failed:\n{out.stderr}")
        with open(report) as f:
            stats = json.load(f)["stats"]
    return {"e2e": wall, "wall": wall, "stats": stats}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gt", required=True)
    ap.add_argument("--dt", required=True)
    ap.add_argument("--odinw", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    names = ["pycocotools", "faster-coco-eval", "hotcoco", "odinw"]
    if args.only:
        names = [n for n in names if n in args.only]
    results = {}
    for name in names:
        runs = []
        for i in range(args.runs):
            if name == "odinw":
                r = run_odinw(args.odinw, args.gt, args.dt)
            else:
                r = run_python(name, args.gt, args.dt)
            print(f"  {name} run {i + 1}: {r['e2e']:.3f} s (process {r['wall']:.3f} s)", file=sys.stderr)
            runs.append(r)
        results[name] = {
            "e2e": statistics.median(r["e2e"] for r in runs),
            "e2e_min": min(r["e2e"] for r in runs),
            "wall": statistics.median(r["wall"] for r in runs),
            "stats": runs[0]["stats"],
        }

    def ratio(base, name):
        if base not in results:
            return "-"
        v = results[base]["e2e"] / results[name]["e2e"]
        return f"{v:.1f}x" if v >= 1 else f"{v:.2g}x"

    ref = results.get("pycocotools", {}).get("stats")
    print(f"\nend to end (load + evaluate + accumulate + summarize), median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs")
    print(f"| implementation | end to end (s) | min (s) | process wall (s) | vs pycocotools | vs hotcoco | max |stats diff| vs pycocotools |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        diff = "-" if ref is None else f"{max(abs(a - b) for a, b in zip(r['stats'], ref)):.1e}"
        print(f"| {name} | {r['e2e']:.3f} | {r['e2e_min']:.3f} | {r['wall']:.3f} | "
              f"{ratio('pycocotools', name)} | {ratio('hotcoco', name)} | {diff} |")


if __name__ == "__main__":
    main()
