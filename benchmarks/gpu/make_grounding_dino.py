#!/usr/bin/env python3
"""A seeded random Grounding DINO checkpoint and its odinw export, for the GPU benchmark.

    make_grounding_dino.py --config swin-t|tiny --weights DIR --out MODEL [--canvas 800x1333]

- swin-t: Grounding-DINO-T's geometry, transformers' `GroundingDinoConfig` defaults (Swin-T
  backbone, BERT-base text model with bert-base-uncased's vocabulary from the committed
  tokenizer, d_model 256, 6 + 6 layers, 900 queries), torch.manual_seed(0) default init;
  processor: shortest edge 800, longest 1333.
- tiny: the export test's tiny model (tests/export/test_grounding_dino.py `_tiny_weights`).
Then `scripts/export_model.py --family grounding-dino --canvas` writes the graphs and model.json.
Prints one JSON line (config, seconds, sizes).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "export"))


def swin_t_weights(path: Path) -> None:
    import torch
    from transformers import (BertConfig, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor)

    import test_grounding_dino

    tok = test_grounding_dino._tokenizer()
    cfg = GroundingDinoConfig(text_config=BertConfig(vocab_size=tok.vocab_size))
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(cfg).eval()
    model.save_pretrained(path)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=tok).save_pretrained(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["swin-t", "tiny"], required=True)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--canvas", default=None, help="HxW of image_detector.onnx (the exporter's default if absent)")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.config == "swin-t":
        swin_t_weights(args.weights)
    else:
        import test_grounding_dino
        test_grounding_dino._tiny_weights(args.weights, mm=False)
    t1 = time.time()
    import export_model
    cmd = ["--family", "grounding-dino", "--weights", str(args.weights), "--out", str(args.out)]
    if args.canvas and args.config != "tiny":
        cmd += ["--canvas", args.canvas]
    if export_model.main(cmd) != 0:
        return 1
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir()) if p.suffix == ".onnx"}
    print(json.dumps({"config": args.config, "weights_s": round(t1 - t0, 1), "export_s": round(time.time() - t1, 1),
                      "onnx_bytes": sizes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
