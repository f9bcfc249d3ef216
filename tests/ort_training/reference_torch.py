#!/usr/bin/env python3
"""PyTorch reference for the ONNX Runtime training tests (runs in the export environment).

    reference_torch.py --model models/demo --artifacts DIR --out reference.npz [--lr 1e-3] [--steps 5]

A batch of the linear track built like a training batch: shapes-world samples
(train_tiny_glip.make_sample, seed 11), their images and captions through the demo model's
image_backbone.onnx / text_encoder.onnx and the artifacts' features.onnx (stock onnxruntime),
ATSS targets in the contract's dense form (positive, reg_targets, centerness_targets,
token_targets). Then, with the linear-track parameters read from head.onnx:

- the loss of GLIP's training code (`atss_loss.glip_loss`, which does its own ATSS assignment and
  indexes the positives) and the masked loss the graph computes, from the same head outputs;
- autograd gradients of glip_loss for the trainable parameters and the gradient norm;
- one torch.optim.AdamW step at `--step-lr` (single group, the artifacts' betas, eps and weight
  decay, after clip_grad_norm_), and the loss over `--steps` such steps at `--lr`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from glip_export import anchors as anchor_lib  # noqa: E402
from glip_export import linear_track as lt  # noqa: E402
from glip_export.atss_loss import atss_assign, centerness_targets, glip_loss  # noqa: E402
from glip_export.config import get_config  # noqa: E402
from glip_export.tokenizer import make_tokenizer  # noqa: E402
from train_tiny_glip import make_sample  # noqa: E402

SEED = 11


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def dense_targets(anchors, level_counts, samples, text_len):
    """The contract's target tensors from per-image (gt boxes, token map)."""
    b, q = len(samples), anchors.shape[0]
    positive = torch.zeros(b, q)
    reg = torch.zeros(b, q, 4)
    ctr = torch.zeros(b, q)
    tokens = torch.zeros(b, q, text_len)
    for i, (boxes, token_map) in enumerate(samples):
        a = atss_assign(anchors, level_counts, boxes)
        pos = a.gt_index >= 0
        positive[i] = pos.float()
        reg[i, pos] = a.reg_targets[pos]
        ctr[i, pos] = centerness_targets(a.reg_targets[pos], anchors[pos])
        tokens[i, pos] = token_map[a.gt_index[pos]]
    return positive, reg, ctr, tokens


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--artifacts", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--step-lr", type=float, default=0.3, help="learning rate of the single-step check")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    desc = json.loads((args.artifacts / "ort_training.json").read_text())
    model_desc = json.loads((args.model / "model.json").read_text())
    cfg = get_config(model_desc["config"])
    batch, text_len = desc["batch"], desc["max_text_len"]
    image_hw = tuple(desc["image_size"])

    tok = make_tokenizer(cfg.tokenizer)
    samples = [make_sample(i, SEED, tok, cfg) for i in range(batch)]
    images = torch.stack([s[0] for s in samples]).numpy()
    ids = torch.stack([s[1] for s in samples]).numpy()
    mask = torch.stack([s[2] for s in samples]).numpy()
    p = session(args.model / "image_backbone.onnx").run(None, {"images": images})
    hidden = session(args.model / "text_encoder.onnx").run(None, {"input_ids": ids, "attention_mask": mask})[0]
    features = session(args.artifacts / desc["features"]["file"])
    feed = {f"p{i + 3}": x for i, x in enumerate(p)}
    feed.update(text_hidden=hidden, attention_mask=mask)
    feats = features.run(None, feed)
    # features.onnx + the PyTorch head must be head.onnx itself on this batch too.
    head_out = session(args.model / "head.onnx").run(None, feed)

    sizes = anchor_lib.feature_sizes(image_hw, cfg.anchor_strides)
    anchors = anchor_lib.grid_anchors(sizes, cfg.anchor_strides, cfg.anchor_sizes)
    level_counts = [h * w for h, w in sizes]
    gt = [(s[3], s[4]) for s in samples]
    positive, reg_t, ctr_t, token_t = dense_targets(anchors, level_counts, gt, text_len)

    module = lt.LinearTrackLoss(cfg.replace(max_text_len=text_len), image_hw)
    initial = lt.read_head_params(args.model / "head.onnx")
    module.load_params(initial)
    trainable = [pd["name"] for pd in desc["trainable"]]
    named = dict(module.named_parameters())
    for name, param in named.items():
        param.requires_grad_(name in trainable)
    params = [named[n] for n in trainable]
    f = [torch.from_numpy(x) for x in feats]
    mask_t = torch.from_numpy(mask)

    def losses():
        deltas, ctr, logits = module.head_outputs(*f)
        reference = glip_loss(deltas, ctr, logits, mask_t, anchors, level_counts, gt)
        masked = lt.masked_glip_loss(deltas, ctr, logits, mask_t, anchors, positive, reg_t, ctr_t, token_t)
        return reference, masked, (deltas, ctr, logits)

    reference, masked, outputs = losses()
    total = reference["token"] + reference["reg"] + reference["centerness"]
    total.backward()
    out = {
        "lr": np.float64(args.lr),
        "step_lr": np.float64(args.step_lr),
        "num_pos": np.float64(positive.sum()),
        "loss": np.float64(total.item()),
        "loss_token": np.float64(reference["token"].item()),
        "loss_reg": np.float64(reference["reg"].item()),
        "loss_centerness": np.float64(reference["centerness"].item()),
        "masked_loss": np.asarray([m.item() for m in masked], np.float64),
        "grad_norm": np.float64(torch.sqrt(sum((p_.grad.double() ** 2).sum() for p_ in params)).item()),
        "head_parity": np.float64(max(
            float((o.detach() - torch.from_numpy(h)).abs().max() / max(float(np.abs(h).max()), 1e-12))
            for o, h in zip(outputs, (head_out[0], head_out[2], head_out[3])))),
    }
    for name in trainable:
        out[f"grad:{name}"] = named[name].grad.numpy().copy()
    for name, value in initial.items():
        out[f"param:{name}"] = np.asarray(value, np.float32).reshape(tuple(named[name].shape))
    data = {**{f"f{i + 3}": x for i, x in enumerate(feats)}, "text_fused": feats[5], "attention_mask": mask,
            "positive": positive.numpy(), "reg_targets": reg_t.numpy(), "centerness_targets": ctr_t.numpy(),
            "token_targets": token_t.numpy()}
    for name, value in data.items():
        out[f"input:{name}"] = value

    opt_desc = desc["optimizer"]

    def adamw(lr):
        return torch.optim.AdamW(params, lr=lr, betas=tuple(opt_desc["betas"]), eps=opt_desc["eps"],
                                 weight_decay=opt_desc["weight_decay"])

    # One step with a large learning rate, where the order of decay and update (torch's AdamW
    # decays first, Hugging Face's after) changes the update by lr * weight_decay relative.
    torch.nn.utils.clip_grad_norm_(params, opt_desc["clip_grad_norm"])
    adamw(args.step_lr).step()
    for name in trainable:
        out[f"step1:{name}"] = named[name].detach().numpy().copy()
    module.load_params(initial)

    optimizer = adamw(args.lr)
    trajectory = []
    for _ in range(args.steps):
        optimizer.zero_grad()
        reference, _, _ = losses()
        total = reference["token"] + reference["reg"] + reference["centerness"]
        total.backward()
        trajectory.append(total.item())
        torch.nn.utils.clip_grad_norm_(params, opt_desc["clip_grad_norm"])
        optimizer.step()
    with torch.no_grad():
        reference, _, _ = losses()
        trajectory.append((reference["token"] + reference["reg"] + reference["centerness"]).item())
    out["trajectory"] = np.asarray(trajectory, np.float64)
    np.savez(args.out, **out)
    print(json.dumps({k: float(v) for k, v in out.items() if np.ndim(v) == 0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
