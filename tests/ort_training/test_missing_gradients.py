"""Why only the linear track: the ops of GLIP's DyHead tower that onnxruntime-training 1.19.2
cannot differentiate (onnx-runtime-notes.md §4.3), each in a one-op graph whose loss needs its
gradient, plus the 1-D MatMul and CastLike that linear_track.py avoids."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh

import ort_training_api

artifacts, _, api = ort_training_api.load()


def one_op_graph(op: str, inputs: list[str], attrs: dict, params: dict, shape=(1, 2, 4, 4)) -> onnx.ModelProto:
    """x * k -> op -> ReduceSum = loss, where `k` (ones) is the trainable parameter."""
    nodes = [h.make_node("Mul", ["x", "k"], ["xk"]), h.make_node(op, inputs, ["y"], **attrs),
             h.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)]
    inits = [nh.from_array(np.ones((1, shape[1], 1, 1), np.float32), "k")]
    inits += [nh.from_array(np.asarray(v, np.float32), n) for n, v in params.items()]
    graph = h.make_graph(nodes, op, [h.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                         [h.make_tensor_value_info("loss", TensorProto.FLOAT, [])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


CASES = {
    "DeformConv": (["xk", "w", "offset"], {}, {"w": np.full((2, 2, 3, 3), 0.1), "offset": np.zeros((1, 18, 2, 2))},
                   "The gradient builder has not been registered: DeformConv"),
    "InstanceNormalization": (["xk", "scale", "bias"], {}, {"scale": np.ones(2), "bias": np.zeros(2)},
                              "The gradient builder has not been registered: InstanceNormalization"),
    "GridSample": (["xk", "grid"], {}, {"grid": np.zeros((1, 4, 4, 2))},
                   "The gradient builder has not been registered: GridSample"),
    # A gradient builder exists (ResizeGrad) but only a CUDA kernel: a CPU session cannot load it.
    "Resize": (["xk", "", "scales"], {"mode": "linear"}, {"scales": [1, 1, 2, 2]},
               "Could not find an implementation for ResizeGrad"),
}


def build_and_train(model: onnx.ModelProto, folder) -> None:
    frozen = [i.name for i in model.graph.initializer if i.name != "k"]
    saved = os.dup(2)
    with open(folder / "native.log", "wb") as log:  # the gradient builder logs at INFO on fd 2
        os.dup2(log.fileno(), 2)
        try:
            artifacts.generate_artifacts(model, requires_grad=["k"], frozen_params=frozen, loss=None,
                                         optimizer=artifacts.OptimType.AdamW, artifact_directory=folder)
            state = api.CheckpointState.load_checkpoint(str(folder / "checkpoint"))
            module = api.Module(str(folder / "training_model.onnx"), state, str(folder / "eval_model.onnx"))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    module.train()
    module(np.ones((1, 2, 4, 4), np.float32))


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_has_no_cpu_gradient(op, tmp_path):
    inputs, attrs, params, message = CASES[op]
    with pytest.raises(Exception, match=message):
        build_and_train(one_op_graph(op, inputs, attrs, params), tmp_path)


def test_a_differentiable_op_trains(tmp_path):
    """The same harness succeeds for an op with a CPU gradient (Conv), so the failures above are the ops'."""
    build_and_train(one_op_graph("Conv", ["xk", "w"], {"pads": [1, 1, 1, 1]}, {"w": np.full((2, 2, 3, 3), 0.1)}),
                    tmp_path)


def test_one_dimensional_matmul_operand_fails(tmp_path):
    """GLIP's `emb @ bias_lang` ([B,T,H] @ [H]): hence linear_track.py's product-and-sum."""
    nodes = [h.make_node("MatMul", ["x", "v"], ["y"]), h.make_node("ReduceSum", ["y"], ["loss"], keepdims=0)]
    graph = h.make_graph(nodes, "matmul1d", [h.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                         [h.make_tensor_value_info("loss", TensorProto.FLOAT, [])],
                         [nh.from_array(np.ones(4, np.float32), "v")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)])
    model.ir_version = 10
    saved = os.dup(2)
    with open(tmp_path / "native.log", "wb") as log:
        os.dup2(log.fileno(), 2)
        try:
            with pytest.raises(Exception, match="Incompatible dimensions for matrix multiplication"):
                artifacts.generate_artifacts(model, requires_grad=["v"], frozen_params=[], loss=None,
                                             artifact_directory=tmp_path)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
