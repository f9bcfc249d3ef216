# The non-GLIP families of benchmarks/gpu/run_on_device.sh, sourced by it after the GLIP stages
# (it defines stage, measured, log, want and the variables used here: PY, ODINW, DEVICE, SMOKE,
# WORK, OUT, TASK_ROOT, TASK3_ROOT, ANN_REL, IMG_REL, BIG_BATCH, T_*). Each family, on the same
# ColorShapes task of $N images as GLIP's:
#   <f>-export     a seeded random model exported for odinw, reused from $WORK unless REEXPORT=1
#                  (OWLv2: benchmarks/gpu/make_owlv2.py, OWL_CONFIG=base: the hub checkpoints'
#                  ViT-B/16 at 960x960; Grounding DINO: make_grounding_dino.py, GDINO_CONFIG=swin-t:
#                  Grounding-DINO-T's geometry on a GDINO_CANVAS (800x1333) canvas; the smoke test:
#                  both families' tiny test models)
#   <f>-probe      (Grounding DINO) odinw eval on the 3-image task: when odinw refuses the family,
#                  every later stage of it is skipped and $OUT/gdino_skipped.json says why
#   <f>-b1, <f>-b$BIG_BATCH, <f>-b1-nobind   odinw eval --device $DEVICE, as GLIP's odinw stage
#   <f>-eager      PyTorch eager (transformers' modules) with the same weights, images and class
#                  queries, batch 1 and $BIG_BATCH (benchmarks/gpu/owlv2_eager.py, gdino_eager.py)
#   <f>-parity-cpu, <f>-parity   odinw --device cpu on the 3-image task vs the CUDA batch-1 run;
#                  eager's detections (the family's documented post-processing) vs that run
# Prefixes: owlv2, gdino. Outputs: $OUT/<f>_eager.json, $OUT/<f>_parity_*.json, logs/<f>-*.
# shellcheck shell=bash

# family_runs PREFIX MODEL: odinw at batch 1 and BIG_BATCH with I/O binding (the default on
# CUDA), batch 1 without, then the CPU run for parity and the comparisons.
family_runs() {
  local f=$1 model=$2 run
  local args=(--suite demo --tasks ColorShapes --split test --model "$model")
  for run in "b1 1 auto" "b$BIG_BATCH $BIG_BATCH auto" "b1-nobind 1 off"; do
    set -- $run
    rm -rf "$WORK/$f-run-$1"
    measured "$f-$1" "$T_RUN" "$ODINW" eval "${args[@]}" --root "$TASK_ROOT" --device "$DEVICE" \
      --batch "$2" --io-binding "$3" --out "$WORK/$f-run-$1"
  done
  rm -rf "$WORK/$f-run-cpu3"
  stage "$f-parity-cpu" "$T_CPU" "$ODINW" eval "${args[@]}" --root "$TASK3_ROOT" --device cpu --batch 1 \
    --out "$WORK/$f-run-cpu3"
}

# family_parity PREFIX: odinw CUDA vs CPU on the first 3 images; eager vs odinw CUDA on them.
family_parity() {
  local f=$1
  stage "$f-parity" 30 bash -c "'$PY' benchmarks/gpu/compare_predictions.py '$WORK/$f-run-b1/ColorShapes/predictions.json' \
      '$WORK/$f-run-cpu3/ColorShapes/predictions.json' --images 1,2,3 --json '$OUT/${f}_parity_gpu_vs_cpu.json' && \
    '$PY' benchmarks/gpu/compare_predictions.py '$WORK/${f}_eager_parity.json' \
      '$WORK/$f-run-b1/ColorShapes/predictions.json' --images 1,2,3 --json '$OUT/${f}_parity_eager_vs_odinw.json'"
}

# family_export PREFIX SCRIPT CONFIG WEIGHTS MODEL [ARGS...]: 0 when MODEL holds an export.
family_export() {
  local f=$1 script=$2 config=$3 weights=$4 model=$5
  shift 5
  if [ -f "$model/model.json" ] && [ "${REEXPORT:-0}" != 1 ]; then
    log "$f: reusing the export in $model (REEXPORT=1 to redo it)"
    return 0
  fi
  rm -rf "$weights" "$model"
  stage "$f-export" "$T_EXPORT" "$PY" "$script" --config "$config" --weights "$weights" --out "$model" "$@"
}

# ---- OWLv2 ----
if want owlv2; then
  if [ "$SMOKE" = 1 ]; then OWL_CONFIG=${OWL_CONFIG:-tiny}; else OWL_CONFIG=${OWL_CONFIG:-base}; fi
  OWL_WEIGHTS=$WORK/owlv2-weights-$OWL_CONFIG
  OWL_MODEL=$WORK/owlv2-model-$OWL_CONFIG
  if family_export owlv2 benchmarks/gpu/make_owlv2.py "$OWL_CONFIG" "$OWL_WEIGHTS" "$OWL_MODEL"; then
    cp "$OWL_MODEL/model.json" "$OUT/owlv2_model.json"
    family_runs owlv2 "$OWL_MODEL"
    measured owlv2-eager "$T_EAGER" "$PY" benchmarks/gpu/owlv2_eager.py --weights "$OWL_WEIGHTS" --model "$OWL_MODEL" \
      --ann "$TASK_ROOT/$ANN_REL" --img-dir "$TASK_ROOT/$IMG_REL" --odinw-log "$WORK/owlv2-run-b1/ColorShapes/log.txt" \
      --batches "1,$BIG_BATCH" --device "$DEVICE" --budget-s "$((T_EAGER - 20))" --parity-images 3 \
      --parity-out "$WORK/owlv2_eager_parity.json" --json "$OUT/owlv2_eager.json"
    family_parity owlv2
  fi
fi

# ---- Grounding DINO ----
# Runs when scripts/export_model.py exports the family and odinw evaluates it; otherwise the
# reason is recorded in $OUT/gdino_skipped.json and the run goes on.
gdino_skip() {
  log "Grounding DINO skipped: $1"
  "$PY" -c 'import json, sys; json.dump({"skipped": True, "reason": sys.argv[1]}, open(sys.argv[2], "w"))' \
    "$1" "$OUT/gdino_skipped.json"
}
# gdino_has_masks_api: whether $PY's transformers has what the exporter needs (the `special_tokens`
# argument of generate_masks_with_special_tokens_and_transfer_map, transformers >= 5.24).
gdino_has_masks_api() {
  "$PY" -c 'import inspect, sys
from transformers.models.grounding_dino import modeling_grounding_dino as m
sys.exit(0 if "special_tokens" in inspect.signature(m.generate_masks_with_special_tokens_and_transfer_map).parameters else 1)' \
    2>/dev/null
}
# gdino_transformers: 0 when it has, or has after installing the carried wheel
# (.whl/transformers-*.whl, benchmarks/gpu/pack_wheels.sh) into $WORK/site-gdino, first on
# PYTHONPATH for the Grounding DINO stages only; else GDINO_WHY says why not.
gdino_transformers() {
  gdino_has_masks_api && return 0
  local wheel
  wheel=$(ls "${GPU_WHEELS:-$REPO/.whl}"/transformers-*.whl 2>/dev/null | head -n 1)
  if [ -z "$wheel" ]; then
    GDINO_WHY="$PY's transformers ($("$PY" -c 'import transformers; print(transformers.__version__)' 2>&1 | tail -n 1)) predates the exporter's (scripts/requirements-export.txt) and no wheel was carried (benchmarks/gpu/pack_wheels.sh)"
    return 1
  fi
  rm -rf "$WORK/site-gdino"
  if ! stage gdino-wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site-gdino" "$wheel"; then
    GDINO_WHY="installing $wheel failed (logs/gdino-wheels.log)"
    return 1
  fi
  export PYTHONPATH="$WORK/site-gdino${PYTHONPATH:+:$PYTHONPATH}"
  log "Grounding DINO stages use $(basename "$wheel") from $WORK/site-gdino"
  gdino_has_masks_api && return 0
  GDINO_WHY="$(basename "$wheel") installed, but its transformers still lacks the special_tokens mask API"
  return 1
}
if want grounding-dino; then
  GDINO_SAVED_PYTHONPATH=${PYTHONPATH-}
  if [ "$SMOKE" = 1 ]; then GDINO_CONFIG=${GDINO_CONFIG:-tiny}; else GDINO_CONFIG=${GDINO_CONFIG:-swin-t}; fi
  GDINO_WEIGHTS=$WORK/gdino-weights-$GDINO_CONFIG
  GDINO_MODEL=$WORK/gdino-model-$GDINO_CONFIG
  if ! "$PY" scripts/export_model.py --help 2>/dev/null | grep -q grounding-dino; then
    gdino_skip "scripts/export_model.py has no --family grounding-dino"
  elif ! gdino_transformers; then
    gdino_skip "$GDINO_WHY"
  elif ! family_export gdino benchmarks/gpu/make_grounding_dino.py "$GDINO_CONFIG" "$GDINO_WEIGHTS" \
      "$GDINO_MODEL" --canvas "${GDINO_CANVAS:-800x1333}"; then
    gdino_skip "the export failed (logs/gdino-export.log)"
  else
    cp "$GDINO_MODEL/model.json" "$OUT/gdino_model.json"
    rm -rf "$WORK/gdino-probe"
    # The probe's stage passes whether odinw accepts or refuses; its log's first line says which.
    if ! stage gdino-probe "$T_CPU" bash -c "if '$ODINW' eval --suite demo --tasks ColorShapes --split test \
        --root '$TASK3_ROOT' --model '$GDINO_MODEL' --device cpu --out '$WORK/gdino-probe' > '$WORK/gdino-probe.out' 2>&1; \
        then echo accepted; else echo refused; fi; cat '$WORK/gdino-probe.out'"; then
      gdino_skip "the probe did not finish (logs/gdino-probe.log)"
    elif [ "$(head -n 1 "$OUT/logs/gdino-probe.log")" != accepted ]; then
      gdino_skip "odinw eval refused the model: $(grep -m1 -i 'error' "$OUT/logs/gdino-probe.log" || sed -n 2p "$OUT/logs/gdino-probe.log")"
    else
      family_runs gdino "$GDINO_MODEL"
      measured gdino-eager "$T_EAGER" "$PY" benchmarks/gpu/gdino_eager.py --weights "$GDINO_WEIGHTS" \
        --model "$GDINO_MODEL" --ann "$TASK_ROOT/$ANN_REL" --img-dir "$TASK_ROOT/$IMG_REL" \
        --batches "1,$BIG_BATCH" --device "$DEVICE" --budget-s "$((T_EAGER - 20))" --parity-images 3 \
        --parity-out "$WORK/gdino_eager_parity.json" --json "$OUT/gdino_eager.json"
      family_parity gdino
    fi
  fi
  if [ -n "$GDINO_SAVED_PYTHONPATH" ]; then export PYTHONPATH=$GDINO_SAVED_PYTHONPATH; else unset PYTHONPATH; fi
fi
