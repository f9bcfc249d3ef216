#!/usr/bin/env python3
"""PyTorch eager Grounding DINO on a task's images and class names, same weights as odinw's export.

    gdino_eager.py --weights W --model MODEL --ann ANN.json --img-dir DIR --batches 1,8 \\
        --json eager.json [--device cuda|cpu] [--threads N] [--parity-images 3 --parity-out preds.json] \\
        [--pad-to-canvas]

- weights: the transformers checkpoint make_grounding_dino.py saved (W),
  `GroundingDinoForObjectDetection`;
- caption: the annotation file's category names (ascending id) joined as mmdetection's ODinW
  evaluation does (the exporter's `prompts.build_caption`, one chunk), tokenized by the
  checkpoint's processor with truncation to model.json's max_text_len;
- images: Pillow, pre-processed by the checkpoint's `GroundingDinoProcessor` (resize to the
  shortest/longest edge, normalise, pad to the batch's largest, or with --pad-to-canvas to
  model.json's canvas as odinw does) once, before timing. The timed
  loop, per batch: inputs host -> device, the model's whole forward (transformers' API runs the
  text model with every batch), logits and boxes copied back, synchronised;
- precision: fp32 (on CUDA with TF32 off, then on); one untimed pass over every batch (the
  processor's sizes differ per image, and kernels are chosen per shape), then a timed one.
With --parity-images K the first K images (batch 1, fp32, always padded to model.json's canvas as
odinw pads them: Swin sees the padding, so only then are the outputs odinw's) go through the
exporter's documented post-processing (`postprocess.detect`: mean token sigmoid per class, top 300 (query, class)
pairs, boxes scaled to the image) and are written as COCO results for compare_predictions.py.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import gpu_util  # noqa: E402
from grounding_dino_export import postprocess, prompts  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--img-dir", type=Path, required=True)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=150.0)
    ap.add_argument("--parity-images", type=int, default=0)
    ap.add_argument("--parity-out", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--pad-to-canvas", action="store_true", help="pad every image to model.json's canvas")
    args = ap.parse_args(argv)
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor
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
    max_len = desc["text"]["max_text_len"]
    model = GroundingDinoForObjectDetection.from_pretrained(args.weights).eval().to(dev)
    proc = GroundingDinoProcessor.from_pretrained(args.weights)
    ch, cw = desc["preprocess"]["canvas"]
    canvas_proc = copy.deepcopy(proc)
    canvas_proc.image_processor.pad_size = {"height": ch, "width": cw}
    if args.pad_to_canvas:
        proc = canvas_proc
        report["padded_to"] = [ch, cw]
    report["load_s"] = round(time.time() - t0, 2)

    coco = json.loads(args.ann.read_text())
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    caption, spans = prompts.build_caption([c["name"] for c in cats])
    enc = prompts.tokenize(proc.tokenizer, caption, max_len)
    tokens = prompts.class_tokens(enc, spans, max_len)
    report.update(caption=caption, text_tokens=len(enc["input_ids"]))

    images = sorted(coco["images"], key=lambda im: im["id"])
    started = time.time()
    loaded = [(im["id"], Image.open(args.img_dir / im["file_name"]).convert("RGB")) for im in images]

    def inputs(chunk, processor=proc):
        x = processor(images=[img for _, img in chunk], text=[caption] * len(chunk), return_tensors="pt",
                 truncation=True, max_length=max_len)
        return {k: v for k, v in x.items() if isinstance(v, torch.Tensor)}

    batches = [int(b) for b in args.batches.split(",")]
    # The processor's inputs of every chunk the timed passes run, keyed by the chunk's image ids.
    prepared = {tuple(i for i, _ in chunk): inputs(chunk)
                for b in batches for chunk in (loaded[i:i + b] for i in range(0, len(loaded), b))}
    report["images"] = len(loaded)
    report["preprocess_s_per_image"] = round((time.time() - started) / max(1, len(loaded) * len(batches)), 4)

    @torch.no_grad()
    def run_batch(x):
        o = model(**{k: v.to(dev) for k, v in x.items()})
        return o.logits.cpu(), o.pred_boxes.cpu()

    for precision in gpu_util.precisions(dev):
        if dev.type == "cuda":
            gpu_util.set_tf32(precision.endswith("on"))
        if precision in ("fp32-tf32-off", "fp32") and args.parity_images and args.parity_out:
            results = []
            for image_id, img in loaded[: args.parity_images]:
                x = inputs([(image_id, img)], canvas_proc)
                logits, boxes = run_batch(x)
                mask = x["pixel_mask"][0]
                resized_hw = (int(mask.any(1).sum()), int(mask.any(0).sum()))
                scores, labels, xyxy = postprocess.detect(logits[0].numpy(), boxes[0].numpy(), tokens, resized_hw,
                                                          (img.height, img.width))
                for s, lab, b in zip(scores, labels, xyxy):
                    results.append({"image_id": image_id, "category_id": cat_ids[int(lab)],
                                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                    "score": float(s)})
            args.parity_out.write_text(json.dumps(results) + "\n")
            report["parity_detections"] = len(results)
        gpu_util.time_batches(report, "Grounding DINO ", precision, batches, loaded,
                              lambda chunk: run_batch(prepared[tuple(i for i, _ in chunk)]), dev,
                              t0 + args.budget_s, warm_all=True)
    report["total_s"] = round(time.time() - t0, 1)
    gpu_util.write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
