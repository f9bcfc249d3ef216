#!/usr/bin/env python3
"""Write an evaluation task of real-size JPEG images that `odinw eval` runs unchanged.

    make_task.py --root /tmp/gputask --count 48 [--min-size 960x720 --max-size 1280x960]

The images are the procedural shapes world (scripts/shapes_world.py) at RoboFlow-export sizes,
saved as JPEG like RoboFlow exports, with objects scaled to the image. They are laid out as the
demo suite's ColorShapes test split (`<root>/odinw/ShapesDemo/ColorShapes/test/`, categories as
in the registry), so `odinw eval --suite demo --tasks ColorShapes --split test --root <root>`
evaluates them. Image i depends only on (seed, i): a task of 3 images holds the first 3 images
of a task of 48. Prints one JSON line (images, boxes, seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import shapes_world as world  # noqa: E402

TASK = "ColorShapes"
SCHEME = "colour_shape"


def registry_task() -> dict:
    return json.loads((REPO / "demo/tasks" / f"{TASK}.json").read_text())


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def make(root: Path, count: int, seed: int, lo: tuple[int, int], hi: tuple[int, int], quality: int) -> dict:
    task = registry_task()
    split = task["splits"]["test"]
    img_dir = root / split["img_dir"]
    img_dir.mkdir(parents=True, exist_ok=True)
    cats = task["categories"]
    names = [c["name"] for c in cats]
    coco = {"info": {"description": f"odinw GPU benchmark: {TASK} at real size (procedural shapes)"},
            "licenses": [], "categories": cats, "images": [], "annotations": []}
    for index in range(count):
        rng = random.Random(f"{seed}/{index}")
        size = (rng.randint(lo[0], hi[0]), rng.randint(lo[1], hi[1]))
        wanted = [rng.choice(names) for _ in range(rng.randint(3, 8))]
        things = [rng.choice([t for t in world.all_things() if t.name(SCHEME) == n]) for n in wanted]
        things += [rng.choice([t for t in world.all_things() if t.name(SCHEME) not in names])
                   for _ in range(rng.randint(0, 2))]
        side = min(size)
        img, placed = world.render(rng, things, size, min_side=side // 16, max_side=side // 4)
        name = f"shapes_{index:04d}.jpg"
        tmp = img_dir / (name + ".tmp")
        img.save(tmp, format="JPEG", quality=quality)
        os.replace(tmp, img_dir / name)
        image_id = index + 1
        coco["images"].append({"id": image_id, "file_name": name, "width": img.width, "height": img.height})
        for p in placed:
            label = p.thing.name(SCHEME)
            if label not in names:
                continue
            x0, y0, x1, y1 = p.box
            w, h = x1 - x0 + 1, y1 - y0 + 1
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": cats[names.index(label)]["id"], "bbox": [x0, y0, w, h],
                                        "area": w * h, "iscrowd": 0})
    write_json(root / split["ann_file"], coco)
    return coco


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-size", type=parse_size, default=(960, 720), help="smallest WxH")
    ap.add_argument("--max-size", type=parse_size, default=(1280, 960), help="largest WxH")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    args = ap.parse_args(argv)
    started = time.time()
    coco = make(args.root, args.count, args.seed, args.min_size, args.max_size, args.quality)
    print(json.dumps({"task": TASK, "root": str(args.root), "images": len(coco["images"]),
                      "boxes": len(coco["annotations"]), "seconds": round(time.time() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
