"""Writes a realistic large COCO bbox case for benchmarks/coco_eval: gt.json and dt.json.

Deterministic (seeded). Defaults: 5,000 images, 20 categories with non-contiguous ids (one
has detections but no GT), about 10 GT boxes per image (some crowd, GT `area` below w*h as
for masks, some exactly 1024 or 9216), 3% of images without GT, and about 100 detections per
image: jittered true positives with Beta(5,2) scores, duplicates, wrong classes, background
boxes with Beta(1.2,6) scores, and a few (image, category) cells with more than 100
detections. Boxes have 2 decimals and scores 5, so scores tie often.

Usage: generate.py --out DIR [--images N] [--seed S]
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    cat_ids = sorted(rng.sample(range(1, 91), 20))
    no_gt_cat = cat_ids[-1]  # detections only
    gt_cats = cat_ids[:-1]
    images, anns, dets = [], [], []
    ann_id = 1
    for img_id in range(1, args.images + 1):
        W, H = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375)])
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": W, "height": H})
        n_gt = 0 if rng.random() < 0.03 else min(40, int(rng.expovariate(1 / 9.5)) + 1)
        gts = []
        for _ in range(n_gt):
            cat = rng.choice(gt_cats)
            s = rng.choice([rng.uniform(4, 32), rng.uniform(32, 96), rng.uniform(96, 400)])
            w = round(min(W - 1, s * rng.uniform(0.6, 1.6)), 2)
            h = round(min(H - 1, s * rng.uniform(0.6, 1.6)), 2)
            x = round(rng.uniform(0, W - w), 2)
            y = round(rng.uniform(0, H - h), 2)
            r = rng.random()
            if r < 0.01:
                area = 1024
            elif r < 0.02:
                area = 9216
            else:
                area = round(w * h * rng.uniform(0.45, 1.0), 2)
            crowd = 1 if rng.random() < 0.014 else 0
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat, "bbox": [x, y, w, h],
                         "area": area, "iscrowd": crowd, "segmentation": []})
            ann_id += 1
            gts.append((cat, x, y, w, h))

        start = len(dets)

        def det(cat, x, y, w, h, score):
            dets.append({"image_id": img_id, "category_id": cat,
                         "bbox": [round(x, 2), round(y, 2), round(max(w, 0.5), 2), round(max(h, 0.5), 2)],
                         "score": round(score, 5)})

        for cat, x, y, w, h in gts:
            if rng.random() < 0.85:
                for _ in range(1 + (rng.random() < 0.3)):  # sometimes a duplicate
                    j = rng.uniform(0.02, 0.25)
                    det(cat if rng.random() < 0.93 else rng.choice(cat_ids),
                        x + w * rng.uniform(-j, j), y + h * rng.uniform(-j, j),
                        w * (1 + rng.uniform(-j, j)), h * (1 + rng.uniform(-j, j)),
                        rng.betavariate(5, 2))
        while len(dets) - start < 100:
            s = rng.uniform(8, 300)
            w, h = s * rng.uniform(0.5, 1.5), s * rng.uniform(0.5, 1.5)
            det(rng.choice(cat_ids), rng.uniform(0, W - 10), rng.uniform(0, H - 10), w, h,
                rng.betavariate(1.2, 6))
        if img_id % 100 == 0:  # a crowded cell: more than maxDets=100 detections
            cat = rng.choice(gt_cats)
            for _ in range(rng.randint(101, 140)):
                det(cat, rng.uniform(0, W - 40), rng.uniform(0, H - 40), 40, 40, rng.betavariate(2, 5))

    gt = {"info": {"description": "odinw benchmark"}, "images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"class_{c}", "supercategory": "none"} for c in cat_ids]}
    with open(os.path.join(args.out, "gt.json"), "w") as f:
        json.dump(gt, f)
    with open(os.path.join(args.out, "dt.json"), "w") as f:
        json.dump(dets, f)
    crowd = sum(a["iscrowd"] for a in anns)
    print(f"{len(images)} images, {len(cat_ids)} categories, {len(anns)} GT boxes ({crowd} crowd), "
          f"{len(dets)} detections (no-GT category {no_gt_cat}) -> {args.out}")


if __name__ == "__main__":
    main()
