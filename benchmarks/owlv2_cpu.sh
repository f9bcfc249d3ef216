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
FAMILY=owlv2
SHORT=owlv2
CONFIG=${CONFIG:-base}
N=${N:-8}
make_model() { "$PY" benchmarks/gpu/make_owlv2.py --config "$CONFIG" --weights "$WEIGHTS" --out "$MODEL"; }
run_eager() { "$PY" benchmarks/gpu/owlv2_eager.py "$@" --odinw-log "$WORK/run/ColorShapes/log.txt"; }
# shellcheck source=benchmarks/family_cpu.sh
source "$(dirname "$0")/family_cpu.sh"
