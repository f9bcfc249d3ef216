#!/usr/bin/env python3
"""Collect what benchmarks/gpu/run_on_device.sh measured into one JSON: <out>/gpu_eval.json.

    summarize.py --out OUT --work WORK --smoke 0 --big-batch 8 --total-s 300

Reads the stage statuses (OUT/stages.jsonl), the export report, odinw's run logs (images/s
after the first batch), the GPU-utilisation records (OUT/logs/*.json), PyTorch eager's report
(OUT/eager.json), the parity comparisons and, if present, OUT/train_step.json, then the same
for OWLv2 and Grounding DINO (benchmarks/gpu/families.sh: OUT/<owlv2|gdino>_*.json, runs
WORK/<prefix>-run-*; a skipped family with its reason); prints the summary and writes it
atomically. Missing pieces become null with the failed stage named.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

STEADY = re.compile(r"inference (\d+) images: first batch ([\d.]+) s(?:, then ([\d.]+) images/s)?")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def last_json_line(path: Path):
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def json_lines(path: Path) -> list:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def odinw_run(out: Path, work: Path, name: str, batch: int, binding: str, prefix: str = "") -> dict:
    """One odinw run: GLIP's (logs/odinw-NAME.json, WORK/run-NAME) or a family's with `prefix`
    (logs/PREFIX-NAME.json, WORK/PREFIX-run-NAME)."""
    rec = read_json(out / "logs" / f"{prefix or 'odinw'}-{name}.json") or {}
    row = {"batch": batch, "io_binding": binding, "rc": rec.get("rc"), "process_s": rec.get("wall_s"),
           "util": rec.get("util")}
    run_dir = work / (f"{prefix}-run-{name}" if prefix else f"run-{name}")
    log = run_dir / "ColorShapes" / "log.txt"
    try:
        m = STEADY.search(log.read_text())
    except OSError:
        m = None
    if m:
        row.update(images=int(m.group(1)), first_batch_s=float(m.group(2)),
                   images_per_s=float(m.group(3)) if m.group(3) else None)
    trace = rec.get("trace")
    if trace and row.get("images_per_s"):
        # odinw logs no clock times: take the steady phase as the span of that length ending at
        # the last busy sample (scoring and writing after inference take well under a second).
        steady_s = (row["images"] - batch) / row["images_per_s"]
        busy = [t for t, u in trace if u >= 5]
        if busy:
            end = busy[-1]
            window = [u for t, u in trace if end - steady_s <= t <= end]
            if window:
                row["util_steady_estimate"] = {"seconds": round(steady_s, 2), "samples": len(window),
                                               "mean": round(sum(window) / len(window), 1)}
    manifest = read_json(run_dir / "manifest.json") or {}
    if manifest.get("runtime"):
        row["runtime"] = manifest["runtime"]
    return row


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def speed(out: Path, work: Path, big: int, prefix: str, eager) -> tuple[dict, dict]:
    """odinw's three runs and their ratios to eager's passes (GLIP's with prefix "")."""
    odinw = {"b1": odinw_run(out, work, "b1", 1, "auto (on for cuda)", prefix),
             f"b{big}": odinw_run(out, work, f"b{big}", big, "auto (on for cuda)", prefix),
             "b1_nobind": odinw_run(out, work, "b1-nobind", 1, "off", prefix)}
    eager_rates = {}
    if eager:
        for p in eager.get("passes", []):
            eager_rates[(p["precision"], p["batch"])] = p["images_per_s"]
    ratios = {}
    for key, batch in (("b1", 1), (f"b{big}", big)):
        rate = odinw[key].get("images_per_s")
        for precision in ("fp32-tf32-off", "fp32-tf32-on", "fp32"):
            if (precision, batch) in eager_rates:
                ratios[f"odinw_{key}_over_eager_{precision}_b{batch}"] = ratio(rate, eager_rates[(precision, batch)])
    ratios["io_binding_gain_b1"] = ratio(odinw["b1"].get("images_per_s"), odinw["b1_nobind"].get("images_per_s"))
    ratios[f"odinw_b{big}_over_b1"] = ratio(odinw[f"b{big}"].get("images_per_s"), odinw["b1"].get("images_per_s"))
    return odinw, ratios


def family(out: Path, work: Path, big: int, prefix: str, what: str, stages: list) -> dict:
    """A non-GLIP family's section: skipped with its reason, not run (FAMILIES left it out: runs
    of an earlier invocation in WORK are not reported), or its runs, eager, ratios, parity."""
    skipped = read_json(out / f"{prefix}_skipped.json")
    if skipped:
        return {"what": what, **skipped}
    if not any(s.get("stage", "").startswith(f"{prefix}-") for s in stages):
        return {"what": what, "ran": False}
    eager = read_json(out / f"{prefix}_eager.json")
    odinw, ratios = speed(out, work, big, prefix, eager)
    return {"what": what, "model": read_json(out / f"{prefix}_model.json"),
            "export": last_json_line(out / "logs" / f"{prefix}-export.log"), "odinw": odinw, "eager": eager,
            "eager_process": read_json(out / "logs" / f"{prefix}-eager.json"), "ratios": ratios,
            "parity": {"odinw_cuda_vs_cpu": read_json(out / f"{prefix}_parity_gpu_vs_cpu.json"),
                       "eager_vs_odinw_cuda": read_json(out / f"{prefix}_parity_eager_vs_odinw.json")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--smoke", default="0")
    ap.add_argument("--big-batch", type=int, default=8)
    ap.add_argument("--total-s", type=float)
    args = ap.parse_args(argv)
    out, work, big = args.out, args.work, args.big_batch

    stages = []
    try:
        stages = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        pass
    try:
        env = (out / "logs" / "env.log").read_text().splitlines()[:40]
    except OSError:
        env = None

    eager = read_json(out / "eager.json")
    odinw, ratios = speed(out, work, big, "", eager)

    summary = {
        "what": "GLIP-T random init, zero-shot eval of one task: odinw (ONNX Runtime CUDA EP) vs PyTorch eager",
        "smoke": args.smoke == "1",
        "env": env,
        "stages": stages,
        "failed_stages": [s["stage"] for s in stages if s.get("rc") != 0],
        "export": last_json_line(out / "logs" / "export.log"),
        "task": json_lines(out / "logs" / "task.log"),
        "odinw": odinw,
        "eager": eager,
        "eager_process": read_json(out / "logs" / "eager.json"),
        "ratios": ratios,
        "parity": {"odinw_cuda_vs_cpu": read_json(out / "parity_gpu_vs_cpu.json"),
                   "eager_vs_odinw_cuda": read_json(out / "parity_eager_vs_odinw.json")},
        "train_step": read_json(out / "train_step.json"),
        "owlv2": family(out, work, big, "owlv2", "OWLv2 (seeded random, see model.json / export), zero-shot eval "
                        "of the same task: odinw vs PyTorch eager (transformers' modules), queries embedded once",
                        stages),
        "grounding_dino": family(out, work, big, "gdino", "Grounding DINO (seeded random), zero-shot eval of the "
                                 "same task: odinw vs PyTorch eager (transformers' forward)", stages),
        "total_s": args.total_s,
        "notes": [
            "odinw images/s: after the first batch, decode + resize on the rayon pool (one batch ahead) "
            "+ inference + post-processing, from the run's log.txt; session creation and warm-up excluded",
            "eager images/s: inputs prepared beforehand; host->GPU copy, backbone, head, outputs copied back; "
            "2 warm-up batches excluded; cudnn.benchmark off",
            "util: nvidia-smi utilization.gpu every 100 ms; for odinw over the whole process "
            "(busy_mean: from the first to the last sample >= 5%; util_steady_estimate: the steady phase's "
            "length, ending at the last busy sample), for eager over the timed loop",
            "parity: 'close' = matched with IoU >= 0.99 and |score diff| <= 0.01",
        ],
    }
    text = json.dumps(summary, indent=1)
    print(text)
    tmp = out / "gpu_eval.json.tmp"
    tmp.write_text(text + "\n")
    os.replace(tmp, out / "gpu_eval.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
