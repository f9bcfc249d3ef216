"""Rebuilding the PyTorch GLIP of a model directory (`model.json` + the three ONNX graphs).

The config, image size and max text length come from `model.json`. The weights come from a
checkpoint (`--weights`, loaded strictly like export_glip.py) or from the graphs' initializers:

1. Initializers named after a parameter are copied (shape checked).
2. The exporter's optimizer stores the others under generated names, transformed: Linear weights
   transposed, GroupNorm affines reshaped, `relative_position_bias_table[index]` gathered and
   permuted, `exp(log_scale)` folded, equal tensors merged into one. These are recovered with a
   *calibration export*: the same config and sizes exported with every such parameter element
   set to a distinct code value (2^22 + element number; scalars get small codes so that `exp`
   stays finite). Walking both graphs node by node (they must have the same operators in the
   same order) pairs each calibration initializer with the model's; the codes it holds say which
   parameter element each of the model's values is (or its `log`, for a folded `exp`).
3. `verify` runs the three graphs in onnxruntime and the rebuilt model in PyTorch on random
   inputs; the result is used only if every output agrees (max |diff| / max |ref| <= 1e-4).

Elements that no graph uses (the unused `cls_logits`, token type 1) keep their initial values.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from . import checkpoint
from .config import CONFIGS, GlipConfig
from .model import Glip, HeadGraph, ImageBackboneGraph, TextEncoderGraph
from .onnx_export import GRAPH_FILES, LEVELS, export_graphs

MODEL_CONTRACT = "odinw-grounding-model"
CODE_BASE = 2.0 ** 22
CODE_LIMIT = int(2 ** 24 - 2 ** 22)  # distinct float32 integers from CODE_BASE up to 2^24
SCALAR_CODE = (0.3, 0.0123)  # scalar i gets 0.3 + 0.0123 * (i + 1)
VERIFY_TOLERANCE = 1e-4


class ModelDirError(Exception):
    pass


@dataclass
class ModelDir:
    path: Path
    desc: dict
    cfg: GlipConfig
    image_hw: tuple[int, int]
    max_text_len: int

    def graph_path(self, name: str) -> Path:
        return self.path / self.desc["graphs"][name]["file"]


@dataclass
class LoadReport:
    source: str
    lines: list[str] = field(default_factory=list)


def read(path: Path) -> ModelDir:
    desc_path = path / "model.json"
    try:
        desc = json.loads(desc_path.read_text())
    except FileNotFoundError:
        raise ModelDirError(f"{desc_path}: no such file (not a model directory)") from None
    except json.JSONDecodeError as err:
        raise ModelDirError(f"{desc_path}: not valid JSON ({err})") from None
    if desc.get("contract") != MODEL_CONTRACT:
        raise ModelDirError(f"{desc_path}: contract {desc.get('contract')!r}, expected {MODEL_CONTRACT!r}")
    if desc.get("family") != "glip" or desc.get("config") not in CONFIGS:
        raise ModelDirError(f"{desc_path}: family {desc.get('family')!r} / config {desc.get('config')!r}: "
                            f"expected a GLIP config ({', '.join(CONFIGS)})")
    try:
        image_hw = tuple(int(v) for v in desc["preprocess"]["input_size"])
        max_text_len = int(desc["text"]["max_text_len"])
        for name in GRAPH_FILES:
            desc["graphs"][name]["file"]
    except (KeyError, TypeError, ValueError) as err:
        raise ModelDirError(f"{desc_path}: missing or malformed field ({err!r})") from None
    if len(image_hw) != 2:
        raise ModelDirError(f"{desc_path}: preprocess.input_size {image_hw}: expected [H, W]")
    return ModelDir(path, desc, CONFIGS[desc["config"]], image_hw, max_text_len)


def load(md: ModelDir, weights: Path | None = None, allow_pickle: bool = False, state_key: str = "model",
         verify_graphs: bool = True, log=print) -> tuple[Glip, LoadReport]:
    """The model directory's GLIP in PyTorch (eval mode, float32)."""
    torch.manual_seed(0)
    glip = Glip(md.cfg).eval()
    if weights is not None:
        try:
            state = checkpoint.read_state_dict(weights, allow_pickle=allow_pickle, key=state_key)
            ck = checkpoint.load_into(glip, state, str(weights))
        except checkpoint.CheckpointError as err:
            raise ModelDirError(str(err)) from None
        if ck.tunable_linear is not None:
            glip.rpn.enable_prompt_tuning(ck.tunable_linear)
        report = LoadReport(str(weights), ck.lines())
    else:
        if md.desc.get("precision", "fp32") != "fp32":
            raise ModelDirError(f"{md.path}: {md.desc.get('precision')} graphs; rebuilding needs fp32 graphs "
                                "or --weights CKPT")
        report = weights_from_graphs(md, glip, log)
    if verify_graphs:
        errors = verify(md, glip)
        report.lines.append("graphs vs rebuilt model, max rel error: "
                            + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
        bad = {k: v for k, v in errors.items() if not v <= VERIFY_TOLERANCE}
        if bad:
            raise ModelDirError(f"{md.path}: the rebuilt PyTorch model does not reproduce the graphs "
                                f"({', '.join(f'{k} {v:.1e}' for k, v in bad.items())} > {VERIFY_TOLERANCE})"
                                + ("" if weights is None else f"; is {weights} the checkpoint these graphs "
                                   "were exported from?"))
    return glip, report


# ------------------------------------------------------------------------ weights from graphs
def _graphs(md: ModelDir) -> dict[str, onnx.ModelProto]:
    out = {}
    for name in GRAPH_FILES:
        path = md.graph_path(name)
        try:
            out[name] = onnx.load(str(path))
        except FileNotFoundError:
            raise ModelDirError(f"{path}: no such file") from None
        except Exception as err:  # noqa: BLE001 - any parse failure is a bad file
            raise ModelDirError(f"{path}: not a readable ONNX model ({err})") from None
    return out


def _initializers(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def weights_from_graphs(md: ModelDir, glip: Glip, log=print) -> LoadReport:
    report = LoadReport(f"{md.path} (ONNX initializers)")
    protos = _graphs(md)
    named: dict[str, np.ndarray] = {}
    for proto in protos.values():
        named.update(_initializers(proto))
    if checkpoint.PROMPT_TUNING_KEY in named:
        glip.rpn.enable_prompt_tuning(torch.from_numpy(named[checkpoint.PROMPT_TUNING_KEY].astype(np.float32)))
    params = dict(glip.named_parameters())
    copied, missing = 0, []
    with torch.no_grad():
        for name, p in params.items():
            value = named.get(name)
            if value is None:
                missing.append(name)
            elif tuple(value.shape) != tuple(p.shape):
                raise ModelDirError(f"{md.path}: initializer {name} has shape {tuple(value.shape)}, "
                                    f"config {md.cfg.name} expects {tuple(p.shape)}")
            else:
                p.copy_(torch.from_numpy(value.astype(np.float32)))
                copied += 1
    report.lines.append(f"copied {copied} parameters found by name")
    if missing:
        recovered, unused = _calibrate(md, glip, protos, missing, log)
        report.lines.append(f"recovered {recovered} renamed/transformed parameters with a calibration export"
                            + (f"; left at their initial values (no graph reads them): {', '.join(unused)}"
                               if unused else ""))
    return report


def _scalar_code(i: int) -> float:
    return SCALAR_CODE[0] + SCALAR_CODE[1] * (i + 1)


def _calibrate(md: ModelDir, glip: Glip, protos: dict, missing: list[str], log) -> tuple[int, list[str]]:
    params = dict(glip.named_parameters())
    scalars = [n for n in missing if params[n].numel() == 1]
    tensors = [n for n in missing if params[n].numel() > 1]
    sizes = [params[n].numel() for n in tensors]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total = int(offsets[-1])
    flat = np.full(total, np.nan)
    scalar_values = {n: np.nan for n in scalars}
    # Passes over whole parameters, each coding at most CODE_LIMIT elements; the other renamed
    # parameters hold random values (never codes) in that pass.
    chunks, current, used = [], [], 0
    for i, size in enumerate(sizes):
        if size > CODE_LIMIT:
            raise ModelDirError(f"{md.path}: {tensors[i]} has {size:,} values, more than a calibration export "
                                f"can code ({CODE_LIMIT:,}); pass --weights CKPT")
        if used + size > CODE_LIMIT:
            chunks.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    chunks.append(current)
    calib = Glip(md.cfg).eval()
    calib.load_state_dict(glip.state_dict(), strict=False)
    if glip.rpn.tunable_linear is not None:
        calib.rpn.enable_prompt_tuning(glip.rpn.tunable_linear.weight.detach().clone())
    cparams = dict(calib.named_parameters())
    rng = np.random.default_rng(0)
    for k, chunk in enumerate(chunks):
        lo = int(offsets[chunk[0]]) if chunk else 0
        hi = int(offsets[chunk[-1] + 1]) if chunk else 0
        with torch.no_grad():
            for name, start, size in zip(tensors, offsets[:-1], sizes):
                if lo <= start < hi:
                    values = CODE_BASE + np.arange(start - lo, start - lo + size)
                else:
                    values = rng.normal(size=size)
                cparams[name].copy_(torch.from_numpy(values.reshape(cparams[name].shape)))
            for i, name in enumerate(scalars):
                cparams[name].fill_(_scalar_code(i))
        log(f"calibration export {k + 1}/{len(chunks)} ({md.cfg.name}, {md.image_hw[0]}x{md.image_hw[1]}) ...")
        with tempfile.TemporaryDirectory() as tmp:
            export_graphs(calib, Path(tmp), md.image_hw, md.max_text_len)
            cprotos = {name: onnx.load(str(Path(tmp) / GRAPH_FILES[name])) for name in GRAPH_FILES}
        for name in GRAPH_FILES:
            pairs = _pair_initializers(cprotos[name], protos[name], md.graph_path(name))
            cinit, minit = _initializers(cprotos[name]), _initializers(protos[name])
            for cname, mname in pairs.items():
                _decode(cinit[cname].astype(np.float64), minit[mname].astype(np.float64), lo, hi, flat,
                        scalars, scalar_values)
    recovered, unused = 0, []
    with torch.no_grad():
        for name, start, size in zip(tensors, offsets[:-1], sizes):
            values = flat[start:start + size]
            known = ~np.isnan(values)
            if known.any():
                p = params[name].detach().numpy().reshape(-1).astype(np.float64)
                p[known] = values[known]
                params[name].copy_(torch.from_numpy(p.reshape(params[name].shape)))
                recovered += 1
            if not known.all():
                unused.append(name if not known.any() else f"{name} ({int((~known).sum())} of {size} elements)")
        for name in scalars:
            if np.isnan(scalar_values[name]):
                unused.append(name)
            else:
                params[name].fill_(scalar_values[name])
                recovered += 1
    return recovered, unused


def _pair_initializers(calib: onnx.ModelProto, model: onnx.ModelProto, path: Path) -> dict[str, str]:
    """calibration initializer name -> the model's, from the two graphs' nodes in order."""
    cnodes, mnodes = calib.graph.node, model.graph.node
    cinit = {i.name for i in calib.graph.initializer}
    minit = {i.name for i in model.graph.initializer}
    if [n.op_type for n in cnodes] != [n.op_type for n in mnodes]:
        raise ModelDirError(f"{path}: its operators differ from a fresh export of the same config (exported "
                            "by another version of the exporter?); pass --weights CKPT")
    pairs: dict[str, str] = {}
    for cn, mn in zip(cnodes, mnodes):
        for ci, mi in zip(cn.input, mn.input):
            if ci in cinit:
                if mi not in minit or pairs.setdefault(ci, mi) != mi:
                    raise ModelDirError(f"{path}: cannot pair initializer {ci} of the calibration export with "
                                        f"the graph's {mi}; pass --weights CKPT")
    return pairs


def _decode(cvals, mvals, lo, hi, flat, scalars, scalar_values) -> None:
    c, m = cvals.reshape(-1), mvals.reshape(-1)
    if c.shape != m.shape or c.size == 0:
        return
    codes = c - CODE_BASE
    is_code = (codes >= 0) & (codes < hi - lo) & (codes == np.round(codes))
    if is_code.all():
        index = codes.astype(np.int64) + lo
        known = ~np.isnan(flat[index])
        if known.any() and not np.allclose(flat[index][known], m[known], rtol=1e-6, atol=0):
            raise ModelDirError("inconsistent values for one parameter element in two initializers")
        flat[index] = m
        return
    if c.size == 1 and scalars:
        for i, name in enumerate(scalars):
            code = _scalar_code(i)
            if np.isclose(c[0], code, rtol=1e-6, atol=0):
                scalar_values[name] = m[0]
            elif np.isclose(c[0], np.exp(code), rtol=1e-6, atol=0) and m[0] > 0:
                scalar_values[name] = float(np.log(m[0]))


# ------------------------------------------------------------------------------ verification
def verify(md: ModelDir, glip: Glip, batch: int = 2, seed: int = 0) -> dict[str, float]:
    """Max relative error of each graph's outputs (onnxruntime) against the rebuilt model."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed)
    cfg, t = md.cfg, md.max_text_len
    images = torch.randn(batch, 3, *md.image_hw, generator=g)
    mask = torch.zeros(batch, t, dtype=torch.long)
    for b in range(batch):
        mask[b, : max(2, t * (b + 1) // (batch + 1))] = 1
    ids = torch.randint(1, cfg.bert.vocab_size, (batch, t), generator=g) * mask
    with torch.no_grad():
        feats = ImageBackboneGraph(glip)(images)
        text = TextEncoderGraph(glip)(ids, mask)
        head = HeadGraph(glip, md.image_hw)(*feats, text, mask)
    sessions = {k: ort.InferenceSession(str(md.graph_path(k)), providers=["CPUExecutionProvider"])
                for k in GRAPH_FILES}
    errors = {}
    got = sessions["image_backbone"].run(None, {"images": images.numpy()})
    errors["image_backbone"] = max(_rel(a, b) for a, b in zip(got, feats))
    got = sessions["text_encoder"].run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    errors["text_encoder"] = _rel(got[0], text)
    feed = {lv: f.numpy() for lv, f in zip(LEVELS, feats)}
    feed.update(text_hidden=text.numpy(), attention_mask=mask.numpy())
    got = sessions["head"].run(None, feed)
    errors["head"] = max(_rel(a, b) for a, b in zip(got, head))
    return errors


def _rel(actual, expected) -> float:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected, dtype=np.float64)
    scale = np.abs(e).max()
    return float(np.abs(a - e).max() / (scale if scale > 0 else 1.0))
