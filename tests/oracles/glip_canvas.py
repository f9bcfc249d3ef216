"""GLIP in PyTorch (`scripts/glip_export`), one image at a time on GLIP's canvas: the reference
of `tests/it/canvas_parity.rs`.

The model is rebuilt from a model directory's graphs (`model_dir.load`, its weights only; the
graphs themselves are not run). Each image is decoded by Pillow, resized by GLIP's rule with the
given min/max sizes (bilinear as Pillow 13 computes it, whichever Pillow runs this:
`preprocess.resize_bilinear`), normalised and zero-padded bottom/right to the next multiple of 32 of its
own resized size (`to_image_list` with one image per batch) -- or, with "fixed", to that size --
then backbone, text encoder and head run in PyTorch, and `glip_export.postprocess` (GLIP's
post-processing, numpy) makes the COCO results.

    python glip_canvas.py SPEC.json OUT.json

SPEC: {"model_dir": DIR, "task": TASK_JSON, "runs": [{"name", "min_size", "max_size",
"fixed": [H, W] or null, "images": [[image_id, path], ...]}]}. OUT: {name: {"caption",
"predictions": [...], "canvases": {image_id: [H, W]}}}.
"""
import contextlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from eval_glip_onnx import clean_name  # noqa: E402
from glip_export import model_dir, postprocess  # noqa: E402
from glip_export.model import HeadGraph, ImageBackboneGraph, TextEncoderGraph  # noqa: E402
from glip_export.preprocess import prepare  # noqa: E402
from glip_export.prompts import build_caption, positive_map  # noqa: E402

spec = json.loads(Path(sys.argv[1]).read_text())
md = model_dir.read(Path(spec["model_dir"]))
with contextlib.redirect_stdout(io.StringIO()):
    glip, _ = model_dir.load(md, verify_graphs=False, log=lambda *a: None)
glip.eval()
torch.set_num_threads(1)
backbone, encoder, head = ImageBackboneGraph(glip), TextEncoderGraph(glip), HeadGraph(glip)

task = json.loads(Path(spec["task"]).read_text())
cats = sorted(task["categories"], key=lambda c: c["id"])
caption, spans = build_caption([clean_name(c["name"]) for c in cats], md.desc["text"]["prompt_separator"],
                               task.get("caption_prompt"))
tok = Tokenizer.from_file(str(md.path / "tokenizer.json"))
max_len = md.desc["text"]["max_text_len"]
pos_map = positive_map(tok, caption, spans, max_len)
ids = tok.encode(caption).ids[:max_len]
if len(tok.encode(caption).ids) > max_len:
    ids[-1] = md.desc["text"]["special_tokens"]["sep"]
ids = torch.tensor([ids], dtype=torch.long)
mask = torch.ones_like(ids)

out = {}
with torch.no_grad():
    text = encoder(ids, mask)
    for run in spec["runs"]:
        cfg = md.cfg.replace(min_size=run["min_size"], max_size=run["max_size"])
        fixed = tuple(run["fixed"]) if run.get("fixed") else None
        preds, canvases = [], {}
        for image_id, path in run["images"]:
            image = Image.open(path).convert("RGB")
            data, resized_hw, scale = prepare(image, cfg, fixed)
            feats = backbone(torch.from_numpy(data)[None])
            _, boxes, ctr, logits = head(*feats, text, mask)
            counts = [f.shape[2] * f.shape[3] for f in feats]
            b, s, lab = postprocess.detect(boxes[0].numpy(), ctr[0].numpy(), logits[0].numpy(), pos_map, counts,
                                           resized_hw, cfg)
            canvases[image_id] = list(data.shape[1:])
            for box, score, label in zip(postprocess.to_coco(b, scale), s, lab):
                preds.append({"image_id": image_id, "category_id": cats[label]["id"],
                              "bbox": [float(v) for v in box], "score": float(score)})
        out[run["name"]] = {"caption": caption, "predictions": preds, "canvases": canvases}
Path(sys.argv[2]).write_text(json.dumps(out))
print(json.dumps({k: len(v["predictions"]) for k, v in out.items()}))
