"""`model.json` of a Grounding DINO / MM-Grounding-DINO export: graphs, preprocessing, caption and
post-processing (PROTOCOL.md states each rule with its source).

Preprocessing is transformers' GroundingDinoImageProcessor (torchvision backend, the one
`AutoImageProcessor`/`GroundingDinoProcessor` use); caption and post-processing are
mmdetection's ODinW evaluation of Grounding DINO.
"""
from __future__ import annotations

from pathlib import Path

from glip_export.model_json import CONTRACT
from glip_export.onnx_export import io_signature
from hf_export.processor import PreprocessorError, load, normalisation, require_settings  # noqa: F401 (PreprocessorError: callers catch it here)

from . import postprocess, prompts
from .graphs import GRAPH_FILES

CONTRACT_VERSION = 1


def read_preprocessor(weights: Path) -> dict:
    """The image processor's settings as transformers loads them from `weights` (processor_config.json
    or preprocessor_config.json; GroundingDinoImageProcessor's defaults when there is neither),
    checked against what this contract supports."""
    from transformers import GroundingDinoImageProcessor
    proc, origin = load(GroundingDinoImageProcessor, weights)
    size = proc.size
    get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    shortest, longest = get("shortest_edge"), get("longest_edge")
    if not shortest or not longest:
        raise PreprocessorError(f"{weights}: image processor size {size!r}: only shortest_edge + longest_edge "
                                "is supported")
    require_settings(proc, weights, "Grounding DINO's")
    if getattr(proc, "pad_size", None):
        raise PreprocessorError(f"{weights}: image processor pad_size is set; only padding to the batch's "
                                "largest image is supported")
    mean, std = normalisation(proc, weights)
    return {"shortest_edge": int(shortest), "longest_edge": int(longest), "mean": mean,
            "std": std, "origin": origin}


def build(family: str, cfg, pre: dict, canvas, protos: dict, special_tokens: dict[str, int], source: dict) -> dict:
    txt = cfg.text_config
    return {
        "contract": CONTRACT,
        "contract_version": CONTRACT_VERSION,
        "family": family,
        "config": cfg.model_type,
        "architecture": {"d_model": cfg.d_model, "num_queries": cfg.num_queries,
                         "encoder_layers": cfg.encoder_layers, "decoder_layers": cfg.decoder_layers,
                         "num_feature_levels": cfg.num_feature_levels, "two_stage": cfg.two_stage,
                         "backbone": cfg.backbone_config.model_type if cfg.backbone_config is not None else None,
                         "text_hidden": txt.hidden_size, "text_layers": txt.num_hidden_layers},
        "source": source,
        "precision": "fp32",
        "protocol": "scripts/grounding_dino_export/PROTOCOL.md",
        "graphs": {name: {"file": GRAPH_FILES[name], **io_signature(proto)} for name, proto in protos.items()},
        "preprocess": {
            "reference": "transformers GroundingDinoImageProcessor (torchvision backend) _preprocess",
            "channel_order": "RGB",
            "canvas": [int(canvas[0]), int(canvas[1])],
            "shortest_edge": pre["shortest_edge"],
            "longest_edge": pre["longest_edge"],
            "steps": [
                "size (transformers get_size_with_aspect_ratio, s = shortest_edge, m = longest_edge, h, w the "
                "original): if max(h,w)/min(h,w)*s > m: raw = m*min(h,w)/max(h,w), s = int(round(raw)); "
                "if min side == s: keep (h, w); elif w < h: ow = s, oh = int(raw*h/w if raw was set else s*h/w); "
                "else oh = s, ow = int(raw*w/h if raw was set else s*w/h)",
                "resize the uint8 RGB image to (oh, ow): torchvision.transforms.v2.functional.resize, bilinear, "
                "antialias=True, on uint8 (result rounded to uint8)",
                "x = (pixel / 255 - mean[c]) / std[c] (float32)",
                "pad bottom/right with 0 (after normalisation) to the canvas [H, W] (transformers' processor "
                "with pad_size = canvas; without it transformers pads to the batch's largest image, which gives "
                "slightly different outputs); pixel_mask = 1 on the image, 0 on the padding",
            ],
            "pad_value": 0.0,
            "settings_from": pre["origin"],
            "mean": pre["mean"],
            "std": pre["std"],
        },
        "text": {
            "tokenizer": "tokenizer.json",
            "tokenizer_kind": "bert-wordpiece",
            "max_text_len": cfg.max_text_len,
            "dynamic_length": True,
            "special_tokens": special_tokens,
            "caption": {
                "clean": "mmdet clean_label_name: drop '(...)', '_' -> ' ', '  ' -> ' ' (one pass)",
                "separator": prompts.SEPARATOR,
                "rule": "caption = concatenation of clean(name) + '. ' over the classes (ends with '. ')",
                "spans": "class k: characters [start, start + len(clean(name))); tokens from char_to_token with "
                         "GLIP's fallbacks (start, +1, +2; end-1, -2, -3), positions < max_text_len",
                "truncation": "tokenize with truncation to max_text_len ([SEP] kept)",
                "chunked": "with chunked_size > 0 (mmdet test_cfg), classes in consecutive groups of chunked_size, "
                           "one caption and one image_detector run per group",
                "source": prompts.SOURCE,
            },
            "masks": "text_self_attention_mask [L, L] and position_ids [L] from the input ids and the special "
                     "tokens [CLS] [SEP] . ? (prompts.text_masks; transformers "
                     "generate_masks_with_special_tokens_and_transfer_map); token_type_ids = 0; attention_mask = 1 "
                     "on the caption's tokens",
        },
        "outputs": {
            "text_features": "[N, L, d_model] BERT last hidden state through text_projection",
            "logits": f"[B, num_queries, {cfg.max_text_len}] token logits (transformers' logits; -inf past the "
                      "caption and on masked tokens)",
            "pred_boxes": "[B, num_queries, 4] cx, cy, w, h in [0, 1] of the image before padding (transformers' "
                          "pred_boxes)",
        },
        "postprocess": {
            "reference": "mmdet GroundingDINOHead._predict_by_feat_single + convert_grounding_to_cls_scores",
            "score": "class k score = mean over its tokens of sigmoid(logit) (0 when it has no tokens)",
            "top_k": postprocess.MAX_PER_IMG,
            "top_k_rule": "per image and caption, the top max_per_img of all (query, class) scores; "
                          "label = index % K, query = index // K; no threshold, no NMS",
            "box": "x1,y1,x2,y2 = (cx -+ w/2, cy -+ h/2) * (resized_w, resized_h), clamped to [0, resized], "
                   "then divided by (resized_w/orig_w, resized_h/orig_h)",
            "chunks": "labels of chunk i offset by the class count of the chunks before it; lists concatenated",
        },
    }
