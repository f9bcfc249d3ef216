#!/usr/bin/env python3
"""Train the `tiny` GLIP on the procedural shapes world (scripts/shapes_world.py), on CPU.

    python scripts/train_tiny_glip.py --out /tmp/tiny.pt            # ~10-15 min on 2 cores
    python scripts/export_glip.py --config tiny --weights /tmp/tiny.pt --out models/demo

Every training image is generated from (seed, index), so a run is reproducible given the same
torch version and thread count. Each sample is GLIP-style detection-as-grounding: a caption of
class names (the objects present, minus some dropped ones that become background, plus negatives)
under a random naming scheme ("red circle" / "striped circle" / "red striped circle" / "circle"),
sometimes wrapped in a template ("a {name} shape"). The loss is GLIP's ATSS loss (atss_loss.py).
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import shapes_world as world  # noqa: E402
from glip_export import anchors as anchor_lib  # noqa: E402
from glip_export.atss_loss import glip_loss  # noqa: E402
from glip_export.config import TINY  # noqa: E402
from glip_export.dyhead import DeformConv3x3  # noqa: E402
from glip_export.model import Glip, concat_levels  # noqa: E402
from glip_export.preprocess import normalize, resized_size  # noqa: E402
from glip_export.prompts import build_caption, positive_map  # noqa: E402
from glip_export.tokenizer import encode_batch, make_tokenizer  # noqa: E402

SCHEME_WEIGHTS = {"colour_shape": 0.3, "texture_shape": 0.25, "full": 0.3, "shape": 0.15}
TEMPLATES = [("", ""), ("a ", ""), ("", " shape"), ("a ", " shape")]


def near_misses(things, scheme: str, present: list[str], rng: random.Random) -> list[str]:
    """Names that differ from a present object's in exactly one attribute (hard negatives)."""
    values = {"colour": list(world.COLOURS), "texture": list(world.TEXTURES), "shape": list(world.SHAPES)}
    out = []
    for t in things:
        attr = rng.choice(world.SCHEMES[scheme])
        other = world.Thing(**{**t.__dict__, attr: rng.choice([v for v in values[attr] if v != getattr(t, attr)])})
        name = other.name(scheme)
        if name not in present and name not in out:
            out.append(name)
    return out


def make_sample(index: int, seed: int, tok, cfg=TINY, hard_negatives: float = 0.0):
    """Image tensor [3,H,W] (padded), caption ids/mask [T], gt boxes [G,4], token map [G,T]."""
    rng = random.Random(seed * 1_000_003 + index)
    things = [rng.choice(world.all_things()) for _ in range(rng.randint(2, 6))]
    img, placed = world.render(rng, things, world.random_size(rng, 160, 320))
    scheme = rng.choices(list(SCHEME_WEIGHTS), weights=list(SCHEME_WEIGHTS.values()))[0]
    present = sorted({p.thing.name(scheme) for p in placed})
    keep = list(present)
    if len(keep) > 1 and rng.random() < 0.3:
        keep = rng.sample(keep, rng.randint(1, len(keep) - 1))
    others = [n for n in world.scheme_names(scheme) if n not in present]
    negatives = rng.sample(others, min(len(others), rng.randint(1, 6)))
    if hard_negatives > 0 and rng.random() < hard_negatives:
        hard = near_misses([p.thing for p in placed], scheme, present, rng)
        negatives = hard + [n for n in negatives if n not in hard]
        negatives = negatives[: max(len(hard), rng.randint(1, 6))]
    names = keep + negatives
    rng.shuffle(names)
    prefix, suffix = rng.choice(TEMPLATES) if rng.random() < 0.25 else ("", "")
    while True:
        prompts = [{"prefix": prefix, "name": n, "suffix": suffix} for n in names]
        caption, spans = build_caption(names, cfg.prompt_separator, prompts)
        if len(tok.encode(caption).ids) <= cfg.max_text_len or len(names) == 1:
            break
        negatives = [n for n in names if n not in keep]
        names.remove(negatives[-1] if negatives else names[-1])
    ids, mask = encode_batch(tok, [caption], cfg.max_text_len)
    pmap = positive_map(tok, caption, spans, cfg.max_text_len)
    w, h = img.size
    rh, rw = resized_size(w, h, cfg.min_size, cfg.max_size)
    img = img.resize((rw, rh), Image.BILINEAR)
    sx, sy = rw / w, rh / h
    flip = rng.random() < 0.5
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    boxes, rows = [], []
    for p in placed:
        name = p.thing.name(scheme)
        if name not in names:
            continue
        x0, y0, x1, y1 = p.box[0] * sx, p.box[1] * sy, p.box[2] * sx, p.box[3] * sy
        if flip:
            x0, x1 = rw - x1 - 1, rw - x0 - 1
        boxes.append([x0, y0, x1, y1])
        rows.append(pmap[names.index(name)])
    image = np.zeros((3, *cfg.image_size), dtype=np.float32)
    image[:, :rh, :rw] = normalize(img, cfg.pixel_mean_bgr, cfg.pixel_std_bgr)
    return (torch.from_numpy(image), torch.from_numpy(ids[0]), torch.from_numpy(mask[0]),
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.from_numpy(np.stack(rows) if rows else np.zeros((0, cfg.max_text_len), np.float32)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="where to save the weights (.pt state dict)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hard-negatives", type=float, default=0.5,
                    help="share of captions whose negatives start with one-attribute near misses")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared machine")
    ap.add_argument("--log-every", type=int, default=50)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    DeformConv3x3.use_grid_sample = True  # same function as torchvision's kernel, faster backward on CPU
    torch.manual_seed(args.seed)
    cfg = TINY
    tok = make_tokenizer(cfg.tokenizer)
    model = Glip(cfg).train()
    level_sizes = anchor_lib.feature_sizes(cfg.image_size, cfg.anchor_strides)
    anchors = anchor_lib.grid_anchors(level_sizes, cfg.anchor_strides, cfg.anchor_sizes)
    level_counts = [h * w for h, w in level_sizes]
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if "cls_logits" in name:
            p.requires_grad_(False)  # unused, frozen as in GLIP
        elif p.ndim <= 1 or name.endswith("bias") or "relative_position_bias_table" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    warmup = min(100, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, args.steps - warmup))))
    started = time.time()
    running = {}
    for step in range(args.steps):
        batch = [make_sample(step * args.batch + i, args.seed, tok, cfg, args.hard_negatives)
                 for i in range(args.batch)]
        images = torch.stack([b[0] for b in batch])
        ids = torch.stack([b[1] for b in batch])
        mask = torch.stack([b[2] for b in batch])
        box_reg, ctr, logits = model(images, ids, mask)
        deltas, ctr, logits = concat_levels(box_reg, ctr, logits)
        losses = glip_loss(deltas, ctr, logits, mask, anchors, level_counts, [(b[3], b[4]) for b in batch])
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + v.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            n = args.log_every if (step + 1) % args.log_every == 0 else (step + 1) % args.log_every
            parts = " ".join(f"{k} {v / n:.3f}" for k, v in running.items())
            print(f"step {step + 1}/{args.steps} {parts} lr {sched.get_last_lr()[0]:.2e} "
                  f"{time.time() - started:.0f}s", flush=True)
            running = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    torch.save({k: v for k, v in model.state_dict().items()}, tmp)
    tmp.replace(args.out)
    print(f"saved {args.out} after {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
