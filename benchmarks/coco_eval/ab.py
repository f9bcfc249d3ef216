"""A/B timing of `odinw score` builds on the same files: runs each binary in turn (rotating the
order every round so that neither always goes first), and prints, per binary, wall and CPU
(user + sys) time, min and median, and the ratios to the first binary. For changes inside odinw
whose effect is a few percent, where bench.py's separate blocks of runs drift with machine load.

Usage: ab.py --gt GT --dt DT --rounds N NAME=BIN [NAME=BIN ...]
"""
import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gt", required=True)
    ap.add_argument("--dt", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("builds", nargs="+", help="NAME=BINARY; the first is the baseline")
    args = ap.parse_args()
    builds = [b.split("=", 1) for b in args.builds]
    wall = {n: [] for n, _ in builds}
    cpu = {n: [] for n, _ in builds}
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "score.json")
        for i in range(args.rounds):
            k = i % len(builds)
            for name, exe in builds[k:] + builds[:k]:
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([exe, "score", "--gt", args.gt, "--dt", args.dt, "--json", report],
                               check=True, capture_output=True)
                wall[name].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    base = builds[0][0]
    print(f"{args.rounds} rounds; ratios are to {base} (above 1: slower)")
    print("| build | wall min (s) | wall median (s) | cpu median (s) | wall median ratio | cpu median ratio |")
    print("|---|---|---|---|---|---|")
    for name, _ in builds:
        wm, cm = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"| {name} | {min(wall[name]):.3f} | {wm:.3f} | {cm:.3f} | "
              f"{wm / statistics.median(wall[base]):.3f} | {cm / statistics.median(cpu[base]):.3f} |")


if __name__ == "__main__":
    main()
