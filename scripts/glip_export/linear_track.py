"""The `linear` fine-tuning track (GLIP's linear_prob) as one PyTorch loss module, for backend 2.

Backend 2 of issue #8 trains with ONNX Runtime's training API, which differentiates an ONNX graph
that already computes the loss. For the linear track that graph starts after the DyHead tower
(whose outputs are cached, TRAIN_CONTRACT.md):

- `read_head_params(head_onnx)`: the track's parameters and the frozen per-level `scales`, read
  from the initializers of an exported `head.onnx` (the exporter folds two of them: the text
  projection is stored transposed, `log_scale` as exp(log_scale); shared equal scales are
  deduplicated);
- `tower_outputs(head_onnx)`: the names of the tower outputs inside head.onnx, so the features
  graph (p3..p7, text_hidden, attention_mask -> f3..f7, text_fused) can be cut out of it;
- `LinearTrackLoss`: (f3..f7, text_fused, attention_mask, targets) -> loss, loss_token, loss_reg,
  loss_centerness, GLIP's loss (protocol §9) written with masks instead of indexing so the graph
  has no data-dependent shapes and only operators ONNX Runtime can differentiate. The anchors
  are computed from f3..f7's sizes (`anchors.grid_anchors`, as the v2 step graphs do), so the
  graph takes any canvas: the levels' heights and widths and the targets' anchor count Q are
  symbolic (contract `odinw-ort-training` v2, canvas dynamic). Its parameters carry the
  state-dict names (`rpn.head.bbox_pred.weight`, ...);
- `export_loss_graph`: that module as ONNX (opset 19, IR 10: within onnxruntime-training 1.19.2's
  limits), parameters as initializers under their state-dict names, traced at `TRACE_HW`.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from . import anchors as anchor_lib
from .atss_loss import FOCAL_ALPHA, FOCAL_GAMMA, REG_LOSS_WEIGHT
from .bert import CLAMP
from .config import GlipConfig
from .dyhead import Scale

# GLIP's linear_prob parameter set (TRAIN_CONTRACT.md, track `linear`).
TRAINABLE = (
    "rpn.head.bbox_pred.weight", "rpn.head.bbox_pred.bias",
    "rpn.head.centerness.weight", "rpn.head.centerness.bias",
    "rpn.head.dot_product_projection_text.weight", "rpn.head.dot_product_projection_text.bias",
    "rpn.head.log_scale", "rpn.head.bias_lang", "rpn.head.bias0",
)
LEVELS = 5
FROZEN = tuple(f"rpn.head.scales.{i}.scale" for i in range(LEVELS))
FEATURES = tuple(f"f{i + 3}" for i in range(LEVELS))
DATA_INPUTS = (*FEATURES, "text_fused", "attention_mask")
TARGETS = ("positive", "reg_targets", "centerness_targets", "token_targets")
LOSS_OUTPUTS = ("loss", "loss_token", "loss_reg", "loss_centerness")


class HeadFormatError(Exception):
    pass


class _Graph:
    def __init__(self, path):
        self.path = path
        model = onnx.load(str(path))
        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def array(self, name: str) -> np.ndarray:
        if name not in self.inits:
            raise HeadFormatError(f"{self.path}: no initializer {name!r}")
        return numpy_helper.to_array(self.inits[name]).astype(np.float32)

    def only(self, nodes: list, what: str):
        if len(nodes) != 1:
            raise HeadFormatError(f"{self.path}: expected one {what}, found {len(nodes)}")
        return nodes[0]

    def users(self, name: str, op: str | None = None) -> list[onnx.NodeProto]:
        return [n for n in self.consumers.get(name, []) if op is None or n.op_type == op]


def _level_convs(g: _Graph) -> list[onnx.NodeProto]:
    """The bbox_pred Conv of each level, in level order (graph order, checked by the caller)."""
    convs = g.users("rpn.head.bbox_pred.weight", "Conv")
    if len(convs) != LEVELS:
        raise HeadFormatError(f"{g.path}: expected {LEVELS} bbox_pred convolutions, found {len(convs)}")
    return convs


def read_head_params(head_onnx) -> dict[str, np.ndarray]:
    """The linear track's parameters and the frozen scales, by state-dict name, from head.onnx."""
    g = _Graph(head_onnx)
    out = {name: g.array(name) for name in TRAINABLE if name in g.inits}
    proj_bias = "rpn.head.dot_product_projection_text.bias"
    if "rpn.head.dot_product_projection_text.weight" not in out:
        # Linear(x) = x @ W^T + b: the exporter stores W^T as the MatMul's constant.
        add = g.only(g.users(proj_bias, "Add"), f"Add of {proj_bias}")
        producer = [n for n in g.model.graph.node if n.op_type == "MatMul" and set(n.output) & set(add.input)]
        matmul = g.only(producer, "MatMul feeding the text projection's Add")
        const = [i for i in matmul.input if i in g.inits]
        out["rpn.head.dot_product_projection_text.weight"] = g.array(g.only(const, "projection weight")).T.copy()
    if "rpn.head.log_scale" not in out:
        # logits / exp(log_scale): the Div's divisor is the folded temperature, the same for every level.
        transposed = g.only([n for n in g.model.graph.node if n.op_type == "Transpose"
                             and set(n.input) & {o for a in g.users(proj_bias, "Add") for o in a.output}],
                            "Transpose of the projected text")
        divisors = set()
        for mm in g.users(transposed.output[0], "MatMul"):
            for div in g.users(mm.output[0], "Div"):
                divisors.add(div.input[1])
        name = g.only(sorted(divisors), "temperature constant")
        out["rpn.head.log_scale"] = np.log(g.array(name)).astype(np.float32).reshape(1)
    for level, conv in enumerate(_level_convs(g)):
        muls = g.users(conv.output[0], "Mul")
        scale = g.only([i for m in muls for i in m.input if i in g.inits], f"scale of level {level}")
        out[FROZEN[level]] = g.array(scale).reshape(1)
    missing = [n for n in (*TRAINABLE, *FROZEN) if n not in out]
    if missing:
        raise HeadFormatError(f"{head_onnx}: cannot find {', '.join(missing)}")
    return out


def tower_outputs(head_onnx) -> tuple[list[str], str]:
    """(the five level features fed to bbox_pred, the text fed to F.normalize) inside head.onnx."""
    g = _Graph(head_onnx)
    feats = [conv.input[0] for conv in _level_convs(g)]
    matmul = g.only(g.users("rpn.head.bias_lang", "MatMul"), "MatMul with bias_lang")
    emb = matmul.input[0] if matmul.input[1] == "rpn.head.bias_lang" else matmul.input[1]
    div = g.only([n for n in g.model.graph.node if emb in n.output and n.op_type == "Div"], "normalising Div")
    return feats, div.input[0]


def extract_features_graph(head_onnx, out_path) -> onnx.ModelProto:
    """Writes the DyHead tower of head.onnx as its own graph with outputs f3..f7, text_fused."""
    feats, text = tower_outputs(head_onnx)
    model = onnx.load(str(head_onnx))
    inputs = [i.name for i in model.graph.input]
    sub = onnx.utils.Extractor(model).extract_model(inputs, [*feats, text])
    renames = dict(zip([*feats, text], [*FEATURES, "text_fused"]))
    for node in sub.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for out in sub.graph.output:
        out.name = renames[out.name]
    sub.ir_version = model.ir_version
    del sub.metadata_props[:]
    entry = sub.metadata_props.add()
    entry.key, entry.value = "odinw.graph", "linear_features"
    onnx.save(sub, str(out_path))
    return sub


class _LinearHead(nn.Module):
    """The VLDyHead modules after the tower, with VLDyHead's attribute names."""

    def __init__(self, cfg: GlipConfig):
        super().__init__()
        c, hidden = cfg.head.channels, cfg.bert.hidden
        self.bbox_pred = nn.Conv2d(c, 4, kernel_size=1)
        self.centerness = nn.Conv2d(c, 1, kernel_size=1)
        self.dot_product_projection_text = nn.Linear(hidden, c)
        self.scales = nn.ModuleList(Scale() for _ in range(LEVELS))
        self.log_scale = nn.Parameter(torch.zeros(1))
        self.bias_lang = nn.Parameter(torch.zeros(hidden))
        self.bias0 = nn.Parameter(torch.zeros(1))

    def forward(self, feats, text):
        """Mirrors the end of `VLDyHead.forward` -> deltas [B,Q,4], centerness [B,Q], logits [B,Q,T]."""
        emb = F.normalize(text, p=2, dim=-1)
        proj = self.dot_product_projection_text(emb / 2.0)
        # GLIP writes emb @ bias_lang; ONNX Runtime 1.19's MatMul gradient fails shape inference
        # on a 1-D operand ("FusedMatMul ... Incompatible dimensions"), and the exporter folds
        # an unsqueezed [H,1] operand back to 1-D, so it is a product and a sum here.
        token_bias = (emb * self.bias_lang).sum(dim=-1) + self.bias0
        temperature = self.log_scale.exp()
        boxes, ctrs, logits = [], [], []
        for level, x in enumerate(feats):
            boxes.append(self.scales[level](self.bbox_pred(x)).flatten(2).transpose(1, 2))
            ctrs.append(self.centerness(x).flatten(1))
            queries = x.flatten(2).transpose(1, 2)
            logit = (queries @ proj.transpose(-1, -2)) / temperature + token_bias[:, None, :]
            logits.append(logit.clamp(-CLAMP, CLAMP))
        return torch.cat(boxes, dim=1), torch.cat(ctrs, dim=1), torch.cat(logits, dim=1)


class _Rpn(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.head = _LinearHead(cfg)


def _bce_with_logits(x, t):
    """Elementwise BCE-with-logits, max(x,0) - x*t + log(1 + exp(-|x|))."""
    return torch.relu(x) - x * t + torch.log(1 + torch.exp(-x.abs()))


def _giou_losses(pred_deltas, target_deltas, anchors):
    """1 - GIoU per anchor, [B,Q], as `atss_loss.giou_loss` (decoded boxes, no +1, 1e-7)."""
    p = anchor_lib.decode(pred_deltas, anchors)
    t = anchor_lib.decode(target_deltas, anchors)
    px1, py1 = p[..., 0], p[..., 1]
    px2, py2 = torch.maximum(px1, p[..., 2]), torch.maximum(py1, p[..., 3])
    tx1, ty1, tx2, ty2 = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
    p_area = (px2 - px1) * (py2 - py1)
    t_area = (tx2 - tx1) * (ty2 - ty1)
    ix1, iy1 = torch.maximum(px1, tx1), torch.maximum(py1, ty1)
    ix2, iy2 = torch.minimum(px2, tx2), torch.minimum(py2, ty2)
    inter = torch.where((ix2 > ix1) & (iy2 > iy1), (ix2 - ix1) * (iy2 - iy1), torch.zeros_like(ix1))
    ex1, ey1 = torch.minimum(px1, tx1), torch.minimum(py1, ty1)
    ex2, ey2 = torch.maximum(px2, tx2), torch.maximum(py2, ty2)
    enclosing = (ex2 - ex1) * (ey2 - ey1) + 1e-7
    union = p_area + t_area - inter + 1e-7
    return 1 - (inter / union - (enclosing - union) / enclosing)


def masked_glip_loss(deltas, centerness, logits, attention_mask, anchors, positive, reg_targets,
                     centerness_targets, token_targets):
    """GLIP's §9 loss from the contract's dense targets -> (total, token, reg, centerness)."""
    num_pos = positive.sum().clamp(min=1.0)
    real_tokens = (attention_mask > 0).to(logits.dtype)[:, None, :]
    p = torch.sigmoid(logits)
    t = token_targets
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = FOCAL_ALPHA * t + (1 - FOCAL_ALPHA) * (1 - t)
    focal = alpha_t * _bce_with_logits(logits, t) * (1 - p_t) ** FOCAL_GAMMA
    loss_token = (focal * real_tokens).sum() / num_pos
    giou = _giou_losses(deltas, reg_targets, anchors)
    loss_reg = REG_LOSS_WEIGHT * (giou * centerness_targets).sum() / centerness_targets.sum().clamp(min=1e-6)
    loss_ctr = (_bce_with_logits(centerness, centerness_targets) * positive).sum() / num_pos
    return loss_token + loss_reg + loss_ctr, loss_token, loss_reg, loss_ctr


class LinearTrackLoss(nn.Module):
    """(f3..f7, text_fused, attention_mask, positive, reg_targets, centerness_targets,
    token_targets) -> (loss, loss_token, loss_reg, loss_centerness)."""

    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.rpn = _Rpn(cfg)
        self.strides, self.anchor_sizes = tuple(cfg.anchor_strides), tuple(cfg.anchor_sizes)

    def anchors(self, feats) -> torch.Tensor:
        """[Q,4] anchors of the canvas whose level features are `feats` (sizes may be symbolic)."""
        return anchor_lib.grid_anchors([tuple(f.shape[-2:]) for f in feats], self.strides, self.anchor_sizes)

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        own = dict(self.named_parameters())
        if set(own) != set(params):
            raise HeadFormatError(f"parameters differ: missing {sorted(set(own) - set(params))}, "
                                  f"unexpected {sorted(set(params) - set(own))}")
        with torch.no_grad():
            for name, value in params.items():
                own[name].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)).reshape(own[name].shape))

    def head_outputs(self, f3, f4, f5, f6, f7, text_fused):
        return self.rpn.head([f3, f4, f5, f6, f7], text_fused)

    def forward(self, f3, f4, f5, f6, f7, text_fused, attention_mask, positive, reg_targets,
                centerness_targets, token_targets):
        deltas, ctr, logits = self.head_outputs(f3, f4, f5, f6, f7, text_fused)
        anchors = self.anchors((f3, f4, f5, f6, f7))
        return masked_glip_loss(deltas, ctr, logits, attention_mask, anchors, positive, reg_targets,
                                centerness_targets, token_targets)


# The loss graph is traced on a landscape canvas whose ten level sizes (352x576: P3 44x72, P4
# 22x36, P5 11x18, P6 6x9, P7 3x5) all differ and exceed 2, so no symbol is merged with another
# or specialised to a constant.
TRACE_HW = (352, 576)


def example_inputs(cfg: GlipConfig, image_hw: tuple[int, int], batch: int) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes and dtypes on an image_hw canvas (values only matter for tracing)."""
    g = torch.Generator().manual_seed(0)
    sizes = anchor_lib.feature_sizes(image_hw, cfg.anchor_strides)
    q = sum(h * w for h, w in sizes)
    t = cfg.max_text_len
    feats = [torch.randn(batch, cfg.head.channels, h, w, generator=g) for h, w in sizes]
    text = torch.randn(batch, t, cfg.bert.hidden, generator=g)
    mask = torch.ones(batch, t, dtype=torch.int64)
    positive = torch.zeros(batch, q)
    positive[:, :3] = 1
    reg = torch.zeros(batch, q, 4)
    ctr = positive * 0.5
    tokens = torch.zeros(batch, q, t)
    tokens[:, :3, 1] = 1
    return (*feats, text, mask, positive, reg, ctr, tokens)


def num_anchors(cfg: GlipConfig, image_hw: tuple[int, int]) -> int:
    return sum(h * w for h, w in anchor_lib.feature_sizes(image_hw, cfg.anchor_strides))


OPSET = 19
IR_VERSION = 10


def _cast_like_to_cast(model: onnx.ModelProto) -> int:
    """CastLike(x, like) -> Cast(x, to=type of like). ONNX Runtime has no CastLike gradient, and the
    exporter (run unoptimised so that no parameter is folded) writes it around scalar constants."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    count = 0
    for node in model.graph.node:
        if node.op_type != "CastLike":
            continue
        to = types.get(node.input[1])
        if not to:
            raise HeadFormatError(f"cannot type CastLike node {node.name}'s target {node.input[1]!r}")
        node.op_type = "Cast"
        del node.input[1:]
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("to", to))
        count += 1
    return count


def dim_names() -> dict[str, list]:
    """The names of each loss graph input's symbolic dims (None: a static dim): f<l>_height and
    f<l>_width per level, the canvas's anchor count `anchors` (the batch and the text length are
    static, the artifacts' `batch` and `max_text_len`)."""
    names = {f: [None, None, f"{f}_height", f"{f}_width"] for f in FEATURES}
    names.update(text_fused=[None] * 3, attention_mask=[None] * 2, positive=[None, "anchors"], reg_targets=[None, "anchors", None],
                 centerness_targets=[None, "anchors"], token_targets=[None, "anchors", None])
    return names


def _name_dynamic_dims(model: onnx.ModelProto) -> None:
    """The exporter's symbols (s0, s1, ...) of the inputs as `dim_names` calls them; the graph's
    inner value_info keep the exporter's names (they are not part of the contract)."""
    names = dim_names()
    for value in model.graph.input:
        for dim, name in zip(value.type.tensor_type.shape.dim, names.get(value.name, [])):
            if bool(dim.dim_param) != (name is not None):
                raise HeadFormatError(f"loss graph input {value.name}: dims {value.type.tensor_type.shape}, "
                                      f"expected symbolic ones at {names[value.name]}")
            if name:
                dim.dim_param = name


def export_loss_graph(module: LinearTrackLoss, cfg: GlipConfig, batch: int, meta: dict) -> onnx.ModelProto:
    """The forward+loss graph: inputs DATA_INPUTS + TARGETS, outputs LOSS_OUTPUTS. The levels'
    sizes and the anchor count are dynamic (traced at TRACE_HW); batch and text length static."""
    from torch.export import Dim

    module = module.eval()
    args = example_inputs(cfg, TRACE_HW, batch)
    level, per_anchor = {2: Dim.AUTO, 3: Dim.AUTO}, {1: Dim.AUTO}
    dynamic = (*[level] * LEVELS, None, None, *[per_anchor] * len(TARGETS))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        # optimize=False: the optimiser folds parameters into constants (the transposed text
        # projection, exp(log_scale)) and merges equal ones; training needs each as itself.
        program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET,
                                    input_names=[*DATA_INPUTS, *TARGETS], output_names=list(LOSS_OUTPUTS),
                                    dynamic_shapes=dynamic, optimize=False, verbose=False)
    model = program.model_proto
    _name_dynamic_dims(model)
    model.ir_version = IR_VERSION
    _cast_like_to_cast(model)
    for node in model.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    inits = {i.name for i in model.graph.initializer}
    missing = [n for n in (*TRAINABLE, *FROZEN) if n not in inits]
    if missing:
        raise HeadFormatError(f"the exported loss graph lacks parameter initializers {missing}")
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    return model
