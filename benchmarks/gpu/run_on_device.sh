#!/usr/bin/env bash
# GLIP-T zero-shot evaluation on one GPU: odinw (ONNX Runtime CUDA EP, I/O binding) against
# PyTorch eager with the same weights, images and prompt, with GPU utilisation, plus a CUDA-vs-CPU
# parity check of odinw's predictions; then the same for OWLv2 and Grounding DINO
# (benchmarks/gpu/families.sh). One JSON summary: $OUT/gpu_eval.json (also printed).
# FAMILIES (default "glip owlv2 grounding-dino") picks the families to run.
#
# Run from the repository root on the GPU host (about 4-5 minutes, 1-2 of them the export; every
# stage has its own time limit and a failed stage is logged and skipped, the others still run):
#
#   ODINW=.gpubin/odinw bash benchmarks/gpu/run_on_device.sh
#
# Needs: the odinw binary (release build, $ODINW, default .gpubin/odinw); ORT_DYLIB_PATH at
# onnxruntime-gpu's libonnxruntime.so (1.31+) and LD_LIBRARY_PATH with CUDA 13 + cuDNN 9, as in
# shared/reference/gpu-measurements.md; python3 ($PYTHON) with torch (CUDA), onnx, onnxscript,
# numpy, Pillow (tokenizers optional); nvidia-smi. No network.
#
# Stages (logs in $OUT/logs/, one status line each in $OUT/stages.jsonl):
#   env       versions: GPU, driver, torch, ONNX Runtime library
#   export    random-init GLIP-T (seed 0), 800x1344, scripts/export_glip.py via
#             benchmarks/gpu/export_model.py, which also saves the state dict for PyTorch
#   bench-model  the export with model.json's pre_nms_thresh set to $PRE_NMS_THRESH (default 0):
#             random-init GLIP-T scores stay below GLIP's 0.05, which would leave post-processing
#             nothing to do and the parity check nothing to compare; ONNX graphs are symlinked
#   task      $N real-size JPEG images (960..1280 x 720..960, procedural shapes; all TASK_SIZE=WxH
#             if set) laid out as the demo suite's ColorShapes test split
#             (benchmarks/gpu/make_task.py), and a 3-image copy
#   prompt    `odinw prompt ColorShapes --suite demo --model ... --json` (token ids for PyTorch)
#   odinw     `odinw eval --device cuda` at batch 1 and $BIG_BATCH with I/O binding (the default on
#             CUDA), and batch 1 without it; images/s after the first batch (from odinw's log:
#             decode + inference + post-processing, the warm-up batch excluded), GPU utilisation
#   eager     benchmarks/gpu/torch_eager.py: fp32 with TF32 off and on, batch 1 and $BIG_BATCH,
#             inputs prepared beforehand (copy in, backbone, head, copy out), GPU utilisation
#   parity    odinw --device cpu on the 3-image task vs the CUDA batch-1 run on those images;
#             PyTorch eager's detections on them vs the same CUDA run
#   train     HOOK for benchmarks/train_step_gpu.py (run only if that file exists)
#   owlv2-*, gdino-*  the other families (benchmarks/gpu/families.sh, stages listed there)
#   summary   benchmarks/gpu/summarize.py -> $OUT/gpu_eval.json
#
# SMOKE=1 runs every stage on CPU at toy size (tiny config, 192x192, 5 images, batches 1 and 2,
# no nvidia-smi), to check the script end to end on a machine without a GPU.
set -u
cd "$(dirname "$0")/../.."
REPO=$(pwd)
SMOKE=${SMOKE:-0}
PY=${PYTHON:-python3}
ODINW=${ODINW:-.gpubin/odinw}
OUT=${OUT:-$REPO/runs/gpu-bench}
WORK=${WORK:-/tmp/odinw-gpu}
if [ "$SMOKE" = 1 ]; then
  CONFIG=tiny; SIZE_ARGS=(); N=${N:-5}; BIG_BATCH=${BIG_BATCH:-2}; DEVICE=cpu
  export NO_GPU=1
  T_EXPORT=${T_EXPORT:-600}; T_RUN=${T_RUN:-300}; T_EAGER=${T_EAGER:-300}; T_CPU=${T_CPU:-300}
else
  CONFIG=glip-t; SIZE_ARGS=(--image-size 800x1344); N=${N:-48}; BIG_BATCH=${BIG_BATCH:-8}; DEVICE=cuda
  T_EXPORT=${T_EXPORT:-300}; T_RUN=${T_RUN:-90}; T_EAGER=${T_EAGER:-120}; T_CPU=${T_CPU:-120}
fi
EXPORT=$WORK/export-$CONFIG
MODEL=$WORK/model-$CONFIG-bench
PRE_NMS_THRESH=${PRE_NMS_THRESH:-0.0}
TASK_ROOT=$WORK/task
TASK3_ROOT=$WORK/task3
ANN_REL=odinw/ShapesDemo/ColorShapes/test/annotations_without_background.json
IMG_REL=odinw/ShapesDemo/ColorShapes/test
mkdir -p "$OUT/logs" "$WORK"
# Nothing from an earlier run may reach this run's summary.
rm -f "$OUT"/logs/* "$OUT"/{eager,parity_gpu_vs_cpu,parity_eager_vs_odinw,train_step,gpu_eval,model}.json \
  "$OUT"/{owlv2,gdino}_{eager,parity_gpu_vs_cpu,parity_eager_vs_odinw,model,skipped}.json \
  "$WORK/prompt.json" "$WORK/eager_parity.json"
: > "$OUT/stages.jsonl"
export ODINW_CACHE=$WORK/cache
STARTED=$(date +%s)
if [[ "$ODINW" != /* ]]; then ODINW=$REPO/$ODINW; fi
export SMOKE PY ODINW DEVICE EXPORT MODEL PRE_NMS_THRESH
ODINW_ARGS=(--suite demo --tasks ColorShapes --split test --model "$MODEL")

FAMILIES=${FAMILIES:-glip owlv2 grounding-dino}
# want FAMILY: whether FAMILIES names it.
want() { case " $FAMILIES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

log() { echo "[$(( $(date +%s) - STARTED ))s] $*" >&2; }

# stage NAME LIMIT_S CMD...: runs CMD with a time limit, its output in $OUT/logs/NAME.log.
stage() {
  local name=$1 limit=$2; shift 2
  local t0 rc
  t0=$(date +%s%N)
  log "stage $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  rc=$?
  status "$name" "$rc" "$t0"
  if [ "$rc" != 0 ]; then
    log "stage $name FAILED (exit $rc); last lines of $OUT/logs/$name.log:"
    tail -n 15 "$OUT/logs/$name.log" >&2
  fi
  return "$rc"
}

# measured NAME LIMIT_S CMD...: as stage, with GPU utilisation sampled around CMD
# ($OUT/logs/NAME.json holds exit status, wall time and utilisation).
measured() {
  local name=$1 limit=$2; shift 2
  stage "$name" "$((limit + 15))" "$PY" benchmarks/gpu/gpu_util.py run --json "$OUT/logs/$name.json" \
    --log "$OUT/logs/$name.cmd.log" --timeout "$limit" -- "$@"
  local rc=$?
  if [ "$rc" != 0 ] && [ -f "$OUT/logs/$name.cmd.log" ]; then tail -n 15 "$OUT/logs/$name.cmd.log" >&2; fi
  return "$rc"
}

status() {
  local ms=$(( ($(date +%s%N) - $3) / 1000000 ))
  printf '{"stage": "%s", "rc": %s, "seconds": %d.%03d}\n' "$1" "$2" $((ms / 1000)) $((ms % 1000)) >> "$OUT/stages.jsonl"
}

env_info() {
  echo "odinw: $ODINW"; "$ODINW" --version
  echo "ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-}"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  "$PY" -c 'import sys, torch, onnx; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "onnx", onnx.__version__)'
  "$PY" -c 'import tokenizers; print("tokenizers", tokenizers.__version__)' 2>/dev/null || echo "tokenizers: absent (the committed tokenizer.json is used)"
  nproc
  if [ "$SMOKE" != 1 ]; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; fi
  "$ODINW" doctor --device "$DEVICE" || true
}

if [ ! -x "$ODINW" ]; then log "WARNING: no odinw binary at $ODINW (set ODINW): the odinw stages will fail"; fi
if [ "$SMOKE" != 1 ] && [ -z "${ORT_DYLIB_PATH:-}" ]; then
  log "WARNING: ORT_DYLIB_PATH is not set: odinw will look for onnxruntime-gpu in Python or try PyPI"
fi
if [ "$SMOKE" != 1 ]; then
  # The CUDA 13 and cuDNN 9 libraries of the Python environment (PyTorch's wheels), for ONNX
  # Runtime's CUDA provider, where LD_LIBRARY_PATH does not already name them.
  SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
  for d in "$SP/nvidia/cu13/lib" "$SP/nvidia/cudnn/lib"; do
    case ":${LD_LIBRARY_PATH:-}:" in *":$d:"*) ;; *) [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
  done
fi
export -f env_info
stage env 60 bash -c env_info

have_export=0
if ! want glip; then
  log "GLIP stages skipped (FAMILIES=$FAMILIES)"
elif [ -f "$EXPORT/model.json" ] && [ -f "$EXPORT/random_init_state.pt" ] && [ "${REEXPORT:-0}" != 1 ]; then
  log "reusing the export in $EXPORT (REEXPORT=1 to redo it)"
  have_export=1
elif stage export "$T_EXPORT" "$PY" benchmarks/gpu/export_model.py --config "$CONFIG" ${SIZE_ARGS[@]+"${SIZE_ARGS[@]}"} \
    --out "$EXPORT"; then
  have_export=1
fi

bench_model() {
  rm -rf "$MODEL" && mkdir -p "$MODEL" || return 1
  for f in "$EXPORT"/*; do
    case "$(basename "$f")" in model.json) ;; *) ln -s "$f" "$MODEL/" ;; esac
  done
  "$PY" - "$EXPORT/model.json" "$MODEL/model.json" "$PRE_NMS_THRESH" <<'PYEOF'
import json, sys
desc = json.load(open(sys.argv[1]))
desc["postprocess"]["pre_nms_thresh"] = float(sys.argv[3])
json.dump(desc, open(sys.argv[2], "w"), indent=1)
print("pre_nms_thresh", desc["postprocess"]["pre_nms_thresh"])
PYEOF
}
have_model=0
export -f bench_model
if [ "$have_export" = 1 ] && stage bench-model 30 bash -c bench_model; then have_model=1; fi

# TASK_SIZE=WxH gives every image that size (one canvas, as most RoboFlow tasks have); by default
# sizes are drawn from 960..1280 x 720..960 (nearly every image its own canvas: the worst case).
TASK_SIZES=()
if [ -n "${TASK_SIZE:-}" ]; then TASK_SIZES=(--min-size "$TASK_SIZE" --max-size "$TASK_SIZE"); fi
stage task 60 bash -c "rm -rf '$TASK_ROOT' '$TASK3_ROOT' && \
  '$PY' benchmarks/gpu/make_task.py --root '$TASK_ROOT' --count $N ${TASK_SIZES[*]-} && \
  '$PY' benchmarks/gpu/make_task.py --root '$TASK3_ROOT' --count 3 ${TASK_SIZES[*]-}"

if [ "$have_model" = 1 ]; then
  stage prompt 30 bash -c "'$ODINW' prompt ColorShapes --suite demo --model '$MODEL' --json > '$WORK/prompt.json'"

  # odinw on the GPU (on CPU in the smoke test): batch 1 and BIG_BATCH with I/O binding, batch 1
  # without. Each run is a fresh process (session creation and the first batch are excluded
  # from the images/s odinw logs).
  for run in "b1 1 auto" "b$BIG_BATCH $BIG_BATCH auto" "b1-nobind 1 off"; do
    set -- $run
    rm -rf "$WORK/run-$1"
    measured "odinw-$1" "$T_RUN" "$ODINW" eval "${ODINW_ARGS[@]}" --root "$TASK_ROOT" --device "$DEVICE" \
      --batch "$2" --io-binding "$3" --out "$WORK/run-$1"
  done

  measured eager "$T_EAGER" "$PY" benchmarks/gpu/torch_eager.py --model "$MODEL" --ann "$TASK_ROOT/$ANN_REL" \
    --img-dir "$TASK_ROOT/$IMG_REL" --prompt "$WORK/prompt.json" --batches "1,$BIG_BATCH" --device "$DEVICE" \
    --budget-s "$((T_EAGER - 20))" --parity-images 3 --parity-out "$WORK/eager_parity.json" --json "$OUT/eager.json"

  rm -rf "$WORK/run-cpu3"
  stage parity-cpu "$T_CPU" "$ODINW" eval "${ODINW_ARGS[@]}" --root "$TASK3_ROOT" --device cpu --batch 1 \
    --out "$WORK/run-cpu3"
  stage parity 30 bash -c "'$PY' benchmarks/gpu/compare_predictions.py '$WORK/run-b1/ColorShapes/predictions.json' \
      '$WORK/run-cpu3/ColorShapes/predictions.json' --images 1,2,3 --json '$OUT/parity_gpu_vs_cpu.json' && \
    '$PY' benchmarks/gpu/compare_predictions.py '$WORK/eager_parity.json' \
      '$WORK/run-b1/ColorShapes/predictions.json' --images 1,2,3 --json '$OUT/parity_eager_vs_odinw.json'"
fi

# ---- OWLv2 and Grounding DINO: the same measurements (benchmarks/gpu/families.sh) ----
# shellcheck source=benchmarks/gpu/families.sh
source benchmarks/gpu/families.sh

# ---- HOOK: training step on the GPU (benchmarks/train_step_gpu.py, written separately) ----
# Runs only when the file exists; its stdout/stderr go to $OUT/logs/train.log and it is expected
# to write $OUT/train_step.json, which the summary includes as "train_step".
# GLIP-T's prompt and full step graphs are exported into $MODEL/train (fake-tensor tracing) and
# timed in PyTorch eager, one track at a time; then `odinw bench-step` times each graph on ONNX
# Runtime's CUDA EP (parameters, inputs and gradients crossing host memory, as the trainer does).
if [ -f benchmarks/train_step_gpu.py ] && [ "$have_model" = 1 ]; then
  for track in ${TRAIN_TRACKS:-prompt full}; do
    TRAIN_ARGS=(--config "$CONFIG" --export-dir "$MODEL/train" --tracks "$track" --step-only
      --json "$OUT/train_step_$track.json")
    if [ "$SMOKE" = 1 ]; then TRAIN_ARGS+=(--device cpu --iters 2 --warmup 1); fi
    if measured "train-$track" "${T_TRAIN:-150}" "$PY" benchmarks/train_step_gpu.py "${TRAIN_ARGS[@]}"; then
      stage "bench-step-$track" "${T_BENCH:-90}" bash -c "'$ODINW' bench-step --model '$MODEL' --track $track \
        --device $DEVICE --steps ${BENCH_STEPS:-10} --warmup 3 > '$OUT/bench_step_$track.json'"
    fi
  done
fi
# ---- end of hook ----

for run in b1 "b$BIG_BATCH" b1-nobind cpu3; do
  if [ -f "$WORK/run-$run/ColorShapes/log.txt" ]; then cp "$WORK/run-$run/ColorShapes/log.txt" "$OUT/logs/run-$run.txt"; fi
done
[ -f "$MODEL/model.json" ] && cp "$MODEL/model.json" "$OUT/model.json"
"$PY" benchmarks/gpu/summarize.py --out "$OUT" --work "$WORK" --smoke "$SMOKE" --big-batch "$BIG_BATCH" \
  --total-s "$(( $(date +%s) - STARTED ))"
