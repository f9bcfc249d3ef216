#!/usr/bin/env bash
# The benchmarks' images: the first N JPEGs (sorted by path) of BCCD's and Aquarium's valid and
# test splits in ../shared/data/roboflow, one path a line on stdout. Fails, saying so, without
# that folder.
#
#   benchmarks/image_list.sh N > images.txt
set -euo pipefail
cd "$(dirname "$0")/.."
n=$1
data=../shared/data/roboflow
[ -d "$data" ] || { echo "needs $data (real images)" >&2; exit 1; }
for ds in "BCCD.v3-raw.coco" "Aquarium Combined.v2-raw-1024.coco"; do
  for split in valid test; do
    find "$data/$ds/$split" -name '*.jpg' | sort | sed -n "1,${n}p"
  done
done
