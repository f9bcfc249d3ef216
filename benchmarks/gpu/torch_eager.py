#!/usr/bin/env python3
"""PyTorch eager on the images and prompt `odinw eval` used, with the weights its graphs hold.

    torch_eager.py --model /tmp/glipt --ann ANN.json --img-dir DIR --prompt prompt.json \\
        --batches 1,8 --json eager.json [--device cuda] [--parity-images 3 --parity-out eager_preds.json]

- weights: `<model>/random_init_state.pt` (benchmarks/gpu/export_model.py saved it beside the
  export and checked it against the graphs' initializers);
- text: the token ids and class token positions of `odinw prompt TASK --model DIR --json`
  (odinw's own tokenization), truncated to the model's text length as odinw does;
- images: decoded with Pillow and prepared with scripts/glip_export/preprocess.py (GLIP's resize,
  BGR normalisation, zero padding), the reference odinw's pre-processing is tested against.
  Prepared once, before timing: the timed loop is host->GPU copy, backbone, head, and the head
  outputs copied back (what odinw's loop does on the GPU), synchronised per batch;
- precision: fp32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 and
  torch.backends.cudnn.allow_tf32 both False) and with TF32 on (both True); cudnn.benchmark off
  (PyTorch's default). On CPU (the smoke test) one fp32 pass.
Each (precision, batch) pass: 2 warm-up batches, then every image once, timed, with nvidia-smi
sampling around the timed loop (benchmarks/gpu/gpu_util.py). With --parity-images K the first K
images also go through GLIP's post-processing (scripts/glip_export/postprocess.py), fp32/TF32
off, batch 1, and are written as COCO results for compare_predictions.py.
"""
from __future__ import annotations

import argparse
import json
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
from glip_export import postprocess  # noqa: E402
from glip_export.config import get_config  # noqa: E402
from glip_export.model import Glip, HeadGraph, ImageBackboneGraph, TextEncoderGraph  # noqa: E402
from glip_export.preprocess import prepare  # noqa: E402


def load_prompt(path: Path, desc: dict):
    """(input_ids [1,T], mask [1,T], pos_map [K,T], category ids) as odinw builds them."""
    prompt = json.loads(path.read_text())
    ids = list(prompt["token_ids"])
    max_len = desc["text"]["max_text_len"]
    if len(ids) > max_len:
        ids = ids[:max_len]
        ids[-1] = desc["text"]["special_tokens"]["sep"]
    t = len(ids)
    pos_map = np.zeros((len(prompt["classes"]), t), dtype=np.float32)
    for k, c in enumerate(prompt["classes"]):
        pos_map[k, [i for i in c["tokens"] if i < t]] = 1.0
    cat_ids = [c["id"] for c in prompt["classes"]]
    ids = np.asarray([ids], dtype=np.int64)
    return ids, np.ones_like(ids), pos_map, cat_ids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--ann", type=Path, required=True)
    ap.add_argument("--img-dir", type=Path, required=True)
    ap.add_argument("--prompt", type=Path, required=True, help="odinw prompt TASK --model DIR --json")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget-s", type=float, default=150.0, help="skip passes that would start after this")
    ap.add_argument("--parity-images", type=int, default=0)
    ap.add_argument("--parity-out", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    report = {"torch": torch.__version__, "device": args.device, "passes": [], "skipped": []}
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: torch sees no CUDA device")
        report["gpu"] = torch.cuda.get_device_name()
        report["cudnn"] = torch.backends.cudnn.version()
    else:
        report["threads"] = torch.get_num_threads()

    desc = json.loads((args.model / "model.json").read_text())
    post = desc["postprocess"]
    cfg = get_config(desc["config"]).replace(  # post-processing as model.json says, like odinw
        pre_nms_thresh=post["pre_nms_thresh"], pre_nms_top_n=post["pre_nms_top_n_per_level"],
        nms_thresh=post["nms_thresh"], detections_per_img=post["detections_per_img"])
    hw = tuple(desc["preprocess"]["input_size"])
    # A dynamic-canvas model (odinw's default): each image on its own canvas, GLIP's resize rounded
    # up to 32, as odinw runs it; a batch padded to its largest (GLIP's to_image_list).
    fixed = None if desc["preprocess"].get("canvas") == "dynamic" else hw
    model = Glip(cfg).eval()
    state = torch.load(args.model / "random_init_state.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model = model.to(dev)
    backbone, encoder, head = ImageBackboneGraph(model), TextEncoderGraph(model), HeadGraph(model, hw).to(dev)
    report["load_s"] = round(time.time() - t0, 2)

    ids, mask, pos_map, cat_ids = load_prompt(args.prompt, desc)
    coco = json.loads(args.ann.read_text())
    images = sorted(coco["images"], key=lambda im: im["id"])
    started = time.time()
    prepared = []
    for im in images:
        data, resized_hw, scale = prepare(Image.open(args.img_dir / im["file_name"]).convert("RGB"), cfg, fixed)
        prepared.append((im["id"], data, resized_hw, scale))
    report["images"] = len(prepared)
    report["preprocess_s_per_image"] = round((time.time() - started) / max(1, len(prepared)), 4)
    t_ids, t_mask = torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev)
    report["text_tokens"] = int(ids.shape[1])

    @torch.no_grad()
    def run_batch(chunk, hidden):
        h, w = (max(c[1].shape[d] for c in chunk) for d in (1, 2))
        x = torch.from_numpy(np.stack([np.pad(c[1], ((0, 0), (0, h - c[1].shape[1]), (0, w - c[1].shape[2])))
                                       for c in chunk])).to(dev)
        b = x.shape[0]
        feats = backbone(x)
        _, boxes, ctr, logits = head(*feats, hidden.expand(b, -1, -1), t_mask.expand(b, -1))
        return boxes.cpu(), ctr.cpu(), logits.cpu(), [f.shape[2] * f.shape[3] for f in feats]

    batches = [int(b) for b in args.batches.split(",")]
    for precision in gpu_util.precisions(dev):
        if dev.type == "cuda":
            gpu_util.set_tf32(precision.endswith("on"))
        with torch.no_grad():
            hidden = encoder(t_ids, t_mask)
        if precision in ("fp32-tf32-off", "fp32") and args.parity_images and args.parity_out:
            results = []
            for image_id, data, resized_hw, scale in prepared[: args.parity_images]:
                boxes, ctr, logits, level_counts = run_batch([(image_id, data)], hidden)
                b, s, lab = postprocess.detect(boxes[0].numpy(), ctr[0].numpy(), logits[0].numpy(), pos_map,
                                               level_counts, resized_hw, cfg)
                for box, score, label in zip(postprocess.to_coco(b, scale), s, lab):
                    results.append({"image_id": image_id, "category_id": cat_ids[label], "bbox": box,
                                    "score": float(score)})
            args.parity_out.write_text(json.dumps(results) + "\n")
            report["parity_detections"] = len(results)
        gpu_util.time_batches(report, "", precision, batches, prepared, lambda chunk: run_batch(chunk, hidden),
                              dev, t0 + args.budget_s)
    report["total_s"] = round(time.time() - t0, 1)
    gpu_util.write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
