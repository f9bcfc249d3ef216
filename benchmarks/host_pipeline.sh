#!/usr/bin/env bash
# Images/s of GLIP's host pipeline on one core: odinw (Rust) next to Pillow + numpy, same
# images and the same recorded head outputs, in one run. Prints both and their ratio per stage.
#
#   benchmarks/host_pipeline.sh [N_IMAGES_PER_SPLIT]    (default 30; needs ../shared/data)
#
# Images: the first N of BCCD and Aquarium valid and test (../shared/data/roboflow). Head
# outputs: synthetic, seeded, for a 1088x800 input with 256 tokens (benchmarks/host_pipeline.py).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-30}
python=${ODINW_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash benchmarks/image_list.sh "$n" > "$work/images.txt"
"$python" benchmarks/host_pipeline.py --make-heads "$work/heads"
cargo build --release --quiet --example bench_host
bin=${CARGO_TARGET_DIR:-target}/release/examples/bench_host
# One core each: the numbers are per core.
rust=$(taskset -c 0 "$bin" "$work/images.txt" "$work/heads")
py=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 "$python" benchmarks/host_pipeline.py "$work/images.txt" "$work/heads")
"$python" - "$rust" "$py" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"host pipeline, {r['images']} images (BCCD 640x480 + Aquarium ~768x1024 JPEGs), one core")
print(f"{'stage':<15}{'odinw img/s':>13}{'Pillow+numpy img/s':>20}{'ratio':>8}")
for k in ("decode", "resize", "normalize_pad", "postprocess", "total"):
    print(f"{k:<15}{r[k]:>13.1f}{p[k]:>20.1f}{r[k] / p[k]:>8.2f}")
print(f"detections per image: odinw {r['detections_per_image']:.1f}, numpy {p['detections_per_image']:.1f}")
PY
