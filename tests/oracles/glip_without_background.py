"""Oracle for `odinw normalize`: GLIP's README step 2 ("remove the category with id 0 from
_annotations.coco.json") done with the json module, plus what pycocotools makes of the file
odinw wrote.

Usage: glip_without_background.py SOURCE_JSON ODINW_OUTPUT_JSON
Prints JSON: {"expected": <source without category 0>, "coco_cat_ids": [...],
"coco_ann_count": N, "coco_img_count": N} where the coco_* fields come from loading
ODINW_OUTPUT_JSON with pycocotools.coco.COCO.
"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO

source, ours = sys.argv[1], sys.argv[2]
with open(source) as f:
    data = json.load(f)
data["categories"] = [c for c in data["categories"] if c["id"] != 0]
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(ours)
print(json.dumps({
    "expected": data,
    "coco_cat_ids": coco.getCatIds(),
    "coco_ann_count": len(coco.getAnnIds()),
    "coco_img_count": len(coco.getImgIds()),
}))
