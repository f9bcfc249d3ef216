#!/usr/bin/env python3
"""Writes the two model-independent ONNX graphs with which odinw updates parameters where they
live (GPU memory under CUDA): `models/optim/grad_norm.onnx` and `models/optim/adamw_update.onnx`.

odinw keeps a track's parameters and AdamW moments in the execution provider's memory and runs
these graphs once per tensor and step through I/O binding, so no parameter, gradient or moment
crosses to the host between steps. They compute exactly what src/train/optimizer.rs computes on
the host (torch.optim.AdamW after clip_grad_norm_), in the same f32 operation order:

- grad_norm:     x (f32, any shape) -> norm = f32(sqrt(sum(f64(x)^2)))  (a scalar)
- adamw_update:  param, grad, m, v (f32, one shape) and scalars f32[8] =
                 [clip coefficient, 1 - lr*wd, 1 - beta1, beta2, 1 - beta2,
                  sqrt(1 - beta2^t), -lr / (1 - beta1^t), eps]
                 g = grad * coef; p = param * decay; m' = m + (1 - b1) * (g - m);
                 v' = v * b2 + ((1 - b2) * g) * g; param' = p + (nss * m') / (sqrt(v') / bc2 + eps)

Usage: python scripts/make_optimizer_graphs.py [--out models/optim]   (needs onnx)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8  # ONNX Runtime 1.31 reads IR <= 13
SCALARS = ["coef", "decay", "one_minus_b1", "b2", "one_minus_b2", "bc2_sqrt", "neg_step_size", "eps"]


def model(graph: onnx.GraphProto) -> onnx.ModelProto:
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="odinw-make_optimizer_graphs")
    m.ir_version = IR_VERSION
    # Not onnx.checker: it wants a shape on every graph input, and these graphs take tensors of
    # any rank on purpose (one graph for every parameter). tests/export/test_optimizer_graphs.py
    # runs them in onnxruntime against torch.optim.AdamW instead.
    return m


def grad_norm() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSumSquare", ["x64"], ["sq"], keepdims=0),
        helper.make_node("Sqrt", ["sq"], ["n64"]),
        helper.make_node("Cast", ["n64"], ["norm"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, "grad_norm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("norm", TensorProto.FLOAT, [])])
    return model(graph)


def adamw_update() -> onnx.ModelProto:
    nodes = []
    inits = []
    for i, name in enumerate(SCALARS):
        inits.append(helper.make_tensor(f"i_{name}", TensorProto.INT64, [], [i]))
        nodes.append(helper.make_node("Gather", ["scalars", f"i_{name}"], [name], axis=0))
    op = lambda kind, a, b, out: nodes.append(helper.make_node(kind, [a, b], [out]))  # noqa: E731
    op("Mul", "grad", "coef", "g")
    op("Mul", "param", "decay", "p_decayed")
    op("Sub", "g", "m", "g_minus_m")
    op("Mul", "one_minus_b1", "g_minus_m", "m_delta")
    op("Add", "m", "m_delta", "m_out")
    op("Mul", "v", "b2", "v_kept")
    op("Mul", "one_minus_b2", "g", "g_scaled")
    op("Mul", "g_scaled", "g", "v_delta")
    op("Add", "v_kept", "v_delta", "v_out")
    nodes.append(helper.make_node("Sqrt", ["v_out"], ["v_sqrt"]))
    op("Div", "v_sqrt", "bc2_sqrt", "v_hat")
    op("Add", "v_hat", "eps", "denom")
    op("Mul", "neg_step_size", "m_out", "m_step")
    op("Div", "m_step", "denom", "update")
    op("Add", "p_decayed", "update", "param_out")
    f32 = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)  # noqa: E731
    graph = helper.make_graph(
        nodes, "adamw_update",
        [f32("param"), f32("grad"), f32("m"), f32("v"),
         helper.make_tensor_value_info("scalars", TensorProto.FLOAT, [len(SCALARS)])],
        [f32("param_out"), f32("m_out"), f32("v_out")],
        initializer=inits)
    return model(graph)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "optim")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in [("grad_norm", grad_norm), ("adamw_update", adamw_update)]:
        path = args.out / f"{name}.onnx"
        path.write_bytes(build().SerializeToString())
        print(path)


if __name__ == "__main__":
    main()
