"""`model.json`: what a host needs to run the three graphs (the I/O contract, see README).

Everything the Rust engine must reproduce is stated here rather than left implicit: the image
preprocessing, tokenizer and special tokens, the anchor grid, the box coder and GLIP's
post-processing constants, and the training constants of GLIP's ATSS loss.
"""
from __future__ import annotations

import json
import math

from . import anchors as anchor_lib
from .config import GlipConfig
from .onnx_export import GRAPH_FILES, io_signature

CONTRACT = "odinw-grounding-model"
# Version 2: the image graphs take any canvas (height and width dynamic multiples of 32), each
# image runs on GLIP's own canvas, and the anchor grid follows the canvas. Version 1 graphs had
# one fixed input size.
CONTRACT_VERSION = 2


def anchor_levels(cfg: GlipConfig, image_hw: tuple[int, int]) -> list[dict]:
    levels, offset = [], 0
    for (h, w), stride, size in zip(anchor_lib.feature_sizes(image_hw, cfg.anchor_strides),
                                    cfg.anchor_strides, cfg.anchor_sizes):
        levels.append({"name": f"p{int(math.log2(stride))}", "stride": stride, "size": size, "height": h,
                       "width": w, "offset": offset, "count": h * w,
                       "cell_anchor": anchor_lib.cell_anchor(stride, size)})
        offset += h * w
    return levels


def build(cfg: GlipConfig, image_hw: tuple[int, int], max_text_len: int, fp16: bool, protos: dict,
          special_tokens: dict[str, int], source: dict) -> dict:
    levels = anchor_levels(cfg, image_hw)
    return {
        "contract": CONTRACT,
        "contract_version": CONTRACT_VERSION,
        "family": "glip",
        "config": cfg.name,
        "source": source,
        "precision": "fp16" if fp16 else "fp32",
        "graphs": {name: {"file": GRAPH_FILES[name], **io_signature(proto)} for name, proto in protos.items()},
        "preprocess": {
            "input_size": list(image_hw),
            "resize": {"min_size": cfg.min_size, "max_size": cfg.max_size, "interpolation": "bilinear",
                       "rule": "maskrcnn_benchmark Resize: shorter side to min_size unless the longer "
                               "side would exceed max_size (then round(max_size*short/long)); "
                               "the other side truncated"},
            "channel_order": "BGR",
            "scale": 255.0,
            "mean": list(cfg.pixel_mean_bgr),
            "std": list(cfg.pixel_std_bgr),
            "formula": "images[c] = (pixel_bgr[c] * 255 - mean[c]) / std[c], pixel in [0,1]",
            "size_divisibility": cfg.size_divisibility,
            "canvas": "dynamic",
            "canvas_rule": "GLIP's to_image_list: the resized image zero-padded bottom/right to the next "
                           "multiple of size_divisibility in each side (a batch: to its largest image's); "
                           "the graphs take any such canvas. input_size is the size they were traced at "
                           "and the fixed canvas of the training graphs (train/)",
            "pad": "zeros after normalisation, bottom/right, up to the canvas",
        },
        "text": {
            "tokenizer": "tokenizer.json",
            "tokenizer_kind": cfg.tokenizer,
            "lowercase": True,
            "max_text_len": max_text_len,
            "dynamic_length": True,
            "padding": "zeros (pad id) with attention_mask 0, or trimmed: shorter lengths give the same "
                       "outputs for the real tokens",
            "special_tokens": special_tokens,
            "prompt_separator": cfg.prompt_separator,
        },
        "anchors": {
            "levels": levels,
            "total": sum(lv["count"] for lv in levels),
            "per_location": 1,
            "aspect_ratios": [1.0],
            "order": "level p3..p7, then row (y), then column (x)",
            "formula": "anchor = cell_anchor + [x*stride, y*stride, x*stride, y*stride]",
            "grid": "per canvas: level l is ceil(canvas_h/stride) x ceil(canvas_w/stride); levels' "
                    "height/width/offset/count/total above are for input_size",
        },
        "box_coder": {
            "weights": list(anchor_lib.BOX_WEIGHTS),
            "clamp_dw_dh": anchor_lib.DELTA_CLAMP,
            "legacy_plus_one": True,
            "decode": "w=x2-x1+1, cx=(x1+x2)/2; pw=exp(min(dw/5,clamp))*w; box=[pcx-(pw-1)/2, ..., pcx+(pw-1)/2]",
        },
        "outputs": {
            "box_deltas": "[B,Q,4] raw regression (scaled per level), dx,dy,dw,dh",
            "boxes": "[B,Q,4] decoded xyxy in canvas pixels, not clipped",
            "centerness": "[B,Q] logit",
            "token_logits": "[B,Q,T] logit per token, clamped to +-50000",
        },
        "postprocess": {
            "score_agg": "mean",
            "class_score": "mean over the class's tokens of sigmoid(token_logits)",
            "pre_nms_thresh": cfg.pre_nms_thresh,
            "pre_nms_top_n_per_level": cfg.pre_nms_top_n,
            "candidate": "class_score > pre_nms_thresh (before centerness)",
            "score": "sqrt(class_score * sigmoid(centerness))",
            "clip": "x to [0, w-1], y to [0, h-1] of the resized, unpadded image",
            "nms": "class_aware",
            "nms_thresh": cfg.nms_thresh,
            "iou_plus_one": True,
            "detections_per_img": cfg.detections_per_img,
            "to_coco": "scale boxes to the original image, xywh with w = x2-x1+1",
        },
        "training": {
            "assigner": "atss",
            "atss_topk": 9,
            "token_loss": {"type": "sigmoid_focal", "alpha": 0.25, "gamma": 2.0, "normalizer": "num_pos"},
            "reg_loss": {"type": "giou", "weight": 2.0, "per_anchor_weight": "centerness target"},
            "centerness_loss": {"type": "bce_with_logits", "normalizer": "num_pos"},
        },
    }


def to_json(value, level: int = 0) -> str:
    """JSON with one key per line but short lists (shapes, anchors) kept on one line."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {to_json(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + to_json(v, level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)
