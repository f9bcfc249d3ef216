#!/usr/bin/env python3
"""Run an exported model directory on ODinW-style tasks with onnxruntime and score COCO AP.

    python scripts/eval_glip_onnx.py --model models/demo --root demo --tasks demo/tasks/*.json --split test

A Python reference of the whole inference pipeline (what the Rust engine reimplements): GLIP's
prompt and positive map, resize/normalise/pad, the three graphs, GLIP's post-processing, and
pycocotools COCOeval (stats[0] = AP@[.5:.95]). Prints one line per task and the mean.

The caption is GLIP's, built from the task record as `odinw prompt` builds it: the registry's
categories in ascending id order, each `clean_name(name)`, or with a CAPTION_PROMPT (unless
--no-prompt) `prefix + prompt name + suffix`, joined with ". ". Resize sizes, normalisation and
post-processing thresholds come from the model's model.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from glip_export import postprocess  # noqa: E402
from glip_export.preprocess import prepare  # noqa: E402
from glip_export.prompts import build_caption, positive_map  # noqa: E402


def clean_name(name: str) -> str:
    """GLIP's `clean_name`: drop "(...)", "_" -> " ", collapse double spaces (no lowercasing)."""
    name = re.sub(r"\(.*\)", "", name)
    name = re.sub(r"_", " ", name)
    return re.sub(r"  ", " ", name)


def task_caption(task: dict, use_prompt: bool = True, separator: str = ". "):
    """GLIP's query for a registry task record (`odinw prompt`, src/prompt/caption.rs).

    -> (caption, [(start, end)] span per class, [category id] per class), classes in ascending
    category id order.
    """
    cats = sorted(task["categories"], key=lambda c: c["id"])
    prompts = task.get("caption_prompt") if use_prompt else None
    if prompts is not None and len(prompts) != len(cats):
        raise ValueError(f"task {task['name']}: CAPTION_PROMPT has {len(prompts)} entries but the task "
                         f"has {len(cats)} categories")
    names = [clean_name(c["name"]) for c in cats]
    caption, spans = build_caption(names, separator, prompts)
    return caption, spans, [c["id"] for c in cats]


def config_from_model_json(desc: dict) -> SimpleNamespace:
    """The pre- and post-processing settings of model.json, in the fields glip_export reads."""
    pre, post = desc["preprocess"], desc["postprocess"]
    if pre.get("channel_order", "BGR") != "BGR" or float(pre.get("scale", 255.0)) != 255.0:
        raise ValueError("model.json preprocess: only BGR input scaled by 255 is supported")
    return SimpleNamespace(
        min_size=int(pre["resize"]["min_size"]),
        max_size=int(pre["resize"]["max_size"]),
        size_divisibility=int(pre.get("size_divisibility", 32)),
        pixel_mean_bgr=tuple(float(v) for v in pre["mean"]),
        pixel_std_bgr=tuple(float(v) for v in pre["std"]),
        pre_nms_thresh=float(post["pre_nms_thresh"]),
        pre_nms_top_n=int(post["pre_nms_top_n_per_level"]),
        nms_thresh=float(post["nms_thresh"]),
        detections_per_img=int(post["detections_per_img"]),
        prompt_separator=desc["text"].get("prompt_separator", ". "),
    )


class GlipOnnx:
    def __init__(self, model_dir: Path, threads: int = 1):
        self.desc = json.loads((model_dir / "model.json").read_text())
        self.cfg = config_from_model_json(self.desc)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sessions = {name: ort.InferenceSession(str(model_dir / g["file"]), opts, providers=["CPUExecutionProvider"])
                         for name, g in self.desc["graphs"].items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # Contract v2 graphs take GLIP's canvas of each image (None); v1 graphs one fixed size.
        pre = self.desc["preprocess"]
        self.input_hw = None if pre.get("canvas") == "dynamic" else tuple(pre["input_size"])
        self.max_len = self.desc["text"]["max_text_len"]

    def encode_text(self, caption: str):
        enc = self.tokenizer.encode(caption)
        ids = enc.ids[: self.max_len]
        if len(enc.ids) > self.max_len:
            ids[-1] = self.desc["text"]["special_tokens"]["sep"]
        ids = np.asarray([ids], dtype=np.int64)
        mask = np.ones_like(ids)
        hidden = self.sessions["text_encoder"].run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return hidden, mask

    def detect(self, image: Image.Image, text_hidden, text_mask, pos_map):
        data, resized_hw, scale = prepare(image, self.cfg, self.input_hw)
        feats = self.sessions["image_backbone"].run(None, {"images": data[None]})
        inputs = {f"p{i + 3}": f for i, f in enumerate(feats)}
        inputs.update(text_hidden=text_hidden, attention_mask=text_mask)
        _, boxes, ctr, logits = self.sessions["head"].run(None, inputs)
        level_counts = [f.shape[2] * f.shape[3] for f in feats]  # the anchor grid of this canvas
        b, s, lab = postprocess.detect(boxes[0], ctr[0], logits[0], pos_map, level_counts, resized_hw, self.cfg)
        return postprocess.to_coco(b, scale), s, lab


def predict_task(model: GlipOnnx, task: dict, root: Path, split: str, use_prompt: bool = True):
    """(caption, COCO results list, pycocotools COCO of the split) for one task record."""
    from pycocotools.coco import COCO

    ann = root / task["splits"][split]["ann_file"]
    img_dir = root / task["splits"][split]["img_dir"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
    caption, spans, cat_ids = task_caption(task, use_prompt, model.cfg.prompt_separator)
    pos_map = positive_map(model.tokenizer, caption, spans, model.max_len)
    hidden, mask = model.encode_text(caption)
    results = []
    for img_info in gt.loadImgs(sorted(gt.getImgIds())):
        image = Image.open(img_dir / img_info["file_name"]).convert("RGB")
        boxes, scores, labels = model.detect(image, hidden, mask, pos_map)
        for box, score, label in zip(boxes, scores, labels):
            results.append({"image_id": img_info["id"], "category_id": cat_ids[label], "bbox": box,
                            "score": float(score)})
    return caption, results, gt


def evaluate_task(model: GlipOnnx, task: dict, root: Path, split: str, quiet: bool = True,
                  use_prompt: bool = True) -> dict:
    from pycocotools.cocoeval import COCOeval

    caption, results, gt = predict_task(model, task, root, split, use_prompt)
    if not results:
        return {"task": task["name"], "AP": 0.0, "AP50": 0.0, "detections": 0, "caption": caption}
    out = io.StringIO()
    with contextlib.redirect_stdout(out if quiet else sys.stdout):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"task": task["name"], "AP": float(ev.stats[0]), "AP50": float(ev.stats[1]),
            "detections": len(results), "caption": caption}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="model directory (model.json, *.onnx)")
    ap.add_argument("--root", type=Path, required=True, help="dataset root (holds odinw/...)")
    ap.add_argument("--tasks", type=Path, nargs="+", required=True, help="task records (JSON)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--no-prompt", action="store_true", help="ignore CAPTION_PROMPT (as odinw --no-prompt)")
    args = ap.parse_args(argv)
    model = GlipOnnx(args.model, args.threads)
    rows = []
    for path in args.tasks:
        try:
            task = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"error: {path}: {err}", file=sys.stderr)
            return 1
        row = evaluate_task(model, task, args.root, args.split, use_prompt=not args.no_prompt)
        rows.append(row)
        print(f"{row['task']:<20} AP {row['AP'] * 100:5.1f}  AP50 {row['AP50'] * 100:5.1f}  ({row['detections']} detections)")
    mean = sum(r["AP"] for r in rows) / len(rows)
    print(f"{'mean':<20} AP {mean * 100:5.1f}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "tasks": rows, "mean_AP": mean}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
