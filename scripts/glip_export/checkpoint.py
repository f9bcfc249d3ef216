"""Loading an official GLIP checkpoint (`glip_tiny_model_o365_goldg_cc_sbu.pth`, `glip_large_model.pth`).

The file is a dict with the state dict under "model" (keys prefixed `module.`), beside the
optimizer/scheduler state (glip-checkpoints.md). Unlike GLIP's lenient loader, every parameter of
the module must be found with its shape; the only tolerated differences are:

- `rpn.head.cls_logits.*`: unused at inference, sized by the class count of the run that saved it;
  a shape mismatch keeps the module's own tensor.
- buffers (`relative_position_index`, `position_ids`, `cell_anchors`): rebuilt, never loaded; when
  present they are checked against the rebuilt values.
- `rpn.tunable_linear.weight` (prompt-tuned checkpoints): returned so the caller can enable it.
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

UNUSED_PREFIXES = ("rpn.head.cls_logits.",)
PROMPT_TUNING_KEY = "rpn.tunable_linear.weight"


class CheckpointError(Exception):
    pass


@dataclass
class LoadReport:
    loaded: int = 0
    kept_unused: list[str] = field(default_factory=list)
    buffers_checked: int = 0
    buffer_mismatches: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    tunable_linear: torch.Tensor | None = None

    def lines(self) -> list[str]:
        out = [f"loaded {self.loaded} parameter tensors"]
        if self.kept_unused:
            out.append(f"kept the module's own (unused, shape differs): {', '.join(self.kept_unused)}")
        out.append(f"buffers rebuilt; {self.buffers_checked} present in the file matched")
        if self.buffer_mismatches:
            out.append(f"WARNING buffers differing from the rebuilt values: {', '.join(self.buffer_mismatches)}")
        if self.tunable_linear is not None:
            out.append(f"prompt-tuning layer {PROMPT_TUNING_KEY} {tuple(self.tunable_linear.shape)} found")
        if self.ignored:
            out.append(f"ignored {len(self.ignored)} keys not in the model: {', '.join(self.ignored[:10])}"
                       + (" ..." if len(self.ignored) > 10 else ""))
        return out


def read_state_dict(path: Path, allow_pickle: bool = False, key: str = "model") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip nor a pickle)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError) as err:
        if not allow_pickle:
            detail = next((ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln),
                          str(err).splitlines()[0])
            raise CheckpointError(
                f"{path}: torch.load(weights_only=True) refuses it ({detail}); "
                "if you trust the file, pass --allow-pickle to unpickle it fully") from err
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err2:  # noqa: BLE001 - any unpickling failure is a bad file
            raise CheckpointError(f"{path}: cannot be read ({str(err2).splitlines()[0]})") from err2
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(ckpt).__name__}")
    state = ckpt.get(key, ckpt if key == "model" else None)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state dict under {key!r} (top-level keys: {', '.join(map(str, ckpt))})")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: the state dict under {key!r} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> LoadReport:
    report = LoadReport()
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    missing, wrong = [], []
    with torch.no_grad():
        for name, param in params.items():
            if name not in state:
                missing.append(name)
                continue
            value = state[name]
            if tuple(value.shape) != tuple(param.shape):
                if name.startswith(UNUSED_PREFIXES):
                    report.kept_unused.append(f"{name} {tuple(value.shape)} vs {tuple(param.shape)}")
                    continue
                wrong.append(f"{name}: file {tuple(value.shape)}, model {tuple(param.shape)}")
                continue
            param.copy_(value.to(param.dtype))
            report.loaded += 1
    if missing or wrong:
        problems = [f"missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"] if missing else []
        problems += [f"shape mismatch: {'; '.join(wrong[:8])}"] if wrong else []
        raise CheckpointError(f"{source}: does not fit this config ({len(missing)} missing, {len(wrong)} "
                              f"mismatched): {' | '.join(problems)}")
    for name, buf in buffers.items():
        if name in state:
            report.buffers_checked += 1
            if tuple(state[name].shape) != tuple(buf.shape) or not torch.equal(state[name].to(buf.dtype), buf):
                report.buffer_mismatches.append(name)
    if PROMPT_TUNING_KEY in state and PROMPT_TUNING_KEY not in params:
        report.tunable_linear = state[PROMPT_TUNING_KEY]
    report.ignored = sorted(k for k in state if k not in params and k not in buffers and k != PROMPT_TUNING_KEY)
    return report
