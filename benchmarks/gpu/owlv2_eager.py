#!/usr/bin/env python3
"""PyTorch eager OWLv2 on the images and class names an `odinw eval` run used, same weights.

    owlv2_eager.py --weights W --model MODEL --ann ANN.json --img-dir DIR --odinw-log RUN/TASK/log.txt \\
        --batches 1,8 --json eager.json [--device cuda|cpu] [--threads N] \\
        [--parity-images 3 --parity-out eager_preds.json]

- weights: the transformers checkpoint `make_owlv2.py` saved (W), loaded as
  `Owlv2ForObjectDetection` (eager attention);
- queries: the `class ID "name"` lines of odinw's task log (the class names it grounded, in
  category id order) in every template of MODEL's model.json, canonicalised by the exporter's
  `prompts.class_prompts` (what tests/it/owlv2_eval.rs checks odinw against); tokenized with the
  checkpoint's tokenizer, cut to max_text_len and padded with the end token under a 0 mask, as
  odinw does; embedded once (transformers' text model + projection + L2 norm, the exporter's
  `TextEncoderGraph`), as odinw embeds them once per task;
- images: decoded with Pillow and pre-processed by the checkpoint's `Owlv2Processor` once,
  before timing (its seconds per image are reported apart). The timed loop, per batch:
  pixel_values host -> device, transformers' `image_embedder`, `class_predictor`,
  `box_predictor` and `objectness_predictor` as `Owlv2ForObjectDetection.forward` calls them
  (the exporter's `ImageDetectorGraph`), logits and boxes copied back to the host, synchronised;
- precision: fp32 (on CUDA with TF32 off, then on); 2 warm-up batches, then every image once.
With --parity-images K the first K images (batch 1, fp32) also go through the authors'
evaluator's post-processing (template mean, sigmoid, top k of all (patch, class) pairs, boxes
unpadded, clipped, scaled to the image) and are written as COCO results for
compare_predictions.py.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import gpu_util  # noqa: E402
from owlv2_export import prompts  # noqa: E402
from owlv2_export.graphs import ImageDetectorGraph, TextEncoderGraph  # noqa: E402


def classes_from_log(path: Path) -> tuple[list[int], list[str]]:
    """(category ids, names) from odinw's task log lines `class ID "name"` (Rust's Debug quoting)."""
    ids, names = [], []
    for line in path.read_text().splitlines():
        m = re.fullmatch(r'class (\d+) (".*")', line)
        if m:
            ids.append(int(m.group(1)))
            names.append(ast.literal_eval(m.group(2)))
    if not ids:
        raise SystemExit(f"error: {path}: no `class ID \"name\"` lines (not an OWLv2 task log?)")
    return ids, names


def tokenize(tokenizer, queries: list[str], max_len: int, eot: int):
    """input_ids, attention_mask [Q, L] as odinw builds them (first max_len tokens, end-token padding)."""
    rows = [tokenizer(q)["input_ids"][:max_len] for q in queries]
    length = max(2, max(len(r) for r in rows))
    ids = torch.tensor([r + [eot] * (length - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], dtype=torch.long)
    return ids, mask


def evaluator_top_k(logits, boxes, templates: int, classes: int, size, top_k: int, image_id: int, cat_ids):
    """scenic's evaluator on one image's [P, T*C] logits and [P, 4] boxes -> COCO results."""
    w, h = size
    p = logits.shape[0]
    scores = torch.sigmoid(logits.reshape(p, templates, classes).mean(dim=1)).reshape(-1)
    top = torch.topk(scores, min(top_k, scores.numel()))
    side = max(w, h)
    frac = np.array([w / side, h / side, w / side, h / side])
    boxes = boxes.double().numpy()
    out = []
    for s, i in zip(top.values.tolist(), top.indices.tolist()):
        patch, c = divmod(i, classes)
        b = np.clip(boxes[patch] / (frac + 1e-6), 0.0, 1.0)
        x, y = b[0] - b[2] / 2, b[1] - b[3] / 2
        out.append({"image_id": image_id, "category_id": cat_ids[c],
                    "bbox": [float(x * w), float(y * h), float(b[2] * w), float(b[3] * h)], "score": s})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--img-dir", type=Path, required=True)
    ap.add_argument("--odinw-log", type=Path, required=True, help="RUN/TASK/log.txt of odinw's run")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0, help="CPU: torch.set_num_threads (0: torch's default)")
    ap.add_argument("--budget-s", type=float, default=150.0, help="skip passes that would start after this")
    ap.add_argument("--parity-images", type=int, default=0)
    ap.add_argument("--parity-out", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    from transformers import Owlv2ForObjectDetection, Owlv2Processor
    import transformers

    t0 = time.time()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "device": args.device,
              "passes": [], "skipped": []}
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: torch sees no CUDA device")
        report["gpu"] = torch.cuda.get_device_name()
    else:
        report["threads"] = torch.get_num_threads()

    desc = json.loads((args.model / "model.json").read_text())
    text = desc["text"]
    top_k = desc["postprocess"]["evaluation"]["top_k"]
    model = Owlv2ForObjectDetection.from_pretrained(args.weights).eval().to(dev)
    proc = Owlv2Processor.from_pretrained(args.weights)
    encoder, detector = TextEncoderGraph(model), ImageDetectorGraph(model)
    report["load_s"] = round(time.time() - t0, 2)

    cat_ids, names = classes_from_log(args.odinw_log)
    per_template = prompts.class_prompts(names)
    templates, classes = len(per_template), len(names)
    queries = [q for row in per_template for q in row]
    ids, mask = tokenize(proc.tokenizer, queries, text["max_text_len"], text["special_tokens"]["<|endoftext|>"])
    report.update(queries=len(queries), templates=templates, classes=classes)

    coco = json.loads(args.ann.read_text())
    images = sorted(coco["images"], key=lambda im: im["id"])
    started = time.time()
    prepared = []
    for im in images:
        image = Image.open(args.img_dir / im["file_name"]).convert("RGB")
        pixels = proc(images=image, return_tensors="pt")["pixel_values"]
        prepared.append((im["id"], pixels, image.size))
    report["images"] = len(prepared)
    report["preprocess_s_per_image"] = round((time.time() - started) / max(1, len(prepared)), 4)

    @torch.no_grad()
    def run_batch(chunk, embeds):
        x = torch.cat([c[1] for c in chunk]).to(dev)
        logits, _, boxes = detector(x, embeds)
        return logits.cpu(), boxes.cpu()

    batches = [int(b) for b in args.batches.split(",")]
    for precision in gpu_util.precisions(dev):
        if dev.type == "cuda":
            gpu_util.set_tf32(precision.endswith("on"))
        with torch.no_grad():
            embeds = encoder(ids.to(dev), mask.to(dev))
        if precision in ("fp32-tf32-off", "fp32") and args.parity_images and args.parity_out:
            results = []
            for image_id, pixels, size in prepared[: args.parity_images]:
                logits, boxes = run_batch([(image_id, pixels)], embeds)
                results += evaluator_top_k(logits[0], boxes[0], templates, classes, size, top_k, image_id, cat_ids)
            args.parity_out.write_text(json.dumps(results) + "\n")
            report["parity_detections"] = len(results)
        gpu_util.time_batches(report, "OWLv2 ", precision, batches, prepared, lambda chunk: run_batch(chunk, embeds),
                              dev, t0 + args.budget_s)
    report["total_s"] = round(time.time() - t0, 1)
    gpu_util.write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
