"""The graph clean-ups of the training export (glip_export/onnx_tidy.py), run in onnxruntime.

The oracle for the scatter rewrite is numpy's `np.add.at` (unbuffered, so repeated rows add up);
the rewritten graph runs with two intra-op threads, where ScatterND's adds race.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from glip_export import onnx_tidy


def scatter_model(data_shape, index_shape, update_shape, reduction="add"):
    graph = helper.make_graph(
        [helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction=reduction)], "g",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, data_shape),
         helper.make_tensor_value_info("indices", TensorProto.INT64, index_shape),
         helper.make_tensor_value_info("updates", TensorProto.FLOAT, update_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, data_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def run(model, feed, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


@pytest.mark.parametrize("chunk", [1 << 24, 5000])
def test_scatternd_add_becomes_an_ordered_scatter(chunk, monkeypatch):
    monkeypatch.setattr(onnx_tidy, "CHUNK_VALUES", chunk)
    rng = np.random.default_rng(0)
    rows, n = 300, 100_000
    data = rng.normal(size=(rows, 4, 8)).astype(np.float32)
    indices = rng.integers(0, rows, size=(2, n // 2, 1)).astype(np.int64)
    updates = rng.normal(size=(2, n // 2, 4, 8)).astype(np.float32)
    expected = data.astype(np.float64)
    np.add.at(expected, indices[..., 0].reshape(-1), updates.reshape(-1, 4, 8).astype(np.float64))
    model = onnx_tidy.tidy(scatter_model([rows, 4, 8], [2, n // 2, 1], [2, n // 2, 4, 8]))
    ops = [node.op_type for node in model.graph.node]
    assert "ScatterND" not in ops
    assert ops.count("ScatterElements") == (1 if chunk > n * 32 else -(-n // (chunk // 32)))
    feed = {"data": data, "indices": indices, "updates": updates}
    outs = [run(model, feed) for _ in range(3)]
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3)
        assert np.array_equal(out, outs[0])


def test_scatternd_without_reduction_is_kept():
    model = onnx_tidy.tidy(scatter_model([10, 3], [4, 1], [4, 3], reduction="none"))
    assert [node.op_type for node in model.graph.node] == ["ScatterND"]
