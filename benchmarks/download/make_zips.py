"""Generates GLIP-layout ODinW zips for the download benchmark and the hub's tree listing.

Usage: make_zips.py OUT_DIR MB_PER_ZIP ARCHIVE [ARCHIVE ...]

Writes OUT_DIR/GLIPModel/GLIP/resolve/main/odinw_35/<Archive>.zip (folder <Archive>/ with
train/valid/test splits of incompressible "images" stored like JPEGs, plus a RoboFlow
_annotations.coco.json with its root category 0) and
OUT_DIR/api/models/GLIPModel/GLIP/tree/main/odinw_35 (sizes and sha256, as the hub lists them).
Only for archives whose task folder is the archive itself (e.g. pothole, WildfireSmoke).
"""
import hashlib
import json
import os
import random
import sys
import zipfile

out, mb, archives = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
zips = os.path.join(out, "GLIPModel/GLIP/resolve/main/odinw_35")
tree = os.path.join(out, "api/models/GLIPModel/GLIP/tree/main")
os.makedirs(zips, exist_ok=True)
os.makedirs(tree, exist_ok=True)
image_bytes = 150_000
per_split = {"train": 0.7, "valid": 0.2, "test": 0.1}
listing = []
for seed, archive in enumerate(archives):
    rng = random.Random(seed)
    n_images = max(3, int(mb * 1e6 / image_bytes))
    path = os.path.join(zips, f"{archive}.zip")
    with zipfile.ZipFile(path, "w") as z:
        for split, share in per_split.items():
            names = [f"{split}_{i:05d}_jpg.rf.{rng.getrandbits(64):016x}.jpg"
                     for i in range(max(1, int(n_images * share)))]
            images, anns = [], []
            for i, name in enumerate(names):
                z.writestr(f"{archive}/{split}/{name}", rng.randbytes(image_bytes),
                           compress_type=zipfile.ZIP_STORED)
                images.append({"id": i, "file_name": name, "height": 416, "width": 416})
                anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 30, 40],
                             "area": 1200, "segmentation": [], "iscrowd": 0})
            coco = {"info": {}, "licenses": [],
                    "categories": [{"id": 0, "name": "things", "supercategory": "none"},
                                   {"id": 1, "name": "thing", "supercategory": "things"}],
                    "images": images, "annotations": anns}
            z.writestr(f"{archive}/{split}/_annotations.coco.json", json.dumps(coco),
                       compress_type=zipfile.ZIP_DEFLATED)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    size = os.path.getsize(path)
    listing.append({"type": "file", "oid": "0" * 40, "size": size,
                    "path": f"odinw_35/{archive}.zip",
                    "lfs": {"oid": digest.hexdigest(), "size": size, "pointerSize": 134}})
with open(os.path.join(tree, "odinw_35"), "w") as f:
    json.dump(listing, f)
print(sum(e["size"] for e in listing))
