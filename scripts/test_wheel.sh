#!/usr/bin/env bash
# `pip install odinw` as a user would do it: builds the wheel (maturin, `bindings = "bin"`,
# pyproject.toml), installs it with its `onnxruntime` extra into a fresh virtual environment,
# and in that environment (activated, from an empty folder, with an empty odinw cache) checks
# that `odinw` on PATH is the wheel's, that it finds the environment's ONNX Runtime, and that
# `odinw demo` prints the demo's table with the README's mean AP and writes its report page.
#
# Build profile: `dev` by default (ODINW_WHEEL_PROFILE=release for a published wheel). This
# script tests the packaging (the wheel's layout, its entry on PATH, ONNX Runtime found from the
# environment), not the optimiser: the dev profile builds dependencies at opt-level 2 (Cargo.toml)
# and reuses what `cargo test` already compiled in target/debug, so the wheel takes minutes,
# where `--release` recompiles everything (~12 min on a 2-core machine). The demo runs in seconds
# either way. Work folder: target/wheel/ (virtual environments, the wheel, the demo run).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$repo/target/wheel
profile=${ODINW_WHEEL_PROFILE:-dev}
python=${PYTHON:-python3}
pip_flags=(-q --disable-pip-version-check)
start=$SECONDS

mkdir -p "$work"
if [ ! -x "$work/venv-build/bin/maturin" ]; then
  "$python" -m venv "$work/venv-build"
fi
"$work/venv-build/bin/pip" install "${pip_flags[@]}" -r scripts/requirements-wheel.txt

rm -rf "$work/dist" "$work/venv-user" "$work/home"
echo "== building the wheel (profile $profile)"
"$work/venv-build/bin/maturin" build --profile "$profile" --out "$work/dist"
wheels=("$work"/dist/odinw-*.whl)
[ "${#wheels[@]}" = 1 ] || { echo "expected one wheel, got: ${wheels[*]}" >&2; exit 1; }
wheel=${wheels[0]}
echo "== wheel: $wheel ($(du -h "$wheel" | cut -f1))"
# The wheel holds the binary as a script of the environment, and nothing else of ours.
"$python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
scripts = [n for n in names if ".data/scripts/" in n]
assert scripts == [next(n for n in names if n.endswith(".data/scripts/odinw"))], names
print("wheel entries:", len(names), "binary:", scripts[0])
PY

echo "== installing into a fresh environment"
"$python" -m venv "$work/venv-user"
"$work/venv-user/bin/pip" install "${pip_flags[@]}" "$wheel[onnxruntime]"

mkdir -p "$work/home"
(
  # As a user: the environment activated, an empty folder, no odinw cache, none of the test
  # suite's settings.
  unset ODINW_PYTHON ORT_DYLIB_PATH ODINW_ROOT CARGO_TARGET_DIR
  export ODINW_CACHE="$work/home/cache"
  # shellcheck disable=SC1091
  source "$work/venv-user/bin/activate"
  cd "$work/home"
  found=$(command -v odinw)
  [ "$found" = "$work/venv-user/bin/odinw" ] || { echo "odinw on PATH is $found" >&2; exit 1; }
  odinw --version
  odinw doctor --json > doctor.json
  python3 - "$work/venv-user" <<'PY'
import json, os, sys
ort = json.load(open("doctor.json"))["onnxruntime"]
venv = os.path.realpath(sys.argv[1])
assert ort.get("ok") and os.path.realpath(ort["path"]).startswith(venv + os.sep), \
    f"ONNX Runtime is not the environment's ({venv}): {ort}"
print("doctor: ONNX Runtime", ort["version"], "from", ort["path"])
PY
  odinw demo | tee demo.txt
  grep -q "over 4/4 evaluated tasks" demo.txt
  # The demo's mean AP as the README states it ("... NovelShapes ..., mean X." in the demo bullet).
  want=$(grep -A12 '^- \*\*The demo\*\*' "$repo/README.md" | tr '\n' ' ' | grep -o 'mean [0-9.]*[0-9]' | tail -1 | cut -d' ' -f2)
  [ -n "$want" ] || { echo "the README states no demo mean AP" >&2; exit 1; }
  grep -q "mean AP $want" demo.txt || { echo "the demo's mean AP is not the README's $want" >&2; exit 1; }
  for t in ColorShapes TexturedShapes ShapeDescriptions NovelShapes; do
    grep -q "$t" demo.txt
  done
  test -s runs/demo/report/index.html
  test -s runs/demo/summary.json
)
echo "== wheel test passed in $((SECONDS - start)) s"
