#!/usr/bin/env bash
# CI: the README's first command, exactly as written there, as a newcomer runs it: in a fresh
# clone of this repository (its committed HEAD), with an empty odinw cache, no ORT_DYLIB_PATH and
# no virtual environment (so no Python onnxruntime) on PATH. odinw must then install ONNX Runtime
# from PyPI itself, through whatever proxy and certificate authority this machine's network uses
# (SSL_CERT_FILE / HTTPS_PROXY as pip sees them), and run the demo.
#
# ODINW_CI_TARGET_DIR=DIR reuses a Cargo target folder across runs (the build is the slow part);
# by default the clone builds from scratch, as a newcomer's does.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The first line of the README's first ```sh block, minus its comment.
cmd="$(awk '/^```sh$/ {inside=1; next} inside {print; exit}' "$repo/README.md" | sed 's/[[:space:]]*#.*$//')"
case "$cmd" in
  "cargo run --release -- demo") ;;
  *) echo "ci_readme_first_command: unexpected first README command: '$cmd'" >&2; exit 1 ;;
esac

git clone --quiet --no-hardlinks "$repo" "$work/odinw"
cache="$(mktemp -d -p "$work")"

# PATH without virtual environments (and pyenv's shims, which may resolve into one).
clean_path="$(printf '%s' "$PATH" | tr ':' '\n' \
  | grep -v -e '/\.venv' -e 'venv/bin' -e '/\.pyenv/' -e '^$' | paste -sd: -)"
if [ -n "${VIRTUAL_ENV:-}" ]; then
  clean_path="$(printf '%s' "$clean_path" | tr ':' '\n' | grep -vxF "$VIRTUAL_ENV/bin" | paste -sd: -)"
fi
if env PATH="$clean_path" python3 -c 'import onnxruntime' 2>/dev/null; then
  echo "ci_readme_first_command: python3 on the cleaned PATH holds onnxruntime; this check needs a" \
    "machine without it" >&2
  exit 1
fi

target=()
if [ -n "${ODINW_CI_TARGET_DIR:-}" ]; then
  target=(CARGO_TARGET_DIR="$ODINW_CI_TARGET_DIR")
fi
echo "ci_readme_first_command: running '$cmd' in a fresh clone (cache $cache)"
cd "$work/odinw"
log="$work/out.log"
set +e
env -u ORT_DYLIB_PATH -u ODINW_PYTHON -u VIRTUAL_ENV -u ODINW_NO_PYTHON_ORT \
  ODINW_CACHE="$cache" PATH="$clean_path" "${target[@]}" \
  bash -c "$cmd" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  echo "ci_readme_first_command: '$cmd' failed with status $status" >&2
  exit 1
fi
# It must have provisioned ONNX Runtime from PyPI (not found one elsewhere) and scored the demo.
grep -q "installing onnxruntime==" "$log" \
  || { echo "ci_readme_first_command: ONNX Runtime was not installed from PyPI" >&2; exit 1; }
ls "$cache"/onnxruntime-*/libonnxruntime.so.* >/dev/null \
  || { echo "ci_readme_first_command: no ONNX Runtime in the fresh cache $cache" >&2; exit 1; }
[ -f runs/demo/manifest.json ] \
  || { echo "ci_readme_first_command: the demo left no runs/demo/manifest.json" >&2; exit 1; }
echo "ci_readme_first_command: ok"
