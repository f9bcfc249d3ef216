#!/usr/bin/env python3
"""Write the fine-tuning graphs of a model directory (TRAIN_CONTRACT.md, contract odinw-train-step).

    export_train_step.py --model models/demo --track all --batch 2
    export_train_step.py --model models/glip-t --track prompt --weights glip_tiny_model_o365_goldg_cc_sbu.pth

For each track (prompt = GLIP's language_prompt_v2, linear = linear_prob, full) writes into
`<model>/train/` (or --out): <track>_step.onnx (loss + gradients of the trainable parameters),
<track>_predict.onnx (the head.onnx outputs from the same parameters), <track>_params.bin (the
initial parameters, little-endian f32), <track>.json (the manifest with per-parameter lr and
weight decay) and, for linear, linear_features.onnx (the cached DyHead tower outputs).

The PyTorch model is rebuilt from model.json and the graphs' initializers (a calibration export
maps the ones the exporter renamed; tiny takes ~30 s, GLIP-T/L minutes per 12.5 M renamed
values: prefer --weights for those), or from --weights; either way it must reproduce the three
graphs (checked with onnxruntime) before anything is written. Needs scripts/requirements-export.txt.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from glip_export import model_dir  # noqa: E402
from glip_export.train_step import TRACKS, export_track  # noqa: E402


def export_tracks(md: model_dir.ModelDir, glip, tracks: list[str], out: Path, batch: int, log=print) -> dict:
    """Exports each track into `out`; returns {track: manifest}."""
    meta = {"odinw.config": md.cfg.name}
    return {track: export_track(glip, track, out, batch, md.image_hw, md.max_text_len,
                                {**meta, "odinw.track": track}, log=log)
            for track in tracks}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="model directory (model.json + the three graphs)")
    ap.add_argument("--track", action="append", required=True, choices=[*TRACKS, "all"],
                    help="track to export (repeatable; all = prompt, linear, full)")
    ap.add_argument("--batch", type=int, default=2, help="static batch size of the graphs (default 2)")
    ap.add_argument("--out", type=Path, help="output directory (default: MODEL/train)")
    ap.add_argument("--weights", type=Path, help="checkpoint to take the weights from instead of the graphs")
    ap.add_argument("--state-key", default="model", help="entry of the checkpoint dict holding the weights")
    ap.add_argument("--allow-pickle", action="store_true",
                    help="unpickle a checkpoint that torch.load(weights_only=True) refuses (trusted files only)")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error(f"--batch {args.batch}: must be at least 1")
    tracks = list(TRACKS) if "all" in args.track else list(dict.fromkeys(args.track))

    started = time.time()
    try:
        md = model_dir.read(args.model)
        glip, report = model_dir.load(md, args.weights, args.allow_pickle, args.state_key)
    except model_dir.ModelDirError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for line in report.lines:
        print(f"{report.source}: {line}")
    print(f"rebuilt {md.cfg.name} ({md.image_hw[0]}x{md.image_hw[1]}, T={md.max_text_len}) "
          f"in {time.time() - started:.0f}s")
    out = args.out or args.model / "train"
    for track, desc in export_tracks(md, glip, tracks, out, args.batch).items():
        files = [desc["step"]["file"], desc["predict"]["file"], desc["params_file"], f"{track}.json"]
        if desc["features"]:
            files.append(desc["features"]["file"])
        size = sum((out / f).stat().st_size for f in files)
        print(f"wrote {track}: {len(desc['params'])} trainable tensors, "
              f"{sum(_numel(p['shape']) for p in desc['params']):,} values, {size / 1e6:.1f} MB in {out}")
    print(f"done in {time.time() - started:.0f}s")
    return 0


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    sys.exit(main())
