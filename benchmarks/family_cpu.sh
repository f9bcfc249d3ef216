# The common part of benchmarks/owlv2_cpu.sh and benchmarks/gdino_cpu.sh (sourced by them after
# they set FAMILY, SHORT and the defaults of CONFIG and N, and define make_model and run_eager):
# exports the seeded random model into $WORK (reused unless REEXPORT=1), lays out N images as the
# demo suite's ColorShapes test split, runs `odinw eval` and the family's eager script with the
# same threads and batch, compares their detections on the first 2 images and writes
# $OUT/${SHORT}_cpu.json through benchmarks/cpu_summary.py.
# shellcheck shell=bash
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
THREADS=${THREADS:-2}
BATCH=${BATCH:-1}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/odinw-$SHORT-cpu}
OUT=${OUT:-$WORK}
if [ -z "${ODINW_BIN:-}" ]; then
  [ -x target/release/odinw ] || cargo build --release --quiet --bin odinw
  ODINW_BIN=$REPO/target/release/odinw
fi
WEIGHTS=$WORK/weights-$CONFIG
MODEL=$WORK/model-$CONFIG
TASK=$WORK/task
IMG_DIR=$TASK/odinw/ShapesDemo/ColorShapes/test
mkdir -p "$WORK" "$OUT"
export NO_GPU=1
started=$(date +%s)

if [ ! -f "$MODEL/model.json" ] || [ "${REEXPORT:-0}" = 1 ]; then
  rm -rf "$WEIGHTS" "$MODEL"
  make_model > "$WORK/export.json"
fi
rm -rf "$TASK" "$WORK/run"
"$PY" benchmarks/gpu/make_task.py --root "$TASK" --count "$N" > /dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$ODINW_BIN" eval --suite demo --tasks ColorShapes --split test --root "$TASK" --model "$MODEL" \
  --device cpu --threads "$THREADS" --batch "$BATCH" --out "$WORK/run" > "$WORK/odinw.log" 2>&1 \
  || { tail -n 20 "$WORK/odinw.log"; exit 1; }
run_eager --weights "$WEIGHTS" --model "$MODEL" \
  --ann "$IMG_DIR/annotations_without_background.json" --img-dir "$IMG_DIR" \
  --device cpu --threads "$THREADS" --batches "$BATCH" --budget-s 100000 \
  --parity-images 2 --parity-out "$WORK/eager_parity.json" --json "$WORK/eager.json" \
  > "$WORK/eager.log" 2>&1 || { tail -n 20 "$WORK/eager.log"; exit 1; }
"$PY" benchmarks/gpu/compare_predictions.py "$WORK/eager_parity.json" "$WORK/run/ColorShapes/predictions.json" \
  --images 1,2 --json "$WORK/parity.json" > /dev/null
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" benchmarks/cpu_summary.py --family "$FAMILY" --work "$WORK" --out "$OUT/${SHORT}_cpu.json" \
  --odinw "$ODINW_BIN" --config "$CONFIG" --threads "$THREADS" --batch "$BATCH" \
  --load-before "$load_before" --load-after "$load_after" --total-s "$(( $(date +%s) - started ))"
