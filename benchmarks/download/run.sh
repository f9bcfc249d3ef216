#!/usr/bin/env bash
# Download throughput: `odinw download` against curl, fetching the same GLIP-layout zips from
# the same local HTTP server, side by side in one run.
#
#   bash benchmarks/download/run.sh [MB_PER_ZIP] [JOBS]      (defaults: 48 MB x 7 zips, 4 jobs)
#
# Rows (best of REPS runs each; MB = 10^6 bytes of zip data):
#   curl sequential                one `curl -o` per zip, one after another
#   curl parallel                  `curl -Z --parallel-max JOBS`, all zips
#   curl parallel+sha256+unzip     the same, then `sha256sum -c` and `unzip` (xargs -P JOBS):
#                                  what a careful shell script does
#   odinw download --jobs JOBS     fetch, size+sha256 check against the listing, safe
#                                  extraction, per-file sha256 for the manifest, normalisation,
#                                  validation, atomic move into place
#   odinw re-run (verified)        a second run over the installed tasks (no network)
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-48}
JOBS=${2:-4}
REPS=${REPS:-2}
ARCHIVES=(pothole WildfireSmoke ThermalCheetah MountainDewCommercial CottontailRabbits thermalDogsAndPeople PascalVOC)
work=$(mktemp -d "${TMPDIR:-/tmp}/odinw-bench.XXXXXX")
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
cp "$CARGO_TARGET_DIR/release/odinw" "$work/odinw"   # a private copy: the target dir may be shared

echo "generating ${#ARCHIVES[@]} zips of about $MB MB..."
total=$(python3 benchmarks/download/make_zips.py "$work/www" "$MB" "${ARCHIVES[@]}")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 benchmarks/download/serve.py "$work/www" "$port" &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -sf -o /dev/null "$base/api/models/GLIPModel/GLIP/tree/main/odinw_35" && break; sleep 0.1; done
zip_url() { echo "$base/GLIPModel/GLIP/resolve/main/odinw_35/$1.zip"; }
tasks=$(IFS=,; echo "${ARCHIVES[*]}")

now() { date +%s.%N; }
best=()
measure() { # name, command...
  local name=$1; shift
  local b=
  for _ in $(seq "$REPS"); do
    rm -rf "$work/out"; mkdir -p "$work/out"; sync
    local t0 t1; t0=$(now); "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }; t1=$(now)
    local t; t=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  best+=("$name|$b")
}

curl_seq() { for a in "${ARCHIVES[@]}"; do curl -sf -o "$work/out/$a.zip" "$(zip_url "$a")"; done; }
curl_par() {
  local args=()
  for a in "${ARCHIVES[@]}"; do args+=(-o "$work/out/$a.zip" "$(zip_url "$a")"); done
  curl -sf -Z --parallel-max "$JOBS" "${args[@]}"
}
curl_full() {
  curl_par
  python3 - "$work/www/api/models/GLIPModel/GLIP/tree/main/odinw_35" > "$work/out/SHA256SUMS" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1])):
    print(f"{e['lfs']['oid']}  {e['path'].split('/')[-1]}")
PY
  (cd "$work/out" && sha256sum -c --quiet SHA256SUMS)
  mkdir -p "$work/out/odinw"
  printf '%s\n' "${ARCHIVES[@]}" | xargs -P "$JOBS" -I{} unzip -q -d "$work/out/odinw" "$work/out/{}.zip"
}
odinw_dl() { "$work/odinw" download --tasks "$tasks" --root "$work/out/root" --hub "$base" --jobs "$JOBS"; }
odinw_dl1() { "$work/odinw" download --tasks "$tasks" --root "$work/out/root" --hub "$base" --jobs 1; }
odinw_rerun() {
  "$work/odinw" download --tasks "$tasks" --root "$work/installed" --hub "$base" --jobs "$JOBS"
}

measure "curl sequential" curl_seq
measure "curl parallel (-Z, $JOBS)" curl_par
measure "curl parallel+sha256+unzip" curl_full
measure "odinw download --jobs $JOBS" odinw_dl
measure "odinw download --jobs 1" odinw_dl1
rm -rf "$work/installed"; odinw_rerun >/dev/null 2>&1
measure "odinw re-run (verified)" odinw_rerun

mb=$(echo "$total / 1000000" | bc -l)
printf '\n%d zips, %.1f MB in all, served by a threaded Python server on 127.0.0.1; best of %d runs\n' \
  "${#ARCHIVES[@]}" "$mb" "$REPS"
printf '%-32s %9s %10s\n' "method" "seconds" "MB/s"
declare -A secs
for row in "${best[@]}"; do
  name=${row%%|*}; t=${row##*|}; secs[$name]=$t
  printf '%-32s %9.3f %10.1f\n' "$name" "$t" "$(echo "$mb / $t" | bc -l)"
done
ratio() { printf '%-58s %6.2fx\n' "$1 / $2 (throughput)" "$(echo "${secs[$2]} / ${secs[$1]}" | bc -l)"; }
echo
ratio "odinw download --jobs $JOBS" "curl parallel (-Z, $JOBS)"
ratio "odinw download --jobs $JOBS" "curl parallel+sha256+unzip"
ratio "odinw download --jobs $JOBS" "curl sequential"
