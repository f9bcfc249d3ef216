#!/usr/bin/env bash
# The test suite: Rust unit and integration tests, with the Python oracles they compare against
# (pycocotools, CPython's random, ...) installed into a virtual environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ODINW_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
export ODINW_PYTHON="$PWD/$venv/bin/python"
export ODINW_REQUIRE_ORACLES=1
cargo test --all-targets "$@"
