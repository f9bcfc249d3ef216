#!/usr/bin/env python3
"""GPU utilisation sampling (nvidia-smi every 100 ms) around a command or a block of Python.

    gpu_util.py run --json OUT.json --log OUT.log [--timeout S] -- CMD ARG...

runs CMD with its stdout and stderr in OUT.log while `nvidia-smi --query-gpu=utilization.gpu
--format=csv,noheader,nounits -lms 100` samples in the background, and writes OUT.json:
{"cmd", "rc", "wall_s", "timed_out", "util": {...}, "trace": [[t, %], ...]}. `util` is null without nvidia-smi (or with
NO_GPU=1). Each sample is stamped with the time it was read; `util` gives the mean, median, p90
and max over all samples, and "busy_mean" over the span from the first to the last sample of at
least 5% (what is left after model loading and before exit). The exit status is CMD's.

From Python: `with Sampler() as s: ...` then `s.stats()`; the eager benchmarks
(torch_eager.py, owlv2_eager.py, gdino_eager.py) share `precisions`, `set_tf32`, `time_batches`
(their timed passes) and `write_json_atomic`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"]


def available() -> bool:
    return os.environ.get("NO_GPU") != "1" and shutil.which("nvidia-smi") is not None


class Sampler:
    """Reads nvidia-smi's samples on a thread; a no-op without a GPU."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self.proc = None
        self.thread = None

    def __enter__(self):
        if available():
            self.proc = subprocess.Popen(QUERY, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            first = line.strip().split(",")[0].strip()  # one line per GPU: the first GPU
            try:
                self.samples.append((time.time(), float(first)))
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.thread.join(timeout=5)
        return False

    def stats(self):
        if self.proc is None:
            return None
        return summarize([u for _, u in self.samples])

    def trace(self, since: float) -> list[list[float]]:
        """[[seconds since `since`, utilisation %], ...]."""
        return [[round(t - since, 2), u] for t, u in self.samples]


def summarize(values: list[float]) -> dict:
    if not values:
        return {"samples": 0}
    ordered = sorted(values)
    busy = [i for i, v in enumerate(values) if v >= 5]
    window = values[busy[0]: busy[-1] + 1] if busy else []
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"samples": len(values), "mean": round(sum(values) / len(values), 1), "p50": pick(0.5),
            "p90": pick(0.9), "max": ordered[-1],
            "busy_mean": round(sum(window) / len(window), 1) if window else 0.0,
            "busy_samples": len(window)}


def run(args) -> int:
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    timed_out = False
    with open(args.log, "w") as log, Sampler() as sampler:
        try:
            proc = subprocess.run(args.cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc, timed_out = 124, True
        except OSError as err:
            log.write(f"cannot run {args.cmd[0]}: {err}\n")
            rc = 127
    report = {"cmd": args.cmd, "rc": rc, "timed_out": timed_out, "wall_s": round(time.time() - started, 2),
              "util": sampler.stats(), "trace": sampler.trace(started) if sampler.proc else None}
    write_json_atomic(Path(args.json), report)
    return rc


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def precisions(device) -> list[str]:
    """The eager passes' precisions: fp32 with TF32 off then on (CUDA), plain fp32 elsewhere."""
    return ["fp32-tf32-off", "fp32-tf32-on"] if device.type == "cuda" else ["fp32"]


def set_tf32(on: bool) -> None:
    import torch
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def time_batches(report: dict, label: str, precision: str, batches: list[int], items: list, run_batch,
                 device, deadline: float, warm_all: bool = False) -> None:
    """For each batch size, `run_batch(chunk)` over `items` in chunks of that size: untimed first
    (the first two chunks, or with `warm_all` every chunk once: kernels are chosen per shape), then
    timed with GPU utilisation sampled and the device synchronised. Appends a row per batch size
    to report["passes"] (images/s, utilisation, peak memory on CUDA), or its name to
    report["skipped"] once time.time() is past `deadline`."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for batch in batches:
        name = f"{precision} batch {batch}"
        if time.time() > deadline:
            report["skipped"].append(name)
            continue
        chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
        for chunk in chunks if warm_all else (chunks * 2)[:2]:
            run_batch(chunk)
        sync()
        with Sampler() as sampler:
            started = time.time()
            for chunk in chunks:
                run_batch(chunk)
            sync()
            seconds = time.time() - started
        row = {"precision": precision, "batch": batch, "images": len(items), "seconds": round(seconds, 3),
               "images_per_s": round(len(items) / seconds, 3), "util": sampler.stats()}
        if device.type == "cuda":
            row["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        report["passes"].append(row)
        print(f"torch eager {label}{name}: {row['images_per_s']} images/s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--json", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--timeout", type=float)
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd:
        ap.error("no command after --")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
