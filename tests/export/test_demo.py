"""The committed demo: the suite regenerates bit for bit, and the committed tiny model really detects."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer

import eval_glip_onnx
import make_demo_suite
from conftest import REPO, max_rel_error
from glip_export.config import TINY
from glip_export.model import Glip, HeadGraph, ImageBackboneGraph, TextEncoderGraph
from glip_export.onnx_export import GRAPH_FILES, LEVELS, export_graphs, io_signature

DEMO = REPO / "demo"
MODEL = REPO / "models" / "demo"
# AP@[.5:.95] of models/demo on each committed test split, as reported in models/demo/README.md.
# NovelShapes is the floor of a detector that finds the shapes but cannot tell nonce names apart.
# Each image on its own canvas (GLIP's; before contract v2, padded to 192x192: .589, .648, .645, .285).
EXPECTED_AP = {"ColorShapes": 0.592, "TexturedShapes": 0.634, "ShapeDescriptions": 0.649, "NovelShapes": 0.288}
# The task whose class names are nonce words the demo model never saw (single words, by design).
NOVEL = "NovelShapes"


def test_demo_suite_regenerates_identically(tmp_path):
    make_demo_suite.main(["--out", str(tmp_path)])
    committed = sorted(p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file() and p.name != "README.md")
    regenerated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == regenerated
    for rel in committed:
        if rel.suffix == ".png":
            a = np.asarray(Image.open(DEMO / rel))
            b = np.asarray(Image.open(tmp_path / rel))
            assert a.shape == b.shape and (a == b).all(), rel
        else:
            assert json.loads((DEMO / rel).read_text()) == json.loads((tmp_path / rel).read_text()), rel


def test_demo_annotations_are_valid_coco():
    for task_file in sorted((DEMO / "tasks").glob("*.json")):
        task = json.loads(task_file.read_text())
        assert len(task["categories"]) >= 5
        assert task["name"] == NOVEL or all(" " in c["name"] for c in task["categories"]), task["name"]
        for split in task["splits"].values():
            coco = json.loads((DEMO / split["ann_file"]).read_text())
            sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
            for im in coco["images"]:
                with Image.open(DEMO / split["img_dir"] / im["file_name"]) as img:
                    assert img.size == (im["width"], im["height"])
            for ann in coco["annotations"]:
                x, y, w, h = ann["bbox"]
                width, height = sizes[ann["image_id"]]
                assert ann["id"] >= 1 and w > 0 and h > 0 and x >= 0 and y >= 0
                assert x + w <= width and y + h <= height


def test_committed_model_matches_its_description():
    desc = json.loads((MODEL / "model.json").read_text())
    assert desc["config"] == "tiny" and desc["family"] == "glip"
    for name, graph in desc["graphs"].items():
        proto = onnx.load(str(MODEL / graph["file"]))
        assert proto.ir_version <= 13
        assert {k: graph[k] for k in ("inputs", "outputs")} == io_signature(proto), name
    levels = desc["anchors"]["levels"]
    assert desc["anchors"]["total"] == sum(lv["count"] for lv in levels)
    # Any canvas: the image size and the anchor count are symbolic.
    assert desc["contract_version"] == 2 and desc["preprocess"]["canvas"] == "dynamic"
    assert desc["graphs"]["image_backbone"]["inputs"][0]["shape"] == ["batch", 3, "32*height32", "32*width32"]
    assert desc["graphs"]["head"]["outputs"][1]["shape"][1] == "anchors"
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    for task_file in sorted((DEMO / "tasks").glob("*.json")):
        for cat in json.loads(task_file.read_text())["categories"]:
            assert "[UNK]" not in tok.encode(cat["name"]).tokens


def test_novel_names_are_spelled_in_pieces_no_two_share():
    """NovelShapes' names are not vocabulary words: each is spelled with letter pieces only
    (which the training captions, made of whole vocabulary words, never held), and no piece
    serves two names, so the classes are apart for tuning though meaningless zero-shot."""
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    task = json.loads((DEMO / "tasks" / f"{NOVEL}.json").read_text())
    seen: dict[str, str] = {}
    for cat in task["categories"]:
        pieces = tok.encode(cat["name"], add_special_tokens=False).tokens
        assert len(pieces) >= 3 and all(len(p.removeprefix("##")) == 1 for p in pieces), (cat["name"], pieces)
        for piece in pieces:
            assert seen.setdefault(piece, cat["name"]) == cat["name"], (piece, seen[piece], cat["name"])


def test_committed_model_detects_on_the_held_out_demo_suite():
    model = eval_glip_onnx.GlipOnnx(MODEL)
    for task_file in sorted((DEMO / "tasks").glob("*.json")):
        task = json.loads(task_file.read_text())
        row = eval_glip_onnx.evaluate_task(model, task, DEMO, "test")
        expected = EXPECTED_AP[task["name"]]
        assert row["AP"] == pytest.approx(expected, abs=0.005), (task["name"], row["AP"])


def test_training_weights_round_trip_through_the_exporter(tmp_path):
    """A state dict saved like train_tiny_glip.py does exports to graphs equal to the module."""
    torch.manual_seed(3)
    model = Glip(TINY).eval()
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    import export_glip
    assert export_glip.main(["--config", "tiny", "--weights", str(tmp_path / "tiny.pt"), "--out", str(tmp_path / "m")]) == 0
    import onnxruntime as ort
    images = torch.randn(1, 3, *TINY.image_size)
    sess = ort.InferenceSession(str(tmp_path / "m" / GRAPH_FILES["image_backbone"]), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = ImageBackboneGraph(model)(images)
    for a, b in zip(sess.run(None, {"images": images.numpy()}), expected):
        assert max_rel_error(a, b) < 1e-4


def test_fp16_graphs_run_and_stay_close(tmp_path):
    """fp16 graphs are valid and, run on ORT's CPU (which upcasts what it lacks), close to fp32."""
    import onnxruntime as ort
    torch.manual_seed(4)
    model = Glip(TINY).eval()
    images = torch.randn(1, 3, *TINY.image_size)
    ids = torch.randint(1, TINY.bert.vocab_size, (1, 12))
    mask = torch.ones(1, 12, dtype=torch.long)
    with torch.no_grad():
        expected = HeadGraph(model, TINY.image_size)(*ImageBackboneGraph(model)(images),
                                                     TextEncoderGraph(model)(ids, mask), mask)
    protos = export_graphs(model, tmp_path, TINY.image_size, TINY.max_text_len, fp16=True)
    for proto in protos.values():
        onnx.checker.check_model(proto, full_check=True)
    s = {k: ort.InferenceSession(str(tmp_path / f), providers=["CPUExecutionProvider"]) for k, f in GRAPH_FILES.items()}
    feats = s["image_backbone"].run(None, {"images": images.numpy()})
    text = s["text_encoder"].run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    got = s["head"].run(None, dict(zip(LEVELS, feats), text_hidden=text, attention_mask=mask.numpy()))
    sig = lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))  # noqa: E731
    assert np.abs(sig(got[3]) - sig(expected[3].numpy())).max() < 1e-2
    assert max_rel_error(got[1], expected[1]) < 1e-2
