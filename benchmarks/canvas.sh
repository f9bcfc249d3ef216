#!/usr/bin/env bash
# Zero-shot eval speed on CPU: every image on GLIP's own canvas (`odinw eval`'s default) next to
# every image on one fixed canvas (`--fixed-canvas`, odinw's behaviour before per-image canvases),
# same model, same images, in one run. Prints images/s (steady state, after the first batch) and
# wall time of each, and the ratios.
#
#   benchmarks/canvas.sh [N_IMAGES]     (default 24; needs ../shared/data)
#
# Model: the demo model's weights with GLIP-T's geometry, i.e. its model.json with resize
# min 800 / max 1333 and export size 800x1344 (the fixed canvas), so the canvases are GLIP-T's:
# 800x1088 for a 4:3 photo instead of 800x1344. Images: landscape photos only (BCCD 640x480,
# Aquarium 1024x768), because the fixed 800x1344 canvas cannot hold a portrait one.
# ODINW_BENCH_V1_MODEL=DIR adds a third line: a contract-v1 export of the same weights at 800x1344
# (graphs of one fixed size, as odinw exported before; e.g. made with `git show` of
# scripts/glip_export before contract v2) on its fixed canvas.
# ODINW_BIN: the odinw binary (default: a release build, built here). THREADS: ONNX Runtime
# threads (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-24}
threads=${THREADS:-1}
data=../shared/data/roboflow
[ -d "$data" ] || { echo "needs $data (real images)"; exit 1; }
if [ -z "${ODINW_BIN:-}" ]; then
  cargo build --release --quiet --bin odinw
  ODINW_BIN=${CARGO_TARGET_DIR:-target}/release/odinw
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The task: ColorShapes' layout (any registry task would do) holding the photos.
dir=$work/root/odinw/ShapesDemo/ColorShapes/test
mkdir -p "$dir"
python=${ODINW_PYTHON:-python3}
"$python" - "$data" "$dir" "$n" <<'PY'
import json, shutil, struct, sys
from pathlib import Path
data, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

def jpeg_size(p):
    b = p.read_bytes()
    i = 2
    while i < len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        m = b[i + 1]
        if m in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return w, h
        i += 2 + struct.unpack(">H", b[i + 2:i + 4])[0]
    raise ValueError(p)

files = []
for ds in ("BCCD.v3-raw.coco", "Aquarium Combined.v2-raw-1024.coco"):
    for p in sorted((data / ds / "test").glob("*.jpg")):
        w, h = jpeg_size(p)
        if w > h and len([f for f in files if f[0] == ds]) < n // 2:
            files.append((ds, p, w, h))
images, anns = [], []
for i, (_, p, w, h) in enumerate(files, 1):
    shutil.copy(p, out / f"{i:04d}.jpg")
    images.append({"id": i, "file_name": f"{i:04d}.jpg", "width": w, "height": h})
    anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 20, 20], "area": 400, "iscrowd": 0})
task = json.loads(Path("demo/tasks/ColorShapes.json").read_text())
(out / "annotations_without_background.json").write_text(
    json.dumps({"images": images, "annotations": anns, "categories": task["categories"]}))
print(f"{len(images)} images", file=sys.stderr)
PY

# The demo model with GLIP-T's resize rule and export size.
model=$work/model
mkdir -p "$model"
cp models/demo/*.onnx models/demo/tokenizer.json models/demo/model.json "$model/"
"$python" - "$model/model.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["preprocess"]["input_size"] = [800, 1344]
d["preprocess"]["resize"].update(min_size=800, max_size=1333)
# The listed anchor grid is the one at input_size (model.json's contract).
off = 0
for lv in d["anchors"]["levels"]:
    s = lv["stride"]
    lv.update(height=-(-800 // s), width=-(-1344 // s), offset=off)
    lv["count"] = lv["height"] * lv["width"]
    off += lv["count"]
d["anchors"]["total"] = off
json.dump(d, open(p, "w"))
PY

run() {  # label, model dir, extra args
  local label=$1 m=$2; shift 2
  local start end line
  start=$(date +%s.%N)
  line=$(ODINW_CACHE=$work/cache "$ODINW_BIN" eval --suite demo --tasks ColorShapes --root "$work/root" \
    --model "$m" --threads "$threads" --out "$work/run-$label" "$@" 2>&1 >/dev/null | grep '^ColorShapes')
  end=$(date +%s.%N)
  local rate
  rate=$(sed -n 's/.*(\([0-9.]*\) images\/s after the first batch).*/\1/p' <<<"$line")
  echo "$label $rate $("$python" -c "print($end - $start)")"
}
results=$work/results.txt
{
  run per-image "$model"
  run fixed "$model" --fixed-canvas
  if [ -n "${ODINW_BENCH_V1_MODEL:-}" ]; then
    v1=$work/model-v1
    cp -r "$ODINW_BENCH_V1_MODEL" "$v1"
    "$python" - "$v1/model.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["preprocess"]["resize"].update(min_size=800, max_size=1333)
json.dump(d, open(p, "w"))
PY
    run v1-static "$v1"
  fi
} | tee "$results"
"$python" - "$results" <<'PY'
import sys
rows = {l.split()[0]: (float(l.split()[1]), float(l.split()[2])) for l in open(sys.argv[1]) if l.strip()}
for k, (rate, wall) in rows.items():
    print(f"{k:<10} {rate:7.3f} images/s (steady)  {wall:7.1f} s wall")
base = rows["per-image"]
for k, (rate, wall) in rows.items():
    if k != "per-image":
        print(f"per-image / {k}: {base[0] / rate:.2f}x images/s, {wall / base[1]:.2f}x less wall time")
PY
