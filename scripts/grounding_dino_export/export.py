"""`export_model.py --family grounding-dino|mm-grounding-dino`: checks the weights folder, loads the
model with transformers and writes the two graphs, tokenizer.json and model.json.

grounding-dino loads `GroundingDinoForObjectDetection` (config model_type "grounding-dino");
mm-grounding-dino loads transformers' `MMGroundingDinoForObjectDetection` (model_type
"mm-grounding-dino", transformers >= 4.56) and, for an MM-Grounding-DINO checkpoint converted to the
GroundingDino format (model_type "grounding-dino"), `GroundingDinoForObjectDetection`.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

TYPES = {"grounding-dino": ("grounding-dino",), "mm-grounding-dino": ("mm-grounding-dino", "grounding-dino")}


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def _pinned_transformers() -> str:
    """`transformers==X` as scripts/requirements-export.txt pins it (the version the export is tested with)."""
    try:
        lines = (Path(__file__).resolve().parents[1] / "requirements-export.txt").read_text().splitlines()
    except OSError:
        return "the transformers version"
    return next((ln.split("#")[0].strip() for ln in lines if ln.startswith("transformers==")), "the transformers version")


def export_grounding_dino(family: str, weights: Path, out: Path, canvas: tuple[int, int] | None = None) -> int:
    from export_glip import sha256, write_text_atomic
    from glip_export.model_json import to_json

    from . import graphs, model_json, prompts

    cfg_path = weights / "config.json"
    if not cfg_path.is_file():
        return _fail(f"{weights}: no config.json (expected a save_pretrained folder)")
    try:
        model_type = json.loads(cfg_path.read_text()).get("model_type")
    except (ValueError, UnicodeDecodeError) as err:
        return _fail(f"{cfg_path}: not JSON ({err})")
    if model_type not in TYPES[family]:
        return _fail(f"{cfg_path}: model_type {model_type!r} is not a {family} model (expected "
                     f"{' or '.join(repr(t) for t in TYPES[family])})")
    if model_type == "mm-grounding-dino":
        from transformers import MMGroundingDinoConfig as Config
        from transformers import MMGroundingDinoForObjectDetection as Model
    else:
        from transformers import GroundingDinoConfig as Config
        from transformers import GroundingDinoForObjectDetection as Model
    try:
        cfg = Config.from_pretrained(weights)
    except Exception as err:  # transformers raises several types for a bad config
        return _fail(f"{cfg_path}: not a {model_type} config ({err})")
    try:
        graphs.check_backbone(cfg)
    except graphs.BackboneError as err:
        return _fail(f"{cfg_path}: {err}")
    tok_path = weights / "tokenizer.json"
    if not tok_path.is_file():
        return _fail(f"{weights}: no tokenizer.json (the BERT tokenizer saved with the model)")
    try:
        pre = model_json.read_preprocessor(weights)
    except model_json.PreprocessorError as err:
        return _fail(str(err))
    try:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(tok_path))
    except Exception as err:
        return _fail(f"{tok_path}: not a tokenizers JSON file ({err})")
    special = {}
    for name in prompts.SPECIAL_TOKENS:
        idx = tok.token_to_id(name)
        if idx is None:
            return _fail(f"{tok_path}: no {name!r} token (not a BERT tokenizer)")
        special[name] = idx
    try:
        model = Model.from_pretrained(weights).eval()
    except Exception as err:
        return _fail(f"{weights}: cannot load {Model.__name__} ({err})")
    model.float()
    if getattr(model.model, "special_tokens", None) is None:  # older transformers (5.17 had none)
        import transformers
        return _fail(f"transformers {transformers.__version__}: its {Model.__name__} has no special_tokens buffer "
                     f"(the caption's split ids); install {_pinned_transformers()} "
                     "(scripts/requirements-export.txt)")
    buf = [int(x) for x in model.model.special_tokens.tolist()]
    if buf != list(special.values()):
        return _fail(f"{tok_path}: the ids of {list(special)} are {list(special.values())}, but the model "
                     f"splits the caption at ids {buf} (transformers' SPECIAL_TOKENS): tokenizer and model disagree")

    canvas = canvas or (pre["longest_edge"], pre["longest_edge"])
    if min(canvas) < pre["shortest_edge"] or max(canvas) < pre["longest_edge"]:
        return _fail(f"--canvas {canvas[0]}x{canvas[1]}: smaller than a resized image can be (shortest edge "
                     f"{pre['shortest_edge']}, longest {pre['longest_edge']}); use at least "
                     f"{pre['longest_edge']}x{pre['longest_edge']}")
    files = sorted(p for p in weights.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    source = {"weights": weights.name, "class": Model.__name__, "files": {p.name: sha256(p) for p in files}}
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta = {"odinw.contract": model_json.CONTRACT, "odinw.family": family}
    protos = graphs.export_graphs(model, out, canvas, meta)
    tmp = out / "tokenizer.json.tmp"
    shutil.copyfile(tok_path, tmp)
    tmp.replace(out / "tokenizer.json")
    desc = model_json.build(family, cfg, pre, canvas, protos, special, source)
    write_text_atomic(out / "model.json", to_json(desc) + "\n")
    print(f"wrote {out} ({family}, {Model.__name__}, {cfg.num_queries} queries, text <= {cfg.max_text_len}) "
          f"{canvas[0]}x{canvas[1]} canvas, in {time.time() - started:.0f}s")
    return 0
