"""The training-step graphs (TRAIN_CONTRACT.md) of the demo model, run in onnxruntime.

The oracle is PyTorch autograd through the *original* modules (torchvision's deform_conv2d,
F.interpolate) and `atss_loss.glip_loss`, which does its own ATSS assignment and selects
positives by boolean indexing; the graphs get the assignment as target tensors and mask with
`where`. The batch is two training images of the demo suite with their ground truth and the
task's caption, so there are real positives, on GLIP's training canvas (each image resized by
GLIP's rule, the batch padded to its largest size rounded up to 32). The graphs of every track
(contract v2) are traced at the model's 192x192 (the full track at 256x256,
`train_step.FULL_TRACE_MIN`) and run at other canvases: GLIP's at several training scales,
portrait and landscape, down to 128x96 where P7 has one row. Every track is exported once per session (batch 2) into a temporary directory; the
committed `models/demo/train/` must equal those exports.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer

import export_train_step
from conftest import REPO, max_rel_error, perturb_
from glip_export import anchors as anchor_lib
from glip_export import model_dir
from glip_export.atss_loss import atss_assign, centerness_targets, glip_loss
from glip_export.config import TINY
from glip_export.model import Glip, concat_levels
from glip_export.onnx_export import GRAPH_FILES, HEAD_OUTPUTS, LEVELS, export_graphs
from glip_export.preprocess import prepare
from glip_export.prompts import build_caption, positive_map
from glip_export.target_loss import LOSS_NAMES, TARGET_NAMES
from glip_export.train_step import FEATURE_NAMES, LINEAR_PROB_PARAMS, TRACKS

MODEL = REPO / "models" / "demo"
DEMO = REPO / "demo"
BATCH = 2
GRAD_RTOL = 1e-3  # loss and every gradient: max |ort - torch| / max |torch|
PRED_RTOL = 1e-4
# (min_size, max_size, landscape) of GLIP's resize rule -> the batch canvases (h, w) of the two
# portrait demo images, or of the same images turned by 90 degrees: 192x160 (the model's own
# sizes), 160x128, 288x224, 128x96, 416x320 and 160x192.
SCALES = [(192, 192, False), (128, 160, False), (224, 320, False), (96, 128, False), (320, 416, False),
          (192, 192, True)]
CASES = [(t, s) for t in TRACKS for s in SCALES]  # (track, scale)


def case_id(case) -> str:
    track, scale = case
    return f"{track}-{scale[0]}-{scale[1]}{'-landscape' if scale[2] else ''}"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def demo():
    md = model_dir.read(MODEL)
    glip, report = model_dir.load(md, log=lambda *_: None)
    return md, glip


@pytest.fixture(scope="session")
def exports(demo, tmp_path_factory):
    """track -> (directory, manifest), exported on first use."""
    md, glip = demo
    out = tmp_path_factory.mktemp("train")
    cache = {}

    def get(track):
        if track not in cache:
            desc = export_train_step.export_tracks(md, glip, [track], out, BATCH, log=lambda *_: None)[track]
            cache[track] = (out, desc)
        return cache[track]

    return get


_SESSIONS = {}


def session(path):
    if str(path) not in _SESSIONS:
        _SESSIONS[str(path)] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _SESSIONS[str(path)]


def run(path, feed: dict) -> dict:
    s = session(path)
    names = [o.name for o in s.get_outputs()]
    inputs = {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else v) for k, v in feed.items()}
    return dict(zip(names, s.run(None, inputs)))


@pytest.fixture(scope="session")
def batch(demo):
    return batch_at(demo, SCALES[0])


_BATCHES = {}


def batch_at(demo, scale) -> dict:
    """The batch at one of SCALES (built once per session)."""
    if scale not in _BATCHES:
        md, glip = demo
        _BATCHES[scale] = make_batch(md, glip, *scale)
    return _BATCHES[scale]


def canvas_of(batch) -> str:
    return "x".join(map(str, batch["images"].shape[-2:]))


def make_batch(md, glip, min_size=None, max_size=None, landscape=False) -> dict:
    """Two demo training images with boxes, the task caption, and everything derived from them, on
    GLIP's training canvas: each image resized by GLIP's rule at (min_size, max_size) (default:
    the model's), zero-padded to the batch's largest size rounded up to 32."""
    task = json.loads((DEMO / "tasks" / "ColorShapes.json").read_text())
    split = task["splits"]["train"]
    coco = json.loads((DEMO / split["ann_file"]).read_text())
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    caption, spans = build_caption([c["name"] for c in cats], ". ")
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    t = md.max_text_len
    pos_map = torch.from_numpy(positive_map(tok, caption, spans, t))
    enc = tok.encode(caption).ids[:t]
    ids = torch.zeros(BATCH, t, dtype=torch.long)
    ids[:, : len(enc)] = torch.tensor(enc)
    mask = (ids != 0).long()
    cfg = dataclasses.replace(md.cfg, min_size=min_size or md.cfg.min_size, max_size=max_size or md.cfg.max_size)
    images, gts = [], []
    for info in sorted(coco["images"], key=lambda i: i["id"])[:BATCH]:
        image = Image.open(DEMO / split["img_dir"] / info["file_name"]).convert("RGB")
        boxes = [[x, y, x + w - 1, y + h - 1] for x, y, w, h in
                 (a["bbox"] for a in coco["annotations"] if a["image_id"] == info["id"])]
        if landscape:  # turned 90 degrees clockwise: (x, y) -> (H - 1 - y, x)
            height = image.height
            image = image.transpose(Image.Transpose.ROTATE_270)
            boxes = [[height - 1 - y2, x1, height - 1 - y1, x2] for x1, y1, x2, y2 in boxes]
        data, _, (sx, sy) = prepare(image, cfg)
        images.append(torch.from_numpy(data))
        gts.append((torch.tensor([[x1 * sx, y1 * sy, x2 * sx, y2 * sy] for x1, y1, x2, y2 in boxes],
                                 dtype=torch.float32),
                    torch.stack([pos_map[[c["id"] for c in cats].index(a["category_id"])]
                                 for a in coco["annotations"] if a["image_id"] == info["id"]])))
    canvas_hw = tuple(max(i.shape[d] for i in images) for d in (1, 2))
    images = torch.stack([torch.nn.functional.pad(i, (0, canvas_hw[1] - i.shape[2], 0, canvas_hw[0] - i.shape[1]))
                          for i in images])
    sizes = anchor_lib.feature_sizes(canvas_hw, md.cfg.anchor_strides)
    anchors = anchor_lib.grid_anchors(sizes, md.cfg.anchor_strides, md.cfg.anchor_sizes)
    counts = [h * w for h, w in sizes]
    with torch.no_grad():
        feats = glip.backbone(images)
        text = glip.language_backbone(ids, mask)
        tower, fused = glip.rpn.head.run_tower(list(feats), text, mask)
    return {"images": images, "input_ids": ids, "attention_mask": mask, "gts": gts, "anchors": anchors,
            "counts": counts, "feats": feats, "text": text, "tower": tower, "fused": fused,
            "targets": targets_of(anchors, counts, gts, t)}


def targets_of(anchors, counts, gts, t) -> dict:
    """The step graph's target tensors: ATSS (atss_loss.atss_assign) per image, as Rust will send them."""
    b, q = len(gts), anchors.shape[0]
    out = {"positive": torch.zeros(b, q), "reg_targets": torch.zeros(b, q, 4),
           "centerness_targets": torch.zeros(b, q), "token_targets": torch.zeros(b, q, t)}
    for i, (boxes, rows) in enumerate(gts):
        a = atss_assign(anchors, counts, boxes)
        pos = a.gt_index >= 0
        out["positive"][i, pos] = 1.0
        out["reg_targets"][i, pos] = a.reg_targets[pos]
        out["centerness_targets"][i, pos] = centerness_targets(a.reg_targets[pos], anchors[pos])
        out["token_targets"][i, pos] = rows[a.gt_index[pos]]
    return out


def data_feed(track: str, batch: dict) -> dict:
    mask = batch["attention_mask"]
    if track == "full":
        return {"images": batch["images"], "input_ids": batch["input_ids"], "attention_mask": mask}
    if track == "prompt":
        return {**dict(zip(LEVELS, batch["feats"])), "text_hidden": batch["text"], "attention_mask": mask}
    return {**dict(zip(FEATURE_NAMES, [*batch["tower"], batch["fused"]])), "attention_mask": mask}


def reference(track: str, glip: Glip, params: dict[str, torch.Tensor], batch: dict, gts=None):
    """Loss terms and d(loss)/d(params) by autograd through the original modules and glip_loss."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    mask = batch["attention_mask"]
    head = glip.rpn.head
    if track == "prompt":
        text = batch["text"] + leaves["rpn.tunable_linear.weight"][None]
        outs = head(list(batch["feats"]), text, mask)
    elif track == "linear":
        outs = _linear_outputs(head, leaves, batch)
    else:
        outs = torch.func.functional_call(glip, leaves, (batch["images"], batch["input_ids"], mask))
    deltas, ctr, logits = concat_levels(*outs)
    terms = glip_loss(deltas, ctr, logits, mask, batch["anchors"], batch["counts"], gts or batch["gts"])
    total = terms["token"] + terms["reg"] + terms["centerness"]
    names = list(leaves)
    grads = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
    grads = [torch.zeros_like(leaves[n]) if g is None else g for n, g in zip(names, grads)]
    losses = {"loss": total, "loss_token": terms["token"], "loss_reg": terms["reg"],
              "loss_centerness": terms["centerness"]}
    return {k: v.detach() for k, v in losses.items()}, dict(zip(names, grads))


def _linear_outputs(head, leaves, batch):
    """head.predict (the output layers) on the tower outputs, with `leaves` for its parameters."""
    class Predict(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, feats, text):
            return self.head.predict(feats, text)

    params = {k[len("rpn."):]: v for k, v in leaves.items()}
    return torch.func.functional_call(Predict(), params, (list(batch["tower"]), batch["fused"]))


def initial_params(out, desc) -> dict[str, torch.Tensor]:
    raw = np.fromfile(out / desc["params_file"], dtype="<f4")
    params, offset = {}, 0
    for p in desc["params"]:
        n = int(np.prod(p["shape"])) if p["shape"] else 1
        params[p["name"]] = torch.from_numpy(raw[offset:offset + n].reshape(p["shape"]).copy())
        offset += n
    assert offset == raw.size, "params file longer than the manifest"
    return params


def step_params(track: str, out, desc) -> dict[str, torch.Tensor]:
    params = initial_params(out, desc)
    if track == "prompt":  # a non-zero offset, so the gradient check is not at the trivial point
        g = torch.Generator().manual_seed(5)
        params = {k: 0.3 * torch.randn(v.shape, generator=g) for k, v in params.items()}
    return params


def report(capsys, line):
    with capsys.disabled():
        print(f"\nTRAIN {line}", end="")


# -------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_step_graph_matches_autograd(case, demo, exports, capsys):
    md, glip = demo
    track, scale = case
    batch = batch_at(demo, scale)
    out, desc = exports(track)
    params = step_params(track, out, desc)
    assert batch["targets"]["positive"].sum() > 10
    feed = {**params, **data_feed(track, batch), **batch["targets"]}
    got = run(out / desc["step"]["file"], feed)
    again = run(out / desc["step"]["file"], feed)
    assert all(np.array_equal(got[k], again[k]) for k in got), "two runs of the step graph differ"
    losses, grads = reference(track, glip, params, batch)
    worst_loss = max(max_rel_error(got[k], v) for k, v in losses.items())
    # An attention key bias adds the same q.b to every score of a query, which softmax ignores:
    # its true gradient is 0 and both sides hold rounding noise, so only its size is checked.
    shift_invariant = [n for n in grads if n.endswith("attention.self.key.bias")]
    scale = max(float(g.abs().max()) for g in grads.values())
    for n in shift_invariant:
        assert float(np.abs(got[f"grad:{n}"]).max()) <= 1e-6 * scale, n
        assert float(grads[n].abs().max()) <= 1e-6 * scale, n
    errors = {n: max_rel_error(got[f"grad:{n}"], g) for n, g in grads.items() if n not in shift_invariant}
    worst = max(errors, key=errors.get)
    report(capsys, f"{track:<6} {canvas_of(batch):>7} loss {losses['loss'].item():.4f} max_rel loss {worst_loss:.1e}, "
                   f"{len(errors)} grads max_rel {errors[worst]:.1e} ({worst})"
                   + (f", {len(shift_invariant)} key biases ~0" if shift_invariant else ""))
    assert worst_loss <= GRAD_RTOL
    assert errors[worst] <= GRAD_RTOL
    assert all(got[f"grad:{n}"].shape == tuple(params[n].shape) for n in params)
    nonzero = sum(float(g.abs().max()) > 0 for g in grads.values())
    assert nonzero >= 0.9 * len(grads), "most trainable parameters should get a gradient"


def test_batch_without_positives(demo, exports, batch):
    """No ground truth: reg and centerness losses are 0, the token loss is normalised by 1."""
    md, glip = demo
    out, desc = exports("linear")
    params = initial_params(out, desc)
    t = md.max_text_len
    empty = [(torch.zeros(0, 4), torch.zeros(0, t)) for _ in range(BATCH)]
    targets = targets_of(batch["anchors"], batch["counts"], empty, t)
    assert targets["positive"].sum() == 0
    got = run(out / desc["step"]["file"], {**params, **data_feed("linear", batch), **targets})
    losses, grads = reference("linear", glip, params, batch, gts=empty)
    assert got["loss_reg"] == 0 and got["loss_centerness"] == 0
    for k, v in losses.items():
        assert max_rel_error(got[k], v) <= GRAD_RTOL, k
    for n, g in grads.items():
        assert max_rel_error(got[f"grad:{n}"], g) <= GRAD_RTOL, n


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_predict_graph_equals_head_graph(case, demo, exports, capsys):
    """At the initial params the predict graph gives head.onnx's outputs (on the linear track
    through the features graph, on the full track against the three inference graphs)."""
    md, glip = demo
    track, scale = case
    batch = batch_at(demo, scale)
    out, desc = exports(track)
    params = initial_params(out, desc)
    mask = batch["attention_mask"]
    feats = run(md.graph_path("image_backbone"), {"images": batch["images"]})
    text = run(md.graph_path("text_encoder"), {"input_ids": batch["input_ids"], "attention_mask": mask})
    head_feed = {**feats, **text, "attention_mask": mask}
    expected = run(md.graph_path("head"), head_feed)
    if track == "prompt":
        data = head_feed
    elif track == "linear":
        assert desc["features"]["inputs"] == [*LEVELS, "text_hidden", "attention_mask"]
        data = {**run(out / desc["features"]["file"], head_feed), "attention_mask": mask}
        assert list(data) == desc["data_inputs"]
    else:
        data = data_feed("full", batch)
    got = run(out / desc["predict"]["file"], {**params, **data})
    errors = {k: max_rel_error(got[k], expected[k]) for k in HEAD_OUTPUTS}
    report(capsys, f"{track:<6} {canvas_of(batch):>7} predict vs head.onnx max_rel {max(errors.values()):.1e}")
    assert max(errors.values()) <= PRED_RTOL, errors


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: case_id(("linear", s)))
def test_features_graph_equals_the_tower(scale, demo, exports):
    batch = batch_at(demo, scale)
    out, desc = exports("linear")
    got = run(out / desc["features"]["file"], {**dict(zip(LEVELS, batch["feats"])), "text_hidden": batch["text"],
                                               "attention_mask": batch["attention_mask"]})
    for name, ref in zip(FEATURE_NAMES, [*batch["tower"], batch["fused"]]):
        assert max_rel_error(got[name], ref) <= PRED_RTOL, name


def test_prompt_predict_uses_the_offset(demo, exports, batch):
    md, glip = demo
    out, desc = exports("prompt")
    params = step_params("prompt", out, desc)
    got = run(out / desc["predict"]["file"], {**params, **data_feed("prompt", batch)})
    with torch.no_grad():
        text = batch["text"] + params["rpn.tunable_linear.weight"][None]
        deltas, ctr, logits = concat_levels(*glip.rpn.head(list(batch["feats"]), text, batch["attention_mask"]))
    boxes = anchor_lib.decode(deltas, batch["anchors"])
    for name, ref in zip(HEAD_OUTPUTS, (deltas, boxes, ctr, logits)):
        assert max_rel_error(got[name], ref) <= PRED_RTOL, name


@pytest.mark.parametrize("track", list(TRACKS))
def test_manifest_and_graph_signatures(track, demo, exports):
    md, glip = demo
    out, desc = exports(track)
    assert desc == json.loads((out / f"{track}.json").read_text())
    assert desc["contract"] == "odinw-train-step" and desc["contract_version"] == 2
    assert desc["canvas"] == "dynamic"
    assert desc["track"] == track and desc["batch"] == BATCH
    assert desc["glip_override"] == {"prompt": "language_prompt_v2", "linear": "linear_prob", "full": "full"}[track]
    assert desc["image_size"] == list(md.image_hw) and desc["max_text_len"] == md.max_text_len
    assert desc["num_anchors"] == md.desc["anchors"]["total"]
    names = [p["name"] for p in desc["params"]]
    state = dict(glip.named_parameters())
    if track == "prompt":
        assert names == ["rpn.tunable_linear.weight"]
        assert desc["params"][0]["shape"] == [md.max_text_len, md.cfg.bert.hidden]
        assert not initial_params(out, desc)["rpn.tunable_linear.weight"].any()
    else:
        if track == "linear":
            assert names == list(LINEAR_PROB_PARAMS)
        else:
            expected = [n for n in state if not n.startswith(("backbone.body.patch_embed.", "backbone.body.layers.0.",
                                                              "rpn.head.cls_logits."))]
            assert names == expected
        for name, value in initial_params(out, desc).items():
            assert torch.equal(value, state[name].detach()), name
    base, wd = TRACKS[track].base_lr, TRACKS[track].weight_decay
    assert desc["optimizer"] == {"kind": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "clip_grad_norm": 1.0,
                                 "base_lr": base, "weight_decay": wd}
    for p in desc["params"]:
        lr = 1e-5 if (track == "full" and "language_backbone" in p["name"]) else base
        if "bias" in p["name"]:
            assert (p["lr"], p["weight_decay"]) == (2 * lr, 0.0), p
        else:
            assert (p["lr"], p["weight_decay"]) == (lr, wd), p
    for key in ("step", "predict") + (("features",) if track == "linear" else ()):
        proto = onnx.load(str(out / desc[key]["file"]))
        assert proto.ir_version <= 10
        assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node), "custom ops"
        inputs = [i.name for i in proto.graph.input]
        outputs = [o.name for o in proto.graph.output]
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
        maps = (*LEVELS, *FEATURE_NAMES[:5], "images")
        canvas_dims = {n: [dims[n][a] for a in ((2, 3) if n in maps else (1,))]
                       for n in dims if n in maps or n in TARGET_NAMES}
        # the canvas's dims are symbolic, the batch and T are not
        assert canvas_dims and all(isinstance(d, str) for v in canvas_dims.values() for d in v), canvas_dims
        assert all(dims[n][0] == BATCH for n in dims if n in desc["data_inputs"]), dims
        if key == "step":
            assert inputs == [*names, *desc["data_inputs"], *TARGET_NAMES]
            assert outputs == desc["step"]["outputs"] == [*LOSS_NAMES, *(f"grad:{n}" for n in names)]
            assert not {n.op_type for n in proto.graph.node} & {"DeformConv", "Resize", "GridSample"}
            # ONNX Runtime's CPU ScatterND races on repeated rows with reduction=add (onnx_tidy)
            assert not [n for n in proto.graph.node if n.op_type == "ScatterND"
                        and any(a.name == "reduction" and a.s == b"add" for a in n.attribute)]
        elif key == "predict":
            assert inputs == [*names, *desc["data_inputs"]] and outputs == list(HEAD_OUTPUTS)
        else:
            assert inputs == desc["features"]["inputs"] and outputs == desc["features"]["outputs"]
    if track == "linear":
        assert desc["data_inputs"] == [*FEATURE_NAMES, "attention_mask"]
    else:
        assert desc["features"] is None


@pytest.mark.parametrize("track", ["prompt", "linear"])
def test_adamw_on_onnx_gradients_lowers_the_loss(track, exports, batch, capsys):
    out, desc = exports(track)
    params = {k: v.clone().requires_grad_(True) for k, v in initial_params(out, desc).items()}
    groups = [{"params": [params[p["name"]]], "lr": p["lr"], "weight_decay": p["weight_decay"]}
              for p in desc["params"]]
    opt = torch.optim.AdamW(groups, betas=tuple(desc["optimizer"]["betas"]), eps=desc["optimizer"]["eps"])
    feed = {**data_feed(track, batch), **batch["targets"]}
    losses = []
    for _ in range(8):
        got = run(out / desc["step"]["file"], {**{k: v.detach() for k, v in params.items()}, **feed})
        losses.append(float(got["loss"]))
        for name, p in params.items():
            p.grad = torch.from_numpy(got[f"grad:{name}"])
        torch.nn.utils.clip_grad_norm_(list(params.values()), desc["optimizer"]["clip_grad_norm"])
        opt.step()
    report(capsys, f"{track:<6} AdamW losses {' '.join(f'{v:.4f}' for v in losses)}")
    assert losses[-1] < losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


@pytest.mark.parametrize("track", list(TRACKS))
def test_committed_demo_train_files_are_current(track, demo, exports, batch):
    """models/demo/train/ is what the exporter writes now: same manifest and initial params, and
    its graphs compute the same values as a fresh export."""
    out, desc = exports(track)
    committed = MODEL / "train"
    assert json.loads((committed / f"{track}.json").read_text()) == desc
    assert (committed / desc["params_file"]).read_bytes() == (out / desc["params_file"]).read_bytes()
    params = step_params(track, out, desc)
    feed = {**params, **data_feed(track, batch)}
    for key in ("step", "predict"):
        extra = batch["targets"] if key == "step" else {}
        fresh = run(out / desc[key]["file"], {**feed, **extra})
        saved = run(committed / desc[key]["file"], {**feed, **extra})
        assert list(fresh) == list(saved)
        for name in fresh:
            # Two exports of the same code may order float32 reductions differently.
            assert max_rel_error(saved[name], fresh[name]) <= 1e-4, (key, name)


def test_weights_come_back_from_the_graphs(tmp_path):
    """A model directory exported from known weights rebuilds to exactly those weights."""
    torch.manual_seed(3)
    model = perturb_(Glip(TINY).eval(), seed=3)
    with torch.no_grad():  # equal scales get merged into one initializer by the exporter
        model.rpn.head.scales[3].scale.copy_(model.rpn.head.scales[2].scale)
    with contextlib.redirect_stdout(io.StringIO()):
        protos = export_graphs(model, tmp_path, TINY.image_size, TINY.max_text_len)
    desc = {"contract": "odinw-grounding-model", "family": "glip", "config": "tiny", "precision": "fp32",
            "preprocess": {"input_size": list(TINY.image_size)}, "text": {"max_text_len": TINY.max_text_len},
            "graphs": {k: {"file": GRAPH_FILES[k]} for k in protos}}
    (tmp_path / "model.json").write_text(json.dumps(desc))
    glip, rep = model_dir.load(model_dir.read(tmp_path), log=lambda *_: None)
    rebuilt = dict(glip.named_parameters())
    for name, value in model.named_parameters():
        if name.startswith("rpn.head.cls_logits."):
            continue  # unused by every graph
        if name.endswith("token_type_embeddings.weight"):
            value, got = value[0], rebuilt[name][0]  # only type 0 is read
        else:
            got = rebuilt[name]
        if name == "rpn.head.log_scale":  # the graph holds float32(exp(log_scale)); log() brings it back
            assert torch.allclose(got, value, rtol=0, atol=1e-6), (got, value)
        else:
            assert torch.equal(got, value), name


def test_cli_reports_a_bad_model_directory(tmp_path, capsys):
    assert export_train_step.main(["--model", str(tmp_path), "--track", "linear"]) == 1
    assert "model.json: no such file" in capsys.readouterr().err
    (tmp_path / "model.json").write_text('{"contract": "something-else"}')
    assert export_train_step.main(["--model", str(tmp_path), "--track", "linear"]) == 1
    assert "contract 'something-else'" in capsys.readouterr().err
