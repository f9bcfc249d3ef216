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
FAMILY=grounding-dino
SHORT=gdino
CONFIG=${CONFIG:-swin-t}
CANVAS=${CANVAS:-800x1333}
N=${N:-4}
make_model() {
  "$PY" benchmarks/gpu/make_grounding_dino.py --config "$CONFIG" --canvas "$CANVAS" --weights "$WEIGHTS" --out "$MODEL"
}
run_eager() { "$PY" benchmarks/gpu/gdino_eager.py "$@" --pad-to-canvas; }
# shellcheck source=benchmarks/family_cpu.sh
source "$(dirname "$0")/family_cpu.sh"
