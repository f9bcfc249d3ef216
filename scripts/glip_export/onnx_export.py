"""Writing the three ONNX graphs (torch.onnx dynamo exporter, opset 19, IR version 10).

Opset 19 is the first with `DeformConv`; ONNX Runtime 1.31 accepts IR versions up to 13 and the
`onnx` 1.23 serializer would write 14, so the IR version is set explicitly. Batch is dynamic in
every graph and the text length is dynamic up to `max_text_len`. The image height and width are
dynamic too, as multiples of 32 (GLIP's canvas: the resized image zero-padded to the next
multiple of `SIZE_DIVISIBILITY`): the Swin window padding and shift masks, the feature-map sizes
and the head's anchors are computed in the graph from the input's size. `image_hw` is only the
size traced at (and the size the fixed-canvas training graphs use). With `fp16`, weights and
compute are float16 while the graph inputs and outputs stay float32/int64.
"""
from __future__ import annotations

import contextlib
import io
import re
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
HEAD_TRACE_MIN = 160  # pixels: every level at least 2x2 when the head is traced


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


def _export(module: nn.Module, args: tuple, input_names, output_names, dynamic_shapes, path: Path, meta: dict,
            rename=None):
    module.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=list(input_names),
                                    output_names=list(output_names),
                                    dynamic_shapes=dynamic_shapes,
                                    verbose=False)
    proto = program.model_proto
    if rename is not None:
        _rename_dims(proto, rename(proto))
    return save_proto(proto, path, meta)


def _rename_dims(proto: onnx.ModelProto, names: dict[str, str]) -> None:
    """Replaces the exporter's symbol names (`s92`) in every symbolic dimension of the graph
    (inputs, outputs, intermediate value infos) by readable ones; a dimension whose whole
    expression is a key (e.g. the head's anchor count) is replaced by its value."""
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in names) + r")\b") if names else None
    values = list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info)
    for v in values:
        for d in v.type.tensor_type.shape.dim:
            if not d.dim_param or pattern is None:
                continue
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]
            else:
                d.dim_param = pattern.sub(lambda m: names[m.group(1)], d.dim_param)


def _dim(proto: onnx.ModelProto, tensor: str, axis: int, outputs: bool = False) -> str:
    values = proto.graph.output if outputs else proto.graph.input
    return next(v for v in values if v.name == tensor).type.tensor_type.shape.dim[axis].dim_param


def _backbone_dim_names(proto: onnx.ModelProto) -> dict[str, str]:
    """p5's sizes are the canvas / 32: name them as the input's `height32`, `width32`."""
    return {_dim(proto, "p5", 2, outputs=True): "height32", _dim(proto, "p5", 3, outputs=True): "width32"}


def _head_dim_names(proto: onnx.ModelProto) -> dict[str, str]:
    names = {}
    for level in LEVELS:
        names[_dim(proto, level, 2)] = f"{level}_height"
        names[_dim(proto, level, 3)] = f"{level}_width"
    names[_dim(proto, "box_deltas", 1, outputs=True)] = "anchors"
    return names


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
    # Canvas sides in units of 32 pixels (GLIP's size divisibility), up to 4096 pixels.
    height32 = Dim("height32", min=1, max=128)
    width32 = Dim("width32", min=1, max=128)
    dtype = torch.float16 if fp16 else torch.float32
    if fp16:
        glip.half()
    protos = {}

    backbone = ImageBackboneGraph(glip, dtype)
    protos["image_backbone"] = _export(
        backbone, (ex.images,), ["images"], LEVELS, {"images": {0: batch, 2: 32 * height32, 3: 32 * width32}},
        out_dir / GRAPH_FILES["image_backbone"], {**meta, "odinw.graph": "image_backbone"},
        rename=lambda p: _backbone_dim_names(p))

    encoder = TextEncoderGraph(glip, dtype)
    protos["text_encoder"] = _export(
        encoder, (ex.input_ids, ex.attention_mask), ["input_ids", "attention_mask"], ["text_hidden"],
        {"input_ids": {0: batch, 1: text}, "attention_mask": {0: batch, 1: text}},
        out_dir / GRAPH_FILES["text_encoder"], {**meta, "odinw.graph": "text_encoder"})

    # Example head inputs only need the right shapes; the backbone is not run. They are traced at
    # a canvas of at least 160 a side: a level of size 1 (P7 below 129 pixels) would be
    # specialised to 1 by the exporter, and the graph would refuse every larger canvas.
    g = torch.Generator().manual_seed(1)
    b = ex.images.shape[0]
    head_hw = (max(image_hw[0], HEAD_TRACE_MIN), max(image_hw[1], HEAD_TRACE_MIN))
    feats = [torch.randn(b, glip.cfg.fpn_channels, h, w, generator=g)
             for h, w in anchor_lib.feature_sizes(head_hw, glip.cfg.anchor_strides)]
    hidden = torch.randn(b, ex.input_ids.shape[1], glip.cfg.bert.hidden, generator=g)
    head = HeadGraph(glip, image_hw, dtype)
    names = list(LEVELS) + ["text_hidden", "attention_mask"]
    # The levels' sizes are related (P3..P5 are 4x, 2x, 1x the canvas/32, P6 and P7 halve with
    # ceil): AUTO lets the exporter find those relations instead of declaring them.
    shapes = {n: {0: batch, 2: Dim.AUTO, 3: Dim.AUTO} for n in LEVELS}
    shapes["text_hidden"] = {0: batch, 1: text}
    shapes["attention_mask"] = {0: batch, 1: text}
    protos["head"] = _export(
        head, (*feats, hidden, ex.attention_mask), names, HEAD_OUTPUTS, shapes,
        out_dir / GRAPH_FILES["head"], {**meta, "odinw.graph": "head"},
        rename=lambda p: _head_dim_names(p))
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
