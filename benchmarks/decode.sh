#!/usr/bin/env bash
# JPEG decoding alone on one core: odinw (libjpeg-turbo driven as Pillow drives it) next to
# Pillow's `Image.open(p).convert("RGB")`, same files, same rounds, in one run; prints both and
# their ratio. Each side reads the file and decodes it to RGB.
#
#   benchmarks/decode.sh [N_IMAGES_PER_SPLIT] [ROUNDS]    (default 30 and 3; needs ../shared/data)
#
# PROFILE=release builds the example in release (default: dev, whose dependencies, libjpeg-turbo
# included, are optimised; odinw's own code around the decoder is a header walk and a copy).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-30}
rounds=${2:-3}
profile=${PROFILE:-dev}
python=${ODINW_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash benchmarks/image_list.sh "$n" > "$work/images.txt"
cargo build --profile "$profile" --quiet --example bench_decode
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin=${CARGO_TARGET_DIR:-target}/$dir/examples/bench_decode
rust=$(taskset -c 0 "$bin" "$work/images.txt" "$rounds")
py=$(taskset -c 0 "$python" - "$work/images.txt" "$rounds" <<'PY'
import json, sys, time
from PIL import Image
paths = [l for l in open(sys.argv[1]).read().splitlines() if l]
rounds = int(sys.argv[2])
pixels = 0
t = time.perf_counter()
for _ in range(rounds):
    for p in paths:
        with Image.open(p) as im:
            img = im.convert("RGB")
        pixels += img.size[0] * img.size[1]
s = time.perf_counter() - t
n = len(paths) * rounds
print(json.dumps({"images": n, "images_per_s": n / s, "mpixels_per_s": pixels / s / 1e6}))
PY
)
"$python" - "$rust" "$py" "$profile" <<'PY'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"JPEG decode, {int(r['images'])} decodes (BCCD 640x480 + Aquarium ~768x1024), one core, odinw {sys.argv[3]} build")
print(f"{'':<10}{'img/s':>10}{'Mpx/s':>10}")
print(f"{'odinw':<10}{r['images_per_s']:>10.1f}{r['mpixels_per_s']:>10.1f}")
print(f"{'Pillow':<10}{p['images_per_s']:>10.1f}{p['mpixels_per_s']:>10.1f}")
print(f"ratio odinw/Pillow: {r['images_per_s'] / p['images_per_s']:.2f}")
PY
