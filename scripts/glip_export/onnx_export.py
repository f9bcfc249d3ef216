"""Writing the three ONNX graphs (torch.onnx dynamo exporter, opset 19, IR version 10).

Opset 19 is the first with `DeformConv`; ONNX Runtime 1.31 accepts IR versions up to 13 and the
`onnx` 1.23 serializer would write 14, so the IR version is set explicitly. Batch is dynamic in
every graph and the text length is dynamic up to `max_text_len`; the image size is fixed (the
Swin shift masks and the anchors are constants of the graph). With `fp16`, weights and compute
are float16 while the graph inputs and outputs stay float32/int64.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.export import Dim

from . import anchors as anchor_lib
from .model import Glip, HeadGraph, ImageBackboneGraph, TextEncoderGraph

OPSET = 19
IR_VERSION = 10
LEVELS = ("p3", "p4", "p5", "p6", "p7")
HEAD_OUTPUTS = ("box_deltas", "boxes", "centerness", "token_logits")
GRAPH_FILES = {"image_backbone": "image_backbone.onnx", "text_encoder": "text_encoder.onnx", "head": "head.onnx"}
PROTOBUF_LIMIT = 2_000_000_000


@dataclass
class ExampleInputs:
    images: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


def example_inputs(glip: Glip, image_hw: tuple[int, int], text_len: int, batch: int = 2) -> ExampleInputs:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, *image_hw, generator=g)
    ids = torch.randint(1, glip.cfg.bert.vocab_size, (batch, text_len), generator=g)
    mask = torch.ones(batch, text_len, dtype=torch.long)
    mask[:, text_len // 2:] = 0
    ids[mask == 0] = 0
    return ExampleInputs(images, ids, mask)


def _export(module: nn.Module, args: tuple, input_names, output_names, dynamic_shapes, path: Path, meta: dict):
    module.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=list(input_names),
                                    output_names=list(output_names),
                                    dynamic_shapes=dynamic_shapes,
                                    verbose=False)
    return save_proto(program.model_proto, path, meta)


def save_proto(proto: onnx.ModelProto, path: Path, meta: dict) -> onnx.ModelProto:
    """IR version 10, no exporter debug info, `meta` as metadata; written atomically."""
    proto.ir_version = IR_VERSION
    for node in proto.graph.node:  # exporter debug info: stack traces with local paths
        node.doc_string = ""
        del node.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if proto.ByteSize() > PROTOBUF_LIMIT:
        onnx.save(proto, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data")
    else:
        onnx.save(proto, tmp)
    tmp.replace(path)
    return proto


def export_graphs(glip: Glip, out_dir: Path, image_hw: tuple[int, int], max_text_len: int,
                  fp16: bool = False, meta: dict | None = None) -> dict[str, onnx.ModelProto]:
    """Writes image_backbone.onnx, text_encoder.onnx and head.onnx into `out_dir`.

    With `fp16` the module is converted to float16 in place."""
    glip = glip.eval()
    meta = dict(meta or {})
    ex = example_inputs(glip, image_hw, min(max_text_len, 16))
    batch = Dim("batch", min=1, max=1024)
    text = Dim("text_len", min=2, max=max_text_len)
    dtype = torch.float16 if fp16 else torch.float32
    if fp16:
        glip.half()
    protos = {}

    backbone = ImageBackboneGraph(glip, dtype)
    protos["image_backbone"] = _export(
        backbone, (ex.images,), ["images"], LEVELS, {"images": {0: batch}},
        out_dir / GRAPH_FILES["image_backbone"], {**meta, "odinw.graph": "image_backbone"})

    encoder = TextEncoderGraph(glip, dtype)
    protos["text_encoder"] = _export(
        encoder, (ex.input_ids, ex.attention_mask), ["input_ids", "attention_mask"], ["text_hidden"],
        {"input_ids": {0: batch, 1: text}, "attention_mask": {0: batch, 1: text}},
        out_dir / GRAPH_FILES["text_encoder"], {**meta, "odinw.graph": "text_encoder"})

    # Example head inputs only need the right shapes; the backbone is not run.
    g = torch.Generator().manual_seed(1)
    b = ex.images.shape[0]
    feats = [torch.randn(b, glip.cfg.fpn_channels, h, w, generator=g)
             for h, w in anchor_lib.feature_sizes(image_hw, glip.cfg.anchor_strides)]
    hidden = torch.randn(b, ex.input_ids.shape[1], glip.cfg.bert.hidden, generator=g)
    head = HeadGraph(glip, image_hw, dtype)
    names = list(LEVELS) + ["text_hidden", "attention_mask"]
    shapes = {n: {0: batch} for n in LEVELS}
    shapes["text_hidden"] = {0: batch, 1: text}
    shapes["attention_mask"] = {0: batch, 1: text}
    protos["head"] = _export(
        head, (*feats, hidden, ex.attention_mask), names, HEAD_OUTPUTS, shapes,
        out_dir / GRAPH_FILES["head"], {**meta, "odinw.graph": "head"})
    return protos


def io_signature(proto: onnx.ModelProto) -> dict:
    """{"inputs": [...], "outputs": [...]} with name, dtype and shape (ints or dim names)."""
    def describe(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims})
        return out
    return {"inputs": describe(proto.graph.input), "outputs": describe(proto.graph.output)}
