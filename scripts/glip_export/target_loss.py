"""GLIP's ATSS loss (protocol §9) from precomputed targets, with static shapes.

`atss_loss.glip_loss` assigns anchors itself and selects positives by boolean indexing; a
training graph instead takes the assignment as inputs (TRAIN_CONTRACT.md):

- `positive` [B,Q] 1/0, `reg_targets` [B,Q,4] (encoded, 0 for negatives),
- `centerness_targets` [B,Q] (0 for negatives), `token_targets` [B,Q,T] (binary rows),

and masks with `where`, so every tensor keeps its shape. The sums are those of `glip_loss`:

    num_pos = max(sum(positive), 1)
    token   = sum over (anchor, token) with attention_mask 1 of focal(logit, target) / num_pos
    reg     = 2 * sum_pos(giou_loss * ctr_t) / max(sum_pos(ctr_t), 1e-6)
              (sum_pos(giou_loss) / 1e-6 when every positive's ctr_t is 0, as giou_loss does)
    ctr     = sum_pos(bce_with_logits(centerness, ctr_t)) / num_pos
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import anchors as anchor_lib
from .atss_loss import FOCAL_ALPHA, FOCAL_GAMMA, REG_LOSS_WEIGHT

TARGET_NAMES = ("positive", "reg_targets", "centerness_targets", "token_targets")
LOSS_NAMES = ("loss", "loss_token", "loss_reg", "loss_centerness")


def token_focal_sum(logits, targets, attention_mask):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = FOCAL_ALPHA * targets + (1 - FOCAL_ALPHA) * (1 - targets)
    focal = alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA
    keep = (attention_mask > 0)[:, None, :]
    # Summed axis by axis: one float32 sum over B*Q*T terms (5.7 M at GLIP-T size) would lose
    # digits in a sequential reduction (ONNX Runtime's CPU ReduceSum).
    return torch.where(keep, focal, torch.zeros_like(focal)).sum(dim=2).sum(dim=1).sum()


def giou_losses(pred_deltas, target_deltas, anchors):
    """1 - GIoU per anchor of the decoded boxes (no "+1" areas, 1e-7 in union and enclosure)."""
    p = anchor_lib.decode(pred_deltas, anchors)
    t = anchor_lib.decode(target_deltas, anchors)
    px1, py1 = p[..., 0], p[..., 1]
    px2, py2 = torch.maximum(px1, p[..., 2]), torch.maximum(py1, p[..., 3])
    tx1, ty1, tx2, ty2 = t.unbind(-1)
    p_area = (px2 - px1) * (py2 - py1)
    t_area = (tx2 - tx1) * (ty2 - ty1)
    ix1, iy1 = torch.maximum(px1, tx1), torch.maximum(py1, ty1)
    ix2, iy2 = torch.minimum(px2, tx2), torch.minimum(py2, ty2)
    overlap = (ix2 > ix1) & (iy2 > iy1)
    inter = torch.where(overlap, (ix2 - ix1) * (iy2 - iy1), torch.zeros_like(ix1))
    ex1, ey1 = torch.minimum(px1, tx1), torch.minimum(py1, ty1)
    ex2, ey2 = torch.maximum(px2, tx2), torch.maximum(py2, ty2)
    enclosing = (ex2 - ex1) * (ey2 - ey1) + 1e-7
    union = p_area + t_area - inter + 1e-7
    return 1 - (inter / union - (enclosing - union) / enclosing)


def glip_loss_from_targets(deltas, centerness, token_logits, attention_mask, anchors,
                           positive, reg_targets, centerness_targets, token_targets):
    """deltas [B,Q,4], centerness [B,Q], token_logits [B,Q,T], attention_mask [B,T], anchors [Q,4]
    -> (total, token, reg, centerness) scalars."""
    pos = positive > 0
    zeros = torch.zeros_like(positive)
    num_pos = positive.sum().clamp(min=1.0)
    token = token_focal_sum(token_logits, token_targets, attention_mask) / num_pos

    losses = giou_losses(deltas, reg_targets, anchors)
    weights = torch.where(pos, centerness_targets, zeros)
    weight_sum = weights.sum()
    weighted = (losses * weights).sum()
    unweighted = torch.where(pos, losses, zeros).sum()
    reg_sum = torch.where(weight_sum > 0, weighted, unweighted)
    reg = REG_LOSS_WEIGHT * reg_sum / weight_sum.clamp(min=1e-6)

    bce = F.binary_cross_entropy_with_logits(centerness, centerness_targets, reduction="none")
    ctr = torch.where(pos, bce, zeros).sum() / num_pos
    return token + reg + ctr, token, reg, ctr
