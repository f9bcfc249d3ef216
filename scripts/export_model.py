#!/usr/bin/env python3
"""Export a Hugging Face transformers detector into an odinw model directory.

    export_model.py --family owlv2|grounding-dino|mm-grounding-dino --weights DIR --out MODEL

DIR is any `save_pretrained` folder of `Owlv2ForObjectDetection`, `GroundingDinoForObjectDetection`
or `MMGroundingDinoForObjectDetection` (config.json, weights, tokenizer.json and, optionally, the
processor config). Writes text_encoder.onnx, image_detector.onnx, tokenizer.json and model.json
(see "Model families" in the README and scripts/grounding_dino_export/PROTOCOL.md). GLIP has its
own exporter (export_glip.py). Needs scripts/requirements-export.txt.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FAMILIES = ("owlv2", "grounding-dino", "mm-grounding-dino")


def export_owlv2(weights: Path, out: Path) -> int:
    from transformers import Owlv2Config, Owlv2ForObjectDetection

    from export_glip import sha256, write_text_atomic
    from glip_export.model_json import to_json
    from owlv2_export import graphs, model_json

    if not (weights / "config.json").is_file():
        print(f"error: {weights}: no config.json (expected a save_pretrained folder)", file=sys.stderr)
        return 1
    try:
        cfg = Owlv2Config.from_pretrained(weights)
    except Exception as err:  # transformers raises several types for a bad config
        print(f"error: {weights / 'config.json'}: not an OWLv2 config ({err})", file=sys.stderr)
        return 1
    tok_path = weights / "tokenizer.json"
    if not tok_path.is_file():
        print(f"error: {weights}: no tokenizer.json (the CLIP tokenizer saved with the model)", file=sys.stderr)
        return 1
    try:
        pre = model_json.read_preprocessor(weights, cfg.vision_config.image_size)
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(tok_path))
    except model_json.PreprocessorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        print(f"error: {tok_path}: not a tokenizers JSON file ({err})", file=sys.stderr)
        return 1
    special = {}
    for name in ("<|startoftext|>", "<|endoftext|>"):
        idx = tok.token_to_id(name)
        if idx is None:
            print(f"error: {tok_path}: no {name} token (not a CLIP tokenizer)", file=sys.stderr)
            return 1
        special[name] = idx
    if special["<|endoftext|>"] != max(tok.get_vocab().values()):
        print(f"error: {tok_path}: <|endoftext|> is not the largest id (transformers pools the text at the "
              "largest id)", file=sys.stderr)
        return 1
    try:
        model = Owlv2ForObjectDetection.from_pretrained(weights, attn_implementation="eager").eval()
    except Exception as err:
        print(f"error: {weights}: cannot load Owlv2ForObjectDetection ({err})", file=sys.stderr)
        return 1
    model.float()

    files = sorted(p for p in weights.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    source = {"weights": weights.name, "files": {p.name: sha256(p) for p in files}}
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta = {"odinw.contract": model_json.CONTRACT, "odinw.family": model_json.FAMILY}
    protos = graphs.export_graphs(model, out, meta)
    tmp = out / "tokenizer.json.tmp"
    shutil.copyfile(tok_path, tmp)
    tmp.replace(out / "tokenizer.json")
    desc = model_json.build(cfg, pre, protos, special, source)
    write_text_atomic(out / "model.json", to_json(desc) + "\n")
    print(f"wrote {out} (owlv2, {pre['size']}x{pre['size']}, text <= {cfg.text_config.max_position_embeddings}) "
          f"in {time.time() - started:.0f}s")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, help="model family: " + ", ".join(FAMILIES))
    ap.add_argument("--weights", type=Path, required=True, help="save_pretrained folder of the model")
    ap.add_argument("--out", type=Path, required=True, help="model directory to write")
    ap.add_argument("--canvas", metavar="HxW", help="grounding-dino: the fixed image size of image_detector.onnx "
                    "(default: longest_edge x longest_edge of the image processor, 1333x1333)")
    args = ap.parse_args(argv)
    if args.family not in FAMILIES:
        print(f"error: --family {args.family!r}: unknown; families: {', '.join(FAMILIES)} "
              "(GLIP: scripts/export_glip.py)", file=sys.stderr)
        return 2
    if not args.weights.is_dir():
        print(f"error: --weights {args.weights}: not a directory", file=sys.stderr)
        return 1
    if args.family == "owlv2":
        return export_owlv2(args.weights, args.out)
    canvas = None
    if args.canvas:
        try:
            h, w = (int(x) for x in args.canvas.lower().split("x"))
            if h <= 0 or w <= 0:
                raise ValueError
        except ValueError:
            print(f"error: --canvas {args.canvas!r}: expected HxW, e.g. 1333x1333", file=sys.stderr)
            return 2
        canvas = (h, w)
    from grounding_dino_export.export import export_grounding_dino
    return export_grounding_dino(args.family, args.weights, args.out, canvas)


if __name__ == "__main__":
    sys.exit(main())
