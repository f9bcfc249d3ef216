#!/usr/bin/env python3
"""Write the `demo` suite: four small ODinW-like tasks from the procedural shapes world.

    python scripts/make_demo_suite.py --out demo        # what is committed (seed 2024)

Layout, as GLIP's ODinW folders (`Layout::Split`): `<out>/odinw/ShapesDemo/<Task>/{train,valid,test}/`
with PNG images and `annotations_without_background.json` (COCO; ids from 1, boxes xywh with
w = x1 - x0 + 1 over inclusive pixel bounds), plus `<out>/tasks/<Task>.json` in the registry's
task schema. Categories have multi-word names (except NovelShapes: nonce words the demo model
never saw, bound to fixed things, for the few-shot tracks); every image also holds 0-2 distractor
objects whose names are not categories, so the prompt must be read, not just the pixels.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapes_world as world  # noqa: E402

TASKS = [
    {"name": "ColorShapes", "scheme": "colour_shape",
     "categories": ["red circle", "blue circle", "red square", "green triangle", "yellow star", "purple cross"]},
    {"name": "TexturedShapes", "scheme": "texture_shape",
     "categories": ["striped circle", "dotted square", "checkered triangle", "plain star", "striped cross"]},
    {"name": "ShapeDescriptions", "scheme": "full",
     "categories": ["red striped square", "blue dotted circle", "green checkered star", "yellow plain triangle",
                    "orange striped cross"],
     "caption_prompt": {"prefix": "a ", "suffix": " shape"}},
    # Nonce words the tiny model never saw, each bound to one fixed thing. Its vocabulary spells
    # them with single-letter pieces that never occurred in training (so no [UNK], but no meaning),
    # and the five spellings share no piece, so the classes stay separable once tuned on a few shots.
    {"name": "NovelShapes", "scheme": "bound",
     "categories": ["dax", "wug", "fep", "kiki", "zorb"],
     "things": {"dax": world.Thing("green", "striped", "triangle"), "wug": world.Thing("orange", "dotted", "circle"),
                "fep": world.Thing("blue", "plain", "star"), "kiki": world.Thing("purple", "checkered", "square"),
                "zorb": world.Thing("red", "dotted", "triangle")}},
]
SPLITS = {"train": ("train", 8), "val": ("valid", 8), "test": ("test", 20)}
FOLDER = "ShapesDemo"


def label_of(task: dict, thing: world.Thing) -> str | None:
    """The thing's name in the task: its name under the task's naming scheme, or for a task of
    bound names (`things`), the name bound to exactly this thing (None for any other)."""
    if task["scheme"] == "bound":
        return next((name for name, bound in task["things"].items() if bound == thing), None)
    return thing.name(task["scheme"])


def thing_for(task: dict, name: str, rng: random.Random) -> world.Thing:
    options = [t for t in world.all_things() if label_of(task, t) == name]
    return rng.choice(options)


def distractor(task: dict, rng: random.Random) -> world.Thing:
    options = [t for t in world.all_things() if label_of(task, t) not in task["categories"]]
    return rng.choice(options)


def make_split(task: dict, split_dir: Path, count: int, rng: random.Random) -> dict:
    cats = task["categories"]
    coco = {"info": {"description": f"odinw demo suite: {task['name']} (procedural shapes)"}, "licenses": [],
            "categories": [{"id": i + 1, "name": n, "supercategory": "shapes"} for i, n in enumerate(cats)],
            "images": [], "annotations": []}
    split_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        things = [thing_for(task, rng.choice(cats), rng) for _ in range(rng.randint(1, 4))]
        things += [distractor(task, rng) for _ in range(rng.randint(0, 2))]
        rng.shuffle(things)
        img, placed = world.render(rng, things, world.random_size(rng))
        name = f"{task['name'].lower()}_{split_dir.name}_{index:03d}.png"
        tmp = split_dir / (name + ".tmp")
        img.save(tmp, format="PNG", optimize=True)
        os.replace(tmp, split_dir / name)
        image_id = index + 1
        coco["images"].append({"id": image_id, "file_name": name, "width": img.width, "height": img.height})
        for p in placed:
            label = label_of(task, p.thing)
            if label not in cats:
                continue
            x0, y0, x1, y1 = p.box
            w, h = x1 - x0 + 1, y1 - y0 + 1
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id,
                                        "category_id": cats.index(label) + 1, "bbox": [x0, y0, w, h],
                                        "area": w * h, "iscrowd": 0})
    write_json(split_dir / "annotations_without_background.json", coco)
    return coco


def task_record(task: dict, index: int) -> dict:
    folder = f"{FOLDER}/{task['name']}"
    prompt = task.get("caption_prompt")
    return {
        "name": task["name"], "suite": "demo", "index": index, "yaml": "", "archive": FOLDER,
        "folder": folder, "layout": "split", "in_odinw13": False,
        "splits": {split: {"ann_file": f"odinw/{folder}/{d}/annotations_without_background.json",
                           "img_dir": f"odinw/{folder}/{d}"} for split, (d, _) in SPLITS.items()},
        "categories": [{"id": i + 1, "name": n, "supercategory": "shapes"} for i, n in enumerate(task["categories"])],
        "caption_prompt": [{"prefix": prompt["prefix"], "name": n, "suffix": prompt["suffix"]}
                           for n in task["categories"]] if prompt else None,
        "num_classes_yaml": len(task["categories"]) + 1, "general_copy": 1, "val_split_during_ft": "val",
        "fewshot": {"shots": [], "seeds": [], "files": {}}, "roboflow": None,
    }


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--test-images", type=int, default=SPLITS["test"][1], help="images per task in test")
    args = ap.parse_args(argv)
    (args.out / "tasks").mkdir(parents=True, exist_ok=True)
    for t_index, task in enumerate(TASKS):
        for s_index, (split, (dirname, count)) in enumerate(SPLITS.items()):
            if split == "test":
                count = args.test_images
            rng = random.Random(f"{args.seed}/{task['name']}/{split}")
            coco = make_split(task, args.out / "odinw" / FOLDER / task["name"] / dirname, count, rng)
            print(f"{task['name']} {split}: {len(coco['images'])} images, {len(coco['annotations'])} boxes")
        write_json(args.out / "tasks" / f"{task['name']}.json", task_record(task, t_index))
    return 0


if __name__ == "__main__":
    sys.exit(main())
