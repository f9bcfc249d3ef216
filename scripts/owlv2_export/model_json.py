"""`model.json` of an OWLv2 export: graphs, preprocessing, text queries and post-processing.

Everything a host must reproduce is stated: transformers' Owlv2ImageProcessor (torchvision
backend, the one `AutoImageProcessor`/`Owlv2Processor` use) for the pixels,
`Owlv2ImageProcessor.post_process_object_detection` for the detections, and the authors'
evaluator (scenic) for the prompt ensemble.
"""
from __future__ import annotations

from pathlib import Path

from glip_export.model_json import CONTRACT
from glip_export.onnx_export import io_signature
from hf_export.processor import PreprocessorError, load, normalisation, require_settings  # noqa: F401 (PreprocessorError: callers catch it here)

from . import prompts
from .graphs import GRAPH_FILES

CONTRACT_VERSION = 2
FAMILY = "owlv2"


def read_preprocessor(weights: Path, image_size: int) -> dict:
    """The image processor's settings as transformers loads them from `weights`
    (`Owlv2ImageProcessor.from_pretrained`: processor_config.json or preprocessor_config.json;
    OWLv2's defaults at `image_size` when the folder has neither), checked against what the graphs
    and this contract support."""
    from transformers import Owlv2ImageProcessor
    proc, origin = load(Owlv2ImageProcessor, weights, size={"height": image_size, "width": image_size})
    size = proc.size
    size = {"height": getattr(size, "height", None), "width": getattr(size, "width", None)} \
        if not isinstance(size, dict) else size
    if size.get("height") != image_size or size.get("width") != image_size:
        raise PreprocessorError(f"{weights}: image processor size {size!r} differs from the vision model's "
                                f"image_size {image_size} (the graphs take exactly image_size x image_size)")
    require_settings(proc, weights, "OWLv2's")
    mean, std = normalisation(proc, weights)
    return {"size": image_size, "mean": mean, "std": std, "origin": origin}


def build(model_cfg, pre: dict, protos: dict, special_tokens: dict[str, int], source: dict) -> dict:
    vis, txt = model_cfg.vision_config, model_cfg.text_config
    patches = vis.image_size // vis.patch_size
    return {
        "contract": CONTRACT,
        "contract_version": CONTRACT_VERSION,
        "family": FAMILY,
        "config": FAMILY,
        "architecture": {"image_size": vis.image_size, "patch_size": vis.patch_size, "vision_hidden": vis.hidden_size,
                   "vision_layers": vis.num_hidden_layers, "text_hidden": txt.hidden_size,
                   "text_layers": txt.num_hidden_layers, "projection_dim": model_cfg.projection_dim},
        "source": source,
        "precision": "fp32",
        "graphs": {name: {"file": GRAPH_FILES[name], **io_signature(proto)} for name, proto in protos.items()},
        "preprocess": {
            "reference": "transformers Owlv2ImageProcessor (torchvision backend) _preprocess",
            "input_size": [pre["size"], pre["size"]],
            "channel_order": "RGB",
            "steps": [
                "x = pixel_rgb / 255 (float32)",
                "pad bottom/right with 0 to a square of side max(h, w)",
                "anti-alias: sigma = max((side / input_size - 1) / 2, 0); if sigma > 0, torchvision "
                "gaussian_blur with kernel 2*ceil(3*sigma)+1 (1-D taps exp(-0.5*(t/sigma)^2), t = -(k-1)/2..(k-1)/2, "
                "normalised; separable; reflect padding)",
                "bilinear resize to input_size x input_size, no antialias, half-pixel centres "
                "(torch interpolate align_corners=False)",
                "x = (x - mean[c]) / std[c]",
            ],
            "pad_value": 0.0,
            "settings_from": pre["origin"],
            "mean": pre["mean"],
            "std": pre["std"],
        },
        "text": {
            "tokenizer": "tokenizer.json",
            "tokenizer_kind": "clip",
            "max_text_len": txt.max_position_embeddings,
            "dynamic_length": True,
            "pooling": "the position of the largest input id (the end-of-text token), as transformers does",
            "padding": "any length up to max_text_len: the text model is causal, so pad tokens after the "
                       "end-of-text token do not change the embedding (transformers' processor pads with the pad "
                       "token to max_text_len)",
            "special_tokens": special_tokens,
            "prompts": {
                "templates": list(prompts.TEMPLATES),
                "canonicalize": prompts.CANONICALIZE,
                "ensemble": "class logit = mean over templates of the logits of the (template, class) queries",
                "source": prompts.SOURCE,
            },
        },
        "outputs": {
            "text_embeds": "[N, D] L2-normalised query embeddings (transformers' text_embeds)",
            "logits": "[B, P, Q] class logits per patch and query (transformers' logits)",
            "objectness_logits": "[B, P] (transformers' objectness_logits; not used by post_process_object_detection)",
            "pred_boxes": "[B, P, 4] cx, cy, w, h in [0, 1] of the padded square image (transformers' pred_boxes)",
            "patches": patches * patches,
        },
        "postprocess": {
            "reference": "transformers Owlv2ImageProcessor.post_process_object_detection",
            "score": "sigmoid(max over queries of logits); label = argmax over queries (first on ties)",
            "box": "xyxy = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) * max(orig_h, orig_w): pixels of the "
                   "original image padded to a square; not clipped",
            "threshold": "keep score > threshold (transformers' default 0.1)",
            "default_threshold": 0.1,
            "nms": "none",
            "ensemble": "with prompt templates: mean of each class's template logits first, then the rule above "
                        "over classes",
            "evaluation": {
                "reference": "google-research/scenic scenic/projects/owl_vit/evaluator.py (the authors' LVIS/COCO "
                             "evaluator), not transformers",
                "top_k": 300,
                "top_k_rule": "per image, the top k of all (patch, class) sigmoid scores (exclusive_classes=False: "
                              "a patch may give several classes)",
                "box": "cx, cy, w, h divided by (orig_w, orig_h) / max(orig_w, orig_h) (+1e-6), clipped to [0, 1], "
                       "then scaled by the original width/height (evaluator.unpad_box)",
            },
        },
    }
