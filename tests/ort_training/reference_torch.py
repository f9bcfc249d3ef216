#!/usr/bin/env python3
"""PyTorch reference for the ONNX Runtime training tests (runs in the export environment).

    reference_torch.py --model models/demo --artifacts DIR --out reference.npz [--lr 1e-3] [--steps 6]

Batches of the linear track built like training batches on GLIP's per-batch canvas, one per
entry of CANVASES (square, portrait, landscape): shapes-world samples (train_tiny_glip.make_sample,
seed 11) resized with that entry's min/max size, zero-padded bottom/right to the batch's largest
resized height and width each rounded up to 32 (`to_image_list(32)`), their images and captions
through the demo model's image_backbone.onnx / text_encoder.onnx and the artifacts'
features.onnx (stock onnxruntime), ATSS targets of that canvas's anchors in the contract's dense
form (positive, reg_targets, centerness_targets, token_targets). Then, per canvas (keys
`c<k>:...`), with the linear-track parameters read from head.onnx:

- the loss of GLIP's training code (`atss_loss.glip_loss`, which does its own ATSS assignment and
  indexes the positives) and the masked loss the graph computes, from the same head outputs;
- autograd gradients of glip_loss for the trainable parameters and the gradient norm;
- one torch.optim.AdamW step at `--step-lr` (single group, the artifacts' betas, eps and weight
  decay, after clip_grad_norm_);

and the loss over `--steps` such steps at `--lr`, step s on canvas s mod len(CANVASES) (the
last value: canvas 0 after the steps).
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
import train_tiny_glip  # noqa: E402
from train_tiny_glip import make_sample  # noqa: E402

resize_rule = train_tiny_glip.resized_size

SEED = 11
SIZE_DIVISIBILITY = 32
# (min_size, max_size, first sample): batches whose canvases are 192x192, 320x224 (portrait) and
# 160x288 (landscape).
CANVASES = ((192, 192, 0), (224, 320, 4), (160, 416, 38))


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


def canvas_batch(cfg, tok, batch: int, min_size: int, max_size: int, first: int):
    """Samples first.. of a batch resized with (min_size, max_size), padded to their canvas."""
    resized = []

    def recording(*args):
        size = resize_rule(*args)
        resized.append(size)
        return size

    big = -(-max_size // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY * 2
    c = cfg.replace(min_size=min_size, max_size=max_size, image_size=(big, big))
    train_tiny_glip.resized_size = recording
    try:
        samples = [make_sample(first + i, SEED, tok, c) for i in range(batch)]
    finally:
        train_tiny_glip.resized_size = resize_rule
    canvas = tuple(-(-max(r[d] for r in resized) // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY for d in (0, 1))
    # Padding is zeros bottom/right, so cropping the big padded image to the canvas pads it to it.
    images = torch.stack([s[0][:, :canvas[0], :canvas[1]] for s in samples]).contiguous().numpy()
    return samples, images, canvas


class Canvas:
    """One batch on its canvas: the head's inputs and the contract's targets."""

    def __init__(self, args, desc, cfg, tok, entry):
        batch, text_len = desc["batch"], desc["max_text_len"]
        samples, images, self.hw = canvas_batch(cfg, tok, batch, *entry)
        ids = torch.stack([s[1] for s in samples]).numpy()
        self.mask = torch.stack([s[2] for s in samples]).numpy()
        p = session(args.model / "image_backbone.onnx").run(None, {"images": images})
        hidden = session(args.model / "text_encoder.onnx").run(None, {"input_ids": ids,
                                                                       "attention_mask": self.mask})[0]
        feed = {f"p{i + 3}": x for i, x in enumerate(p)}
        feed.update(text_hidden=hidden, attention_mask=self.mask)
        self.feats = session(args.artifacts / desc["features"]["file"]).run(None, feed)
        # features.onnx + the PyTorch head must be head.onnx itself on this batch too.
        self.head_out = session(args.model / "head.onnx").run(None, feed)
        sizes = anchor_lib.feature_sizes(self.hw, cfg.anchor_strides)
        assert [tuple(f.shape[-2:]) for f in self.feats[:5]] == sizes, (self.hw, sizes)
        self.anchors = anchor_lib.grid_anchors(sizes, cfg.anchor_strides, cfg.anchor_sizes)
        self.level_counts = [h * w for h, w in sizes]
        self.gt = [(s[3], s[4]) for s in samples]
        self.targets = dense_targets(self.anchors, self.level_counts, self.gt, text_len)
        self.f = [torch.from_numpy(x) for x in self.feats]
        self.mask_t = torch.from_numpy(self.mask)

    def losses(self, module):
        deltas, ctr, logits = module.head_outputs(*self.f)
        reference = glip_loss(deltas, ctr, logits, self.mask_t, self.anchors, self.level_counts, self.gt)
        masked = lt.masked_glip_loss(deltas, ctr, logits, self.mask_t, self.anchors, *self.targets)
        return reference, masked, (deltas, ctr, logits)

    def inputs(self) -> dict:
        positive, reg_t, ctr_t, token_t = self.targets
        return {**{f"f{i + 3}": x for i, x in enumerate(self.feats)}, "text_fused": self.feats[5],
                "attention_mask": self.mask, "positive": positive.numpy(), "reg_targets": reg_t.numpy(),
                "centerness_targets": ctr_t.numpy(), "token_targets": token_t.numpy()}


def total_of(reference):
    return reference["token"] + reference["reg"] + reference["centerness"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--artifacts", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=2 * len(CANVASES))
    ap.add_argument("--step-lr", type=float, default=0.3, help="learning rate of the single-step check")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    desc = json.loads((args.artifacts / "ort_training.json").read_text())
    model_desc = json.loads((args.model / "model.json").read_text())
    cfg = get_config(model_desc["config"])
    text_len = desc["max_text_len"]
    tok = make_tokenizer(cfg.tokenizer)
    canvases = [Canvas(args, desc, cfg, tok, entry) for entry in CANVASES]

    module = lt.LinearTrackLoss(cfg.replace(max_text_len=text_len))
    initial = lt.read_head_params(args.model / "head.onnx")
    module.load_params(initial)
    trainable = [pd["name"] for pd in desc["trainable"]]
    named = dict(module.named_parameters())
    for name, param in named.items():
        param.requires_grad_(name in trainable)
    params = [named[n] for n in trainable]
    opt_desc = desc["optimizer"]

    def adamw(lr):
        return torch.optim.AdamW(params, lr=lr, betas=tuple(opt_desc["betas"]), eps=opt_desc["eps"],
                                 weight_decay=opt_desc["weight_decay"])

    out = {"lr": np.float64(args.lr), "step_lr": np.float64(args.step_lr),
           "canvases": np.asarray([c.hw for c in canvases], np.int64)}
    for name, value in initial.items():
        out[f"param:{name}"] = np.asarray(value, np.float32).reshape(tuple(named[name].shape))
    for k, c in enumerate(canvases):
        module.load_params(initial)
        for p_ in params:
            p_.grad = None
        reference, masked, outputs = c.losses(module)
        total = total_of(reference)
        total.backward()
        key = f"c{k}:"
        out.update({
            key + "num_pos": np.float64(c.targets[0].sum()),
            key + "loss": np.float64(total.item()),
            key + "loss_token": np.float64(reference["token"].item()),
            key + "loss_reg": np.float64(reference["reg"].item()),
            key + "loss_centerness": np.float64(reference["centerness"].item()),
            key + "masked_loss": np.asarray([m.item() for m in masked], np.float64),
            key + "grad_norm": np.float64(torch.sqrt(sum((p_.grad.double() ** 2).sum() for p_ in params)).item()),
            key + "head_parity": np.float64(max(
                float((o.detach() - torch.from_numpy(h)).abs().max() / max(float(np.abs(h).max()), 1e-12))
                for o, h in zip(outputs, (c.head_out[0], c.head_out[2], c.head_out[3])))),
        })
        for name in trainable:
            out[f"{key}grad:{name}"] = named[name].grad.numpy().copy()
        for name, value in c.inputs().items():
            out[f"{key}input:{name}"] = value
        # One step with a large learning rate, where the order of decay and update (torch's AdamW
        # decays first, Hugging Face's after) changes the update by lr * weight_decay relative.
        torch.nn.utils.clip_grad_norm_(params, opt_desc["clip_grad_norm"])
        adamw(args.step_lr).step()
        for name in trainable:
            out[f"{key}step1:{name}"] = named[name].detach().numpy().copy()

    module.load_params(initial)
    optimizer = adamw(args.lr)
    trajectory = []
    for step in range(args.steps):
        optimizer.zero_grad()
        reference, _, _ = canvases[step % len(canvases)].losses(module)
        total = total_of(reference)
        total.backward()
        trajectory.append(total.item())
        torch.nn.utils.clip_grad_norm_(params, opt_desc["clip_grad_norm"])
        optimizer.step()
    with torch.no_grad():
        reference, _, _ = canvases[0].losses(module)
        trajectory.append(total_of(reference).item())
    out["trajectory"] = np.asarray(trajectory, np.float64)
    np.savez(args.out, **out)
    print(json.dumps({k: float(v) for k, v in out.items() if np.ndim(v) == 0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
