#!/usr/bin/env bash
# `odinw splits --ann` against GLIP's sampler in Python (pycocotools + CPython random, as
# tests/oracles/fewshot.py implements it) on one generated COCO file, same shots and seeds, in
# one run. Prints each wall time and the ratio. odinw also hashes the source and writes the 12
# files; the Python side only computes the selections.
#   IMAGES=100000 bash benchmarks/splits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
images=${IMAGES:-100000}
python=${ODINW_PYTHON:-.venv/bin/python}
shots=1,3,5,10
seeds=3,30,300
cargo build --release -q
bin=${CARGO_TARGET_DIR:-target}/release/odinw
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" benchmarks/make_coco.py "$images" "$tmp/big.json"
echo "source: $images images, $(du -h "$tmp/big.json" | cut -f1)"

now() { date +%s.%N; }
t0=$(now)
"$bin" splits --ann "$tmp/big.json" --shots $shots --seeds $seeds --out "$tmp/odinw" --quiet >/dev/null
t1=$(now)
"$python" tests/oracles/fewshot.py "$tmp/big.json" --shots $shots --seeds $seeds >"$tmp/python.json" 2>/dev/null
t2=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  r = b - a; p = c - b;
  printf "odinw splits      %7.2f s\npython (GLIP way) %7.2f s\nratio python/odinw %6.1fx\n", r, p, p / r }'
