#!/usr/bin/env python3
"""The PyTorch half of backend 2 (ONNX Runtime training): the linear track's forward+loss graph.

    .venv-export/bin/python scripts/export_ort_loss_graph.py --model models/demo --track linear --out DIR

Normally run for you by scripts/make_ort_training_artifacts.py (which then turns the graph into
ONNX Runtime training artifacts). Reads DIR/model.json and head.onnx of an exported model and
writes into --out:

- features.onnx: the DyHead tower cut out of head.onnx, (p3..p7, text_hidden, attention_mask) ->
  (f3..f7, text_fused): the cached inputs of the linear track (runs on stock ONNX Runtime);
- loss_graph.onnx: (f3..f7, text_fused, attention_mask, positive, reg_targets,
  centerness_targets, token_targets) -> (loss, loss_token, loss_reg, loss_centerness), GLIP's loss
  (protocol §9, TRAIN_CONTRACT.md), the linear_prob parameters and the frozen level scales as
  initializers under their state-dict names, with the values read from head.onnx;
- ort_training.json: the description scripts/make_ort_training_artifacts.py completes.

Contract v2: both graphs take any canvas (GLIP's per-batch training canvas): the levels' sizes
and the targets' anchor count are symbolic, the anchors are computed in the loss graph from
f3..f7's sizes; the batch and the text length are static. The model must be a dynamic-canvas
export (model.json preprocess.canvas "dynamic"). Both graphs are checked against head.onnx and the
PyTorch module (same outputs on random inputs) at CHECK_CANVASES before they are kept.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from glip_export import linear_track as lt  # noqa: E402
from glip_export.config import get_config  # noqa: E402
from glip_export.onnx_export import io_signature  # noqa: E402

CONTRACT = "odinw-ort-training"
CONTRACT_VERSION = 2
# (height, width) canvases the graphs are checked at: square, portrait, landscape (the model's own
# input_size is checked too).
CHECK_CANVASES = ((256, 256), (288, 160), (224, 416))
PARITY_RTOL = 1e-4  # max |a - b| / max |b|, float32
# TRAIN_CONTRACT.md, track recipes: linear base_lr 1e-4, weight decay 0.05.
RECIPES = {"linear": {"glip_override": "linear_prob", "base_lr": 1e-4, "weight_decay": 0.05}}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_rel_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = np.abs(expected).max()
    return float(np.abs(actual - expected).max() / (scale if scale > 0 else 1.0))


def level_sizes(image_hw) -> dict:
    """p3..p7 grid sizes on an image_hw canvas (the head's height/width may be symbolic)."""
    h, w = image_hw
    sizes = {}
    for i, name in enumerate(["p3", "p4", "p5", "p6"]):
        s = 8 << i
        sizes[name] = (-(-h // s), -(-w // s))
    sizes["p7"] = tuple(-(-d // 2) for d in sizes["p6"])
    return sizes


def random_head_inputs(head: ort.InferenceSession, batch: int, text_len: int, seed: int,
                       image_hw) -> dict:
    rng = np.random.default_rng(seed)
    grid = level_sizes(image_hw)
    out = {}
    for i in head.get_inputs():
        if i.name == "attention_mask":
            mask = np.ones((batch, text_len), np.int64)
            mask[:, text_len * 2 // 3:] = 0
            out[i.name] = mask
        elif i.name == "text_hidden":
            out[i.name] = rng.standard_normal((batch, text_len, i.shape[2])).astype(np.float32)
        else:
            hw = grid[i.name]
            out[i.name] = rng.standard_normal((batch, i.shape[1], *hw)).astype(np.float32)
    return out


def check_against_head(head_path: Path, features_path: Path, module: lt.LinearTrackLoss, batch: int, image_hw,
                       text_len: int) -> float:
    """features.onnx followed by the PyTorch head equals head.onnx; returns the worst error."""
    head = ort.InferenceSession(str(head_path), providers=["CPUExecutionProvider"])
    features = ort.InferenceSession(str(features_path), providers=["CPUExecutionProvider"])
    inputs = random_head_inputs(head, batch, text_len, seed=0, image_hw=image_hw)
    want = dict(zip([o.name for o in head.get_outputs()], head.run(None, inputs)))
    feats = features.run(None, inputs)
    with torch.no_grad():
        deltas, ctr, logits = module.head_outputs(*(torch.from_numpy(f) for f in feats))
    worst = 0.0
    for name, got in (("box_deltas", deltas), ("centerness", ctr), ("token_logits", logits)):
        err = max_rel_error(got.numpy(), want[name])
        if err > PARITY_RTOL:
            raise SystemExit(f"{head_path}: the cut-out tower + PyTorch head differ from head.onnx on {name} "
                             f"(relative error {err:.2e})")
        worst = max(worst, err)
    return worst


def check_loss_graph(path: Path, module: lt.LinearTrackLoss, cfg, canvases, batch: int) -> float:
    """loss_graph.onnx (stock ONNX Runtime) equals the PyTorch module on non-trivial targets at
    each of `canvases`; returns the worst relative error."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    for image_hw in canvases:
        args = lt.example_inputs(cfg, image_hw, batch)
        g = torch.Generator().manual_seed(3)
        feats = [a + 0.1 * torch.randn(a.shape, generator=g) for a in args[:5]]
        reg = 0.3 * torch.randn(args[8].shape, generator=g) * args[7][..., None]
        args = (*feats, *args[5:8], reg, *args[9:])
        with torch.no_grad():
            want = [t.item() for t in module(*args)]
        got = session.run(None, {n: a.numpy() for n, a in zip(names, args)})
        err = max(abs(float(g_) - w) / max(abs(w), 1e-6) for g_, w in zip(got, want))
        if err > PARITY_RTOL:
            raise SystemExit(f"{path}: on a {image_hw[0]}x{image_hw[1]} canvas ONNX Runtime gives losses "
                             f"{[float(x) for x in got]}, PyTorch {want}")
        worst = max(worst, err)
    return worst


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="exported model directory (model.json, head.onnx)")
    ap.add_argument("--track", choices=sorted(RECIPES), required=True,
                    help="only `linear`: deeper tracks cross DeformConv/GroupNorm, which ONNX Runtime cannot "
                         "differentiate")
    ap.add_argument("--batch", type=int, default=2, help="static batch size of the graphs (default 2)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be at least 1")

    desc_path = args.model / "model.json"
    try:
        desc = json.loads(desc_path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{desc_path}: no such file (--model must be an exported model directory)")
    except json.JSONDecodeError as err:
        raise SystemExit(f"{desc_path}: not JSON ({err})")
    head_path = args.model / desc["graphs"]["head"]["file"]
    if desc.get("precision") != "fp32":
        raise SystemExit(f"{desc_path}: precision {desc.get('precision')!r}; training needs an fp32 export")
    if desc["preprocess"].get("canvas") != "dynamic":
        raise SystemExit(f"{desc_path}: a fixed-canvas export (preprocess.canvas is not \"dynamic\"); the "
                         "artifacts train on GLIP's per-batch canvas and need a dynamic-canvas head.onnx "
                         "(re-export the model with scripts/export_model.py)")
    image_hw = tuple(desc["preprocess"]["input_size"])
    text_len = desc["text"]["max_text_len"]
    cfg = get_config(desc["config"]).replace(image_size=image_hw, max_text_len=text_len)

    torch.manual_seed(0)
    try:
        params = lt.read_head_params(head_path)
    except lt.HeadFormatError as err:
        raise SystemExit(str(err))
    module = lt.LinearTrackLoss(cfg)
    module.load_params(params)

    args.out.mkdir(parents=True, exist_ok=True)
    features_path = args.out / "features.onnx"
    lt.extract_features_graph(head_path, features_path)
    canvases = (tuple(image_hw), *CHECK_CANVASES)
    head_err = max(check_against_head(head_path, features_path, module, args.batch, hw, text_len)
                   for hw in canvases)

    recipe = RECIPES[args.track]
    meta = {"odinw.graph": f"{args.track}_loss", "odinw.track": args.track}
    loss_graph = lt.export_loss_graph(module, cfg, args.batch, meta)
    loss_path = args.out / "loss_graph.onnx"
    write_atomic(loss_path, loss_graph.SerializeToString())
    loss_err = check_loss_graph(loss_path, module, cfg, canvases, args.batch)

    shapes = {n: list(p.shape) for n, p in module.named_parameters()}
    features_model = onnx.load(str(features_path))
    description = {
        "contract": CONTRACT,
        "contract_version": CONTRACT_VERSION,
        "track": args.track,
        "glip_override": recipe["glip_override"],
        "batch": args.batch,
        "canvas": "dynamic",
        "canvas_rule": "any canvas whose sides are multiples of size_divisibility (GLIP's per-batch "
                       "to_image_list canvas); f3..f7 are that canvas's level features, the targets' "
                       "anchors dim its anchor count (levels concatenated, y-major), and the loss graph "
                       "computes the anchors from f3..f7's sizes",
        "size_divisibility": desc["preprocess"]["size_divisibility"],
        "image_size": list(image_hw),
        "max_text_len": text_len,
        "features": {"file": features_path.name, **io_signature(features_model)},
        "loss_graph": loss_path.name,
        "data_inputs": list(lt.DATA_INPUTS),
        "targets": list(lt.TARGETS),
        "inputs": io_signature(loss_graph)["inputs"],
        "outputs": list(lt.LOSS_OUTPUTS),
        "trainable": [{"name": n, "shape": shapes[n]} for n in lt.TRAINABLE],
        "frozen": [{"name": n, "shape": shapes[n]} for n in lt.FROZEN],
        "recipe": {"base_lr": recipe["base_lr"], "weight_decay": recipe["weight_decay"]},
        "source": {"model": str(args.model), "head_sha256": sha256(head_path),
                   "parity_with_head": {"features_and_head": head_err, "loss_graph": loss_err},
                   "checked_canvases": [list(c) for c in canvases]},
        "exported_with": {"torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                          "onnxruntime": ort.__version__},
    }
    write_atomic(args.out / "ort_training.json", (json.dumps(description, indent=1) + "\n").encode())
    print(f"wrote {features_path.name}, {loss_path.name}, ort_training.json to {args.out} "
          f"(parity with head.onnx: {head_err:.1e}, loss graph vs PyTorch: {loss_err:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
