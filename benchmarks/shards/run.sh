#!/usr/bin/env bash
# Shard balance of `odinw plan` (LPT) against round-robin and contiguous splits; see balance.py.
# Costs only (no model runs): seconds on a laptop. Uses the debug build unless ODINW is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
odinw=${ODINW:-target/debug/odinw}
[ -x "$odinw" ] || cargo build -q
python3 benchmarks/shards/balance.py "$(realpath "$odinw")"
