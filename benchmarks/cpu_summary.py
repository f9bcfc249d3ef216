#!/usr/bin/env python3
"""The JSON summary of benchmarks/owlv2_cpu.sh and benchmarks/gdino_cpu.sh, from what a run left
in WORK (odinw's run of ColorShapes, its stdout in odinw.log, the eager script's eager.json,
parity.json of compare_predictions.py, the export's export.json).

    cpu_summary.py --family owlv2|grounding-dino --work WORK --out OUT.json --odinw BIN \\
        --config base --threads 2 --batch 1 [--load-before "..." --load-after "..." --total-s S]

odinw's images/s: the rate its task log reports after the first batch (`then R images/s`, two
decimals), and, because two decimals are coarse for a slow CPU model (0.06), the same rate
recomputed from the task's seconds on its stdout line and the first batch's seconds in the log:
(images - first batch's images) / (task seconds - first batch seconds). The task's seconds also
count opening the task, embedding the queries, scoring and writing (well under a second here), so
this is a lower bound of odinw's rate; the ratio uses it. Eager's rate is the eager script's first
pass (owlv2_eager.py / gdino_eager.py: images / seconds of the timed loop, model only), and a
second rate adds the processor's seconds per image (what a serial eager evaluation would spend).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path


# Per family: the summary's description, the eager model's name, and eager.json's keys that
# describe the queries.
FAMILIES = {
    "owlv2": ("OWLv2", "transformers' Owlv2ForObjectDetection modules", ["queries", "templates", "classes"]),
    "grounding-dino": ("Grounding DINO", "transformers' GroundingDinoForObjectDetection",
                       ["caption", "text_tokens"]),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=sorted(FAMILIES), default="owlv2")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--odinw", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--load-before")
    ap.add_argument("--load-after")
    ap.add_argument("--total-s", type=float)
    args = ap.parse_args(argv)
    work = args.work
    log_path = work / "run/ColorShapes/log.txt"
    m = re.search(r"inference (\d+) images: first batch ([\d.]+) s, then ([\d.]+) images/s", log_path.read_text())
    if not m:
        print(f"error: no steady images/s in {log_path} (a single batch?)", file=sys.stderr)
        return 1
    images, first_s, logged = int(m.group(1)), float(m.group(2)), float(m.group(3))
    line = re.search(r"ColorShapes\s+AP\s+[\d.]+\s+(\d+) images, \d+ detections, ([\d.]+) s",
                     (work / "odinw.log").read_text())
    steady = None
    if line and int(line.group(1)) == images:
        steady_s = float(line.group(2)) - first_s
        steady = (images - min(args.batch, images)) / steady_s if steady_s > 0 else None
    odinw_rate = steady if steady is not None else logged

    eager = json.loads((work / "eager.json").read_text())
    p = eager["passes"][0]
    e = p["images"] / p["seconds"]
    pre = eager["preprocess_s_per_image"]
    e_with_pre = 1.0 / (1.0 / e + pre)
    version = subprocess.run([args.odinw, "--version"], capture_output=True, text=True).stdout.strip()
    name, eager_model, query_keys = FAMILIES[args.family]
    summary = {
        "what": f"{name} zero-shot eval on CPU: odinw (ONNX Runtime) vs PyTorch eager ({eager_model}), "
                "same weights, images, queries and thread count",
        "family": args.family,
        "config": args.config, "threads": args.threads, "batch": args.batch, "images": images,
        **{k: eager[k] for k in query_keys if k in eager},
        "odinw": {"binary": args.odinw, "version": version, "images_per_s": round(odinw_rate, 4),
                  "images_per_s_logged": logged, "first_batch_s": first_s},
        "eager": {"torch": eager["torch"], "transformers": eager["transformers"], "threads": eager.get("threads"),
                  "images_per_s": round(e, 4), "seconds": p["seconds"], "processor_s_per_image": pre,
                  "images_per_s_with_processor": round(e_with_pre, 4)},
        "ratio_odinw_over_eager": round(odinw_rate / e, 3),
        "ratio_odinw_over_eager_with_processor": round(odinw_rate / e_with_pre, 3),
        "parity_eager_vs_odinw": json.loads((work / "parity.json").read_text()),
        "loadavg_before": args.load_before, "loadavg_after": args.load_after, "nproc": os.cpu_count(),
        "total_s": args.total_s,
    }
    export = work / "export.json"
    if export.is_file() and export.read_text().strip():
        summary["export"] = json.loads(export.read_text().strip().splitlines()[-1])
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
