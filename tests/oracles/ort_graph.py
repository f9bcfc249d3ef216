"""Builds a small ONNX graph (conv, pooling, matmul, gather, sigmoid; f32 and int64 inputs) with
seeded random weights, runs it with onnxruntime's Python API, and writes the model, inputs and
outputs to OUT_DIR so the Rust engine can be compared against it."""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(7)
w_conv = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
w_fc = rng.standard_normal((6, 4)).astype(np.float32)
emb = rng.standard_normal((10, 4)).astype(np.float32)
nodes = [
    helper.make_node("Conv", ["images", "w_conv"], ["c"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c"], ["r"]),
    helper.make_node("GlobalAveragePool", ["r"], ["p"]),
    helper.make_node("Flatten", ["p"], ["f"]),
    helper.make_node("MatMul", ["f", "w_fc"], ["visual"]),
    helper.make_node("Gather", ["emb", "input_ids"], ["g"]),
    helper.make_node("ReduceMean", ["g", "axes"], ["text"], keepdims=0),
    helper.make_node("Add", ["visual", "text"], ["s"]),
    helper.make_node("Sigmoid", ["s"], ["scores"]),
]
graph = helper.make_graph(
    nodes,
    "odinw_engine_test",
    [
        helper.make_tensor_value_info("images", TensorProto.FLOAT, [2, 3, 8, 8]),
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [2, 5]),
    ],
    [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [2, 4]),
        helper.make_tensor_value_info("visual", TensorProto.FLOAT, [2, 4]),
    ],
    [
        numpy_helper.from_array(w_conv, "w_conv"),
        numpy_helper.from_array(w_fc, "w_fc"),
        numpy_helper.from_array(emb, "emb"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
model.ir_version = 10
onnx.checker.check_model(model)
onnx.save(model, f"{out}/model.onnx")

images = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
ids = rng.integers(0, 10, size=(2, 5)).astype(np.int64)
sess = ort.InferenceSession(f"{out}/model.onnx", providers=["CPUExecutionProvider"])
scores, visual = sess.run(["scores", "visual"], {"images": images, "input_ids": ids})
json.dump(
    {
        "images": images.ravel().tolist(),
        "input_ids": ids.ravel().tolist(),
        "scores": scores.ravel().tolist(),
        "visual": visual.ravel().tolist(),
    },
    open(f"{out}/expected.json", "w"),
)
