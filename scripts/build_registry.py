#!/usr/bin/env python3
"""Builds odinw_35/*.json and odinw_13/*.json (one file per task) from GLIP's task configs, plus
each task's `mmdet_caption_prompt` (mmdetection's Grounding DINO ODinW configs, transcribed in
MMDET_CAPTION_PROMPTS below).

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

# mmdetection's ODinW evaluation of Grounding DINO passes a dataset's `caption_prompt` to the
# model (`GroundingDINO.to_enhance_text_prompts`): the `caption_prompt=...` arguments that are
# active (not commented out, not merely assigned) in its configs, per model family and suite.
#   grounding-dino:    configs/grounding_dino/odinw/grounding_dino_swin-{t,b}_pretrain_odinw{13,35}.py
#   mm-grounding-dino: configs/mm_grounding_dino/odinw/grounding_dino_swin-t_pretrain_odinw{13,35}.py
#                      (the swin-b and swin-l configs inherit their datasets)
# Keys are the class names of the config's `class_name` tuple; each value holds the optional
# 'prefix', 'name' and 'suffix' of mmdetection's dict. Commented-out or unpassed prompts
# (Aquarium, pothole in odinw13, EgoHands_generic and pothole for grounding-dino in odinw35, and
# every odinw13 prompt for grounding-dino) are left out.
PACKAGE = {"package": {"prefix": "there is a ", "suffix": " on the porch"}}
HAND = {"hand": {"suffix": " of a person"}}
MMDET_CAPTION_PROMPTS = {
    ("odinw_35", "Packages"): {"grounding-dino": PACKAGE, "mm-grounding-dino": PACKAGE},
    ("odinw_35", "EgoHands_generic"): {"mm-grounding-dino": HAND},
    ("odinw_35", "pothole"): {"mm-grounding-dino": {
        "pothole": {"prefix": "there are some ", "name": "holes", "suffix": " on the road"}}},
    ("odinw_13", "CottontailRabbits"): {"mm-grounding-dino": {"Cottontail-Rabbit": {"name": "rabbit"}}},
    ("odinw_13", "EgoHands_generic"): {"mm-grounding-dino": HAND},
    ("odinw_13", "NorthAmericaMushrooms"): {"mm-grounding-dino": {
        "CoW": {"name": "flat mushroom"}, "chanterelle": {"name": "yellow mushroom"}}},
    ("odinw_13", "Packages"): {"mm-grounding-dino": PACKAGE},
}
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
    used = set()
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
            "mmdet_caption_prompt": MMDET_CAPTION_PROMPTS.get((suite_dir, name), {}),
            "num_classes_yaml": cfg["num_classes_yaml"],
            "general_copy": cfg["general_copy_yaml"],
            "val_split_during_ft": ft[0],
            "fewshot": {"shots": SHOTS, "seeds": SEEDS, "files": fewshot},
            "roboflow": roboflow_pin(folder),
        }
        for family, prompt in task["mmdet_caption_prompt"].items():
            names = {c["name"] for c in cfg["categories"]}
            assert set(prompt) <= names, (key, family, set(prompt) - names)
        used.add((suite_dir, name))
        index[suite_dir] += 1
        os.makedirs(os.path.join(out_root, suite_dir), exist_ok=True)
        path = os.path.join(out_root, suite_dir, f"{name}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(task, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(path + ".tmp", path)
    assert set(MMDET_CAPTION_PROMPTS) <= used, set(MMDET_CAPTION_PROMPTS) - used
    print(f"wrote {index['odinw_35']} odinw_35 and {index['odinw_13']} odinw_13 task files")


if __name__ == "__main__":
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "shared", "reference", "odinw-registry.json")
    main(src, here)
