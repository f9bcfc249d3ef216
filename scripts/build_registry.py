#!/usr/bin/env python3
"""Builds odinw_35/*.json and odinw_13/*.json (one file per task) from GLIP's task configs.

Input: the registry extracted from GLIP's configs/odinw_35 and configs/odinw_13 yamls
(odinw-registry.json, see ../shared/reference/). Output: the task files the Rust binary
embeds. Rerun after changing the input:

    python3 scripts/build_registry.py ../shared/reference/odinw-registry.json
"""
import json
import os
import re
import sys

# Archives that hold two tasks: the task name gets `_<variant>` (the sub-folder).
TWO_TASK_ARCHIVES = {"AerialMaritimeDrone", "EgoHands", "OxfordPets"}
# Configs GLIP ships that are not part of ODinW-35 (configs/odinw_35/_all.json leaves it out).
NOT_IN_SUITE = {"odinw_35/plantdoc_100x100.yaml"}
SHOTS = [1, 3, 5, 10]
SEEDS = [3, 30, 300]


def task_name(folder):
    parts = folder.split("/")
    if parts[0] in TWO_TASK_ARCHIVES:
        return f"{parts[0]}_{parts[1]}"
    return parts[0]


def roboflow_pin(folder):
    """RoboFlow export name and version where the folder name carries them (`X.v3-raw.coco`)."""
    m = re.search(r"([^/]+)\.v(\d+)-([^/]+?)\.coco$", folder)
    if not m:
        return None
    return {"project": m.group(1), "version": int(m.group(2)), "export": m.group(3)}


def main(src, out_root):
    registry = json.load(open(src))
    in13 = {k.split("/", 1)[1] for k in registry if k.startswith("odinw_13/")}
    index = {"odinw_35": 0, "odinw_13": 0}
    for key, cfg in registry.items():
        if key in NOT_IN_SUITE:
            continue
        suite_dir, yaml = key.split("/", 1)
        splits = cfg["splits"]
        train_ann = splits["train"]["ann_file"]
        assert train_ann.startswith("odinw/"), train_ann
        export = "_annotations_without_background.json" in os.path.basename(train_ann)
        folder = splits["train"]["img_dir"][len("odinw/"):].rstrip("/")
        if not export:
            folder = folder.rsplit("/", 1)[0]
        name = task_name(folder)
        ft = re.findall(r'"(\w+)"', cfg["test_split_during_ft"])
        fewshot = {}
        for split in ("train", "val", "minival"):
            if split in splits:
                d = splits[split]["img_dir"].rstrip("/")
                fewshot[split] = f"{d}/fewshot_{split}_shot{{shot}}_seed{{seed}}.json"
        ids = [c["id"] for c in cfg["categories"]]
        assert ids == list(range(1, len(ids) + 1)), (key, ids)
        task = {
            "name": name,
            "suite": suite_dir.replace("_", ""),
            "index": index[suite_dir],
            "yaml": f"configs/{key}",
            "archive": folder.split("/")[0],
            "folder": folder,
            "layout": "export" if export else "split",
            "in_odinw13": yaml in in13,
            "splits": {s: {"ann_file": v["ann_file"], "img_dir": v["img_dir"].rstrip("/")}
                       for s, v in splits.items()},
            "categories": cfg["categories"],
            "caption_prompt": cfg["caption_prompt"],
            "num_classes_yaml": cfg["num_classes_yaml"],
            "general_copy": cfg["general_copy_yaml"],
            "val_split_during_ft": ft[0],
            "fewshot": {"shots": SHOTS, "seeds": SEEDS, "files": fewshot},
            "roboflow": roboflow_pin(folder),
        }
        index[suite_dir] += 1
        os.makedirs(os.path.join(out_root, suite_dir), exist_ok=True)
        path = os.path.join(out_root, suite_dir, f"{name}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(task, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(path + ".tmp", path)
    print(f"wrote {index['odinw_35']} odinw_35 and {index['odinw_13']} odinw_13 task files")


if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "shared", "reference", "odinw-registry.json")
    main(src, here)
