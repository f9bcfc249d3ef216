#!/usr/bin/env bash
# COCO bbox evaluation benchmark: pycocotools, faster-coco-eval, hotcoco (pinned in
# requirements.txt, installed into a virtual environment here) and `odinw score`, timed end to
# end on the same generated files, with the ratios printed.
#   bash benchmarks/coco_eval/run.sh            # RUNS=3 per implementation
# Environment: RUNS, BENCH_VENV (default benchmarks/coco_eval/.venv), BENCH_DATA (default
# benchmarks/coco_eval/data), BENCH_ONLY (e.g. "hotcoco odinw" to skip the slow ones).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${BENCH_VENV:-$here/.venv}
data=${BENCH_DATA:-$here/data}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
if [ ! -f "$data/dt.json" ]; then
  "$venv/bin/python" "$here/generate.py" --out "$data"
fi
# Build, then copy the binary cargo reports so a concurrent build cannot swap it mid-run.
exe=$(cd "$root" && cargo build --release --message-format=json-render-diagnostics \
  | "$venv/bin/python" -c '
import json, sys
exe = None
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "odinw":
        exe = m["executable"]
print(exe)')
cp "$exe" "$data/odinw"
only=()
if [ -n "${BENCH_ONLY:-}" ]; then
  read -r -a words <<<"$BENCH_ONLY"
  only=(--only "${words[@]}")
fi
"$venv/bin/python" "$here/bench.py" --gt "$data/gt.json" --dt "$data/dt.json" \
  --odinw "$data/odinw" --runs "${RUNS:-3}" "${only[@]}"
