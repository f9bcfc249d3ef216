"""The zero-shot pipeline in Python, as the reference for `odinw eval`: onnxruntime's Python API
runs the model directory's graphs, Pillow decodes and resizes, and `scripts/glip_export`'s
numpy post-processing (written from GLIP's protocol) makes the detections
(`scripts/eval_glip_onnx.py`); pycocotools scores them. Writes
`{task: {"caption", "predictions": [...], "stats": [...]}}` as JSON to OUT.

    python zeroshot_reference.py MODEL_DIR ROOT SPLIT OUT TASK_JSON...
"""
import contextlib
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from pycocotools.cocoeval import COCOeval  # noqa: E402

from eval_glip_onnx import GlipOnnx, predict_task  # noqa: E402

model_dir, root, split, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
model = GlipOnnx(model_dir, threads=1)
report = {}
for path in sys.argv[5:]:
    task = json.loads(Path(path).read_text())
    caption, results, gt = predict_task(model, task, root, split)
    results = [dict(r, bbox=[float(v) for v in r["bbox"]]) for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    report[task["name"]] = {"caption": caption, "predictions": results, "stats": [float(s) for s in ev.stats]}
out.write_text(json.dumps(report))
