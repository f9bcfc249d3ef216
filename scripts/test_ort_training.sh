#!/usr/bin/env bash
# Backend 2 (ONNX Runtime's training API) tests: a virtual environment from
# scripts/requirements-ort-training.txt (onnxruntime-training-cpu 1.19.2, no torch) as
# .venv-ortrain, then pytest tests/ort_training. The PyTorch references run in the export
# environment (.venv-export, created here from scripts/requirements-export.txt when absent).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ODINW_ORT_TRAINING_VENV:-.venv-ortrain}
export_venv=${ODINW_EXPORT_VENV:-.venv-export}
start=$(date +%s)
if [ ! -x "$export_venv/bin/python" ]; then
  python3 -m venv "$export_venv"
  "$export_venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir --no-deps \
    -r scripts/requirements-export.txt
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir \
  -r scripts/requirements-ort-training.txt
echo "onnxruntime-training venv ready in $(( $(date +%s) - start ))s"
start=$(date +%s)
status=0
ODINW_EXPORT_PYTHON="$(cd "$export_venv" && pwd)/bin/python" \
  "$venv/bin/python" -m pytest -q tests/ort_training "$@" || status=$?
echo "onnxruntime-training tests took $(( $(date +%s) - start ))s"
exit $status
