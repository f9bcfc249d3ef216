"""Training-step graphs for the fine-tuning tracks (TRAIN_CONTRACT.md, protocol §8-9).

For a track, `export_track` writes into `<out>/`:

- `<track>_step.onnx`: (trainable params, data inputs, targets) -> loss, loss_token, loss_reg,
  loss_centerness, grad:<param> for every trainable param. GLIP's loss on precomputed ATSS
  targets (`target_loss`) and its gradient (`torch.autograd.grad`), traced by `make_fx` with
  symbolic shapes and core-ATen decompositions
  (`decompositions`), then exported by torch.onnx, so the graph holds only ordinary ONNX
  operators that stock ONNX Runtime runs. Frozen parameters are graph constants. The DCN and the
  DyConv upsample use their gather / matmul forms (`dyhead`).
- `<track>_predict.onnx`: (trainable params, data inputs) -> the head.onnx outputs.
- `linear_features.onnx` (track `linear` only): p3..p7, text_hidden, attention_mask -> the
  DyHead tower outputs f3..f7, text_fused, which are the linear track's (cached) data inputs.
- `<track>_params.bin`, `<track>.json`: the initial params and the manifest (`train_manifest`).

Contract v2 (every track): the canvas is dynamic. Every graph takes any canvas
whose sides are multiples of 32 (the full track's `images`, or the feature maps and anchor-count
targets of that canvas), and the anchors are computed in the graph from the feature maps' sizes,
as head.onnx does. The batch B and max_text_len T are static. Three things keep a trace from
fixing the canvas: the canvas's dims are symbols while tracing (`_fake_inputs`), duck shaping is
off (equal sizes, e.g. a square canvas's height and width, would otherwise become one symbol),
and the gradient comes from plain `torch.autograd.grad` (`torch.func`'s transforms specialise the
sizes they see); the interpolation matrices are built in the graph from the sizes
(`dyhead.align_corners_weights`, `decompositions.nearest_weights`). The full track's images are
32 x a symbol per side, not a symbol: Swin's sizes are then linear in it and each window padding
one floor division (with the pixel size as the symbol every stage nested another, and sympy had
not finished the forward pass after 10 minutes; now the trace takes about a minute for the demo
model). The graphs are traced at the model's size (at least `HEAD_TRACE_MIN` a side, so no
level has size 1; the full track on a canvas without special sizes, `FULL_TRACE_STEP`,
`FULL_TRACE_MIN`) and tested at several canvases.
"""
from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim
from torch.func import functional_call
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

from . import anchors as anchor_lib
from . import decompositions, onnx_tidy
from .dyhead import DeformConv3x3, DyConv
from .fpn import FPN
from .config import GlipConfig
from .model import Glip, concat_levels
from .onnx_export import HEAD_OUTPUTS, HEAD_TRACE_MIN, LEVELS, OPSET, save_proto
from .target_loss import LOSS_NAMES, TARGET_NAMES, glip_loss_from_targets
from .train_manifest import CONTRACT, TRACKS, Track, manifest, manifest_json, params_bytes, write_bytes_atomic

FEATURE_NAMES = ("f3", "f4", "f5", "f6", "f7", "text_fused")
PROMPT_PARAM = "rpn.tunable_linear.weight"
# GLIP's LINEAR_PROB set for VLDyHead (protocol §8.2), in manifest order.
LINEAR_PROB_PARAMS = (
    "rpn.head.bbox_pred.weight", "rpn.head.bbox_pred.bias",
    "rpn.head.centerness.weight", "rpn.head.centerness.bias",
    "rpn.head.dot_product_projection_text.weight", "rpn.head.dot_product_projection_text.bias",
    "rpn.head.log_scale", "rpn.head.bias_lang", "rpn.head.bias0",
)
# Frozen in the full track: Swin's patch embedding and stage 1 (FREEZE_CONV_BODY_AT 2), and the
# unused cls_logits (USE_DOT_PRODUCT_TOKEN_LOSS).
FULL_FROZEN_PREFIXES = ("backbone.body.patch_embed.", "backbone.body.layers.0.", "rpn.head.cls_logits.")


# ------------------------------------------------------------------ the tracks' forward modules
# Each holds the GLIP submodules it needs under their state-dict names, so `named_parameters`
# and `functional_call` use the official names.
class PromptForward(nn.Module):
    """Cached p3..p7 and text_hidden -> head outputs, with the language_prompt_v2 offset added."""

    data_inputs = (*LEVELS, "text_hidden", "attention_mask")

    def __init__(self, glip: Glip):
        super().__init__()
        self.rpn = glip.rpn

    def forward(self, p3, p4, p5, p6, p7, text_hidden, attention_mask):
        text = self.rpn.head_text(text_hidden)
        return concat_levels(*self.rpn.head([p3, p4, p5, p6, p7], text, attention_mask))


class LinearForward(nn.Module):
    """Cached tower outputs -> head outputs (only the output layers run)."""

    data_inputs = (*FEATURE_NAMES, "attention_mask")

    def __init__(self, glip: Glip):
        super().__init__()
        self.rpn = glip.rpn

    def forward(self, f3, f4, f5, f6, f7, text_fused, attention_mask):
        return concat_levels(*self.rpn.head.predict([f3, f4, f5, f6, f7], text_fused))


class FullForward(nn.Module):
    """Images and token ids -> head outputs (the whole model)."""

    data_inputs = ("images", "input_ids", "attention_mask")

    def __init__(self, glip: Glip):
        super().__init__()
        self.backbone = glip.backbone
        self.language_backbone = glip.language_backbone
        self.rpn = glip.rpn

    def forward(self, images, input_ids, attention_mask):
        feats = self.backbone(images)
        text = self.rpn.head_text(self.language_backbone(input_ids, attention_mask))
        return concat_levels(*self.rpn.head(feats, text, attention_mask))


class LinearFeatures(nn.Module):
    """The linear track's features graph: p3..p7, text_hidden -> DyHead tower outputs."""

    def __init__(self, glip: Glip):
        super().__init__()
        self.rpn = glip.rpn

    def forward(self, p3, p4, p5, p6, p7, text_hidden, attention_mask):
        feats, text = self.rpn.head.run_tower([p3, p4, p5, p6, p7], self.rpn.head_text(text_hidden), attention_mask)
        return (*feats, text)


FORWARDS = {"prompt": PromptForward, "linear": LinearForward, "full": FullForward}
@dataclass
class TrackModel:
    """A track's forward module, its trainable parameter names (manifest order) and sizes."""

    track: Track
    cfg: GlipConfig
    forward: nn.Module
    trainable: list[str]
    batch: int
    image_hw: tuple[int, int]
    text_len: int
    anchors: torch.Tensor  # at image_hw (the manifest's num_anchors)
    trace_hw: tuple[int, int]  # the canvas the graphs are traced at

    @property
    def data_inputs(self) -> tuple[str, ...]:
        return self.forward.data_inputs

    def initial_params(self) -> list[torch.Tensor]:
        params = dict(self.forward.named_parameters())
        return [params[n].detach().clone() for n in self.trainable]


def build_track(glip: Glip, track_name: str, batch: int, image_hw: tuple[int, int], text_len: int) -> TrackModel:
    """The track's forward module over `glip` (shared, not copied; the prompt track adds GLIP's
    zero-initialised `rpn.tunable_linear` if `glip` has none, sized [text_len, hidden])."""
    track = TRACKS[track_name]
    cfg = glip.cfg
    if track_name == "prompt":
        if glip.rpn.tunable_linear is None:
            glip.rpn.enable_prompt_tuning(torch.zeros(text_len, cfg.bert.hidden))
        elif glip.rpn.tunable_linear.weight.shape[0] != text_len:
            weight = glip.rpn.tunable_linear.weight.detach()
            if weight.shape[0] < text_len:
                raise ValueError(f"the model's {PROMPT_PARAM} has {weight.shape[0]} rows, fewer than T={text_len}")
            glip.rpn.enable_prompt_tuning(weight[:text_len].clone())
    forward = FORWARDS[track_name](glip).eval()
    names = [n for n, _ in forward.named_parameters()]
    if track_name == "prompt":
        trainable = [PROMPT_PARAM]
    elif track_name == "linear":
        trainable = list(LINEAR_PROB_PARAMS)
    else:
        trainable = [n for n in names if not n.startswith(FULL_FROZEN_PREFIXES) and n != PROMPT_PARAM]
    missing = [n for n in trainable if n not in names]
    assert not missing, f"trainable params not in the module: {missing}"
    sizes = anchor_lib.feature_sizes(image_hw, cfg.anchor_strides)
    anchors = anchor_lib.grid_anchors(sizes, cfg.anchor_strides, cfg.anchor_sizes)
    # Every level at least 2x2 at the trace canvas; the full track's as FULL_TRACE_* says.
    step, least = (FULL_TRACE_STEP, FULL_TRACE_MIN) if track_name == "full" else (1, HEAD_TRACE_MIN)
    trace_hw = tuple(-(-max(side, least) // step) * step for side in image_hw)
    return TrackModel(track, cfg, forward, trainable, batch, tuple(image_hw), text_len, anchors, trace_hw)


# ------------------------------------------------------------------------------ example inputs
def head_input_shapes(cfg: GlipConfig, batch: int, image_hw, text_len: int, names=(*LEVELS, "text_hidden")):
    """{name: (shape, dtype)} of five feature maps, a text tensor and attention_mask."""
    shapes = {}
    for name, (h, w) in zip(names, anchor_lib.feature_sizes(image_hw, cfg.anchor_strides)):
        shapes[name] = ((batch, cfg.head.channels, h, w), torch.float32)
    shapes[names[5]] = ((batch, text_len, cfg.bert.hidden), torch.float32)
    shapes["attention_mask"] = ((batch, text_len), torch.int64)
    return shapes


def data_shapes(tm: TrackModel) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The data inputs' shapes at the trace canvas."""
    b, t = tm.batch, tm.text_len
    if tm.track.name == "full":
        return {"images": ((b, 3, *tm.trace_hw), torch.float32), "input_ids": ((b, t), torch.int64),
                "attention_mask": ((b, t), torch.int64)}
    names = (*LEVELS, "text_hidden") if tm.track.name == "prompt" else FEATURE_NAMES
    return head_input_shapes(tm.cfg, b, tm.trace_hw, t, names)


def target_shapes(tm: TrackModel) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The targets' shapes at the trace canvas (Q = its anchor count)."""
    b, t = tm.batch, tm.text_len
    q = sum(h * w for h, w in anchor_lib.feature_sizes(tm.trace_hw, tm.cfg.anchor_strides))
    return {"positive": ((b, q), torch.float32), "reg_targets": ((b, q, 4), torch.float32),
            "centerness_targets": ((b, q), torch.float32), "token_targets": ((b, q, t), torch.float32)}


# The full track's canvas in units of 32 pixels (GLIP's size divisibility), up to 4096 pixels,
# as image_backbone.onnx takes it (`onnx_export.export_graphs`).
CANVAS_UNIT = 32
CANVAS_UNITS_MAX = 128
# The full track is traced on a canvas where no size the graph branches on is special, or the
# trace keeps that case only: sides of 4k canvas units (P5 and P6 even, so the stride-2 P6/P7
# convolutions' weight gradients are cropped, where odd sizes need no crop and the crop would be
# left out), and at least 8 units (Swin's last stage has 2 windows a side: with 1, the shift
# mask's broadcast fixes the count).
FULL_TRACE_STEP = 4 * CANVAS_UNIT
FULL_TRACE_MIN = 8 * CANVAS_UNIT


def data_dynamic_shapes(tm: TrackModel) -> list[dict | None]:
    """torch.export dynamic dims of the data inputs: the canvas's (the levels' sizes are related:
    AUTO lets the exporter find how, as for head.onnx). The full track's images take multiples
    of 32, declared as such."""
    if tm.track.name == "full":
        height32 = Dim("height32", min=1, max=CANVAS_UNITS_MAX)
        width32 = Dim("width32", min=1, max=CANVAS_UNITS_MAX)
        return [{2: CANVAS_UNIT * height32, 3: CANVAS_UNIT * width32}, None, None]
    return [{2: Dim.AUTO, 3: Dim.AUTO}] * 5 + [None, None]  # p3..p7 or f3..f7, then the text


TARGET_DYNAMIC_SHAPES = [{1: Dim.AUTO}] * len(TARGET_NAMES)  # the anchor count follows the canvas


def anchors_of(tm: TrackModel, data) -> torch.Tensor:
    """The anchors of the data's canvas, computed from its (possibly symbolic) sizes."""
    if tm.track.name == "full":
        sizes = anchor_lib.feature_sizes(tuple(data[0].shape[-2:]), tm.cfg.anchor_strides)
    else:
        sizes = [tuple(x.shape[-2:]) for x in data[:5]]
    return anchor_lib.grid_anchors(sizes, tm.cfg.anchor_strides, tm.cfg.anchor_sizes)


def example(shapes: dict, seed: int = 0) -> list[torch.Tensor]:
    """Placeholder values of the right shapes (the traced graph does not depend on them)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for name, (shape, dtype) in shapes.items():
        if dtype == torch.int64:
            out.append(torch.ones(shape, dtype=dtype))
        else:
            out.append(torch.rand(shape, generator=g))
    return out


# ------------------------------------------------------------------------------------- tracing
@contextlib.contextmanager
def differentiable_ops():
    """DCN as gathers and the DyConv and FPN upsamples as matmuls, for the duration of a trace."""
    saved = DeformConv3x3.use_gather, DyConv.upsample_with_matmul, FPN.upsample_with_matmul
    DeformConv3x3.use_gather, DyConv.upsample_with_matmul, FPN.upsample_with_matmul = True, True, True
    try:
        yield
    finally:
        DeformConv3x3.use_gather, DyConv.upsample_with_matmul, FPN.upsample_with_matmul = saved


def step_function(tm: TrackModel):
    """f(*params, *data, *targets) -> (loss, loss_token, loss_reg, loss_centerness, *grads)."""
    n_params, n_data = len(tm.trainable), len(tm.data_inputs)
    names = tm.trainable
    forward = tm.forward

    def step(*flat):
        params = list(flat[:n_params])  # traced with requires_grad (`trace_step`)
        data = flat[n_params:n_params + n_data]
        targets = flat[n_params + n_data:]
        with torch.enable_grad():
            deltas, ctr, logits = functional_call(forward, dict(zip(names, params)), tuple(data))
            total, token, reg, centerness = glip_loss_from_targets(
                deltas, ctr, logits, data[-1], anchors_of(tm, data), *targets)
            grads = torch.autograd.grad(total, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        return (total.detach(), token.detach(), reg.detach(), centerness.detach(), *grads)

    return step


def predict_function(tm: TrackModel):
    """f(*params, *data) -> box_deltas, boxes, centerness, token_logits (as head.onnx)."""
    n_params = len(tm.trainable)

    def predict(*flat):
        params, data = flat[:n_params], flat[n_params:]
        deltas, ctr, logits = functional_call(tm.forward, dict(zip(tm.trainable, params)), tuple(data))
        return deltas, anchor_lib.decode(deltas, anchors_of(tm, data)), ctr, logits

    return predict


def trace_step(tm: TrackModel) -> tuple[torch.fx.GraphModule, list[torch.Tensor]]:
    params = [p.requires_grad_(True) for p in tm.initial_params()]
    args = [*params, *example(data_shapes(tm)), *example(target_shapes(tm), seed=1)]
    module_params = list(tm.forward.parameters())
    saved = [p.requires_grad for p in module_params]
    for p in module_params:  # only the substituted trainable tensors are differentiated
        p.requires_grad_(False)
    try:
        # Fake tensors: no compute (GLIP-T's step traces in minutes, not hours); the module's
        # frozen parameters are real tensors and become the graph's constants.
        with differentiable_ops():
            gm = make_fx(step_function(tm), decomposition_table=decompositions.table(), tracing_mode="symbolic",
                         _allow_non_fake_inputs=True)(*_fake_inputs(args, step_dynamic_dims(tm)))
    finally:
        for p, flag in zip(module_params, saved):
            p.requires_grad_(flag)
    return gm, [a.detach() for a in args]


def step_dynamic_shapes(tm: TrackModel) -> list[dict | None]:
    """torch.export's dynamic dims of every step graph input (params, data, targets)."""
    return [None] * len(tm.trainable) + data_dynamic_shapes(tm) + TARGET_DYNAMIC_SHAPES


def step_dynamic_dims(tm: TrackModel) -> list[dict[int, int]]:
    """{dim: unit} of every step graph input's symbolic dims: the size is unit x a symbol (32 for
    the full track's images, 1 for the others)."""
    return [{d: _unit(size) for d, size in (spec or {}).items()} for spec in step_dynamic_shapes(tm)]


def _unit(size) -> int:
    """32 for a torch.export dim declared as 32 * Dim, 1 for a plain or AUTO one."""
    return CANVAS_UNIT if getattr(size, "root", None) is not None else 1


def _fake_inputs(args: list[torch.Tensor], dynamic: list[dict[int, int]]) -> list[torch.Tensor]:
    """Fake tensors whose `dynamic` dims are symbols (the canvas's) and every other dim a
    constant (make_fx's "symbolic" mode alone makes every dim of every input a symbol, parameters
    included, and all their sizes go through sympy). Duck shaping is off, so sizes equal at trace
    time (a square canvas's height and width) stay separate symbols. A dim of unit 32 is 32 x a
    symbol: Swin's sizes are then linear in it (8s, 4s, 2s, s) and its window padding one floor
    division; with the pixel size as the symbol every stage nests another floor division and
    sympy does not finish."""
    shape_env = ShapeEnv(duck_shape=False)
    mode = FakeTensorMode(shape_env=shape_env, allow_non_fake_inputs=True)
    out = []
    for i, (arg, dims) in enumerate(zip(args, dynamic)):
        if any(unit > 1 for unit in dims.values()):
            sizes = list(arg.shape)
            for d, unit in dims.items():
                assert sizes[d] % unit == 0, f"input {i} dim {d}: {sizes[d]} is not a multiple of {unit}"
                sym = shape_env.create_symbol(sizes[d] // unit, ConstantSource(f"input{i}_dim{d}_over{unit}"),
                                              dynamic_dim=DimDynamic.DYNAMIC)
                sizes[d] = unit * shape_env.create_symintnode(sym, hint=sizes[d] // unit)
            with mode:
                out.append(torch.empty(sizes, dtype=arg.dtype))
            continue
        sizes = [DimDynamic.DYNAMIC if d in dims else DimDynamic.STATIC for d in range(arg.dim())]
        out.append(mode.from_tensor(arg, symbolic_context=StatelessSymbolicContext(dynamic_sizes=sizes)))
    return out


class _FunctionModule(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _onnx_export(module: nn.Module, args, input_names, output_names, dynamic_shapes: tuple, path: Path, meta: dict):
    """`dynamic_shapes` as torch.export takes it: one entry per argument of `module.forward`
    (a `*args` forward has one argument, the list of every input's dims)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, tuple(args), dynamo=True, opset_version=OPSET,
                                    input_names=list(input_names), output_names=list(output_names),
                                    dynamic_shapes=dynamic_shapes, optimize=False, verbose=False)
    proto = onnx_tidy.tidy(program.model_proto)
    got = [i.name for i in proto.graph.input]
    if got != list(input_names):
        raise RuntimeError(f"{path.name}: exported inputs {got} differ from {list(input_names)}")
    return save_proto(proto, path, meta)


def step_io(tm: TrackModel) -> tuple[list[str], list[str]]:
    inputs = [*tm.trainable, *tm.data_inputs, *TARGET_NAMES]
    outputs = [*LOSS_NAMES, *(f"grad:{n}" for n in tm.trainable)]
    return inputs, outputs


def export_step(tm: TrackModel, path: Path, meta: dict):
    gm, args = trace_step(tm)
    inputs, outputs = step_io(tm)
    return _onnx_export(gm, args, inputs, outputs, tuple(step_dynamic_shapes(tm)), path, {**meta, "odinw.graph": f"{tm.track.name}_step"})


def export_predict(tm: TrackModel, path: Path, meta: dict):
    args = [*tm.initial_params(), *example(data_shapes(tm))]
    inputs = [*tm.trainable, *tm.data_inputs]
    shapes = [None] * len(tm.trainable) + data_dynamic_shapes(tm)
    with torch.no_grad():
        return _onnx_export(_FunctionModule(predict_function(tm)), args, inputs, HEAD_OUTPUTS, (tuple(shapes),), path,
                            {**meta, "odinw.graph": f"{tm.track.name}_predict"})


def export_features(glip: Glip, tm: TrackModel, path: Path, meta: dict):
    shapes = head_input_shapes(glip.cfg, tm.batch, tm.trace_hw, tm.text_len)
    inputs = list(shapes)
    dynamic = [{2: Dim.AUTO, 3: Dim.AUTO}] * 5 + [None, None]
    with torch.no_grad():
        return _onnx_export(LinearFeatures(glip).eval(), example(shapes), inputs, FEATURE_NAMES, tuple(dynamic), path,
                            {**meta, "odinw.graph": "linear_features"})


def export_track(glip: Glip, track_name: str, out_dir: Path, batch: int, image_hw: tuple[int, int],
                 text_len: int, meta: dict | None = None, log=print, with_predict: bool = True) -> dict:
    """Writes the track's graphs, params and manifest into `out_dir`; returns the manifest.
    (`with_predict=False` skips the predict graph, for benchmarks of the step alone.)"""
    saved = glip.rpn.tunable_linear
    try:
        return _export_track(glip, track_name, out_dir, batch, image_hw, text_len, meta, log, with_predict)
    finally:
        glip.rpn.tunable_linear = saved  # the prompt track's zero offset is not left behind


def _export_track(glip, track_name, out_dir, batch, image_hw, text_len, meta, log, with_predict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"odinw.contract": CONTRACT, **(meta or {})}
    tm = build_track(glip, track_name, batch, image_hw, text_len)
    params = tm.initial_params()
    features = None
    if track_name == "linear":
        started = time.time()
        export_features(glip, tm, out_dir / "linear_features.onnx", meta)
        features = {"file": "linear_features.onnx", "inputs": [*LEVELS, "text_hidden", "attention_mask"],
                    "outputs": list(FEATURE_NAMES)}
        log(f"{track_name}: features graph in {time.time() - started:.0f}s")
    started = time.time()
    export_step(tm, out_dir / f"{track_name}_step.onnx", meta)
    log(f"{track_name}: step graph in {time.time() - started:.0f}s")
    if with_predict:
        started = time.time()
        export_predict(tm, out_dir / f"{track_name}_predict.onnx", meta)
        log(f"{track_name}: predict graph in {time.time() - started:.0f}s")
    write_bytes_atomic(out_dir / f"{track_name}_params.bin", params_bytes(params))
    desc = manifest(tm.track, tm.batch, tm.image_hw, tm.text_len, int(tm.anchors.shape[0]), list(tm.data_inputs),
                    list(zip(tm.trainable, (list(p.shape) for p in params))), features)
    write_bytes_atomic(out_dir / f"{track_name}.json", manifest_json(desc).encode())
    return desc
