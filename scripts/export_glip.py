#!/usr/bin/env python3
"""Turn a GLIP checkpoint into the model directory the odinw engine runs.

    export_glip.py --config glip-t --weights glip_tiny_model_o365_goldg_cc_sbu.pth --out models/glip-t
    export_glip.py --config glip-l --weights glip_large_model.pth --out models/glip-l
    export_glip.py --config glip-t --random-init --out /tmp/glip-t-random --image-size 320x320
    export_glip.py --config glip-t --print-state-dict

Writes image_backbone.onnx, text_encoder.onnx, head.onnx, tokenizer.json and model.json
(see "Exporting GLIP" in the README for the I/O contract). Needs scripts/requirements-export.txt.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from glip_export import checkpoint, model_json  # noqa: E402
from glip_export.config import CONFIGS, get_config  # noqa: E402
from glip_export.model import Glip, state_dict_shapes  # noqa: E402
from glip_export.onnx_export import export_graphs  # noqa: E402
from glip_export.tokenizer import make_tokenizer, special_token_ids  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--image-size {text!r}: expected HxW, e.g. 800x1344")
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"--image-size {text!r}: both sides must be positive multiples of 32")
    return h, w


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, choices=sorted(CONFIGS))
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--weights", type=Path, help="checkpoint (.pth): GLIP's, or train_tiny_glip.py's for tiny")
    src.add_argument("--random-init", action="store_true", help="export freshly initialised weights")
    ap.add_argument("--out", type=Path, help="model directory to write")
    ap.add_argument("--image-size", type=parse_size, help="HxW of the graph input (default: the config's)")
    ap.add_argument("--max-text-len", type=int, help="longest token sequence (default: the config's)")
    ap.add_argument("--fp16", action="store_true", help="float16 weights and compute (I/O stays float32)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    ap.add_argument("--state-key", default="model",
                    help="entry of the checkpoint dict holding the weights (GLIP-T files also have model_ema)")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="unpickle a checkpoint that torch.load(weights_only=True) refuses (trusted files only)")
    ap.add_argument("--print-state-dict", action="store_true", help="print 'name shape' lines and exit")
    ap.add_argument("--source-of", type=Path, metavar="MODEL_DIR",
                    help="record MODEL_DIR/model.json's source (its original checkpoint and sha256) instead of "
                         "--weights: for weights rebuilt from that directory's graphs (model_dir.py)")
    args = ap.parse_args(argv)

    cfg = get_config(args.config)
    if args.print_state_dict:
        with torch.device("meta"):
            model = Glip(cfg)
        for name, shape in state_dict_shapes(model):
            print(name, "x".join(map(str, shape)))
        return 0
    if args.out is None or (args.weights is None and not args.random_init):
        ap.error("--out and one of --weights / --random-init are required (unless --print-state-dict)")
    image_hw = args.image_size or cfg.image_size
    max_text_len = cfg.max_text_len if args.max_text_len is None else args.max_text_len
    if not 2 <= max_text_len <= cfg.bert.max_positions:
        ap.error(f"--max-text-len {max_text_len}: must be in 2..{cfg.bert.max_positions}")

    torch.manual_seed(args.seed)
    model = Glip(cfg).eval()
    if args.weights is not None:
        try:
            state = checkpoint.read_state_dict(args.weights, allow_pickle=args.allow_pickle, key=args.state_key)
            report = checkpoint.load_into(model, state, str(args.weights))
        except checkpoint.CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if report.tunable_linear is not None:
            model.rpn.enable_prompt_tuning(report.tunable_linear)
        for line in report.lines():
            print(f"{args.weights}: {line}")
        source = {"weights": args.weights.name, "sha256": sha256(args.weights)}
        if args.source_of is not None:
            import json
            old = json.loads((args.source_of / "model.json").read_text())["source"]
            source = {**old, "rebuilt": f"{args.weights.name} sha256 {source['sha256']}, "
                                        "recovered from the graphs of the earlier export"}
    else:
        source = {"weights": "random-init", "seed": args.seed}

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta = {"odinw.contract": model_json.CONTRACT, "odinw.config": cfg.name}
    protos = export_graphs(model, out, image_hw, max_text_len, fp16=args.fp16, meta=meta)
    tok = make_tokenizer(cfg.tokenizer)
    write_text_atomic(out / "tokenizer.json", tok.to_str(pretty=True))
    desc = model_json.build(cfg, image_hw, max_text_len, args.fp16, protos, special_token_ids(tok), source)
    write_text_atomic(out / "model.json", model_json.to_json(desc) + "\n")
    print(f"wrote {out} ({cfg.name}, {image_hw[0]}x{image_hw[1]}, text <= {max_text_len}, "
          f"{'fp16' if args.fp16 else 'fp32'}) in {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
