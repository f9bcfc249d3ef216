"""Shard balance: the makespan of N shards against the ideal (total cost / N) for odinw's
longest-first assignment (LPT, `odinw plan`), side by side with the two static splits other
harnesses use: round-robin (unit i to shard i mod N) and contiguous blocks (the run order cut
into N equal-count pieces, as splitting a task list over GPUs does); `bound` is the best any
assignment of whole units can do (the largest unit, or the ideal). Costs are `odinw plan`'s
estimates (images × epochs); the plans are read from `odinw plan ... --json`.

usage: python3 balance.py ODINW  (prints a Markdown table)
"""
import json
import os
import subprocess
import sys

CASES = [
    ("demo zero-shot (4 tasks)", ["eval", "--suite", "demo"], [2, 3, 4]),
    (
        "demo 3-shot prompt tuning, seeds 3,30,300 (12 units)",
        ["finetune", "--suite", "demo", "--shots", "3"],
        [2, 4, 8],
    ),
    (
        "ODinW-35 3-shot, seeds 3,30,300 (105 units), registry-simulated",
        ["finetune", "--suite", "odinw35", "--shots", "3", "--root", "/nonexistent"],
        [4, 8, 16, 32],
    ),
]


def plan(odinw, args, n):
    out = subprocess.run(
        [odinw, "plan", *args, "--shards", str(n), "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={
            k: v
            for k, v in os.environ.items()
            if k not in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX")
        },
    )
    return json.loads(out.stdout)


def makespan(costs, shard_of, n):
    loads = [0] * n
    for c, s in zip(costs, shard_of):
        loads[s] += c
    return max(loads)


def main():
    odinw = sys.argv[1]
    print("| workload | N | ideal | bound | LPT (odinw) | round-robin | contiguous |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, args, shards in CASES:
        for n in shards:
            p = plan(odinw, args, n)
            costs = [u["cost"] for u in p["units"]]
            ideal = sum(costs) / n
            lpt = makespan(costs, [u["shard"] for u in p["units"]], n)
            assert lpt == p["makespan"], "odinw's makespan disagrees with its assignment"
            rr = makespan(costs, [i % n for i in range(len(costs))], n)
            per = -(-len(costs) // n)
            block = makespan(costs, [i // per for i in range(len(costs))], n)
            r = lambda m: f"{m / ideal:.3f}"
            # No assignment beats its largest unit, nor the ideal.
            bound = max(max(costs), ideal)
            print(
                f"| {name} | {n} | {ideal:.0f} | {r(bound)} | {r(lpt)} | {r(rr)} | {r(block)} |"
            )


if __name__ == "__main__":
    main()
