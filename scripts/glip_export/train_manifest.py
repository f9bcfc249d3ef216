"""The manifest of a track's training graphs (`<track>.json`, contract `odinw-train-step` v2, or v1 for a fixed canvas) and
its initial-parameter file, with GLIP's optimizer settings (protocol §8.3, TRAIN_CONTRACT.md).

Per parameter: lr = the track's base lr (LANG_LR 1e-5 for `language_backbone` names in the full
track); names containing "bias" get lr x 2 and weight decay 0 (this also matches Swin's
`relative_position_bias_table`, `bias_lang` and `bias0`, as in GLIP's make_optimizer).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .onnx_export import HEAD_OUTPUTS
from .target_loss import LOSS_NAMES

CONTRACT = "odinw-train-step"
CONTRACT_VERSION = 2
CANVAS = "dynamic"  # v2: the graphs take any canvas whose sides are multiples of 32
LANG_LR = 1e-5
BIAS_LR_FACTOR = 2.0
OPTIMIZER = {"kind": "adamw", "betas": [0.9, 0.999], "eps": 1e-8, "clip_grad_norm": 1.0}


@dataclass(frozen=True)
class Track:
    name: str
    glip_override: str  # GLIP's SOLVER.TUNING_HIGHLEVEL_OVERRIDE
    base_lr: float
    weight_decay: float
    lang_lr: float | None = None


TRACKS = {
    "prompt": Track("prompt", "language_prompt_v2", 0.05, 0.25),
    "linear": Track("linear", "linear_prob", 1e-4, 0.05),
    "full": Track("full", "full", 1e-4, 0.05, lang_lr=LANG_LR),
}


def param_group(track: Track, name: str) -> tuple[float, float]:
    """(lr, weight_decay) of one parameter by GLIP's make_optimizer (protocol §8.3)."""
    lr, wd = track.base_lr, track.weight_decay
    if "language_backbone" in name and track.lang_lr is not None:
        lr = track.lang_lr
    # BACKBONE_BODY_LR_FACTOR and WEIGHT_DECAY_NORM_FACTOR are 1.0 in GLIP's configs.
    if "bias" in name:
        lr, wd = lr * BIAS_LR_FACTOR, 0.0
    return lr, wd


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def params_bytes(params: list[torch.Tensor]) -> bytes:
    return b"".join(p.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes() for p in params)


def manifest(track: Track, batch: int, image_hw, text_len: int, num_anchors: int, data_inputs: list[str],
             params: list[tuple[str, list[int]]], features: dict | None) -> dict:
    """The `<track>.json` manifest (contract v2: graphs for any canvas); `params` = (name, shape)
    in graph-input order."""
    entries = []
    for name, shape in params:
        lr, wd = param_group(track, name)
        entries.append({"name": name, "shape": list(shape), "lr": lr, "weight_decay": wd})
    return {
        "contract": CONTRACT,
        "contract_version": CONTRACT_VERSION,
        "track": track.name,
        "glip_override": track.glip_override,
        "batch": batch,
        "image_size": list(image_hw),
        "canvas": CANVAS,
        "max_text_len": text_len,
        "num_anchors": num_anchors,
        "features": features,
        "data_inputs": list(data_inputs),
        "step": {"file": f"{track.name}_step.onnx",
                 "outputs": [*LOSS_NAMES, *(f"grad:{name}" for name, _ in params)]},
        "predict": {"file": f"{track.name}_predict.onnx", "outputs": list(HEAD_OUTPUTS)},
        "params_file": f"{track.name}_params.bin",
        "params": entries,
        "optimizer": {**OPTIMIZER, "base_lr": track.base_lr, "weight_decay": track.weight_decay},
    }


def manifest_json(desc: dict) -> str:
    """One key per line; a param entry or a short list on one line."""
    lines = ["{"]
    items = list(desc.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if key == "params":
            rows = [f"    {json.dumps(e)}" for e in value]
            lines.append('  "params": [\n' + ",\n".join(rows) + f"\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
