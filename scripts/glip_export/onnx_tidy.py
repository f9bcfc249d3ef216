"""Clean-ups of an unoptimised torch.onnx export (the full optimizer takes minutes).

- `ScatterND(reduction="add")` over rows (indices [..., 1]) becomes `ScatterElements(axis=0,
  reduction="add")` on the data viewed as [rows, rest], with the row index expanded over the rest,
  in chunks of at most 2^24 index values (in one piece where the data's size is dynamic, as in
  the training graphs of a dynamic canvas: the shapes are then taken in the graph). The
  gradients of gathers and embeddings are such scatters with repeated rows, and ONNX Runtime's CPU ScatterND adds them from several threads
  without synchronisation: the sums come out wrong and differ run to run (microsoft/onnxruntime
  #18048, #23396; seen here). Its ScatterElements adds in order.
- `CastLike(x, like)` becomes `Cast(x, to=type of like)` where shape inference knows that type
  (ONNX Runtime cannot constant-fold CastLike and warns about each one at session creation).
- Initializers with equal dtype, shape and bytes are merged into one (torch.export lifts a
  tensor once per use).
"""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

CHUNK_VALUES = 1 << 24  # expanded int64 row index per ScatterElements: at most 128 MB


def tidy(proto: onnx.ModelProto) -> onnx.ModelProto:
    info = _inferred(proto)
    _scatternd_add_to_scatter_elements(proto, info)
    _castlike_to_cast(proto, info)
    _merge_initializers(proto)
    return proto


def _inferred(proto: onnx.ModelProto) -> dict[str, tuple[int, list]]:
    """name -> (elem_type, dims with None for unknown) from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    out = {}
    for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None
        out[v.name] = (t.elem_type, dims)
    for i in proto.graph.initializer:
        out[i.name] = (i.data_type, list(i.dims))
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = (attr.t.data_type, list(attr.t.dims))
    return out


def _castlike_to_cast(proto: onnx.ModelProto, info: dict) -> None:
    for node in proto.graph.node:
        if node.op_type != "CastLike" or node.domain not in ("", "ai.onnx"):
            continue
        to = info.get(node.input[1], (0, None))[0]
        if to:
            node.CopyFrom(helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=to))


def _scatternd_add_to_scatter_elements(proto: onnx.ModelProto, info: dict) -> None:
    graph = proto.graph
    new_nodes, counter = [], [0]

    def const(values, dtype=np.int64) -> str:
        counter[0] += 1
        name = f"tidy_scatter_const_{counter[0]}"
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def tmp() -> str:
        counter[0] += 1
        return f"tidy_scatter_{counter[0]}"

    for node in graph.node:
        reduction = next((a.s.decode() for a in node.attribute if a.name == "reduction"), "none")
        data_dims = info.get(node.input[0], (0, None))[1] if node.op_type == "ScatterND" else None
        index_dims = info.get(node.input[1], (0, None))[1] if node.op_type == "ScatterND" else None
        if node.op_type != "ScatterND" or reduction != "add" or not index_dims or index_dims[-1] != 1:
            new_nodes.append(node)
            continue
        if not data_dims or None in data_dims:
            new_nodes += _rows_scatter_add_dynamic(node, const, tmp)
            continue
        rows, rest = data_dims[0], int(np.prod(data_dims[1:], dtype=np.int64))
        data2, index2, updates2 = tmp(), tmp(), tmp()
        new_nodes += [
            helper.make_node("Reshape", [node.input[0], const([rows, rest])], [data2]),
            helper.make_node("Reshape", [node.input[1], const([-1, 1])], [index2]),
            helper.make_node("Reshape", [node.input[2], const([-1, rest])], [updates2]),
        ]
        count = None if None in index_dims else int(np.prod(index_dims[:-1], dtype=np.int64))
        step = max(1, CHUNK_VALUES // max(rest, 1))
        bounds = [(0, None)] if count is None or count <= step else \
            [(s, min(s + step, count)) for s in range(0, count, step)]
        current = data2
        for start, end in bounds:
            part_index, part_updates = index2, updates2
            if end is not None:
                part_index, part_updates = tmp(), tmp()
                starts, ends, axes = const([start]), const([end]), const([0])
                new_nodes += [helper.make_node("Slice", [index2, starts, ends, axes], [part_index]),
                              helper.make_node("Slice", [updates2, starts, ends, axes], [part_updates])]
            shape, expanded, out = tmp(), tmp(), tmp()
            new_nodes += [
                helper.make_node("Shape", [part_updates], [shape]),
                helper.make_node("Expand", [part_index, shape], [expanded]),
                helper.make_node("ScatterElements", [current, expanded, part_updates], [out], axis=0,
                                 reduction="add"),
            ]
            current = out
        new_nodes.append(helper.make_node("Reshape", [current, const(data_dims)], list(node.output),
                                          name=node.name))
    del graph.node[:]
    graph.node.extend(new_nodes)


def _rows_scatter_add_dynamic(node, const, tmp) -> list:
    """The same rewrite where the data's size is only known when the graph runs (a dynamic
    canvas): the shapes are taken in the graph, and the index is expanded in one piece (no
    chunks: their number would depend on the size)."""
    data, index, updates = node.input[0], node.input[1], node.input[2]
    data2, index2, updates2, rest, updates_shape, shape, expanded, out, data_shape = (tmp() for _ in range(9))
    return [
        helper.make_node("Reshape", [data, const([0, -1])], [data2]),  # [rows, rest]
        helper.make_node("Reshape", [index, const([-1, 1])], [index2]),
        helper.make_node("Shape", [data2], [rest], start=1, end=2),
        helper.make_node("Concat", [const([-1]), rest], [updates_shape], axis=0),
        helper.make_node("Reshape", [updates, updates_shape], [updates2]),
        helper.make_node("Shape", [updates2], [shape]),
        helper.make_node("Expand", [index2, shape], [expanded]),
        helper.make_node("ScatterElements", [data2, expanded, updates2], [out], axis=0, reduction="add"),
        helper.make_node("Shape", [data], [data_shape]),
        helper.make_node("Reshape", [out, data_shape], list(node.output), name=node.name),
    ]


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
