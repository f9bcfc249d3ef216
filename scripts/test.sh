#!/usr/bin/env bash
# The test suite: Rust unit and integration tests, with the Python oracles they compare against
# (pycocotools, CPython's random, onnxruntime, Pillow, tokenizers, ...) installed into a virtual
# environment first; then the GLIP export tests (PyTorch vs ONNX Runtime parity, official
# parameter names), which need their own environment (scripts/test_export.sh), and the ONNX
# Runtime training artifacts' tests (scripts/test_ort_training.sh, another small environment).
# ODINW_SKIP_EXPORT_TESTS=1 runs the Rust suite alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_build_deps.sh
venv=${ODINW_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir \
  -r scripts/requirements-test.txt
export ODINW_PYTHON="$(cd "$venv" && pwd)/bin/python"
# pycocotools on numpy >= 2.3 too (its last bits differ from numpy 2.2's on large cases).
venv_np=${ODINW_NUMPY_LATEST_VENV:-.venv-numpy-latest}
if [ ! -x "$venv_np/bin/python" ]; then
  python3 -m venv "$venv_np"
fi
"$venv_np/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir \
  -r scripts/requirements-numpy-latest.txt
export ODINW_PYTHON_NUMPY_LATEST="$(cd "$venv_np" && pwd)/bin/python"
export ODINW_REQUIRE_ORACLES=1
if [ "${ODINW_SKIP_EXPORT_TESTS:-0}" != 1 ]; then
  # The export tests make .venv-export (torch); the Rust suite then also compares ATSS, AdamW and
  # the LR schedule against PyTorch itself.
  bash scripts/test_export.sh
  bash scripts/test_ort_training.sh
  export ODINW_TORCH_PYTHON="$(pwd)/.venv-export/bin/python"
fi
# The report page's browser test (tests/it/report_html.rs) needs headless Chromium: installed here
# when missing and running as root; otherwise it skips, except under CI=true, where it fails.
if [ -z "${ODINW_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "note: no headless Chromium and not root: tests/it/report_html.rs skips its browser" \
      "checks (apt-get install chromium, or set ODINW_CHROMIUM)${CI:+; CI=$CI}" >&2
  fi
fi
# The Slurm test (tests/it/slurm.rs) starts a one-node Slurm (scripts/slurm_single_node.sh installs
# Debian's packages): as root it must run, not skip.
if [ "$(id -u)" = 0 ]; then
  export ODINW_REQUIRE_SLURM=1
fi
cargo test --all-targets "$@"
