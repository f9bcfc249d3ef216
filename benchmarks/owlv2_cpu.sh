#!/usr/bin/env bash
# OWLv2 zero-shot evaluation on CPU: `odinw eval --model DIR` (ONNX Runtime) against PyTorch eager
# (transformers' Owlv2ForObjectDetection modules) with the same weights, images, class queries and
# thread count, in one run. Writes $OUT/owlv2_cpu.json (images/s of each, their ratio, a parity
# check of the two sets of detections) and prints it.
#
#   benchmarks/owlv2_cpu.sh                 (CONFIG=base N=8 THREADS=2 BATCH=1)
#
# Model (benchmarks/gpu/make_owlv2.py, seeded random): CONFIG=base is the hub checkpoints'
# geometry (ViT-B/16 at 960x960, 3600 patches; 12-layer text model), CONFIG=tiny the test
# suite's tiny one. The export is kept in $WORK and reused (REEXPORT=1 redoes it).
# Images: N procedural-shape JPEGs of 960-1280 x 720-960 (benchmarks/gpu/make_task.py) laid out
# as the demo suite's ColorShapes test split (6 classes, so 6 x the model's templates queries).
# odinw: $ODINW_BIN (default target/release/odinw, built here if absent), `--device cpu
# --threads $THREADS --batch $BATCH`; its images/s is the steady rate its log reports (decode and
# pre-processing one batch ahead on the rayon pool, inference, the evaluator's top-k; the first
# batch excluded; recomputed from its task and first-batch seconds where two decimals are too
# coarse: benchmarks/cpu_summary.py). Eager: benchmarks/gpu/owlv2_eager.py with torch.set_num_threads($THREADS),
# batch $BATCH, pixels prepared by Owlv2Processor before timing (so eager's images/s is the
# model alone; the processor's seconds per image are in the JSON too, and a second eager rate
# that adds them), 2 warm-up batches.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CONFIG=${CONFIG:-base}
N=${N:-8}
THREADS=${THREADS:-2}
BATCH=${BATCH:-1}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/odinw-owlv2-cpu}
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
  "$PY" benchmarks/gpu/make_owlv2.py --config "$CONFIG" --weights "$WEIGHTS" --out "$MODEL" > "$WORK/export.json"
fi
rm -rf "$TASK" "$WORK/run"
"$PY" benchmarks/gpu/make_task.py --root "$TASK" --count "$N" > /dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$ODINW_BIN" eval --suite demo --tasks ColorShapes --split test --root "$TASK" --model "$MODEL" \
  --device cpu --threads "$THREADS" --batch "$BATCH" --out "$WORK/run" > "$WORK/odinw.log" 2>&1 \
  || { tail -n 20 "$WORK/odinw.log"; exit 1; }
"$PY" benchmarks/gpu/owlv2_eager.py --weights "$WEIGHTS" --model "$MODEL" \
  --ann "$IMG_DIR/annotations_without_background.json" --img-dir "$IMG_DIR" \
  --odinw-log "$WORK/run/ColorShapes/log.txt" --device cpu --threads "$THREADS" --batches "$BATCH" \
  --budget-s 100000 --parity-images 2 --parity-out "$WORK/eager_parity.json" --json "$WORK/eager.json" \
  > "$WORK/eager.log" 2>&1 || { tail -n 20 "$WORK/eager.log"; exit 1; }
"$PY" benchmarks/gpu/compare_predictions.py "$WORK/eager_parity.json" "$WORK/run/ColorShapes/predictions.json" \
  --images 1,2 --json "$WORK/parity.json" > /dev/null
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" benchmarks/cpu_summary.py --family owlv2 --work "$WORK" --out "$OUT/owlv2_cpu.json" --odinw "$ODINW_BIN" \
  --config "$CONFIG" --threads "$THREADS" --batch "$BATCH" --load-before "$load_before" --load-after "$load_after" \
  --total-s "$(( $(date +%s) - started ))"
