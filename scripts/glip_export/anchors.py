"""GLIP's anchors and box coder (legacy Detectron "+1" pixel convention).

One square anchor per location and level: side = anchor size (8 x stride for GLIP), centred at
`k*stride + (stride-1)/2`, over the padded feature grid in y-major order. Deltas use the weights
(10, 10, 5, 5) and dw/dh are clamped at log(1000/16) before exp (`vldyhead.BoxCoder`).
"""
from __future__ import annotations

import math

import torch

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
DELTA_CLAMP = math.log(1000.0 / 16)


def cell_anchor(stride: int, size: int) -> list[float]:
    """[x1,y1,x2,y2] of the anchor at location (0,0), as `generate_anchors` builds it."""
    ctr = (stride - 1) / 2.0
    # _ratio_enum with ratio 1 keeps w = h = stride; _scale_enum multiplies by size/stride.
    side = round(math.sqrt(stride * stride)) * (size / stride)
    return [ctr - 0.5 * (side - 1), ctr - 0.5 * (side - 1), ctr + 0.5 * (side - 1), ctr + 0.5 * (side - 1)]


def feature_sizes(image_hw: tuple[int, int], strides) -> list[tuple[int, int]]:
    """FPN level sizes for a padded input: Swin/PatchMerging halve (ceil), P6/P7 are stride-2 convs.
    The ceilings are written (n + d - 1) // d, never -(-n // d): on symbolic sizes the exporter
    turns // into ONNX's integer Div, which truncates, so a negative operand would round up."""
    h, w = image_hw
    h, w = (h + 3) // 4, (w + 3) // 4
    sizes = []
    for _ in strides:
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def grid_anchors(sizes_hw, strides, anchor_sizes) -> torch.Tensor:
    """[Q,4] anchors of all levels, concatenated level by level, y-major within a level."""
    out = []
    for (h, w), stride, size in zip(sizes_hw, strides, anchor_sizes):
        base = torch.tensor(cell_anchor(stride, size), dtype=torch.float32)
        ys = torch.arange(h, dtype=torch.float32) * stride
        xs = torch.arange(w, dtype=torch.float32) * stride
        sy, sx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([sx.reshape(-1), sy.reshape(-1), sx.reshape(-1), sy.reshape(-1)], dim=1)
        out.append(shifts + base)
    return torch.cat(out)


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """deltas [...,Q,4] against anchors [Q,4] -> boxes xyxy [...,Q,4]."""
    widths = anchors[:, 2] - anchors[:, 0] + 1
    heights = anchors[:, 3] - anchors[:, 1] + 1
    cx = (anchors[:, 2] + anchors[:, 0]) / 2
    cy = (anchors[:, 3] + anchors[:, 1]) / 2
    wx, wy, ww, wh = BOX_WEIGHTS
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=DELTA_CLAMP)
    dh = (deltas[..., 3] / wh).clamp(max=DELTA_CLAMP)
    pcx = dx * widths + cx
    pcy = dy * heights + cy
    pw = torch.exp(dw) * widths
    ph = torch.exp(dh) * heights
    return torch.stack([pcx - 0.5 * (pw - 1), pcy - 0.5 * (ph - 1), pcx + 0.5 * (pw - 1), pcy + 0.5 * (ph - 1)], dim=-1)


def encode(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of `decode` (the regression targets of training)."""
    aw = anchors[:, 2] - anchors[:, 0] + 1
    ah = anchors[:, 3] - anchors[:, 1] + 1
    acx = (anchors[:, 2] + anchors[:, 0]) / 2
    acy = (anchors[:, 3] + anchors[:, 1]) / 2
    gw = boxes[:, 2] - boxes[:, 0] + 1
    gh = boxes[:, 3] - boxes[:, 1] + 1
    gcx = (boxes[:, 2] + boxes[:, 0]) / 2
    gcy = (boxes[:, 3] + boxes[:, 1]) / 2
    wx, wy, ww, wh = BOX_WEIGHTS
    return torch.stack([wx * (gcx - acx) / aw, wy * (gcy - acy) / ah,
                        ww * torch.log(gw / aw), wh * torch.log(gh / ah)], dim=1)
