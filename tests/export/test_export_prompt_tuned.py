"""export_glip.py end to end on a GLIP-layout checkpoint of the tiny config whose `model_ema`
entry is prompt-tuned (README, "Exporting GLIP"): --state-key model_ema exports the EMA weights,
the file's `rpn.tunable_linear.weight` changes head.onnx exactly as adding its first T rows to
text_hidden does, and a buffer that differs from the rebuilt one is reported, not used.
One export of the tiny config (~80 s on the 2-core development machine)."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

import export_glip
from conftest import RTOL, max_rel_error, perturb_
from glip_export.anchors import feature_sizes
from glip_export.config import TINY
from glip_export.model import Glip, HeadGraph, TextEncoderGraph
from glip_export.onnx_export import LEVELS

KEY = "rpn.tunable_linear.weight"
BUFFER = "language_backbone.body.model.embeddings.position_ids"
T = 12  # shorter than max_text_len: the graph must take W's first T rows


def seeded(seed: int) -> Glip:
    torch.manual_seed(seed)
    return perturb_(Glip(TINY).eval(), seed=seed)


def glip_state(model: Glip) -> dict[str, torch.Tensor]:
    return {f"module.{k}": v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompt_tuned")
    main, ema = seeded(1), seeded(2)
    weight = torch.randn(TINY.max_text_len, TINY.bert.hidden, generator=torch.Generator().manual_seed(3))
    ema_state = glip_state(ema)
    ema_state[f"module.{KEY}"] = weight
    ema_state[f"module.{BUFFER}"] = ema.state_dict()[BUFFER].flip(-1)
    ckpt = root / "ckpt.pth"
    torch.save({"model": glip_state(main), "model_ema": ema_state}, ckpt)
    out = root / "model"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert export_glip.main(["--config", "tiny", "--weights", str(ckpt), "--state-key", "model_ema",
                                 "--out", str(out)]) == 0
    sessions = {name: ort.InferenceSession(str(out / g["file"]), providers=["CPUExecutionProvider"])
                for name, g in json.loads((out / "model.json").read_text())["graphs"].items()}
    return {"main": main, "ema": ema, "weight": weight, "sessions": sessions, "stdout": stdout.getvalue(),
            "ckpt": ckpt}


def text_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(2, T, dtype=torch.long)
    mask[1, T // 2:] = 0
    ids = torch.randint(1, TINY.bert.vocab_size, (2, T), generator=g) * mask
    return ids, mask


def test_load_report_names_the_layer_and_the_differing_buffer(export):
    lines = export["stdout"].splitlines()
    ckpt = export["ckpt"]
    assert f"{ckpt}: prompt-tuning layer {KEY} ({TINY.max_text_len}, {TINY.bert.hidden}) found" in lines
    assert f"{ckpt}: WARNING buffers differing from the rebuilt values: {BUFFER}" in lines


def test_text_encoder_has_the_ema_weights_and_the_rebuilt_buffer(export):
    ids, mask = text_inputs()
    got = export["sessions"]["text_encoder"].run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        ema = TextEncoderGraph(export["ema"])(ids, mask)
        main = TextEncoderGraph(export["main"])(ids, mask)
    assert max_rel_error(got, ema) <= RTOL
    assert max_rel_error(got, main) > 0.1


def test_head_adds_the_tunable_rows_to_the_text(export):
    g = torch.Generator().manual_seed(4)
    feats = [torch.randn(2, TINY.fpn_channels, h, w, generator=g)
             for h, w in feature_sizes(TINY.image_size, TINY.anchor_strides)]
    text = torch.randn(2, T, TINY.bert.hidden, generator=g)
    _, mask = text_inputs()
    feed = {lv: f.numpy() for lv, f in zip(LEVELS, feats)}
    feed.update(text_hidden=text.numpy(), attention_mask=mask.numpy())
    got = export["sessions"]["head"].run(None, feed)
    head = HeadGraph(export["ema"], TINY.image_size)  # the EMA model without the layer
    assert head.rpn.tunable_linear is None
    with torch.no_grad():
        by_hand = head(*feats, text + export["weight"][:T].unsqueeze(0), mask)
        without = head(*feats, text, mask)
    for name, a, b, c in zip(("box_deltas", "boxes", "centerness", "token_logits"), got, by_hand, without):
        assert max_rel_error(a, b) <= RTOL, name
    # The layer changes what the head computes from the text.
    assert max_rel_error(got[3], without[3]) > 0.05
    assert max_rel_error(got[0], without[0]) > 1e-3
    assert np.isfinite(got[3]).all()
