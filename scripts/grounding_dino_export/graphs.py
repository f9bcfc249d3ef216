"""Grounding DINO's two ONNX graphs: `text_encoder` (caption tokens -> projected BERT features, run
once per caption) and `image_detector` (images + the caption's features -> token logits, boxes).

Both wrap transformers' own modules (`GroundingDinoForObjectDetection`, or the MM variant, whose
forward is the same): the text side is `model.text_backbone` + `model.text_projection` exactly as
`GroundingDinoModel.forward` calls them; the image side is the rest of that forward (backbone,
input projections, encoder with text fusion, two-stage query selection, decoder) and the last
decoder level of `GroundingDinoForObjectDetection.forward`'s head. The text self-attention mask
and position ids come from the host (`prompts.text_masks`, transformers'
`generate_masks_with_special_tokens_and_transfer_map`), because ONNX has no CumMax. The caption
is shared by every image of a batch ([L, ...] inputs, broadcast in the graph). Images come on a
fixed canvas (H, W): each resized image zero-padded bottom/right to it, `pixel_mask` marking the
image, which is transformers' processor with `pad_size` = the canvas. (Dynamic H/W was tried:
torch.export specialises Swin's Python branches on the padding and window sizes, and the
exported graph came out with a fixed height.) Multi-scale
deformable attention is transformers' pure-PyTorch `MultiScaleDeformableAttention` (grid_sample;
`export_graphs` refuses when a hub kernel has replaced it), so the graphs use standard ONNX ops
only. Batch and text length are dynamic. Written with the GLIP exporter's ONNX
helpers (opset 19, IR version 10, metadata, atomic save).
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
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "text_self_attention_mask")
TEXT_OUTPUTS = ("text_features",)
IMAGE_INPUTS = ("pixel_values", "pixel_mask", "text_features", "attention_mask", "position_ids",
                "text_self_attention_mask")
IMAGE_OUTPUTS = ("logits", "pred_boxes")


class TextEncoderGraph(nn.Module):
    """input_ids, attention_mask, token_type_ids, position_ids [N, L] int64,
    text_self_attention_mask [N, L, L] bool -> text_features [N, L, d_model]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, text_self_attention_mask):
        m = self.model.model
        # GroundingDinoModel.forward passes the block mask as the BERT attention mask (the padding
        # mask only enters the fusion layers); attention_mask is an input so that the host feeds
        # both graphs the same tensors, and is unused here.
        del attention_mask
        out = m.text_backbone(input_ids, text_self_attention_mask[:, None, :, :], token_type_ids, position_ids,
                              return_dict=True)
        return m.text_projection(out.last_hidden_state)


class ImageDetectorGraph(nn.Module):
    """pixel_values [B, 3, H, W], pixel_mask [B, H, W] int64, and one caption's text_features
    [L, D], attention_mask [L], position_ids [L], text_self_attention_mask [L, L] ->
    logits [B, Q, max_text_len] (-inf past L and on padding), pred_boxes [B, Q, 4] (cx, cy, w, h
    relative to the padded input)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values, pixel_mask, text_features, attention_mask, position_ids,
                text_self_attention_mask):
        det = self.model
        m = det.model
        cfg = m.config
        b = pixel_values.shape[0]
        text_features = text_features.unsqueeze(0).expand(b, -1, -1)
        text_token_mask = attention_mask.bool().unsqueeze(0).expand(b, -1)
        position_ids = position_ids.unsqueeze(0).expand(b, -1)
        self_mask = text_self_attention_mask.bool().unsqueeze(0).expand(b, -1, -1)

        # GroundingDinoModel.forward, from the backbone on (transformers 5.24).
        vision_features, pos_list = m.backbone(pixel_values, pixel_mask)
        feature_maps, masks = [], []
        for level, (source, mask) in enumerate(vision_features):
            feature_maps.append(m.input_proj_vision[level](source))
            masks.append(mask)
        if cfg.num_feature_levels > len(feature_maps):
            n = len(feature_maps)
            for level in range(n, cfg.num_feature_levels):
                source = m.input_proj_vision[level](vision_features[-1][0] if level == n else feature_maps[-1])
                mask = nn.functional.interpolate(pixel_mask[None].float(), size=source.shape[-2:]).to(torch.bool)[0]
                pos_list.append(m.backbone.position_embedding(source, mask).to(source.dtype))
                feature_maps.append(source)
                masks.append(mask)
        query_embeds = m.query_position_embeddings.weight if (cfg.embedding_init_target or cfg.two_stage) else None
        src, msk, pos, shapes = [], [], [], []
        for level, (source, mask, pos_embed) in enumerate(zip(feature_maps, masks, pos_list)):
            h, w = source.shape[-2:]
            shapes.append((h, w))
            src.append(source.flatten(2).transpose(1, 2))
            msk.append(mask.flatten(1))
            pos.append(pos_embed.flatten(2).transpose(1, 2) + m.level_embed[level].view(1, 1, -1))
        source_flatten, mask_flatten, pos_flatten = torch.cat(src, 1), torch.cat(msk, 1), torch.cat(pos, 1)
        spatial_shapes = torch.stack([torch.stack([torch.as_tensor(h), torch.as_tensor(w)]) for h, w in shapes]) \
            if not all(isinstance(x, int) for s in shapes for x in s) else \
            torch.as_tensor(shapes, dtype=torch.long, device=source_flatten.device)
        spatial_shapes = spatial_shapes.to(torch.long)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1]))
        valid_ratios = torch.stack([m.get_valid_ratio(x, dtype=source_flatten.dtype) for x in masks], 1)
        enc = m.encoder(
            vision_features=source_flatten, vision_attention_mask=~mask_flatten,
            vision_position_embedding=pos_flatten, spatial_shapes=spatial_shapes, spatial_shapes_list=shapes,
            level_start_index=level_start_index, valid_ratios=valid_ratios, text_features=text_features,
            text_attention_mask=~text_token_mask, text_position_embedding=None,
            text_self_attention_masks=~self_mask, text_position_ids=position_ids, return_dict=True)
        vision_memory, text_memory = enc.last_hidden_state_vision, enc.last_hidden_state_text
        if cfg.two_stage:
            object_query, proposals = m.generate_encoder_output_proposals(vision_memory, ~mask_flatten, shapes)
            enc_class = m.encoder_output_class_embed(object_query, text_memory, text_token_mask)
            enc_coords = m.encoder_output_bbox_embed(object_query) + proposals
            topk = torch.topk(enc_class.max(-1)[0], cfg.num_queries, dim=1)[1]
            reference_points = torch.gather(enc_coords, 1, topk.unsqueeze(-1).repeat(1, 1, 4)).sigmoid()
            if query_embeds is not None:
                target = query_embeds.unsqueeze(0).repeat(b, 1, 1)
            else:
                target = torch.gather(object_query, 1, topk.unsqueeze(-1).repeat(1, 1, m.d_model))
        else:
            target = query_embeds.unsqueeze(0).repeat(b, 1, 1)
            reference_points = m.reference_points.weight.unsqueeze(0).repeat(b, 1, 1).sigmoid()
        init_reference = reference_points
        dec = m.decoder(
            inputs_embeds=target, vision_encoder_hidden_states=vision_memory,
            vision_encoder_attention_mask=mask_flatten, text_encoder_hidden_states=text_memory,
            text_encoder_attention_mask=~text_token_mask, reference_points=reference_points,
            spatial_shapes=spatial_shapes, spatial_shapes_list=shapes, level_start_index=level_start_index,
            valid_ratios=valid_ratios, self_attn_mask=None, return_dict=True)

        # GroundingDinoForObjectDetection.forward's head, last decoder level only.
        last = dec.intermediate_hidden_states.shape[1] - 1
        hidden = dec.intermediate_hidden_states[:, last]
        reference = init_reference if last == 0 else dec.intermediate_reference_points[:, last - 1]
        reference = torch.special.logit(reference, eps=1e-5)
        logits = det.class_embed[last](vision_hidden_state=hidden, text_hidden_state=text_memory,
                                       text_token_mask=text_token_mask)
        delta = det.bbox_embed[last](hidden)
        if reference.shape[-1] == 4:
            coords = delta + reference
        else:
            coords = torch.cat([delta[..., :2] + reference, delta[..., 2:]], -1)
        return logits, coords.sigmoid()


def check_backbone(cfg) -> None:
    """Only transformers' Swin backbone (every published checkpoint's) is supported."""
    bb = cfg.backbone_config
    if bb is None or bb.model_type != "swin" or getattr(cfg, "use_timm_backbone", False):
        raise BackboneError(f"backbone {getattr(bb, 'model_type', None)!r}: only transformers' Swin backbone "
                            "(the one every Grounding DINO / MM-Grounding-DINO checkpoint uses) is supported")


class BackboneError(ValueError):
    pass


def check_pure_deformable_attention(model) -> None:
    """Refuses a model whose multi-scale deformable attention is not transformers' PyTorch code
    (a hub kernel swapped in by `kernels` would export as a custom op or not at all)."""
    from transformers.models.grounding_dino import modeling_grounding_dino as gd
    for mod in model.modules():
        if type(mod).__name__ == "MultiScaleDeformableAttention":
            fwd = getattr(type(mod).forward, "__code__", None)
            if fwd is not gd.MultiScaleDeformableAttention.forward.__code__ and \
                    fwd is not _mm_forward_code():
                raise RuntimeError(f"{type(mod).__module__}.{type(mod).__name__}.forward is not transformers' "
                                   "PyTorch path (a kernel replaced it); refusing to export")


def _mm_forward_code():
    try:
        from transformers.models.mm_grounding_dino import modeling_mm_grounding_dino as mm
        return mm.MultiScaleDeformableAttention.forward.__code__
    except (ImportError, AttributeError):
        return None


@contextlib.contextmanager
def _without_runtime_checks():
    """transformers' `torch_compilable_check` (a shape assertion in the deformable attention)
    traces to `aten._is_all_true`, which has no ONNX lowering; it checks nothing the graph's
    shapes do not already guarantee, so it is a no-op while exporting."""
    import importlib
    mods = []
    for name in ("grounding_dino.modeling_grounding_dino", "mm_grounding_dino.modeling_mm_grounding_dino"):
        try:
            mods.append(importlib.import_module("transformers.models." + name))
        except ImportError:
            pass
    saved = [(m, m.torch_compilable_check) for m in mods if hasattr(m, "torch_compilable_check")]
    try:
        for m, _ in saved:
            m.torch_compilable_check = lambda *a, **k: None
        yield
    finally:
        for m, f in saved:
            m.torch_compilable_check = f


def _export(module, args, input_names, output_names, dynamic_shapes, path: Path, meta: dict) -> onnx.ModelProto:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            _without_runtime_checks():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=list(input_names),
                                    output_names=list(output_names), dynamic_shapes=dynamic_shapes, verbose=False)
    proto = program.model_proto
    custom = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise RuntimeError(f"{path.name}: non-standard ONNX ops {custom}")
    return save_proto(proto, path, meta)


def example_text(model, length: int = 6):
    """A caption-shaped example: [CLS] a . b . [SEP] with the host-side masks (prompts.text_masks)."""
    from .prompts import text_masks
    vocab = model.config.text_config.vocab_size
    ids = torch.randint(1100, max(1101, vocab - 1), (1, length), generator=torch.Generator().manual_seed(0))
    ids[0, 0], ids[0, -1] = 101, 102
    ids[0, 2] = 1012
    self_mask, position_ids = text_masks(ids.numpy())
    return (ids, torch.ones_like(ids), torch.zeros_like(ids), torch.from_numpy(position_ids),
            torch.from_numpy(self_mask))


def export_graphs(model, out_dir: Path, canvas: tuple[int, int], meta: dict | None = None) -> dict[str, onnx.ModelProto]:
    """Writes text_encoder.onnx and image_detector.onnx for `model` (a GroundingDinoForObjectDetection or
    MMGroundingDinoForObjectDetection); the image graph takes `canvas` (H, W) images."""
    model = model.eval()
    check_pure_deformable_attention(model)
    meta = dict(meta or {})
    cfg = model.config
    max_len = cfg.max_text_len
    batch = Dim("batch", min=1, max=1024)
    captions = Dim("captions", min=1, max=1024)
    text_len = Dim("text_len", min=2, max=max_len)
    protos = {}
    ids, mask, types, position_ids, self_mask = example_text(model)
    ids, mask, types, position_ids = (t.repeat(2, 1) for t in (ids, mask, types, position_ids))
    self_mask = self_mask.repeat(2, 1, 1)
    two = {0: captions, 1: text_len}
    protos["text_encoder"] = _export(
        TextEncoderGraph(model), (ids, mask, types, position_ids, self_mask), TEXT_INPUTS, TEXT_OUTPUTS,
        {"input_ids": two, "attention_mask": two, "token_type_ids": two, "position_ids": two,
         "text_self_attention_mask": {0: captions, 1: text_len, 2: text_len}},
        out_dir / GRAPH_FILES["text_encoder"], {**meta, "odinw.graph": "text_encoder"})

    g = torch.Generator().manual_seed(1)
    h, w = canvas
    pixels = torch.randn(2, 3, h, w, generator=g)
    pmask = torch.ones(2, h, w, dtype=torch.long)
    pmask[1, :, w - w // 4:] = 0
    pmask[0, h - h // 3:, :] = 0
    with torch.no_grad():
        feats = TextEncoderGraph(model)(ids[:1], mask[:1], types[:1], position_ids[:1], self_mask[:1])[0]
    protos["image_detector"] = _export(
        ImageDetectorGraph(model), (pixels, pmask, feats, mask[0], position_ids[0], self_mask[0]),
        IMAGE_INPUTS, IMAGE_OUTPUTS,
        {"pixel_values": {0: batch}, "pixel_mask": {0: batch},
         "text_features": {0: text_len}, "attention_mask": {0: text_len}, "position_ids": {0: text_len},
         "text_self_attention_mask": {0: text_len, 1: text_len}},
        out_dir / GRAPH_FILES["image_detector"], {**meta, "odinw.graph": "image_detector"})
    return protos
