#!/usr/bin/env bash
# The export tests (GLIP, and OWLv2's scripts/export_model.py): a virtual environment from scripts/requirements-export.txt (torch, onnx,
# onnxruntime 1.31.1, ...), then pytest tests/export. Extra arguments go to pytest; set
# ODINW_EXPORT_GLIP_L=1 to add GLIP-L's parity test (several more minutes of CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ODINW_EXPORT_VENV:-.venv-export}
start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir --no-deps \
  -r scripts/requirements-export.txt
echo "export venv ready in $(( $(date +%s) - start ))s"
start=$(date +%s)
status=0
"$venv/bin/python" -m pytest -q tests/export "$@" || status=$?
echo "export tests took $(( $(date +%s) - start ))s"
exit $status
