"""Writes a synthetic COCO detection file for benchmarks: N images, 1-8 boxes each, 20 categories.

usage: make_coco.py N OUT.json
"""
import json
import random
import sys

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
images, annotations = [], []
for i in range(n):
    images.append({"id": i, "file_name": f"{i}.jpg", "height": 480, "width": 640})
    for _ in range(rng.randint(1, 8)):
        annotations.append({
            "id": len(annotations), "image_id": i, "category_id": rng.randint(1, 20),
            "bbox": [rng.randint(0, 500), rng.randint(0, 400), rng.randint(1, 140), rng.randint(1, 80)],
            "area": 1, "segmentation": [], "iscrowd": 0,
        })
categories = [{"id": c, "name": f"class{c}", "supercategory": "none"} for c in range(1, 21)]
with open(out, "w") as f:
    json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
