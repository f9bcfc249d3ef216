"""OWLv2's two ONNX graphs: `text_encoder` (queries -> embeddings, run once per task) and
`image_detector` (images + query embeddings -> logits, objectness, boxes).

Both wrap transformers' own modules (no re-implementation): the text side is
`Owlv2Model.text_model` + `text_projection` + L2 normalisation, i.e. the `text_embeds` output of
`Owlv2ForObjectDetection`; the image side is `image_embedder`, `class_predictor`,
`objectness_predictor` and `box_predictor` as `Owlv2ForObjectDetection.forward` calls them. The
query embeddings are shared by every image of a batch ([Q, D], broadcast in the graph). Written
with the GLIP exporter's ONNX helpers (opset 19, IR version 10, metadata, atomic save).
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.export import Dim

from glip_export.onnx_export import OPSET, save_proto

GRAPH_FILES = {"text_encoder": "text_encoder.onnx", "image_detector": "image_detector.onnx"}
TEXT_OUTPUTS = ("text_embeds",)
IMAGE_OUTPUTS = ("logits", "objectness_logits", "pred_boxes")


class TextEncoderGraph(nn.Module):
    """input_ids, attention_mask [N, L] -> text_embeds [N, D] (L2-normalised, as transformers')."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        owl = self.model.owlv2
        pooled = owl.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        embeds = owl.text_projection(pooled)
        return embeds / torch.linalg.norm(embeds, ord=2, dim=-1, keepdim=True)


class ImageDetectorGraph(nn.Module):
    """pixel_values [B, 3, S, S], query_embeds [Q, D] -> logits [B, P, Q], objectness_logits [B, P],
    pred_boxes [B, P, 4] (cx, cy, w, h relative to the padded square image)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values, query_embeds):
        m = self.model
        feature_map = m.image_embedder(pixel_values=pixel_values)[0]
        b, h, w, d = feature_map.shape
        image_feats = torch.reshape(feature_map, (b, h * w, d))
        queries = query_embeds.unsqueeze(0).expand(b, -1, -1)
        logits = m.class_predictor(image_feats, queries, None)[0]
        objectness = m.objectness_predictor(image_feats)
        boxes = m.box_predictor(image_feats, feature_map)
        return logits, objectness, boxes


def _export(module, args, input_names, output_names, dynamic_shapes, path: Path, meta: dict) -> onnx.ModelProto:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=list(input_names),
                                    output_names=list(output_names), dynamic_shapes=dynamic_shapes, verbose=False)
    return save_proto(program.model_proto, path, meta)


def export_graphs(model, out_dir: Path, meta: dict | None = None) -> dict[str, onnx.ModelProto]:
    """Writes text_encoder.onnx and image_detector.onnx for `model` (an Owlv2ForObjectDetection)."""
    model = model.eval()
    meta = dict(meta or {})
    cfg = model.config
    size = cfg.vision_config.image_size
    max_len = cfg.text_config.max_position_embeddings
    g = torch.Generator().manual_seed(0)
    batch = Dim("batch", min=1, max=1024)
    queries = Dim("queries", min=1, max=65536)
    text_len = Dim("text_len", min=2, max=max_len)
    protos = {}

    # Example queries: BOS, a few tokens, EOS (the largest id: transformers pools at argmax(input_ids)).
    n, length = 3, min(max_len, 8)
    ids = torch.randint(1, cfg.text_config.vocab_size - 2, (n, length), generator=g)
    ids[:, 0] = cfg.text_config.vocab_size - 2
    ids[:, -1] = cfg.text_config.vocab_size - 1
    mask = torch.ones(n, length, dtype=torch.long)
    protos["text_encoder"] = _export(
        TextEncoderGraph(model), (ids, mask), ["input_ids", "attention_mask"], TEXT_OUTPUTS,
        {"input_ids": {0: queries, 1: text_len}, "attention_mask": {0: queries, 1: text_len}},
        out_dir / GRAPH_FILES["text_encoder"], {**meta, "odinw.graph": "text_encoder"})

    pixels = torch.randn(2, 3, size, size, generator=g)
    embeds = torch.randn(n, cfg.projection_dim, generator=g)
    protos["image_detector"] = _export(
        ImageDetectorGraph(model), (pixels, embeds), ["pixel_values", "query_embeds"], IMAGE_OUTPUTS,
        {"pixel_values": {0: batch}, "query_embeds": {0: queries}},
        out_dir / GRAPH_FILES["image_detector"], {**meta, "odinw.graph": "image_detector"})
    return protos
