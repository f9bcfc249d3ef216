"""OWLv2 export (scripts/export_model.py --family owlv2) against transformers' own model.

A tiny seeded random `Owlv2Config` (with a small CLIP-style BPE tokenizer) is saved with
save_pretrained and exported by the script. Checked:
- every graph output (text_embeds, logits, objectness_logits, pred_boxes) from onnxruntime vs
  `Owlv2ForObjectDetection` on the processor's inputs, batch 2 and other batch/query counts;
- the detections of model.json's documented post-processing (numpy, from the ONNX outputs) vs
  `Owlv2Processor.post_process_object_detection` on the PyTorch outputs, on real RoboFlow images
  (../shared/data; skipped when absent) and generated ones: same detections, scores within 1e-4,
  boxes IoU > 0.999;
- model.json's preprocessing steps (transcribed in torch) vs the processor's pixel_values;
- the prompt-template ensemble (mean of template logits) vs transformers' class predictor run per
  template and averaged, as scenic's evaluator does;
- the exporter's refusals (unknown family, an OWLv2 folder as grounding-dino, missing tokenizer,
  mismatched preprocessor size).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from conftest import REPO, max_rel_error, perturb_

import export_model
from owlv2_export import prompts

SIZE = 64  # tiny vision tower: 64x64 input, 16x16 patches -> 16 patches
RTOL = 1e-4
SHARED = REPO.parent / "shared" / "data" / "roboflow"
REAL_IMAGES = [
    ("BCCD.v3-raw.coco", 2, ["Platelets", "RBC", "WBC"]),
    ("Aquarium Combined.v2-raw-1024.coco", 2, ["fish", "jellyfish", "penguin", "puffin", "shark", "starfish",
                                               "stingray"]),
]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _tiny_clip_tokenizer(text_len: int = 16):
    """CLIP's BPE layout with a small vocabulary: the 256 byte characters, the same with the
    end-of-word suffix, a few merges, then <|startoftext|> and <|endoftext|> (the largest id, as in
    CLIP, since transformers pools the text at argmax(input_ids))."""
    from transformers import CLIPTokenizer
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    merges = ["p h", "ph o", "pho t", "phot o</w>", "o f</w>", "t h", "th e</w>"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], pad_token="!",
                         model_max_length=text_len), len(vocab)


def _tiny_weights(path: Path, size: int = SIZE, layers: int = 2, text_len: int = 16) -> None:
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor
    tok, vocab_size = _tiny_clip_tokenizer(text_len)
    cfg = Owlv2Config(
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=2, max_position_embeddings=text_len, pad_token_id=tok.convert_tokens_to_ids("!"),
                         bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1),
        vision_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=layers, num_attention_heads=2,
                           image_size=size, patch_size=16),
        projection_dim=32)
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(cfg).eval()
    # The heads' linear layers come out of the default init with std 1 (logits of hundreds, boxes
    # saturated at 0 or 1); scaled like a trained head so boxes and scores spread over (0, 1).
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for head in (model.box_head, model.objectness_head, model.class_head):
            for layer in head.modules():
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.7 / layer.in_features ** 0.5)
    perturb_(model, seed=1)  # no parameter left at an exact 0 or 1 (biases, layer norms)
    model.save_pretrained(path)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": size, "width": size}),
                   tokenizer=tok).save_pretrained(path)


@pytest.fixture(scope="module")
def owl(tmp_path_factory):
    from transformers import Owlv2ForObjectDetection, Owlv2Processor
    root = tmp_path_factory.mktemp("owlv2")
    weights, out = root / "weights", root / "model"
    _tiny_weights(weights)
    assert export_model.main(["--family", "owlv2", "--weights", str(weights), "--out", str(out)]) == 0
    model = Owlv2ForObjectDetection.from_pretrained(weights).eval()
    processor = Owlv2Processor.from_pretrained(weights)
    desc = json.loads((out / "model.json").read_text())
    sessions = {name: ort.InferenceSession(str(out / g["file"]), providers=["CPUExecutionProvider"])
                for name, g in desc["graphs"].items()}
    return {"weights": weights, "out": out, "model": model, "processor": processor, "desc": desc,
            "sessions": sessions}


def _generated_images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    images = []
    for h, w in ((48, 80), (200, 120), (64, 64), (31, 257)):  # landscape, portrait, exact size, odd sizes
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a[h // 4: h // 2, w // 3: w // 2] = (250, 40, 40)  # a flat block, something to find
        images.append(Image.fromarray(a))
    return images


def _real_images() -> list[tuple[Image.Image, list[str]]]:
    out = []
    for folder, count, names in REAL_IMAGES:
        split = SHARED / folder / "test"
        if not split.is_dir():
            continue
        files = sorted(p for p in split.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
        out += [(Image.open(p).convert("RGB"), names) for p in files]
    return out


def _ort_text(owl, input_ids, attention_mask):
    return owl["sessions"]["text_encoder"].run(None, {"input_ids": input_ids.astype(np.int64),
                                                      "attention_mask": attention_mask.astype(np.int64)})[0]


def _ort_image(owl, pixel_values, query_embeds):
    names = [o["name"] for o in owl["desc"]["graphs"]["image_detector"]["outputs"]]
    outs = owl["sessions"]["image_detector"].run(None, {"pixel_values": pixel_values.astype(np.float32),
                                                        "query_embeds": query_embeds.astype(np.float32)})
    return dict(zip(names, outs))


def _postprocess(desc, logits, boxes, orig_hw, threshold):
    """model.json's documented post-processing, in numpy (float64), for one image."""
    assert desc["postprocess"]["nms"] == "none"
    scores = 1 / (1 + np.exp(-logits.max(-1).astype(np.float64)))
    labels = logits.argmax(-1)
    cx, cy, w, h = (boxes[:, i].astype(np.float64) for i in range(4))
    side = max(orig_hw)
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * side
    keep = scores > threshold
    return scores[keep], labels[keep], xyxy[keep]


def _iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return inter / union


def test_model_json_and_graphs(owl):
    desc = owl["desc"]
    assert desc["family"] == "owlv2"
    assert set(desc["graphs"]) == {"text_encoder", "image_detector"}
    for g in desc["graphs"].values():
        proto = onnx.load(str(owl["out"] / g["file"]))
        assert proto.ir_version <= 13
        assert all(o.version <= 21 for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        onnx.checker.check_model(proto)
    image_in = {i["name"]: i["shape"] for i in desc["graphs"]["image_detector"]["inputs"]}
    assert image_in["pixel_values"][1:] == [3, SIZE, SIZE] and isinstance(image_in["pixel_values"][0], str)
    assert desc["preprocess"]["input_size"] == [SIZE, SIZE]
    assert (owl["out"] / "tokenizer.json").read_bytes() == (owl["weights"] / "tokenizer.json").read_bytes()
    proc = owl["processor"].image_processor
    assert desc["preprocess"]["mean"] == pytest.approx(list(proc.image_mean))
    assert desc["preprocess"]["std"] == pytest.approx(list(proc.image_std))
    assert desc["text"]["prompts"]["templates"] == list(prompts.TEMPLATES)


@pytest.mark.parametrize("batch,queries", [(2, ["a photo of the cat", "dog", "x"]), (1, ["photo"]),
                                           (3, ["the red block", "of", "a b c d e f g h i j k l m n o p q"])])
def test_outputs_match_transformers(owl, batch, queries):
    model, processor = owl["model"], owl["processor"]
    images = (_generated_images() * 2)[:batch]
    inputs = processor(text=[queries] * batch, images=images, return_tensors="pt", truncation=True)
    with torch.no_grad():
        ref = model(**inputs)
    n = len(queries)
    text = _ort_text(owl, inputs["input_ids"][:n].numpy(), inputs["attention_mask"][:n].numpy())
    assert max_rel_error(text, ref.text_embeds[0]) < RTOL
    # Trimmed to the longest real query: the same embeddings (the text model is causal).
    used = int(inputs["attention_mask"][:n].sum(1).max())
    trimmed = _ort_text(owl, inputs["input_ids"][:n, :used].numpy(), inputs["attention_mask"][:n, :used].numpy())
    assert max_rel_error(trimmed, ref.text_embeds[0]) < RTOL
    out = _ort_image(owl, inputs["pixel_values"].numpy(), text)
    assert max_rel_error(out["logits"], ref.logits) < RTOL
    assert max_rel_error(out["objectness_logits"], ref.objectness_logits) < RTOL
    assert max_rel_error(out["pred_boxes"], ref.pred_boxes) < RTOL


def test_documented_preprocessing_matches_processor(owl):
    """model.json's preprocessing steps, transcribed with torch ops, give the processor's pixels."""
    import torch.nn.functional as F
    pre = owl["desc"]["preprocess"]
    size = pre["input_size"][0]
    images = _generated_images() + [im for im, _ in _real_images()]
    for im in images:
        x = torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1)[None] / 255
        h, w = x.shape[-2:]
        side = max(h, w)
        x = F.pad(x, (0, side - w, 0, side - h), value=pre["pad_value"])
        sigma = max((side / size - 1) / 2, 0.0)
        if sigma > 0:
            k = 2 * math.ceil(3 * sigma) + 1
            t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k)
            taps = torch.exp(-0.5 * (t / sigma) ** 2)
            taps = taps / taps.sum()
            x = F.pad(x, (k // 2,) * 4, mode="reflect")
            x = F.conv2d(x.reshape(3, 1, *x.shape[-2:]), taps.view(1, 1, 1, k))
            x = F.conv2d(x, taps.view(1, 1, k, 1)).reshape(1, 3, side, side)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
        mean, std = torch.tensor(pre["mean"]).view(1, 3, 1, 1), torch.tensor(pre["std"]).view(1, 3, 1, 1)
        x = (x - mean) / std
        ref = owl["processor"].image_processor(images=im, return_tensors="pt")["pixel_values"]
        assert (x - ref).abs().max().item() < 1e-4, im.size


def _detections_case(owl, images, class_names, threshold):
    model, processor, desc = owl["model"], owl["processor"], owl["desc"]
    inputs = processor(text=[class_names] * len(images), images=images, return_tensors="pt")
    sizes = [(im.height, im.width) for im in images]
    with torch.no_grad():
        ref = model(**inputs)
    expected = processor.image_processor.post_process_object_detection(ref, threshold=threshold, target_sizes=sizes)
    n = len(class_names)
    text = _ort_text(owl, inputs["input_ids"][:n].numpy(), inputs["attention_mask"][:n].numpy())
    out = _ort_image(owl, inputs["pixel_values"].numpy(), text)
    total = 0
    for i, exp in enumerate(expected):
        scores, labels, boxes = _postprocess(desc, out["logits"][i], out["pred_boxes"][i], sizes[i], threshold)
        # Scores within 1e-4 of the threshold may flip sides between the two runtimes.
        near = lambda s: np.abs(np.asarray(s, dtype=np.float64) - threshold) < 1e-4  # noqa: E731
        ref_keep = ~near(exp["scores"].numpy())
        got_keep = ~near(scores)
        assert got_keep.sum() == ref_keep.sum(), (i, len(scores), len(exp["scores"]))
        # Both lists are in patch order: pair them one to one.
        for s, l, b, rs, rl, rb in zip(scores[got_keep], labels[got_keep], boxes[got_keep],
                                       exp["scores"].numpy()[ref_keep], exp["labels"].numpy()[ref_keep],
                                       exp["boxes"].numpy()[ref_keep]):
            assert l == rl
            assert abs(s - rs) < 1e-4
            assert _iou(b, rb.astype(np.float64)) > 0.999
            total += 1
    return total


def test_detections_match_post_process_generated(owl):
    images = _generated_images()
    total = _detections_case(owl, images, ["red block", "noise", "a photo of the square"], threshold=0.6)
    assert total > 0  # the comparison is not vacuous


def test_detections_match_post_process_real(owl):
    real = _real_images()
    if not real:
        pytest.skip(f"{SHARED} is absent")
    total = 0
    for folder_names in {tuple(n) for _, n in real}:
        images = [im for im, n in real if tuple(n) == folder_names]
        total += _detections_case(owl, images, list(folder_names), threshold=0.6)
    assert total > 0


def test_prompt_ensemble_matches_class_predictor_average(owl):
    """The documented ensemble (mean of the (template, class) logits from the ONNX graph) equals
    transformers' class predictor run once per template embedding and averaged (scenic's rule)."""
    model, processor = owl["model"], owl["processor"]
    names = ["Red blood cell", "white_blood-cell", "Platelets!"]
    grid = prompts.class_prompts(names)
    assert grid[0][1] == "itap of a white blood-cell"
    assert grid[1][2] == "a bad photo of the platelets"
    flat = [p for row in grid for p in row]
    tok = processor.tokenizer(flat, padding="max_length", max_length=16, truncation=True, return_tensors="np")
    text = _ort_text(owl, tok["input_ids"], tok["attention_mask"])
    images = _generated_images()[:2]
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    out = _ort_image(owl, pixels.numpy(), text)
    t, c = len(prompts.TEMPLATES), len(names)
    got = out["logits"].reshape(len(images), -1, t, c).mean(2)
    with torch.no_grad():
        feature_map = model.image_embedder(pixel_values=pixels)[0]
        b, h, w, d = feature_map.shape
        feats = feature_map.reshape(b, h * w, d)
        ref_text = model.owlv2.get_text_features(input_ids=torch.from_numpy(tok["input_ids"]),
                                                 attention_mask=torch.from_numpy(tok["attention_mask"])).pooler_output
        ref_text = ref_text / ref_text.norm(dim=-1, keepdim=True)
        per_template = [model.class_predictor(feats, ref_text[i * c:(i + 1) * c][None].expand(b, -1, -1), None)[0]
                        for i in range(t)]
        ref = torch.stack(per_template).mean(0)
    assert max_rel_error(got, ref) < RTOL


def test_refusals(owl, tmp_path):
    script = str(REPO / "scripts" / "export_model.py")
    run = lambda *a: subprocess.run([sys.executable, script, *a], capture_output=True, text=True)  # noqa: E731
    r = run("--family", "grounding-dino", "--weights", str(owl["weights"]), "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "is not a grounding-dino model" in r.stderr  # an OWLv2 folder
    r = run("--family", "yolo", "--weights", str(owl["weights"]), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("config.json", "processor_config.json"):
        (bad / f).write_bytes((owl["weights"] / f).read_bytes())
    assert export_model.main(["--family", "owlv2", "--weights", str(bad), "--out", str(tmp_path / "y")]) == 1
    (bad / "tokenizer.json").write_bytes((owl["weights"] / "tokenizer.json").read_bytes())
    pre = json.loads((bad / "processor_config.json").read_text())
    pre["image_processor"]["size"] = {"height": 2 * SIZE, "width": 2 * SIZE}
    (bad / "processor_config.json").write_text(json.dumps(pre))
    assert export_model.main(["--family", "owlv2", "--weights", str(bad), "--out", str(tmp_path / "y")]) == 1
    assert not (tmp_path / "y" / "model.json").exists()


def test_hub_geometry(tmp_path):
    """The hub checkpoints' geometry (google/owlv2-base-patch16*: 960x960 input, 16-pixel
    patches, 3600 patches), with a 1-layer tower: the export's outputs equal transformers' there too."""
    from transformers import Owlv2ForObjectDetection, Owlv2Processor
    weights, out = tmp_path / "weights", tmp_path / "model"
    _tiny_weights(weights, size=960, layers=1)
    assert export_model.main(["--family", "owlv2", "--weights", str(weights), "--out", str(out)]) == 0
    model = Owlv2ForObjectDetection.from_pretrained(weights).eval()
    processor = Owlv2Processor.from_pretrained(weights)
    desc = json.loads((out / "model.json").read_text())
    assert desc["preprocess"]["input_size"] == [960, 960] and desc["outputs"]["patches"] == 3600
    sessions = {name: ort.InferenceSession(str(out / g["file"]), providers=["CPUExecutionProvider"])
                for name, g in desc["graphs"].items()}
    geo = {"desc": desc, "sessions": sessions}
    images = _generated_images()[:2]
    inputs = processor(text=[["red block", "noise"]] * 2, images=images, return_tensors="pt")
    with torch.no_grad():
        ref = model(**inputs)
    text = _ort_text(geo, inputs["input_ids"][:2].numpy(), inputs["attention_mask"][:2].numpy())
    got = _ort_image(geo, inputs["pixel_values"].numpy(), text)
    assert max_rel_error(text, ref.text_embeds[0]) < RTOL
    assert max_rel_error(got["logits"], ref.logits) < RTOL
    assert max_rel_error(got["objectness_logits"], ref.objectness_logits) < RTOL
    assert max_rel_error(got["pred_boxes"], ref.pred_boxes) < RTOL


def test_hub_style_preprocessor_config(owl, tmp_path):
    """A folder with the older preprocessor_config.json (as the hub's OWLv2 folders have) is read
    as transformers reads it; the absent case falls back to OWLv2's defaults at the model's size."""
    from owlv2_export import model_json
    pre = json.loads((owl["weights"] / "processor_config.json").read_text())["image_processor"]
    pre["image_mean"] = [0.5, 0.25, 0.125]
    pre["processor_class"] = "Owlv2Processor"
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(pre))
    got = model_json.read_preprocessor(tmp_path, SIZE)
    assert got["mean"] == [0.5, 0.25, 0.125] and got["size"] == SIZE
    (tmp_path / "preprocessor_config.json").unlink()
    got = model_json.read_preprocessor(tmp_path, SIZE)
    assert got["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073]) and "defaults" in got["origin"]
    pre["resample"] = 3
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(pre))
    with pytest.raises(model_json.PreprocessorError, match="resample"):
        model_json.read_preprocessor(tmp_path, SIZE)
