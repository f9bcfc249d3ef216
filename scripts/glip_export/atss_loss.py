"""GLIP's training loss (`rpn/loss.py: ATSSLossComputation`, protocol §9), single process.

ATSS assignment from anchors and ground truth only (IoUs and centres in the "+1" convention;
the 9 nearest anchors per level are candidates, positive when IoU >= mean + std (unbiased) of the
candidates' IoUs and the anchor centre lies inside the box); then

    loss = token_focal / num_pos + 2 * sum(giou_loss * ctr_t) / sum(ctr_t) + bce(ctr) / num_pos

with the sigmoid focal loss (alpha 0.25, gamma 2) over (anchor, token) pairs of real tokens and
binary token targets.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import anchors as anchor_lib

TOPK = 9
REG_LOSS_WEIGHT = 2.0
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
INF = 100000000


def box_iou_plus_one(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@dataclass
class Assignment:
    gt_index: torch.Tensor  # [Q] matched ground truth, -1 for negatives
    reg_targets: torch.Tensor  # [Q,4] encoded targets (meaningful where gt_index >= 0)


def atss_assign(anchors: torch.Tensor, level_counts: list[int], gt_boxes: torch.Tensor) -> Assignment:
    q = anchors.shape[0]
    g = gt_boxes.shape[0]
    if g == 0:
        return Assignment(torch.full((q,), -1, dtype=torch.long), torch.zeros(q, 4))
    ious = box_iou_plus_one(anchors, gt_boxes)  # [Q,G]
    a_ctr = torch.stack([(anchors[:, 2] + anchors[:, 0]) / 2, (anchors[:, 3] + anchors[:, 1]) / 2], dim=1)
    g_ctr = torch.stack([(gt_boxes[:, 2] + gt_boxes[:, 0]) / 2, (gt_boxes[:, 3] + gt_boxes[:, 1]) / 2], dim=1)
    dist = (a_ctr[:, None, :] - g_ctr[None, :, :]).pow(2).sum(-1).sqrt()
    candidates, start = [], 0
    for count in level_counts:
        k = min(TOPK, count)
        _, idx = dist[start:start + count].topk(k, dim=0, largest=False)
        candidates.append(idx + start)
        start += count
    cand = torch.cat(candidates, dim=0)  # [K*L, G]
    cols = torch.arange(g)
    cand_ious = ious[cand, cols]
    thresh = cand_ious.mean(0) + cand_ious.std(0)
    is_pos = cand_ious >= thresh[None, :]
    cx, cy = a_ctr[cand, 0], a_ctr[cand, 1]
    inside = torch.stack([cx - gt_boxes[:, 0], cy - gt_boxes[:, 1], gt_boxes[:, 2] - cx, gt_boxes[:, 3] - cy],
                         dim=1).min(dim=1).values > 0.01
    is_pos = is_pos & inside
    ious_inf = torch.full((q, g), -float(INF))
    rows = cand[is_pos]
    gcols = cols.expand_as(cand)[is_pos]
    ious_inf[rows, gcols] = ious[rows, gcols]
    best, best_idx = ious_inf.max(dim=1)
    gt_index = torch.where(best == -INF, torch.full_like(best_idx, -1), best_idx)
    reg = anchor_lib.encode(gt_boxes[best_idx], anchors)
    return Assignment(gt_index, reg)


def centerness_targets(reg_targets: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    gts = anchor_lib.decode(reg_targets, anchors)
    cx = (anchors[:, 2] + anchors[:, 0]) / 2
    cy = (anchors[:, 3] + anchors[:, 1]) / 2
    lr = torch.stack([cx - gts[:, 0], gts[:, 2] - cx], dim=1)
    tb = torch.stack([cy - gts[:, 1], gts[:, 3] - cy], dim=1)
    return torch.sqrt((lr.min(1).values / lr.max(1).values) * (tb.min(1).values / tb.max(1).values))


def giou_loss(pred_deltas, target_deltas, anchors, weight):
    p = anchor_lib.decode(pred_deltas, anchors)
    t = anchor_lib.decode(target_deltas, anchors)
    px1, py1 = p[:, 0], p[:, 1]
    px2, py2 = torch.max(px1, p[:, 2]), torch.max(py1, p[:, 3])
    p_area = (px2 - px1) * (py2 - py1)
    t_area = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    ix1, iy1 = torch.max(px1, t[:, 0]), torch.max(py1, t[:, 1])
    ix2, iy2 = torch.min(px2, t[:, 2]), torch.min(py2, t[:, 3])
    inter = torch.where((ix2 > ix1) & (iy2 > iy1), (ix2 - ix1) * (iy2 - iy1), torch.zeros_like(ix1))
    ex1, ey1 = torch.min(px1, t[:, 0]), torch.min(py1, t[:, 1])
    ex2, ey2 = torch.max(px2, t[:, 2]), torch.max(py2, t[:, 3])
    enclosing = (ex2 - ex1) * (ey2 - ey1) + 1e-7
    union = p_area + t_area - inter + 1e-7
    gious = inter / union - (enclosing - union) / enclosing
    losses = 1 - gious
    if weight.sum() > 0:
        return (losses * weight).sum()
    return losses.sum()


def token_focal_loss(logits, targets, text_mask):
    keep = (text_mask > 0)[:, None, :].expand_as(logits)
    x, t = logits[keep], targets[keep]
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = FOCAL_ALPHA * t + (1 - FOCAL_ALPHA) * (1 - t)
    return (alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA).sum()


def glip_loss(deltas, centerness, token_logits, text_mask, anchors, level_counts, targets):
    """deltas [B,Q,4], centerness [B,Q], token_logits [B,Q,T], text_mask [B,T];
    targets: per image (gt_boxes [G,4] xyxy "+1", token_map [G,T] binary)."""
    b, q, t = token_logits.shape
    token_t = torch.zeros(b, q, t)
    pos_mask = torch.zeros(b, q, dtype=torch.bool)
    reg_t = torch.zeros(b, q, 4)
    for i, (boxes, token_map) in enumerate(targets):
        a = atss_assign(anchors, level_counts, boxes)
        pos = a.gt_index >= 0
        pos_mask[i] = pos
        reg_t[i] = a.reg_targets
        if pos.any():
            token_t[i, pos] = token_map[a.gt_index[pos]]
    num_pos = max(float(pos_mask.sum()), 1.0)
    token_loss = token_focal_loss(token_logits, token_t, text_mask) / num_pos
    if pos_mask.any():
        anc = anchors.expand(b, q, 4)[pos_mask]
        ctr_t = centerness_targets(reg_t[pos_mask], anc)
        reg_loss = giou_loss(deltas[pos_mask], reg_t[pos_mask], anc, ctr_t) / ctr_t.sum().clamp(min=1e-6)
        ctr_loss = F.binary_cross_entropy_with_logits(centerness[pos_mask], ctr_t, reduction="sum") / num_pos
    else:
        reg_loss = deltas.sum() * 0
        ctr_loss = centerness.sum() * 0
    return {"token": token_loss, "reg": REG_LOSS_WEIGHT * reg_loss, "centerness": ctr_loss}
