"""Two cheap clean-ups of an unoptimised torch.onnx export (the full optimizer takes minutes).

- `CastLike(x, like)` becomes `Cast(x, to=type of like)` where shape inference knows that type
  (ONNX Runtime cannot constant-fold CastLike and warns about each one at session creation).
- Initializers with equal dtype, shape and bytes are merged into one (torch.export lifts a
  tensor once per use).
"""
from __future__ import annotations

import hashlib

import onnx
from onnx import helper, numpy_helper


def tidy(proto: onnx.ModelProto) -> onnx.ModelProto:
    _castlike_to_cast(proto)
    _merge_initializers(proto)
    return proto


def _castlike_to_cast(proto: onnx.ModelProto) -> None:
    graph = proto.graph
    if not any(n.op_type == "CastLike" for n in graph.node):
        return
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    for node in graph.node:
        if node.op_type != "CastLike" or node.domain not in ("", "ai.onnx"):
            continue
        to = types.get(node.input[1], 0)
        if to:
            node.CopyFrom(helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=to))


def _merge_initializers(proto: onnx.ModelProto) -> None:
    graph = proto.graph
    keep: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    for init in list(graph.initializer):
        data = init.raw_data if init.HasField("raw_data") else numpy_helper.to_array(init).tobytes()
        key = (init.data_type, tuple(init.dims), hashlib.sha256(data).hexdigest())
        if key in keep:
            rename[init.name] = keep[key]
            graph.initializer.remove(init)
        else:
            keep[key] = init.name
    if not rename:
        return
    graph_inputs = {i.name for i in graph.input}
    assert not set(rename) & graph_inputs
    for node in graph.node:
        for j, name in enumerate(node.input):
            if name in rename:
                node.input[j] = rename[name]
