"""Grounding DINO / MM-Grounding-DINO export (scripts/export_model.py --family grounding-dino |
mm-grounding-dino) against transformers' own models and mmdetection's evaluation rules.

Tiny seeded random `GroundingDinoConfig` / `MMGroundingDinoConfig` (Swin backbone, 1-layer BERT
with the bert-base-uncased WordPiece vocabulary committed in scripts/glip_export/vocab) saved with
save_pretrained and exported by the script. Checked:
- the graphs: opset/IR, standard ONNX ops only, grid_sample present (pure-PyTorch deformable attention);
- onnxruntime's text_features, logits and pred_boxes vs the PyTorch model on the processor's
  inputs (pad_size = the export's canvas), batch 1-3, captions of several lengths, both families;
- prompts.text_masks vs transformers' generate_masks_with_special_tokens_and_transfer_map;
- model.json's preprocessing (transcribed with torchvision) vs GroundingDinoImageProcessor at its
  default 800/1333, generated and real images;
- postprocess.detect / detect_chunked on the ONNX outputs vs a torch transcription of mmdetection's
  _predict_by_feat_single (convert_grounding_to_cls_scores mean, topk, rescale, clamp) on the
  PyTorch outputs, generated and real RoboFlow images: every detection matched, scores within 1e-4,
  IoU > 0.999;
- the exporter's refusals (missing config, wrong model type, missing tokenizer, bad canvas).
"""
from __future__ import annotations

import json
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
from grounding_dino_export import postprocess, prompts

RTOL = 1e-4
SIZE = {"shortest_edge": 96, "longest_edge": 160}  # small processor size for the tiny models
CANVAS = (160, 160)
# ../shared/data beside the checkout, or beside its parent (a worktree under wt/).
SHARED = next((p for p in (REPO.parent / "shared" / "data" / "roboflow", REPO.parents[1] / "shared" / "data" / "roboflow")
               if p.is_dir()), REPO.parent / "shared" / "data" / "roboflow")
REAL = [("BCCD.v3-raw.coco", 2, ["Platelets", "RBC", "WBC"]),
        ("Aquarium Combined.v2-raw-1024.coco", 2, ["fish", "jellyfish", "penguin", "puffin", "shark", "starfish",
                                                   "stingray"])]


def _tokenizer():
    from transformers import BertTokenizerFast
    from glip_export.tokenizer import make_tokenizer
    return BertTokenizerFast(tokenizer_object=make_tokenizer("bert-base-uncased")._tokenizer, do_lower_case=True)


def _tiny_weights(path: Path, mm: bool) -> None:
    from transformers import (BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, MMGroundingDinoConfig,
                              MMGroundingDinoForObjectDetection, SwinConfig)
    tok = _tokenizer()
    Config, Model = (MMGroundingDinoConfig, MMGroundingDinoForObjectDetection) if mm else \
        (GroundingDinoConfig, GroundingDinoForObjectDetection)
    cfg = Config(
        backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=2,
                                   out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=512),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=50, encoder_n_points=2, decoder_n_points=2)
    torch.manual_seed(3 if mm else 0)
    model = Model(cfg).eval()
    perturb_(model, seed=1)
    model.save_pretrained(path)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size=SIZE), tokenizer=tok).save_pretrained(path)


def _load(weights: Path, mm: bool):
    from transformers import (GroundingDinoForObjectDetection, GroundingDinoProcessor,
                              MMGroundingDinoForObjectDetection)
    Model = MMGroundingDinoForObjectDetection if mm else GroundingDinoForObjectDetection
    return Model.from_pretrained(weights).eval(), GroundingDinoProcessor.from_pretrained(weights)


@pytest.fixture(scope="module", params=["grounding-dino", "mm-grounding-dino"])
def gd(request, tmp_path_factory):
    family = request.param
    mm = family == "mm-grounding-dino"
    root = tmp_path_factory.mktemp(family)
    weights, out = root / "weights", root / "model"
    _tiny_weights(weights, mm)
    assert export_model.main(["--family", family, "--weights", str(weights), "--out", str(out)]) == 0
    model, processor = _load(weights, mm)
    processor.image_processor.pad_size = {"height": CANVAS[0], "width": CANVAS[1]}
    desc = json.loads((out / "model.json").read_text())
    sessions = {name: ort.InferenceSession(str(out / g["file"]), providers=["CPUExecutionProvider"])
                for name, g in desc["graphs"].items()}
    return {"family": family, "weights": weights, "out": out, "model": model, "processor": processor,
            "desc": desc, "sessions": sessions}


def _generated_images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    images = []
    for h, w in ((100, 150), (200, 70), (96, 96), (131, 257)):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a[h // 4: h // 2, w // 3: w // 2] = (250, 40, 40)
        images.append(Image.fromarray(a))
    return images


def _real_images() -> list[tuple[Image.Image, list[str]]]:
    out = []
    for folder, count, names in REAL:
        split = SHARED / folder / "test"
        if split.is_dir():
            files = sorted(p for p in split.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
            out += [(Image.open(p).convert("RGB"), names) for p in files]
    return out


def _onnx(gd, inputs):
    """Text graph on the first caption, then the image graph for the batch."""
    ids = inputs["input_ids"][:1].numpy()
    self_mask, pos = prompts.text_masks(ids)
    attn = inputs["attention_mask"][:1].numpy()
    feats = gd["sessions"]["text_encoder"].run(None, {
        "input_ids": ids, "attention_mask": attn, "token_type_ids": np.zeros_like(ids),
        "position_ids": pos, "text_self_attention_mask": self_mask})[0]
    logits, boxes = gd["sessions"]["image_detector"].run(None, {
        "pixel_values": inputs["pixel_values"].numpy(), "pixel_mask": inputs["pixel_mask"].numpy(),
        "text_features": feats[0], "attention_mask": attn[0], "position_ids": pos[0],
        "text_self_attention_mask": self_mask[0]})
    return feats, logits, boxes


def test_model_json_and_graphs(gd):
    desc = gd["desc"]
    assert desc["family"] == gd["family"]
    assert set(desc["graphs"]) == {"text_encoder", "image_detector"}
    ops = set()
    for g in desc["graphs"].values():
        proto = onnx.load(str(gd["out"] / g["file"]))
        assert proto.ir_version <= 13
        assert all(o.version == 19 for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)
        onnx.checker.check_model(proto)
        ops |= {n.op_type for n in proto.graph.node}
    assert "GridSample" in ops  # transformers' pure-PyTorch multi-scale deformable attention
    image_in = {i["name"]: i["shape"] for i in desc["graphs"]["image_detector"]["inputs"]}
    assert image_in["pixel_values"][1:] == [3, *CANVAS] and isinstance(image_in["pixel_values"][0], str)
    assert desc["preprocess"]["canvas"] == list(CANVAS)
    assert desc["text"]["max_text_len"] == 256
    assert desc["text"]["special_tokens"] == {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}
    assert (gd["out"] / "tokenizer.json").read_bytes() == (gd["weights"] / "tokenizer.json").read_bytes()
    assert desc["source"]["class"] == ("MMGroundingDinoForObjectDetection" if gd["family"] == "mm-grounding-dino"
                                       else "GroundingDinoForObjectDetection")


@pytest.mark.parametrize("batch,names", [(2, ["red block", "noise", "cat"]), (1, ["a_b (x)"]),
                                         (3, ["fish", "jellyfish", "penguin", "puffin", "shark", "starfish"])])
def test_outputs_match_transformers(gd, batch, names):
    model, processor = gd["model"], gd["processor"]
    caption, _ = prompts.build_caption(names)
    images = _generated_images()[:batch]
    inputs = processor(images=images, text=[caption] * batch, return_tensors="pt")
    with torch.no_grad():
        ref = model(**inputs, output_hidden_states=False)
        text_ref = model.model.text_projection(model.model.text_backbone(
            inputs["input_ids"][:1], torch.from_numpy(prompts.text_masks(inputs["input_ids"][:1].numpy())[0])[:, None],
            inputs["token_type_ids"][:1], torch.from_numpy(prompts.text_masks(inputs["input_ids"][:1].numpy())[1]),
            return_dict=True).last_hidden_state)
    feats, logits, boxes = _onnx(gd, inputs)
    n = inputs["input_ids"].shape[1]
    assert max_rel_error(feats, text_ref) < RTOL
    assert np.isneginf(logits[..., n:]).all() and np.isneginf(ref.logits[..., n:].numpy()).all()
    assert max_rel_error(logits[..., :n], ref.logits[..., :n]) < RTOL
    assert max_rel_error(boxes, ref.pred_boxes) < RTOL


def test_text_masks_match_transformers():
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        SPECIAL_TOKENS, generate_masks_with_special_tokens_and_transfer_map)
    tok = _tokenizer()
    captions = ["cat. dog. ", "a red block. noise? fish", "no separators at all", "x."]
    enc = tok(captions, padding="longest", return_tensors="pt")
    mask, pos = generate_masks_with_special_tokens_and_transfer_map(enc["input_ids"], torch.tensor(SPECIAL_TOKENS))
    got_mask, got_pos = prompts.text_masks(enc["input_ids"].numpy())
    assert (got_mask == mask.numpy()).all() and (got_pos == pos.numpy()).all()


def test_documented_preprocessing_matches_processor(tmp_path):
    """model.json's preprocess steps (transcribed with torchvision) at GroundingDinoImageProcessor's
    defaults (800/1333) give the processor's pixel_values and pixel_mask (pad_size = canvas)."""
    import torchvision.transforms.v2.functional as tvF
    from transformers import GroundingDinoImageProcessor
    from grounding_dino_export import model_json
    pre = model_json.read_preprocessor(tmp_path)  # no processor config: the defaults
    assert (pre["shortest_edge"], pre["longest_edge"]) == (800, 1333)
    canvas = (pre["longest_edge"], pre["longest_edge"])
    proc = GroundingDinoImageProcessor(pad_size={"height": canvas[0], "width": canvas[1]})
    images = _generated_images() + [im for im, _ in _real_images()]
    for im in images:
        h, w = im.height, im.width
        s, m = pre["shortest_edge"], pre["longest_edge"]
        raw = None
        if max(h, w) / min(h, w) * s > m:
            raw = m * min(h, w) / max(h, w)
            s = int(round(raw))
        if (h <= w and h == s) or (w <= h and w == s):
            oh, ow = h, w
        elif w < h:
            ow, oh = s, int((raw if raw is not None else s) * h / w)
        else:
            oh, ow = s, int((raw if raw is not None else s) * w / h)
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()
        x = tvF.resize(x, [oh, ow], interpolation=tvF.InterpolationMode.BILINEAR, antialias=True)
        x = x.float() / 255
        x = (x - torch.tensor(pre["mean"]).view(3, 1, 1)) / torch.tensor(pre["std"]).view(3, 1, 1)
        pixels = torch.zeros(3, *canvas)
        pixels[:, :oh, :ow] = x
        mask = torch.zeros(canvas, dtype=torch.long)
        mask[:oh, :ow] = 1
        ref = proc(images=im, return_tensors="pt")
        assert (pixels - ref["pixel_values"][0]).abs().max().item() < 1e-4, im.size
        assert torch.equal(mask, ref["pixel_mask"][0]), im.size


def _mmdet_reference(logits, boxes, caption, spans, tokenizer, resized_hw, orig_hw, max_per_img):
    """mmdetection's rule on the PyTorch outputs, transcribed in torch: glip.create_positive_map
    (normalised) -> create_positive_map_label_to_token(plus=1) -> convert_grounding_to_cls_scores
    (mean of sigmoids) -> topk(max_per_img) -> cxcywh->xyxy * img_shape, clamp, / scale_factor."""
    enc = tokenizer(caption, truncation=True, max_length=256)
    pmap = torch.zeros(len(spans), 256)
    for j, (beg, end) in enumerate(spans):
        b = enc.char_to_token(beg)
        if b is None:
            b = enc.char_to_token(beg + 1)
            if b is None:
                b = enc.char_to_token(beg + 2)
        e = enc.char_to_token(end - 1)
        if e is None:
            e = enc.char_to_token(end - 2)
            if e is None:
                e = enc.char_to_token(end - 3)
        if b is None or e is None:
            continue
        pmap[j, b:e + 1] = 1
    pmap = pmap / (pmap.sum(-1)[:, None] + 1e-6)
    label_to_token = {i + 1: torch.nonzero(pmap[i], as_tuple=True)[0].tolist() for i in range(len(pmap))}
    prob = logits.sigmoid()
    cls = torch.zeros(prob.shape[0], len(label_to_token))
    for j, toks in label_to_token.items():
        cls[:, j - 1] = prob[:, torch.LongTensor(toks)].mean(-1)
    scores, idx = cls.view(-1).topk(min(max_per_img, cls.numel()))
    labels, q = idx % cls.shape[1], idx // cls.shape[1]
    bb = boxes[q]
    xyxy = torch.stack([bb[:, 0] - bb[:, 2] / 2, bb[:, 1] - bb[:, 3] / 2, bb[:, 0] + bb[:, 2] / 2,
                        bb[:, 1] + bb[:, 3] / 2], -1)
    (rh, rw), (oh, ow) = resized_hw, orig_hw
    xyxy[:, 0::2] = (xyxy[:, 0::2] * rw).clamp(0, rw)
    xyxy[:, 1::2] = (xyxy[:, 1::2] * rh).clamp(0, rh)
    xyxy /= torch.tensor([rw / ow, rh / oh]).repeat(2)
    return scores.numpy(), labels.numpy(), xyxy.numpy()


def _iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return inter / union if union > 0 else float(np.allclose(a, b))


def _match(got, ref):
    """Every detection of `got` paired one-to-one with one of `ref`: same label, score within 1e-4,
    IoU > 0.999."""
    gs, gl, gb = got
    rs, rl, rb = ref
    assert len(gs) == len(rs)
    free = np.ones(len(rs), dtype=bool)
    for s, lab, b in zip(gs, gl, gb):
        cand = np.nonzero(free & (rl == lab) & (np.abs(rs - s) < 1e-4))[0]
        hit = next((c for c in cand if _iou(b, rb[c].astype(np.float64)) > 0.999), None)
        assert hit is not None, (s, lab, b)
        free[hit] = False
    return len(gs)


def _resized_hw(processor, im):
    from transformers.image_transforms import get_size_with_aspect_ratio
    size = processor.image_processor.size
    return get_size_with_aspect_ratio((im.height, im.width), size.shortest_edge, size.longest_edge)


def _detections_case(gd, images, names, chunk, max_per_img):
    model, processor = gd["model"], gd["processor"]
    tok = processor.tokenizer
    total = 0
    groups = prompts.chunks(names, chunk)
    per_image = [[] for _ in images]
    refs = [[] for _ in images]
    offset = 0
    for group in groups:
        caption, spans = prompts.build_caption(group)
        inputs = processor(images=images, text=[caption] * len(images), return_tensors="pt", truncation=True)
        with torch.no_grad():
            ref = model(**inputs)
        _, logits, boxes = _onnx(gd, inputs)
        enc = prompts.tokenize(tok, caption, gd["desc"]["text"]["max_text_len"])
        tokens = prompts.class_tokens(enc, spans, gd["desc"]["text"]["max_text_len"])
        for i, im in enumerate(images):
            per_image[i].append((logits[i], boxes[i], tokens))
            s, lab, b = _mmdet_reference(ref.logits[i], ref.pred_boxes[i], caption, spans, tok,
                                         _resized_hw(processor, im), (im.height, im.width), max_per_img)
            refs[i].append((s, lab + offset, b))
        offset += len(group)
    for i, im in enumerate(images):
        got = postprocess.detect_chunked(per_image[i], _resized_hw(processor, im), (im.height, im.width), max_per_img)
        ref = tuple(np.concatenate([r[k] for r in refs[i]]) for k in range(3))
        total += _match(got, ref)
    return total


@pytest.mark.parametrize("chunk,max_per_img", [(-1, 300), (2, 300), (-1, 20)])
def test_detections_match_mmdet_rule_generated(gd, chunk, max_per_img):
    total = _detections_case(gd, _generated_images()[:3], ["red block", "noise_thing", "a cat (pet)"], chunk,
                             max_per_img)
    assert total > 0


def test_detections_match_mmdet_rule_real(gd):
    real = _real_images()
    if not real:
        pytest.skip(f"{SHARED} is absent")
    total = 0
    for names in {tuple(n) for _, n in real}:
        images = [im for im, n in real if tuple(n) == names]
        total += _detections_case(gd, images, list(names), chunk=4, max_per_img=300)
    assert total > 0


def test_prompts_caption_and_spans():
    caption, spans = prompts.build_caption(["Red_blood cell", "fish (sea)", "x"])
    assert caption == "Red blood cell. fish . x. "
    assert [caption[s:e] for s, e in spans] == ["Red blood cell", "fish ", "x"]
    assert prompts.chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    enc = prompts.tokenize(_tokenizer(), caption, 256)
    assert prompts.class_tokens(enc, spans, 256) == [[1, 2, 3], [5], [7]]


# The caption_prompt dicts of mmdetection's ODinW configs (copied by hand from the configs, not
# read from the registry), and the caption and name spans mmdetection's to_enhance_text_prompts
# gives them, written out by hand from its code: prefix, then the name (or the class name) with
# the span over it, then the suffix, then ". ".
MMDET_PROMPT_CASES = [
    ("odinw_35", "EgoHands_generic", "mm-grounding-dino", {"hand": {"suffix": " of a person"}},
     "hand of a person. ", [(0, 4)], [[1]]),
    ("odinw_35", "Packages", "grounding-dino", {"package": {"prefix": "there is a ", "suffix": " on the porch"}},
     "there is a package on the porch. ", [(11, 18)], [[4]]),
    ("odinw_35", "pothole", "mm-grounding-dino",
     {"pothole": {"name": "holes", "prefix": "there are some ", "suffix": " on the road"}},
     "there are some holes on the road. ", [(15, 20)], [[4]]),
    ("odinw_13", "NorthAmericaMushrooms", "mm-grounding-dino",
     {"CoW": {"name": "flat mushroom"}, "chanterelle": {"name": "yellow mushroom"}},
     "flat mushroom. yellow mushroom. ", [(0, 13), (15, 30)], [[1, 2], [4, 5]]),
]


@pytest.mark.parametrize("suite,task,family,prompt,caption,spans,tokens", MMDET_PROMPT_CASES)
def test_enhanced_caption_of_mmdet_configs(suite, task, family, prompt, caption, spans, tokens):
    record = json.loads((REPO / suite / f"{task}.json").read_text())
    assert record["mmdet_caption_prompt"][family] == prompt
    names = [c["name"] for c in record["categories"]]
    got, got_spans = prompts.build_caption(names, prompt)
    assert (got, got_spans) == (caption, spans)
    enc = prompts.tokenize(_tokenizer(), got, 256)
    assert prompts.class_tokens(enc, got_spans, 256) == tokens


def test_enhanced_caption_mixes_plain_and_prompted_classes():
    # Keys match the cleaned name ("hand_x" -> "hand x"); a key naming no class does nothing.
    prompt = {"hand x": {"prefix": "a ", "suffix": " of a person"}, "zzz": {"name": "q"}}
    caption, spans = prompts.build_caption(["a_b", "hand_x", "c (d)"], prompt)
    assert caption == "a b. a hand x of a person. c . "
    assert [caption[s:e] for s, e in spans] == ["a b", "hand x", "c "]
    assert prompts.build_caption(["a_b"], None) == prompts.build_caption(["a_b"], {}) == ("a b. ", [(0, 3)])


def test_refusals(gd, tmp_path, capsys):
    if gd["family"] != "grounding-dino":
        pytest.skip("once")
    w = gd["weights"]
    bad = tmp_path / "bad"
    bad.mkdir()
    out = str(tmp_path / "x")
    # One run as a user runs it: a clear message, no traceback.
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "export_model.py"), "--family", "grounding-dino",
                        "--weights", str(bad), "--out", out], capture_output=True, text=True)
    assert r.returncode == 1 and "no config.json" in r.stderr and "Traceback" not in r.stderr

    def main(*extra, weights=bad, family="grounding-dino"):
        code = export_model.main(["--family", family, "--weights", str(weights), "--out", out, *extra])
        return code, capsys.readouterr().err

    cfg = json.loads((w / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "owlv2"}))
    code, err = main()
    assert code == 1 and "model_type 'owlv2' is not a grounding-dino model" in err
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "mm-grounding-dino"}))
    code, err = main()
    assert code == 1 and "is not a grounding-dino model" in err
    (bad / "config.json").write_text(json.dumps(cfg))
    code, err = main()
    assert code == 1 and "no tokenizer.json" in err
    code, err = main(family="mm-grounding-dino")  # a GroundingDino-format folder is accepted as MM, then the tokenizer
    assert code == 1 and "no tokenizer.json" in err
    swin = {**cfg, "backbone_config": {**cfg["backbone_config"], "model_type": "resnet"}}
    (bad / "config.json").write_text(json.dumps(swin))
    code, err = main()
    assert code == 1 and "only transformers' Swin backbone" in err
    code, err = main("--canvas", "8x8", weights=w)
    assert code == 1 and "smaller than a resized image" in err
    code, err = main("--canvas", "big", weights=w)
    assert code == 2 and "expected HxW" in err
    assert not (tmp_path / "x" / "model.json").exists()


def test_model_without_special_tokens_buffer_names_the_transformers_version(tmp_path, monkeypatch, capsys):
    """transformers before the `special_tokens` buffer (5.17 had none): the exporter says which
    transformers it ran with and points to the pinned one instead of failing with a traceback.
    Simulated by deleting the buffer from the loaded tiny model."""
    import transformers
    from transformers import GroundingDinoForObjectDetection

    weights = tmp_path / "weights"
    _tiny_weights(weights, mm=False)
    load = GroundingDinoForObjectDetection.from_pretrained.__func__

    def without_buffer(cls, *args, **kwargs):
        model = load(cls, *args, **kwargs)
        del model.model.special_tokens
        return model

    monkeypatch.setattr(GroundingDinoForObjectDetection, "from_pretrained", classmethod(without_buffer))
    out = tmp_path / "out"
    code = export_model.main(["--family", "grounding-dino", "--weights", str(weights), "--out", str(out)])
    err = capsys.readouterr().err
    pinned = next(line.split("==")[1] for line in (REPO / "scripts" / "requirements-export.txt").read_text().splitlines()
                  if line.startswith("transformers=="))
    assert code == 1 and "Traceback" not in err
    assert (f"transformers {transformers.__version__}: its GroundingDinoForObjectDetection has no special_tokens "
            "buffer") in err
    assert f"transformers=={pinned}" in err
    assert not out.exists()
