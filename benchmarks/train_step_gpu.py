#!/usr/bin/env python3
"""Training-step graphs at GLIP-T size: export cost, and PyTorch eager time for the same step.

    python3 benchmarks/train_step_gpu.py --config glip-t --export-dir /tmp/glipt-train [--json out.json]
    python3 benchmarks/train_step_gpu.py --config tiny --export-dir /tmp/tiny-train      # CPU smoke test

1. Builds random-init GLIP (seed 0) of --config and exports the `prompt` and `full` step graphs
   (TRAIN_CONTRACT.md; scripts/glip_export/train_step.py, the same code as
   scripts/export_train_step.py) at batch 1 and the config's export size (GLIP-T: 800x1344,
   T=256) into --export-dir: <track>_step.onnx, <track>_params.bin, <track>.json, and the predict
   graph unless --step-only. Tracing uses fake tensors, so it needs no GPU and little memory.
   Reports seconds and megabytes per track.
2. Times one training step in PyTorch eager on --device (default cuda when available), fp32:
   forward + GLIP's loss on the same targets + gradients of the track's trainable parameters,
   median of --iters after --warmup (TF32 off), two ways: `eager` (torchvision's deform_conv2d and
   F.interpolate, as one would train in PyTorch) and `eager_graph_ops` (the gather DCN and matmul
   upsample the graphs use). The prompt track's data are the cached p3..p7 and text_hidden.
3. If onnxruntime is importable here, runs the exported step graph (CUDA EP when present, inputs
   fed from host memory) on the same inputs: median of --ort-iters, ratio to eager, and the max relative
   error of the loss and gradients against eager (--no-ort skips it). The H100 image has only
   onnxruntime's CPU build in Python: there it checks GLIP-T's graphs against CUDA eager but its
   time means little (use --ort-iters 1); time the graphs from Rust (ORT CUDA) with these files.

Prints one JSON object (also written to --json).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from glip_export.atss_loss import atss_assign, centerness_targets  # noqa: E402
from glip_export.config import CONFIGS  # noqa: E402
from glip_export.model import Glip  # noqa: E402
from glip_export.target_loss import glip_loss_from_targets  # noqa: E402
from glip_export.train_step import build_track, differentiable_ops, export_track  # noqa: E402

TRACKS = ("prompt", "full")


def parse_size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    if h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"--image-size {text}: multiples of 32 expected")
    return h, w


def median_ms(fn, iters: int, warmup: int, sync) -> dict:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return {"median_ms": round(1000 * float(np.median(times)), 3), "min_ms": round(1000 * min(times), 3),
            "runs": iters}


def make_inputs(glip: Glip, cfg, batch: int, image_hw, text_len: int, anchors, level_counts, seed: int = 0):
    """Random images and a half-filled prompt; targets by ATSS from random boxes (so there are positives)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *image_hw, generator=g)
    mask = torch.zeros(batch, text_len, dtype=torch.long)
    real = max(2, min(text_len, 60))
    mask[:, :real] = 1
    ids = torch.randint(1, cfg.bert.vocab_size, (batch, text_len), generator=g) * mask
    q = anchors.shape[0]
    targets = {"positive": torch.zeros(batch, q), "reg_targets": torch.zeros(batch, q, 4),
               "centerness_targets": torch.zeros(batch, q), "token_targets": torch.zeros(batch, q, text_len)}
    h, w = image_hw
    for b in range(batch):
        n = 5
        size = torch.rand(n, 2, generator=g) * 0.4 + 0.1
        xy = torch.rand(n, 2, generator=g) * (1 - size)
        boxes = torch.cat([xy * torch.tensor([w, h]), (xy + size) * torch.tensor([w, h]) - 1], dim=1)
        rows = torch.zeros(n, text_len)
        for i in range(n):
            start = 1 + 3 * i
            rows[i, start:start + 2] = 1
        a = atss_assign(anchors, level_counts, boxes)
        pos = a.gt_index >= 0
        targets["positive"][b, pos] = 1
        targets["reg_targets"][b, pos] = a.reg_targets[pos]
        targets["centerness_targets"][b, pos] = centerness_targets(a.reg_targets[pos], anchors[pos])
        targets["token_targets"][b, pos] = rows[a.gt_index[pos]]
    with torch.no_grad():
        feats = glip.backbone(images)
        text = glip.language_backbone(ids, mask)
    data = {"full": {"images": images, "input_ids": ids, "attention_mask": mask},
            "prompt": {**{f"p{i + 3}": f for i, f in enumerate(feats)}, "text_hidden": text,
                       "attention_mask": mask}}
    return data, targets


def eager_step(tm, data: dict, targets: dict, params: list[torch.Tensor]):
    def step():
        outs = tm.forward(*data.values())
        total, *_ = glip_loss_from_targets(*outs, data["attention_mask"], tm.anchors, *targets.values())
        grads = torch.autograd.grad(total, params)
        return total, grads
    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--export-dir", type=Path, required=True)
    ap.add_argument("--tracks", default=",".join(TRACKS), help="comma-separated, from prompt,full,linear")
    ap.add_argument("--image-size", type=parse_size, help="HxW (default: the config's, 800x1344 for glip-t)")
    ap.add_argument("--text-len", type=int, help="T (default: the config's max_text_len, 256 for glip-t)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ort-iters", type=int, default=3, help="timed onnxruntime runs (after one warm-up)")
    ap.add_argument("--no-ort", action="store_true",
                    help="skip onnxruntime even if importable (its CPU build takes minutes per GLIP-T step)")
    ap.add_argument("--skip-export", action="store_true", help="time eager only (reuse --export-dir)")
    ap.add_argument("--step-only", action="store_true", help="export the step graph but not the predict graph")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cfg = CONFIGS[args.config]
    image_hw = args.image_size or cfg.image_size
    text_len = args.text_len or cfg.max_text_len
    tracks = [t for t in args.tracks.split(",") if t]

    # fp32 means fp32: no TF32 in cuDNN convolutions or matmuls (PyTorch enables it for cuDNN).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    glip = Glip(cfg).eval()
    result = {"config": cfg.name, "image_size": list(image_hw), "text_len": text_len, "batch": args.batch,
              "torch": torch.__version__, "host": platform.node(), "device": args.device,
              "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
              "tracks": {}}

    # 1. export (CPU, fake-tensor tracing)
    for track in tracks:
        row = result["tracks"].setdefault(track, {})
        if args.skip_export:
            continue
        started = time.time()
        desc = export_track(glip, track, args.export_dir, args.batch, image_hw, text_len,
                            {"odinw.config": cfg.name, "odinw.track": track},
                            log=lambda msg: print(msg, file=sys.stderr), with_predict=not args.step_only)
        row["export_s"] = round(time.time() - started, 1)
        row["step_graph_mb"] = round((args.export_dir / desc["step"]["file"]).stat().st_size / 1e6, 1)
        row["params_mb"] = round((args.export_dir / desc["params_file"]).stat().st_size / 1e6, 1)
        row["trainable_tensors"] = len(desc["params"])

    # 2. eager on the device
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tm0 = build_track(glip, "full", args.batch, image_hw, text_len)
    level_counts = [h * w for h, w in _level_sizes(cfg, image_hw)]
    data, targets = make_inputs(glip, cfg, args.batch, image_hw, text_len, tm0.anchors, level_counts)
    glip.to(device)
    targets_dev = {k: v.to(device) for k, v in targets.items()}
    for track in tracks:
        row = result["tracks"][track]
        tm = build_track(glip, track, args.batch, image_hw, text_len)
        tm.forward.to(device)
        tm.anchors = tm.anchors.to(device)
        named = dict(tm.forward.named_parameters())
        for p in tm.forward.parameters():
            p.requires_grad_(False)
        params = [named[n].requires_grad_(True) for n in tm.trainable]
        track_data = {k: v.to(device) for k, v in (data["full"] if track == "full" else data["prompt"]).items()}
        if track == "linear":
            with torch.no_grad():
                feats, fused = glip.rpn.head.run_tower([track_data[f"p{i}"] for i in range(3, 8)],
                                                       track_data["text_hidden"], track_data["attention_mask"])
            track_data = {**{f"f{i + 3}": f for i, f in enumerate(feats)}, "text_fused": fused,
                          "attention_mask": track_data["attention_mask"]}
        step = eager_step(tm, track_data, targets_dev, params)
        row["eager"] = median_ms(step, args.iters, args.warmup, sync)
        with differentiable_ops():
            row["eager_graph_ops"] = median_ms(step, args.iters, args.warmup, sync)
            ref_loss, ref_grads = step()
        if device.type == "cuda":
            row["eager_peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
            torch.cuda.reset_peak_memory_stats()
        # 3. onnxruntime, when this Python has it
        step_file = args.export_dir / f"{track}_step.onnx"
        ort_row = None if args.no_ort else _time_ort(step_file, tm, params, track_data, targets, args, ref_loss,
                                                      ref_grads)
        if ort_row:
            row["ort"] = ort_row
            row["ratio_ort_to_eager"] = round(ort_row["median_ms"] / row["eager"]["median_ms"], 3)
        for p in params:
            p.requires_grad_(False)
        glip.rpn.tunable_linear = None

    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _level_sizes(cfg, image_hw):
    from glip_export import anchors as anchor_lib
    return anchor_lib.feature_sizes(image_hw, cfg.anchor_strides)


def _time_ort(step_file: Path, tm, params, data, targets, args, ref_loss, ref_grads) -> dict | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    if not step_file.exists():
        return None
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    started = time.time()
    session = ort.InferenceSession(str(step_file), providers=providers)
    load_s = time.time() - started
    feed = {n: p.detach().cpu().numpy() for n, p in zip(tm.trainable, params)}
    feed.update({k: v.cpu().numpy() for k, v in data.items()})
    feed.update({k: v.numpy() for k, v in targets.items()})
    row = median_ms(lambda: session.run(None, feed), args.ort_iters, 1, lambda: None)
    outs = session.run(None, feed)
    scale = max(float(g.abs().max()) for g in ref_grads)
    grad_err = max(float(np.abs(o - g.cpu().numpy()).max()) for o, g in zip(outs[4:], ref_grads))
    row.update(provider=session.get_providers()[0], session_load_s=round(load_s, 1),
               loss_rel_err=float(abs(outs[0] - ref_loss.item()) / abs(ref_loss.item())),
               grad_max_err_rel_to_largest=grad_err / scale)
    return row


if __name__ == "__main__":
    sys.exit(main())
