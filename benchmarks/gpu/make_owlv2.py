#!/usr/bin/env python3
"""A seeded random OWLv2 checkpoint and its odinw export, for the OWLv2 benchmarks.

    make_owlv2.py --config base|tiny --weights DIR --out MODEL

- base: the hub checkpoints' geometry (google/owlv2-base-patch16*): ViT-B/16 vision tower
  (12 layers, width 768, 12 heads) on a 960x960 input (3600 patches), a 12-layer width-512
  text model with 16 positions, 512-d projection. Only the vocabulary differs: the export test's
  small CLIP-style BPE tokenizer (tests/export/test_owlv2.py `_tiny_clip_tokenizer`; no network
  for CLIP's 49408 tokens), which changes the size of one embedding table, not the compute.
- tiny: the export test's own tiny model (`_tiny_weights`, 64x64 input, 2 layers) with a
  64-token text model, as tests/it/owlv2_eval.rs exports it (the smoke tests).

Weights: torch.manual_seed(0) default init, the three heads' linear layers scaled like a
trained head (as the export test does: otherwise logits are in the hundreds and boxes saturate),
saved with save_pretrained beside an Owlv2Processor; then `scripts/export_model.py --family owlv2`
writes the ONNX graphs and model.json. Prints one JSON line (config, seconds, sizes).
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


def base_weights(path: Path) -> None:
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    import test_owlv2

    tok, vocab_size = test_owlv2._tiny_clip_tokenizer(16)
    cfg = Owlv2Config(
        text_config=dict(vocab_size=vocab_size, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=16,
                         pad_token_id=tok.convert_tokens_to_ids("!"), bos_token_id=vocab_size - 2,
                         eos_token_id=vocab_size - 1),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=960, patch_size=16),
        projection_dim=512)
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(cfg).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for head in (model.box_head, model.objectness_head, model.class_head):
            for layer in head.modules():
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.7 / layer.in_features ** 0.5)
    model.save_pretrained(path)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 960, "width": 960}),
                   tokenizer=tok).save_pretrained(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["base", "tiny"], required=True)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.config == "base":
        base_weights(args.weights)
    else:
        import test_owlv2
        test_owlv2._tiny_weights(args.weights, text_len=64)
    t1 = time.time()
    import export_model
    if export_model.main(["--family", "owlv2", "--weights", str(args.weights), "--out", str(args.out)]) != 0:
        return 1
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir()) if p.suffix == ".onnx"}
    print(json.dumps({"config": args.config, "weights_s": round(t1 - t0, 1), "export_s": round(time.time() - t1, 1),
                      "onnx_bytes": sizes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
