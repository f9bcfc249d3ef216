"""Prompts, checkpoint loading, post-processing and the export CLI's bad-input messages."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

import export_glip
from glip_export import checkpoint, postprocess
from glip_export.config import TINY
from glip_export.model import Glip
from glip_export.preprocess import resize_bilinear, resized_size
from glip_export.prompts import build_caption, positive_map
from glip_export.tokenizer import make_tokenizer, special_token_ids


def token_lists(pm):
    return [np.nonzero(row)[0].tolist() for row in pm]


# ---------------------------------------------------------------- prompts (protocol §5.3 test vectors)
def test_glip_prompt_test_vectors():
    tok = make_tokenizer("bert-base-uncased")
    cap, spans = build_caption(["boat", "car", "dock", "jetski", "lift"])
    assert cap == "boat. car. dock. jetski. lift"
    assert token_lists(positive_map(tok, cap, spans, 256)) == [[1], [3], [5], [7, 8], [10]]
    names = ["follow", "follow hand", "land", "land hand", "null", "object", "takeoff", "takeoff-hand"]
    cap, spans = build_caption(names)
    assert token_lists(positive_map(tok, cap, spans, 256))[7] == [17, 18, 19]
    prompts = [{"prefix": " ", "name": "fish", "suffix": ""}, {"prefix": "", "name": "jellyfish", "suffix": ""},
               {"prefix": "", "name": "penguin", "suffix": " , which is black and white"},
               {"prefix": "", "name": "puffin", "suffix": " with orange beaks "},
               {"prefix": "", "name": "shark", "suffix": ""}, {"prefix": "", "name": "starfish", "suffix": ""},
               {"prefix": "", "name": "stingray", "suffix": " which is flat and round"}]
    cap, spans = build_caption([p["name"] for p in prompts], prompts=prompts)
    assert cap.startswith(" fish. jellyfish. penguin , which is black and white. puffin with orange beaks . shark")
    assert token_lists(positive_map(tok, cap, spans, 256)) == [[1], [3, 4], [6], [14, 15], [21], [23, 24], [26, 27]]
    assert len(tok.encode(cap).ids) == 34


def test_special_tokens():
    assert special_token_ids(make_tokenizer("bert-base-uncased")) == {
        "pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103, "period": 1012}
    tiny = make_tokenizer("tiny-wordpiece")
    enc = tiny.encode("a Red striped CIRCLE. zebra")
    assert "[UNK]" not in enc.tokens and enc.tokens[:5] == ["[CLS]", "a", "red", "striped", "circle"]
    assert tiny.get_vocab_size() == TINY.bert.vocab_size


def test_resize_rule():
    assert resized_size(1333, 800, 800, 1333) == (800, 1333)
    assert resized_size(640, 480, 800, 1333) == (800, 1066)
    assert resized_size(480, 640, 800, 1333) == (1066, 800)
    assert resized_size(2000, 500, 800, 1333) == (333, 1332)
    assert resized_size(320, 240, 192, 192) == (144, 192)


def pattern_image(w: int, h: int) -> Image.Image:
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return Image.fromarray(((x * x * 7 + y * 13 + c * 101 + x * y * 3) % 256).astype(np.uint8))


# sha256 of Pillow 13.0.0's `pattern_image(w, h).resize(size, BILINEAR)` bytes (13.0.0 is the
# version of the host's pixel oracle, tests/oracles/preprocess.py): vertical pass first (the
# height shrinks by more than twice the width's shrink), horizontal first, and vertical first
# while the width grows. Pillow 12.3.0 (this environment's pin) gives other bytes for the first
# and third.
PILLOW13_RESIZES = [
    ((190, 410), (148, 319), "bcb4ea20ae0f6bd7f56605ce89199face289fb61c699360e4bb06574585a6383"),
    ((410, 190), (319, 148), "8ed318936fd4e995d83cb2a3be575e7f61998dd015e96917af73411f5ca9b053"),
    ((40, 50), (70, 30), "3732284339c2f7ae279e7ea257656b0604191ce47fede77bd133658fdb8d16ad"),
]


@pytest.mark.parametrize("size,out,digest", PILLOW13_RESIZES)
def test_resize_bilinear_is_pillow_13s_on_any_pillow(size, out, digest):
    assert hashlib.sha256(resize_bilinear(pattern_image(*size), *out).tobytes()).hexdigest() == digest


# ---------------------------------------------------------------- checkpoint loading
def official_like_file(path, model, cls_classes=80, drop=None, extra=None):
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    state["module.rpn.head.cls_logits.weight"] = torch.randn(cls_classes, model.cfg.head.channels, 1, 1)
    state["module.rpn.head.cls_logits.bias"] = torch.randn(cls_classes)
    if drop:
        del state[f"module.{drop}"]
    state.update(extra or {})
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "iteration": 7}, path)


def test_official_layout_loads_every_parameter(tmp_path):
    torch.manual_seed(1)
    source = Glip(TINY)
    official_like_file(tmp_path / "ckpt.pth", source)
    target = Glip(TINY)
    report = checkpoint.load_into(target, checkpoint.read_state_dict(tmp_path / "ckpt.pth"), "ckpt.pth")
    n_params = len(list(target.parameters()))
    assert report.loaded == n_params - 2 and len(report.kept_unused) == 2
    assert report.buffers_checked == len(list(target.buffers())) and not report.buffer_mismatches
    assert not report.ignored
    for (name, a), b in zip(target.state_dict().items(), source.state_dict().values()):
        if "cls_logits" not in name:
            assert torch.equal(a, b), name


class Opaque:
    """Stands for the optimizer/scheduler objects some checkpoints pickle."""


def test_checkpoint_problems_are_named(tmp_path):
    model = Glip(TINY)
    official_like_file(tmp_path / "missing.pth", model, drop="rpn.head.bias0")
    with pytest.raises(checkpoint.CheckpointError, match=r"missing.pth.*1 missing.*rpn\.head\.bias0"):
        checkpoint.load_into(Glip(TINY), checkpoint.read_state_dict(tmp_path / "missing.pth"), "missing.pth")
    with pytest.raises(checkpoint.CheckpointError, match="no such file"):
        checkpoint.read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="junk.pth: not a PyTorch checkpoint"):
        checkpoint.read_state_dict(tmp_path / "junk.pth")
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Opaque()}, tmp_path / "pickled.pth")
    with pytest.raises(checkpoint.CheckpointError, match="pickled.pth.*Unsupported global.*--allow-pickle"):
        checkpoint.read_state_dict(tmp_path / "pickled.pth")
    assert list(checkpoint.read_state_dict(tmp_path / "pickled.pth", allow_pickle=True)) == ["w"]
    weight = torch.randn(1000, TINY.bert.hidden)
    official_like_file(tmp_path / "prompt.pth", model, extra={"module.rpn.tunable_linear.weight": weight})
    report = checkpoint.load_into(Glip(TINY), checkpoint.read_state_dict(tmp_path / "prompt.pth"), "prompt.pth")
    assert torch.equal(report.tunable_linear, weight)


def test_cli_reports_bad_input(tmp_path, capsys):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert export_glip.main(["--config", "tiny", "--weights", str(tmp_path / "junk.pth"), "--out", str(tmp_path / "o")]) == 1
    assert "junk.pth" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_glip.main(["--config", "tiny", "--random-init", "--out", str(tmp_path), "--image-size", "100x100"])
    assert "multiples of 32" in capsys.readouterr().err


# ---------------------------------------------------------------- post-processing
class Cfg:
    pre_nms_thresh = 0.05
    pre_nms_top_n = 1000
    nms_thresh = 0.6
    detections_per_img = 100


def test_class_score_is_the_mean_token_probability():
    logits = np.array([[0.0, 2.0, -2.0]])
    pm = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    s = postprocess.class_scores(logits, pm)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(s[0], [(sig(2) + sig(-2)) / 2, 0.5, 0.0])


def test_nms_uses_plus_one_iou_and_strict_threshold():
    # IoU with "+1" areas: boxes 0..9 and 4..13 overlap 6x10 of 10x10 each: 60/140
    boxes = np.array([[0, 0, 9, 9], [4, 0, 13, 9], [0, 0, 9, 9.0]])
    keep = postprocess.nms_plus_one(boxes, np.array([0.9, 0.8, 0.7]), 0.6)
    assert keep.tolist() == [0, 1]
    keep = postprocess.nms_plus_one(boxes, np.array([0.9, 0.8, 0.7]), 60 / 140)
    assert keep.tolist() == [0, 1]  # IoU must be strictly greater to suppress


def test_detect_end_to_end_small_case():
    # two levels: 2 + 1 anchors; one token per class
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 80, 80.0]])
    ctr = np.array([10.0, 10.0, 10.0])
    logits = np.array([[5.0, -9], [4.0, -9], [-9, 3.0]])
    pm = np.array([[1, 0], [0, 1]], dtype=np.float32)
    b, s, lab = postprocess.detect(boxes, ctr, logits, pm, [2, 1], (60, 70), Cfg)
    assert lab.tolist() == [0, 1]
    np.testing.assert_allclose(b[1], [50, 50, 69, 59])  # clipped to the resized image
    np.testing.assert_allclose(s[0], np.sqrt(1 / (1 + np.exp(-5)) / (1 + np.exp(-10))))
