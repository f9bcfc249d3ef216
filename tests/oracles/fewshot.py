"""Oracle: GLIP's k-shot sampling (glip-odinw-protocol.md §4.3, "path B") with pycocotools and
CPython's random, written from the protocol text, as JSON on stdout.

usage: fewshot.py FILE --shots 1,3 --seeds 0,3,30   sample FILE
       fewshot.py --load DIR                        load DIR/fewshot_*.json with pycocotools

Sampling, for each shot k and seed s:
  ids  = sorted(coco.imgs), keeping images with a valid annotation (has_valid_annotation)
  need = [k] * len(coco.cats)
  if s != 0: random.Random(s).shuffle(ids)
  greedy: keep an image when need[c - 1] > 0 for one of its distinct category ids c (every c is
  looked at, as GLIP's sum([...]) does, so a bad id fails even after a match), then
  need[c - 1] -= 1 for each; Python's list indexing applies (c = 0 reads need[-1]).
The expected file holds the kept images and all their annotations in the source file's order.
Output: {"valid": [...], "results": [{"shot", "seed", "selection", "image_ids",
"annotation_ids"}]}. A category id the counter list cannot index exits with status 3.
"""
import contextlib
import json
import os
import random
import sys

from pycocotools.coco import COCO


def load(path):
    with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints progress
        return COCO(path)


def has_valid_annotation(anns):
    if not anns:
        return False
    every_box_tiny = all(any(v <= 1 for v in a["bbox"][2:]) for a in anns)
    return not every_box_tiny


def annotations_of(coco, img_id):
    return coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None))


def sample(coco, valid, shot, seed):
    order = list(valid)
    need = [shot] * len(coco.cats)
    if seed != 0:
        random.Random(seed).shuffle(order)
    kept = []
    for img_id in order:
        cats = {a["category_id"] for a in annotations_of(coco, img_id)}
        wanted = [need[c - 1] > 0 for c in cats]
        if any(wanted):
            kept.append(img_id)
            for c in cats:
                need[c - 1] -= 1
    return kept


def arg(name):
    return sys.argv[sys.argv.index(name) + 1]


def main():
    sys.set_int_max_str_digits(0)
    if sys.argv[1] == "--load":
        folder = sys.argv[2]
        out = {}
        for name in sorted(os.listdir(folder)):
            if name.startswith("fewshot_") and name.endswith(".json"):
                coco = load(os.path.join(folder, name))
                out[name] = {"images": len(coco.imgs), "annotations": len(coco.anns),
                             "categories": len(coco.cats)}
        json.dump(out, sys.stdout)
        return

    path = sys.argv[1]
    shots = [int(x) for x in arg("--shots").split(",")]
    seeds = [int(x) for x in arg("--seeds").split(",")]
    coco = load(path)
    with open(path) as f:
        raw = json.load(f)
    valid = [i for i in sorted(coco.imgs) if has_valid_annotation(annotations_of(coco, i))]
    results = []
    for shot in shots:
        for seed in seeds:
            try:
                kept = sample(coco, valid, shot, seed)
            except IndexError as e:
                print(f"IndexError: {e}", file=sys.stderr)
                sys.exit(3)
            keep = set(kept)
            results.append({
                "shot": shot,
                "seed": str(seed),
                "selection": kept,
                "image_ids": [im["id"] for im in raw["images"] if im["id"] in keep],
                "annotation_ids": [a["id"] for a in raw["annotations"] if a["image_id"] in keep],
            })
    json.dump({"valid": valid, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
