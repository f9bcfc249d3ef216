"""scripts/eval_glip_onnx.py (the Python reference pipeline) takes its resize sizes, normalisation
and post-processing settings from the model's model.json, not from the config its name points at,
and builds GLIP's caption from the task record (tests/it/reference_caption.rs compares that caption
with `odinw prompt` on all 48 registry records)."""
from __future__ import annotations

import json
import shutil

from PIL import Image

import eval_glip_onnx
from conftest import REPO
from glip_export.preprocess import prepare, resized_size

MODEL = REPO / "models" / "demo"


def test_sizes_and_thresholds_come_from_model_json(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(MODEL, model_dir, ignore=shutil.ignore_patterns("train"))
    desc = json.loads((model_dir / "model.json").read_text())
    # A model.json whose sizes and thresholds differ from its config's (tiny: 192/192).
    desc["preprocess"]["resize"].update(min_size=160, max_size=176)
    desc["postprocess"].update(pre_nms_thresh=0.07, nms_thresh=0.5, detections_per_img=50)
    (model_dir / "model.json").write_text(json.dumps(desc))
    model = eval_glip_onnx.GlipOnnx(model_dir)
    cfg = model.cfg
    assert (cfg.min_size, cfg.max_size) == (160, 176)
    assert (cfg.pre_nms_thresh, cfg.nms_thresh, cfg.detections_per_img) == (0.07, 0.5, 50)
    assert cfg.pixel_mean_bgr == tuple(desc["preprocess"]["mean"])
    image = Image.new("RGB", (300, 200), (90, 120, 30))
    _, hw, _ = prepare(image, cfg, model.input_hw)
    assert hw == resized_size(300, 200, 160, 176) != resized_size(300, 200, 192, 192)


def test_caption_is_built_from_the_task_record_not_the_annotation_file():
    task = json.loads((REPO / "odinw_35" / "Aquarium.json").read_text())
    caption, spans, ids = eval_glip_onnx.task_caption(task)
    assert caption.startswith(" fish. jellyfish. penguin , which is black and white.")
    assert ids == sorted(c["id"] for c in task["categories"])
    assert caption[spans[0][0]:spans[0][1]] == "fish"
    plain, _, _ = eval_glip_onnx.task_caption(task, use_prompt=False)
    assert plain == "fish. jellyfish. penguin. puffin. shark. starfish. stingray"
