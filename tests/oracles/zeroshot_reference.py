"""The zero-shot pipeline in Python, as the reference for `odinw eval`: onnxruntime's Python API
runs the model directory's graphs, Pillow decodes and resizes, and `scripts/glip_export`'s
numpy post-processing (written from GLIP's protocol) makes the detections; pycocotools scores
them. Writes `{task: {"predictions": [...], "stats": [...]}}` as JSON to OUT.

    python zeroshot_reference.py MODEL_DIR ROOT SPLIT OUT TASK_JSON...
"""
import contextlib
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from PIL import Image  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from eval_glip_onnx import GlipOnnx, clean_name  # noqa: E402
from glip_export.prompts import build_caption, positive_map  # noqa: E402

model_dir, root, split, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
model = GlipOnnx(model_dir, threads=1)
report = {}
for path in sys.argv[5:]:
    task = json.loads(Path(path).read_text())
    ann = root / task["splits"][split]["ann_file"]
    img_dir = root / task["splits"][split]["img_dir"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
    cats = sorted(gt.loadCats(gt.getCatIds()), key=lambda c: c["id"])
    names = [clean_name(c["name"]) for c in cats]
    caption, spans = build_caption(names, model.desc["text"]["prompt_separator"], task.get("caption_prompt"))
    pos_map = positive_map(model.tokenizer, caption, spans, model.max_len)
    hidden, mask = model.encode_text(caption)
    results = []
    for info in gt.loadImgs(sorted(gt.getImgIds())):
        image = Image.open(img_dir / info["file_name"]).convert("RGB")
        boxes, scores, labels = model.detect(image, hidden, mask, pos_map)
        for box, score, label in zip(boxes, scores, labels):
            results.append({"image_id": info["id"], "category_id": cats[label]["id"],
                            "bbox": [float(v) for v in box], "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    report[task["name"]] = {"caption": caption, "predictions": results, "stats": [float(s) for s in ev.stats]}
out.write_text(json.dumps(report))
