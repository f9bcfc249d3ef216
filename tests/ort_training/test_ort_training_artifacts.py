"""The ONNX Runtime training artifacts of the linear track, run by onnxruntime-training's own
Python API (CheckpointState, Module, Optimizer) on real batches of the demo model, each on GLIP's
per-batch training canvas: one training session takes the square, portrait and landscape
canvases of reference_torch.CANVASES (192x192, 320x224, 160x288) in turn.

Oracles: a float64 NumPy implementation of the head and of GLIP's loss written here from the
protocol (no shared code with the graph), and PyTorch (reference_torch.py): GLIP's training loss
`atss_loss.glip_loss`, its autograd gradients, and torch.optim.AdamW with clip_grad_norm_.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import COMMITTED, DEMO

import ort_training_api

_, _, api = ort_training_api.load()
RTOL = 1e-3
CANVASES = range(3)  # reference_torch.CANVASES
LOSS_KEYS = ("loss", "loss_token", "loss_reg", "loss_centerness")


def open_module(folder):
    state = api.CheckpointState.load_checkpoint(str(folder / "checkpoint"))
    module = api.Module(str(folder / "training_model.onnx"), state, str(folder / "eval_model.onnx"), device="cpu")
    optimizer = api.Optimizer(str(folder / "optimizer_model.onnx"), module)
    return state, module, optimizer


def batch_inputs(manifest, reference, k: int):
    return [reference[f"c{k}:input:{i['name']}"] for i in manifest["inputs"]]


def rel_err(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30))


# ---- float64 NumPy reference (protocol §9 and model.json's anchors and box coder) ----------------

def np_anchors(model_json, sizes) -> np.ndarray:
    """The anchors of a canvas whose levels are `sizes` [(h, w)]: model.json's cell anchor of each
    level shifted by the stride, y-major."""
    rows = []
    for lv, (height, width) in zip(model_json["anchors"]["levels"], sizes):
        cell = np.asarray(lv["cell_anchor"], np.float64)
        for y in range(height):
            for x in range(width):
                s = lv["stride"]
                rows.append(cell + [x * s, y * s, x * s, y * s])
    return np.asarray(rows)


def np_decode(deltas, anchors, coder) -> np.ndarray:
    w = anchors[:, 2] - anchors[:, 0] + 1
    h = anchors[:, 3] - anchors[:, 1] + 1
    cx = (anchors[:, 2] + anchors[:, 0]) / 2
    cy = (anchors[:, 3] + anchors[:, 1]) / 2
    wx, wy, ww, wh = coder["weights"]
    pcx = deltas[..., 0] / wx * w + cx
    pcy = deltas[..., 1] / wy * h + cy
    pw = np.exp(np.minimum(deltas[..., 2] / ww, coder["clamp_dw_dh"])) * w
    ph = np.exp(np.minimum(deltas[..., 3] / wh, coder["clamp_dw_dh"])) * h
    return np.stack([pcx - (pw - 1) / 2, pcy - (ph - 1) / 2, pcx + (pw - 1) / 2, pcy + (ph - 1) / 2], -1)


def np_bce(x, t):
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


def np_loss(params: dict, inputs: dict, model_json: dict) -> tuple[float, float, float, float]:
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    text = inputs["text_fused"].astype(np.float64)
    emb = text / np.maximum(np.linalg.norm(text, axis=-1, keepdims=True), 1e-12)
    w_proj = p["rpn.head.dot_product_projection_text.weight"]
    proj = (emb / 2) @ w_proj.T + p["rpn.head.dot_product_projection_text.bias"]
    token_bias = emb @ p["rpn.head.bias_lang"] + p["rpn.head.bias0"][0]
    temperature = math.exp(p["rpn.head.log_scale"][0])
    w_box = p["rpn.head.bbox_pred.weight"].reshape(4, -1)
    w_ctr = p["rpn.head.centerness.weight"].reshape(1, -1)
    deltas, ctr, logits = [], [], []
    for level in range(5):
        x = inputs[f"f{level + 3}"].astype(np.float64)
        q = x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1)
        scale = p[f"rpn.head.scales.{level}.scale"][0]
        deltas.append((q @ w_box.T + p["rpn.head.bbox_pred.bias"]) * scale)
        ctr.append((q @ w_ctr.T)[..., 0] + p["rpn.head.centerness.bias"][0])
        logits.append(np.clip(q @ proj.transpose(0, 2, 1) / temperature + token_bias[:, None, :], -5e4, 5e4))
    deltas, ctr, logits = (np.concatenate(v, axis=1) for v in (deltas, ctr, logits))

    positive = inputs["positive"].astype(np.float64)
    num_pos = max(positive.sum(), 1.0)
    t = inputs["token_targets"].astype(np.float64)
    real = (inputs["attention_mask"] > 0)[:, None, :]
    prob = 1 / (1 + np.exp(-logits))
    p_t = prob * t + (1 - prob) * (1 - t)
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    token = float((alpha_t * np_bce(logits, t) * (1 - p_t) ** 2 * real).sum() / num_pos)

    anchors = np_anchors(model_json, [inputs[f"f{level + 3}"].shape[-2:] for level in range(5)])
    coder = model_json["box_coder"]
    pb = np_decode(deltas, anchors, coder)
    tb = np_decode(inputs["reg_targets"].astype(np.float64), anchors, coder)
    px1, py1 = pb[..., 0], pb[..., 1]
    px2, py2 = np.maximum(px1, pb[..., 2]), np.maximum(py1, pb[..., 3])
    inter_w = np.minimum(px2, tb[..., 2]) - np.maximum(px1, tb[..., 0])
    inter_h = np.minimum(py2, tb[..., 3]) - np.maximum(py1, tb[..., 1])
    inter = np.where((inter_w > 0) & (inter_h > 0), inter_w * inter_h, 0.0)
    union = (px2 - px1) * (py2 - py1) + (tb[..., 2] - tb[..., 0]) * (tb[..., 3] - tb[..., 1]) - inter + 1e-7
    enclosing = ((np.maximum(px2, tb[..., 2]) - np.minimum(px1, tb[..., 0]))
                 * (np.maximum(py2, tb[..., 3]) - np.minimum(py1, tb[..., 1])) + 1e-7)
    giou = inter / union - (enclosing - union) / enclosing
    ctr_t = inputs["centerness_targets"].astype(np.float64)
    reg = float(2.0 * ((1 - giou) * ctr_t).sum() / max(ctr_t.sum(), 1e-6))
    centerness = float((np_bce(ctr, ctr_t) * positive).sum() / num_pos)
    return token + reg + centerness, token, reg, centerness


# ---- tests -----------------------------------------------------------------------------------------

def test_manifest_describes_the_artifacts(artifacts, manifest):
    assert manifest["contract"] == "odinw-ort-training" and manifest["track"] == "linear"
    for name in manifest["artifacts"].values():
        assert (artifacts / name).is_file(), name
    assert [i["name"] for i in manifest["inputs"]] == [
        "f3", "f4", "f5", "f6", "f7", "text_fused", "attention_mask",
        "positive", "reg_targets", "centerness_targets", "token_targets"]
    assert manifest["outputs"] == ["loss", "loss_token", "loss_reg", "loss_centerness"]
    assert {p["name"] for p in manifest["trainable"]} == {
        "rpn.head.bbox_pred.weight", "rpn.head.bbox_pred.bias", "rpn.head.centerness.weight",
        "rpn.head.centerness.bias", "rpn.head.dot_product_projection_text.weight",
        "rpn.head.dot_product_projection_text.bias", "rpn.head.log_scale", "rpn.head.bias_lang", "rpn.head.bias0"}
    assert manifest["contract_version"] == 2 and manifest["canvas"] == "dynamic"
    shapes = {i["name"]: i["shape"] for i in manifest["inputs"]}
    b, t = manifest["batch"], manifest["max_text_len"]
    assert shapes["token_targets"] == [b, "anchors", t] and shapes["f3"] == [b, 32, "f3_height", "f3_width"]
    assert shapes["f7"] == [b, 32, "f7_height", "f7_width"] and shapes["text_fused"] == [b, t, 64]
    features = {i["name"]: i["shape"] for i in manifest["features"]["inputs"]}
    assert features["p3"][2:] == ["p3_height", "p3_width"], features


def test_batches_are_on_glip_canvases(reference):
    """Square, portrait and landscape canvases, multiples of 32, with the anchor count of each."""
    canvases = [tuple(c) for c in reference["canvases"]]
    assert canvases == [(192, 192), (320, 224), (160, 288)], canvases
    for k, (h, w) in enumerate(canvases):
        sizes = [(reference[f"c{k}:input:f{i + 3}"].shape[2:]) for i in range(5)]
        assert sizes[0] == (h // 8, w // 8), sizes
        assert reference[f"c{k}:input:positive"].shape[1] == sum(a * b for a, b in sizes)


def test_checkpoint_holds_the_demo_models_parameters(artifacts, manifest, reference):
    state, _, _ = open_module(artifacts)
    for entry in manifest["trainable"] + manifest["frozen"]:
        param = state.parameters[entry["name"]]
        assert param.requires_grad == (entry in manifest["trainable"])
        np.testing.assert_array_equal(param.data, reference[f"param:{entry['name']}"])


@pytest.mark.parametrize("k", CANVASES)
def test_batch_is_real(reference, k):
    key = f"c{k}:"
    assert reference[key + "num_pos"] >= 10, "the batch needs positive anchors"
    assert reference[key + "head_parity"] < 1e-5, "features.onnx + the PyTorch head reproduce head.onnx"
    # The graph's masked loss equals GLIP's training loss on the same head outputs.
    np.testing.assert_allclose(reference[key + "masked_loss"], [reference[key + n] for n in LOSS_KEYS], rtol=1e-5)


@pytest.mark.parametrize("k", CANVASES)
def test_loss_equals_numpy_and_pytorch(artifacts, manifest, reference, k):
    state, module, _ = open_module(artifacts)
    module.train()
    outputs = [float(np.asarray(o)) for o in module(*batch_inputs(manifest, reference, k))]
    torch_losses = [float(reference[f"c{k}:{n}"]) for n in LOSS_KEYS]
    params = {name: state.parameters[name].data for name, _ in state.parameters}
    inputs = {i["name"]: reference[f"c{k}:input:{i['name']}"] for i in manifest["inputs"]}
    numpy_losses = np_loss(params, inputs, json.loads((DEMO / "model.json").read_text()))
    print(f"canvas {tuple(int(x) for x in reference['canvases'][k])} loss: onnxruntime-training {outputs}, pytorch {torch_losses}, "
          f"numpy {list(numpy_losses)}")
    # float32 sums over 2 x Q x 48 (anchor, token) pairs, in another order than PyTorch's
    np.testing.assert_allclose(outputs, torch_losses, rtol=1e-4)
    np.testing.assert_allclose(outputs, numpy_losses, rtol=1e-4)
    module.eval()
    eval_outputs = [float(np.asarray(o)) for o in module(*batch_inputs(manifest, reference, k))]
    np.testing.assert_allclose(eval_outputs, outputs, rtol=1e-6)


def test_one_session_takes_every_canvas(artifacts, manifest, reference):
    """The canvases one after the other in one session, and back: the graph keeps no shape."""
    _, module, _ = open_module(artifacts)
    module.eval()
    for k in (*CANVASES, 0):
        got = [float(np.asarray(o)) for o in module(*batch_inputs(manifest, reference, k))]
        np.testing.assert_allclose(got, [float(reference[f"c{k}:{n}"]) for n in LOSS_KEYS], rtol=1e-4)


@pytest.mark.parametrize("k", CANVASES)
def test_gradients_match_pytorch_autograd(artifacts, manifest, reference, k):
    state, module, _ = open_module(artifacts)
    module.train()
    module(*batch_inputs(manifest, reference, k))
    worst = 0.0
    for entry in manifest["trainable"]:
        name = entry["name"]
        grad = state.parameters[name].grad
        want = reference[f"c{k}:grad:{name}"]
        assert grad.shape == want.shape, name
        err = rel_err(grad, want)
        worst = max(worst, err)
        assert err <= RTOL, f"{name}: relative error {err:.2e}"
        np.testing.assert_allclose(grad, want, rtol=RTOL, atol=RTOL * np.abs(want).max())
    print(f"canvas {tuple(int(x) for x in reference['canvases'][k])} gradients: worst relative error {worst:.2e} "
          f"(norm {float(reference[f'c{k}:grad_norm']):.3f})")


@pytest.mark.parametrize("k", CANVASES)
def test_one_adamw_step_matches_torch(artifacts, manifest, reference, k):
    grad_norm = float(reference[f"c{k}:grad_norm"])
    assert grad_norm > manifest["optimizer"]["clip_grad_norm"], "the step must exercise clipping"
    state, module, optimizer = open_module(artifacts)
    optimizer.set_learning_rate(float(reference["step_lr"]))
    module.train()
    module(*batch_inputs(manifest, reference, k))
    optimizer.step()
    worst = 0.0
    for entry in manifest["trainable"]:
        name = entry["name"]
        update = state.parameters[name].data.astype(np.float64) - reference[f"param:{name}"]
        want = reference[f"c{k}:step1:{name}"].astype(np.float64) - reference[f"param:{name}"]
        err = rel_err(update, want)
        worst = max(worst, err)
        assert err <= RTOL, f"{name}: update differs from torch.optim.AdamW by {err:.2e}"
    # InplaceClipGradNorm rescales the gradient buffers themselves, as clip_grad_norm_ does:
    # g * max_norm / (norm + 1e-6).
    max_norm = manifest["optimizer"]["clip_grad_norm"]
    factor = max_norm / (grad_norm + 1e-6)
    for entry in manifest["trainable"]:
        name = entry["name"]
        err = rel_err(state.parameters[name].grad, reference[f"c{k}:grad:{name}"] * factor)
        assert err <= RTOL, f"{name}: clipped gradient differs by {err:.2e}"
    print(f"canvas {tuple(int(x) for x in reference['canvases'][k])} AdamW step: worst relative error of the update {worst:.2e}; "
          f"gradients clipped from {grad_norm:.3f} to {max_norm}")


def test_training_across_canvases_follows_pytorch(artifacts, manifest, reference):
    """AdamW steps whose batches change canvas every step (as GLIP's do), in one session."""
    state, module, optimizer = open_module(artifacts)
    optimizer.set_learning_rate(float(reference["lr"]))
    losses = []
    module.train()
    for step in range(len(reference["trajectory"]) - 1):
        losses.append(float(np.asarray(module(*batch_inputs(manifest, reference, step % len(CANVASES)))[0])))
        optimizer.step()
        module.lazy_reset_grad()
    module.eval()
    losses.append(float(np.asarray(module(*batch_inputs(manifest, reference, 0))[0])))
    print(f"loss over AdamW steps: onnxruntime-training {losses}, pytorch {list(reference['trajectory'])}")
    # Training lowers the loss over each pass through the canvases (one canvas may rise a little
    # on the way, in PyTorch too), and the first canvas's from its first visit to the end.
    n = len(CANVASES)
    passes = [sum(losses[i:i + n]) for i in range(0, len(losses) - 1, n)]
    assert all(b < a for a, b in zip(passes, passes[1:])) and losses[-1] < losses[0], losses
    np.testing.assert_allclose(losses, reference["trajectory"], rtol=RTOL)


def test_committed_fixture_is_current(artifacts, manifest, reference):
    """tests/fixtures/ort_training/demo-linear (what the Rust tests open) equals a fresh build."""
    committed = json.loads((COMMITTED / "ort_training.json").read_text())
    for key in ("contract", "contract_version", "track", "batch", "canvas", "inputs", "outputs", "trainable",
                "frozen", "optimizer", "artifacts", "features", "loss_graph"):
        assert committed[key] == manifest[key], key
    assert committed["source"]["head_sha256"] == manifest["source"]["head_sha256"]
    fresh_state, fresh, _ = open_module(artifacts)
    old_state, old, _ = open_module(COMMITTED)
    for entry in manifest["trainable"] + manifest["frozen"]:
        np.testing.assert_array_equal(old_state.parameters[entry["name"]].data,
                                      fresh_state.parameters[entry["name"]].data)
    fresh.train()
    old.train()
    for k in CANVASES:
        inputs = batch_inputs(manifest, reference, k)
        fresh.lazy_reset_grad()
        old.lazy_reset_grad()
        np.testing.assert_allclose([np.asarray(o) for o in old(*inputs)], [np.asarray(o) for o in fresh(*inputs)],
                                   rtol=1e-6)
        for entry in manifest["trainable"]:
            np.testing.assert_allclose(old_state.parameters[entry["name"]].grad,
                                       fresh_state.parameters[entry["name"]].grad, rtol=1e-5, atol=1e-9)
    # The Rust tests run the loss graph and features graph of the fixture on stock ONNX Runtime.
    for name in (manifest["loss_graph"], manifest["features"]["file"]):
        assert (COMMITTED / name).read_bytes() == (artifacts / name).read_bytes(), name


def test_a_fixed_canvas_model_is_refused(tmp_path):
    """export_ort_loss_graph.py refuses a model whose graphs take one fixed canvas (the artifacts
    train on GLIP's per-batch canvas), naming the file, before it writes anything."""
    import subprocess
    from conftest import REPO, torch_python
    desc = json.loads((DEMO / "model.json").read_text())
    desc["preprocess"]["canvas"] = "fixed"
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps(desc))
    out = tmp_path / "out"
    done = subprocess.run([torch_python(), str(REPO / "scripts" / "export_ort_loss_graph.py"), "--model", str(model),
                           "--track", "linear", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "model.json: a fixed-canvas export" in done.stderr, done.stderr
    assert not out.exists()
