#!/usr/bin/env bash
# Grounding DINO zero-shot evaluation on CPU: `odinw eval --model DIR` (ONNX Runtime) against
# PyTorch eager (transformers' GroundingDinoForObjectDetection) with the same weights, images,
# caption and thread count, in one run. Writes $OUT/gdino_cpu.json (images/s of each, their
# ratio, a parity check of the two sets of detections) and prints it.
#
#   benchmarks/gdino_cpu.sh                 (CONFIG=swin-t CANVAS=800x1333 N=4 THREADS=2 BATCH=1)
#
# Model (benchmarks/gpu/make_grounding_dino.py, seeded random): CONFIG=swin-t is
# Grounding-DINO-T's geometry (Swin-T, BERT-base text model, 6 + 6 layers, 900 queries) exported
# on a CANVAS canvas, CONFIG=tiny the test suite's tiny one (160x160). The export is kept in
# $WORK and reused (REEXPORT=1 redoes it).
# Images: N procedural-shape JPEGs of 960-1280 x 720-960 (benchmarks/gpu/make_task.py) laid out
# as the demo suite's ColorShapes test split (6 classes: one caption of 6 names).
# odinw: $ODINW_BIN (default target/release/odinw, built here if absent), `--device cpu
# --threads $THREADS --batch $BATCH`; its images/s is the steady rate after the first batch
# (decode and pre-processing one batch ahead, inference on the fixed canvas, top-k; see
# benchmarks/cpu_summary.py). Eager: benchmarks/gpu/gdino_eager.py with
# torch.set_num_threads($THREADS), batch $BATCH, inputs prepared by GroundingDinoProcessor before
# timing and padded to the model's canvas as odinw pads them (--pad-to-canvas: Swin's windows see
# the padding, so only then do both compute the same), one untimed pass, then a timed one of the
# whole forward (text model included, as transformers' API runs it per batch).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CONFIG=${CONFIG:-swin-t}
CANVAS=${CANVAS:-800x1333}
N=${N:-4}
THREADS=${THREADS:-2}
BATCH=${BATCH:-1}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/odinw-gdino-cpu}
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
  "$PY" benchmarks/gpu/make_grounding_dino.py --config "$CONFIG" --canvas "$CANVAS" --weights "$WEIGHTS" \
    --out "$MODEL" > "$WORK/export.json"
fi
rm -rf "$TASK" "$WORK/run"
"$PY" benchmarks/gpu/make_task.py --root "$TASK" --count "$N" > /dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

"$ODINW_BIN" eval --suite demo --tasks ColorShapes --split test --root "$TASK" --model "$MODEL" \
  --device cpu --threads "$THREADS" --batch "$BATCH" --out "$WORK/run" > "$WORK/odinw.log" 2>&1 \
  || { tail -n 20 "$WORK/odinw.log"; exit 1; }
"$PY" benchmarks/gpu/gdino_eager.py --weights "$WEIGHTS" --model "$MODEL" \
  --ann "$IMG_DIR/annotations_without_background.json" --img-dir "$IMG_DIR" \
  --device cpu --threads "$THREADS" --batches "$BATCH" --budget-s 100000 --pad-to-canvas \
  --parity-images 2 --parity-out "$WORK/eager_parity.json" --json "$WORK/eager.json" \
  > "$WORK/eager.log" 2>&1 || { tail -n 20 "$WORK/eager.log"; exit 1; }
"$PY" benchmarks/gpu/compare_predictions.py "$WORK/eager_parity.json" "$WORK/run/ColorShapes/predictions.json" \
  --images 1,2 --json "$WORK/parity.json" > /dev/null
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" benchmarks/cpu_summary.py --family grounding-dino --work "$WORK" --out "$OUT/gdino_cpu.json" \
  --odinw "$ODINW_BIN" --config "$CONFIG" --threads "$THREADS" --batch "$BATCH" \
  --load-before "$load_before" --load-after "$load_after" --total-s "$(( $(date +%s) - started ))"
