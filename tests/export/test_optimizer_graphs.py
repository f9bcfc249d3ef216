"""The optimizer graphs (models/optim/, scripts/make_optimizer_graphs.py) that update parameters
where they live: run by onnxruntime once per tensor and step, they must give what
torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW give, and the committed files must be what
the script writes."""
from __future__ import annotations

import importlib
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import REPO

OPTIM = REPO / "models" / "optim"


def session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(OPTIM / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def test_committed_graphs_are_the_scripts_output(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["make_optimizer_graphs.py", "--out", str(tmp_path)])
    importlib.import_module("make_optimizer_graphs").main()
    for name in ["grad_norm", "adamw_update"]:
        assert (tmp_path / f"{name}.onnx").read_bytes() == (OPTIM / f"{name}.onnx").read_bytes(), name


@pytest.mark.parametrize("clip", [None, 1.0])
def test_graphs_follow_torch_adamw(clip):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (5,), (), (2, 3, 40), (1000,)]
    lrs, wds = [1e-3, 2e-3, 1e-3, 5e-4, 1e-2], [0.05, 0.0, 0.05, 0.01, 0.0]
    betas, eps = (0.9, 0.999), 1e-8

    def arr(shape, scale=1.0):
        return np.asarray(rng.normal(size=shape) * scale, dtype=np.float32)

    params = [arr(s) for s in shapes]
    reference = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch.optim.AdamW([{"params": [t], "lr": lr, "weight_decay": wd}
                             for t, lr, wd in zip(reference, lrs, wds)], betas=betas, eps=eps)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    norm_graph, update_graph = session("grad_norm"), session("adamw_update")
    for t in range(1, 21):
        grads = [arr(s, 3.0) for s in shapes]
        for x, g in zip(reference, grads):
            x.grad = torch.tensor(g.copy())
        torch_norm = (torch.nn.utils.clip_grad_norm_(reference, clip) if clip
                      else torch.nn.utils.get_total_norm([x.grad for x in reference]))
        opt.step()
        norms = [float(norm_graph.run(None, {"x": g})[0]) for g in grads]
        norm = math.sqrt(sum(n * n for n in norms))
        assert norm == pytest.approx(float(torch_norm), rel=1e-6)
        coef = min(clip / (norm + 1e-6), 1.0) if clip else 1.0
        for i in range(len(params)):
            scalars = np.array([coef, 1 - lrs[i] * wds[i], 1 - betas[0], betas[1], 1 - betas[1],
                                math.sqrt(1 - betas[1] ** t), -lrs[i] / (1 - betas[0] ** t), eps],
                               dtype=np.float32)
            params[i], m[i], v[i] = update_graph.run(
                None, {"param": params[i], "grad": grads[i], "m": m[i], "v": v[i], "scalars": scalars})
    for p, x in zip(params, reference):
        assert p.shape == tuple(x.shape)
        np.testing.assert_allclose(p, x.detach().numpy(), rtol=0, atol=1e-6)
