"""GLIP's VLDyHead (`rpn.head`): vision-language fusion tower and the ATSS outputs.

The tower repeats NUM_CONVS times: `VLFuse` (bidirectional image<->text attention over all five
levels flattened together), a text `BertLayer` (clamped), and `DyConv` (three modulated
deformable 3x3 convs per level reading the finer, same and coarser level, scale attention,
DyReLU). DCNv2 is torchvision's `deform_conv2d`, which exports as ONNX `DeformConv` (opset 19).

Training graphs (train_step.py) need every op differentiable with plain ONNX ops, so two class
switches replace the two ops whose backward does not export: `DeformConv3x3.use_gather` (DCN
as gathers of the four bilinear neighbours) and `DyConv.upsample_with_matmul` (the
align_corners bilinear upsample as `A_h @ x @ A_w^T` with constant interpolation matrices).
Both compute the same function as the default ops (tests/export/test_train_step.py).

GLIP quirk kept on purpose (onnx-runtime-notes §1.5, microsoft/GLIP#62): the offset/mask computed
at level l also drives the stride-1 conv on level l+1, whose output is smaller. GLIP's CUDA
kernel reads the first 18*oH*oW offsets (9*oH*oW mask values) of each image's buffer as if they
had that shape; `reinterpret_offsets` does exactly that with a reshape, per batch item.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from .bert import CLAMP, BertLayer
from .config import BertConfig, HeadConfig


def h_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


def reinterpret_offsets(t: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """The first channels*height*width values of each batch item, viewed as [channels,h,w].

    Always the reshape (the identity when `t` already has that shape), so an export with
    dynamic feature sizes needs no shape comparison."""
    n = t.shape[0]
    return t.reshape(n, -1)[:, : channels * height * width].reshape(n, channels, height, width)


def tap_points(x, offset, stride: int):
    """Where each tap of a deformable 3x3 conv (padding 1) samples: `py`, `px` of shape
    [N, 9, oh, ow], (oy*stride - 1 + i + dy, ox*stride - 1 + j + dx) for tap 3*i + j."""
    n = x.shape[0]
    oh, ow = offset.shape[-2:]
    taps = torch.arange(9, device=x.device)
    ky = (taps // 3).to(x.dtype)[None, :, None, None]
    kx = (taps % 3).to(x.dtype)[None, :, None, None]
    off = offset.reshape(n, 9, 2, oh, ow)
    py = (torch.arange(oh, device=x.device, dtype=x.dtype) * stride - 1)[None, None, :, None] + ky + off[:, :, 0]
    px = (torch.arange(ow, device=x.device, dtype=x.dtype) * stride - 1)[None, None, None, :] + kx + off[:, :, 1]
    return py, px


def deform_conv3x3_grid_sample(x, offset, weight, bias, stride: int, mask):
    """The same modulated deformable 3x3 conv (padding 1) written with `grid_sample`.

    Equal to torchvision's `deform_conv2d` (bilinear sampling, zeros outside the map); its CPU
    backward is faster, so training uses it. Offsets are (dy, dx) per tap, tap = 3*i + j."""
    n, c, h, w = x.shape
    oh, ow = offset.shape[-2:]
    py, px = tap_points(x, offset, stride)
    grid = torch.stack([2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1], dim=-1)
    cols = F.grid_sample(x, grid.reshape(n, 9 * oh, ow, 2), mode="bilinear", padding_mode="zeros",
                         align_corners=True)
    cols = cols.reshape(n, c, 9, oh * ow) * mask.reshape(n, 1, 9, oh * ow)
    out = weight.reshape(weight.shape[0], c * 9) @ cols.reshape(n, c * 9, oh * ow)
    return out.reshape(n, -1, oh, ow) + bias[None, :, None, None]


def deform_conv3x3_gather(x, offset, weight, bias, stride: int, mask):
    """The same modulated deformable 3x3 conv (padding 1) as one row gather and a matmul.

    Each tap's sampling point (y, x) = (oy*stride - 1 + i + dy, ox*stride - 1 + j + dx) reads its
    four integer neighbours with bilinear weights; neighbours outside the map count as zero (the
    rule of torchvision's and GLIP's kernels). The map is read as channels-last rows
    [N*H*W, C] with one 1-D index for all points and corners (ONNX Gather; its gradient is a
    ScatterND add), so no index tensor is ever expanded over the channels."""
    n, c, h, w = x.shape
    oh, ow = offset.shape[-2:]
    py, px = tap_points(x, offset, stride)
    y0, x0 = torch.floor(py), torch.floor(px)
    fy, fx = py - y0, px - x0
    yy = torch.stack([y0, y0, y0 + 1, y0 + 1], dim=1)  # [N,4,9,oh,ow]: corners (0,0) (0,1) (1,0) (1,1)
    xx = torch.stack([x0, x0 + 1, x0, x0 + 1], dim=1)
    bilinear = torch.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], dim=1)
    inside = ((yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)).to(x.dtype)
    weights = bilinear * inside * mask.reshape(n, 1, 9, oh, ow)
    rows = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).to(torch.int64)
    rows = rows + (torch.arange(n, device=x.device) * (h * w)).reshape(n, 1, 1, 1, 1)
    table = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    values = table.index_select(0, rows.reshape(-1)).reshape(n, 4, 9, oh * ow, c)
    cols = (values * weights.reshape(n, 4, 9, oh * ow, 1)).sum(dim=1)  # [N,9,L,C]
    cols = cols.permute(0, 2, 1, 3).reshape(n, oh * ow, 9 * c)  # (tap, channel) per point
    kernel = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], 9 * c)  # same (tap, channel) order
    out = cols @ kernel.transpose(0, 1) + bias  # [N,L,Cout]
    return out.transpose(1, 2).reshape(n, -1, oh, ow)


class DeformConv3x3(nn.Module):
    """Modulated deformable 3x3 conv (DCNv2) with bias, padding 1."""

    # torchvision's kernel (exports as ONNX DeformConv) unless training switches one of these on.
    use_grid_sample = False
    use_gather = False

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        bound = 1.0 / math.sqrt(cin * 9)  # GLIP's ModulatedDeformConv.reset_parameters
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        oh = (x.shape[-2] + 2 - 3) // self.stride + 1
        ow = (x.shape[-1] + 2 - 3) // self.stride + 1
        offset = reinterpret_offsets(offset, 18, oh, ow)
        mask = reinterpret_offsets(mask, 9, oh, ow)
        if self.use_gather:
            return deform_conv3x3_gather(x, offset, self.weight, self.bias, self.stride, mask)
        if self.use_grid_sample:
            return deform_conv3x3_grid_sample(x, offset, self.weight, self.bias, self.stride, mask)
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=1, mask=mask)


class Conv3x3Norm(nn.Module):
    """`DyConv.i`: the deformable conv followed by GroupNorm (stored as `bn`)."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        self.conv = DeformConv3x3(cin, cout, stride)
        self.bn = nn.GroupNorm(groups, cout)

    def forward(self, x, offset, mask):
        return self.bn(self.conv(x, offset, mask))


class DyReLU(nn.Module):
    """Dynamic ReLU (K=2 with bias): max(x*a1+b1, x*a2+b2) with coefficients from global context."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.fc = nn.Sequential(nn.Linear(channels, channels // 4), nn.ReLU(), nn.Linear(channels // 4, channels * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = h_sigmoid(self.fc(x.mean(dim=(2, 3)))).reshape(b, 4 * c, 1, 1)
        a1, b1, a2, b2 = torch.split(y, c, dim=1)
        a1 = (a1 - 0.5) * 2.0 + 1.0
        a2 = (a2 - 0.5) * 2.0
        return torch.maximum(x * a1 + (b1 - 0.5), x * a2 + (b2 - 0.5))


def align_corners_weights(n_out, n_in, dtype: torch.dtype, device=None) -> torch.Tensor:
    """[n_out, n_in] linear interpolation weights of `interpolate(..., align_corners=True)`:
    output o reads inputs i0 = min(floor(pos), n_in - 2) and i0 + 1 with weights 1 - frac and
    frac, pos = o * (n_in - 1) / (n_out - 1) in float64, cast to `dtype`. Built from torch ops
    without a branch on the sizes (n_in = 1 gives i0 = 0, frac = 0; n_out = 1 gives pos = 0), so a
    trace with symbolic sizes keeps them symbolic and the training graphs take any canvas."""
    o = torch.arange(n_out, dtype=torch.float64, device=device)
    pos = (o * (n_in - 1)) / torch.sym_max(n_out - 1, 1)
    i0 = torch.floor(pos).clamp(max=n_in - 2).clamp(min=0)
    frac = pos - i0
    cols = torch.arange(n_in, dtype=torch.float64, device=device)[None, :]
    m = (1.0 - frac)[:, None] * (cols == i0[:, None]) + frac[:, None] * (cols == i0[:, None] + 1)
    return m.to(dtype)


def upsample_bilinear_matmul(x: torch.Tensor, size) -> torch.Tensor:
    """`F.interpolate(x, size, mode="bilinear", align_corners=True)` as two matmuls."""
    a_h = align_corners_weights(size[0], x.shape[-2], x.dtype, x.device)
    a_w = align_corners_weights(size[1], x.shape[-1], x.dtype, x.device)
    return a_h @ x @ a_w.transpose(0, 1)


class DyConv(nn.Module):
    # F.interpolate (ONNX Resize) unless training switches this on.
    upsample_with_matmul = False

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.DyConv = nn.ModuleList([
            Conv3x3Norm(channels, channels, 1, groups),  # reads level l+1 (coarser), upsampled
            Conv3x3Norm(channels, channels, 1, groups),  # reads level l
            Conv3x3Norm(channels, channels, 2, groups),  # reads level l-1 (finer)
        ])
        self.AttnConv = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, 1, kernel_size=1), nn.ReLU())
        self.relu = DyReLU(channels)
        self.offset = nn.Conv2d(channels, 27, kernel_size=3, stride=1, padding=1)
        # Like GLIP: N(0, 0.01) for AttnConv, PyTorch's default init for the offset conv.
        nn.init.normal_(self.AttnConv[1].weight, 0, 0.01)
        nn.init.zeros_(self.AttnConv[1].bias)

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        # AdaptiveAvgPool2d(1) written as a mean, so the export needs no pooling op.
        return F.relu(self.AttnConv[1](x.mean(dim=(2, 3), keepdim=True)))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for level, feat in enumerate(feats):
            offset_mask = self.offset(feat)
            offset = offset_mask[:, :18]
            mask = offset_mask[:, 18:].sigmoid()
            parts = [self.DyConv[1](feat, offset, mask)]
            if level > 0:
                parts.append(self.DyConv[2](feats[level - 1], offset, mask))
            if level < len(feats) - 1:
                coarse = self.DyConv[0](feats[level + 1], offset, mask)
                size = tuple(feat.shape[-2:])
                if self.upsample_with_matmul:
                    parts.append(upsample_bilinear_matmul(coarse, size))
                else:
                    parts.append(F.interpolate(coarse, size=size, mode="bilinear", align_corners=True))
            stacked = torch.stack(parts)
            attn = h_sigmoid(torch.stack([self._attn(p) for p in parts]))
            out.append(self.relu((stacked * attn).mean(dim=0)))
        return out


class BiMultiHeadAttention(nn.Module):
    """Image<->text cross attention (`b_attn.attn`): one score matrix, softmaxed both ways."""

    def __init__(self, v_dim: int, l_dim: int, embed_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = embed_dim // heads
        self.scale = self.head_dim ** -0.5
        self.v_proj = nn.Linear(v_dim, embed_dim)
        self.l_proj = nn.Linear(l_dim, embed_dim)
        self.values_v_proj = nn.Linear(v_dim, embed_dim)
        self.values_l_proj = nn.Linear(l_dim, embed_dim)
        self.out_v_proj = nn.Linear(embed_dim, v_dim)
        self.out_l_proj = nn.Linear(embed_dim, l_dim)
        for lin in (self.v_proj, self.l_proj, self.values_v_proj, self.values_l_proj, self.out_v_proj, self.out_l_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)

    def forward(self, v: torch.Tensor, l: torch.Tensor, text_mask: torch.Tensor):
        q = self._split(self.v_proj(v) * self.scale)
        k = self._split(self.l_proj(l))
        value_v = self._split(self.values_v_proj(v))
        value_l = self._split(self.values_l_proj(l))
        scores = (q @ k.transpose(-1, -2)).clamp(-CLAMP, CLAMP)  # [B,h,Nv,Nl]
        scores_t = scores.transpose(-1, -2)
        scores_t = (scores_t - scores_t.amax(dim=-1, keepdim=True)).clamp(-CLAMP, CLAMP)
        attn_l = scores_t.softmax(dim=-1)  # text tokens attend to image tokens
        # GLIP adds the mask value itself (1) to real tokens and -9e15 to padding.
        m = text_mask.to(scores.dtype)[:, None, None, :]
        m = torch.where(m == 0, torch.full_like(m, -9e15), m)
        attn_v = (scores + m).softmax(dim=-1)  # image tokens attend to text tokens
        return self.out_v_proj(self._merge(attn_v @ value_l)), self.out_l_proj(self._merge(attn_l @ value_v))


class BiAttentionBlock(nn.Module):
    """`b_attn`: pre-LayerNorm, then a layer-scaled update added to the *normalised* inputs."""

    def __init__(self, v_dim: int, l_dim: int, embed_dim: int, heads: int, init_scale: float):
        super().__init__()
        self.gamma_v = nn.Parameter(init_scale * torch.ones(v_dim))
        self.gamma_l = nn.Parameter(init_scale * torch.ones(l_dim))
        self.layer_norm_v = nn.LayerNorm(v_dim)
        self.layer_norm_l = nn.LayerNorm(l_dim)
        self.attn = BiMultiHeadAttention(v_dim, l_dim, embed_dim, heads)

    def forward(self, v, l, text_mask):
        v = self.layer_norm_v(v)
        l = self.layer_norm_l(l)
        dv, dl = self.attn(v, l, text_mask)
        return v + self.gamma_v * dv, l + self.gamma_l * dl


class VLFuse(nn.Module):
    def __init__(self, v_dim: int, l_dim: int, embed_dim: int, heads: int, init_scale: float):
        super().__init__()
        self.b_attn = BiAttentionBlock(v_dim, l_dim, embed_dim, heads, init_scale)

    def forward(self, feats: list[torch.Tensor], text: torch.Tensor, text_mask: torch.Tensor):
        b, c = feats[0].shape[:2]
        sizes = [f.shape[-2:] for f in feats]
        flat = torch.cat([f.flatten(2).transpose(1, 2) for f in feats], dim=1)
        new_v, new_l = self.b_attn(flat, text, text_mask)
        new_v = new_v.transpose(1, 2)
        out, start = [], 0
        for h, w in sizes:
            out.append(new_v[:, :, start:start + h * w].reshape(b, c, h, w))
            start += h * w
        return out, new_l


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


class VLDyHead(nn.Module):
    """P3..P7 + text hidden states -> per-level box regression, centerness, token logits."""

    def __init__(self, cfg: HeadConfig, bert: BertConfig):
        super().__init__()
        c = cfg.channels
        bias_value = -math.log((1 - cfg.prior_prob) / cfg.prior_prob)
        self.log_scale = nn.Parameter(torch.tensor([cfg.log_scale_init]))
        self.bias_lang = nn.Parameter(torch.zeros(bert.hidden))
        self.bias0 = nn.Parameter(torch.tensor([bias_value]))
        tower = []
        for _ in range(cfg.num_convs):
            tower.append(VLFuse(c, bert.hidden, cfg.fuse_embed_dim, cfg.fuse_heads, 1.0 / cfg.num_convs))
            tower.append(BertLayer(bert, clamp=True))
            tower.append(DyConv(c, cfg.gn_groups))
        self.dyhead_tower = nn.Sequential(*tower)
        # Unused at inference (its output is discarded); kept so checkpoints load key for key.
        self.cls_logits = nn.Conv2d(c, cfg.cls_logits_classes, kernel_size=1)
        self.bbox_pred = nn.Conv2d(c, 4, kernel_size=1)
        self.centerness = nn.Conv2d(c, 1, kernel_size=1)
        self.dot_product_projection_text = nn.Linear(bert.hidden, c)
        self.scales = nn.ModuleList(Scale() for _ in range(5))
        for conv in (self.cls_logits, self.bbox_pred, self.centerness):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.cls_logits.bias, bias_value)

    def forward(self, feats: list[torch.Tensor], text: torch.Tensor, text_mask: torch.Tensor):
        """Returns per-level lists: box regression [B,4,H,W], centerness [B,1,H,W], token logits [B,HW,T]."""
        feats, text = self.run_tower(feats, text, text_mask)
        return self.predict(feats, text)

    def run_tower(self, feats: list[torch.Tensor], text: torch.Tensor, text_mask: torch.Tensor):
        """The fusion tower: per-level visual features and the fused text (`dyhead_tower` outputs)."""
        tower = self.dyhead_tower
        for k in range(len(tower) // 3):
            feats, text = tower[3 * k](feats, text, text_mask)
            text = tower[3 * k + 1](text, text_mask)
            feats = tower[3 * k + 2](feats)
        return feats, text

    def predict(self, feats: list[torch.Tensor], text: torch.Tensor):
        """The output layers on the tower's features (the `linear_prob` trainable set and `scales`)."""
        emb = F.normalize(text, p=2, dim=-1)
        proj = self.dot_product_projection_text(emb / 2.0)  # [B,T,C]
        token_bias = emb @ self.bias_lang + self.bias0  # [B,T]
        temperature = self.log_scale.exp()
        boxes, ctrs, logits = [], [], []
        for level, x in enumerate(feats):
            boxes.append(self.scales[level](self.bbox_pred(x)))
            ctrs.append(self.centerness(x))
            queries = x.flatten(2).transpose(1, 2)  # [B,HW,C]
            logit = (queries @ proj.transpose(-1, -2)) / temperature + token_bias[:, None, :]
            logits.append(logit.clamp(-CLAMP, CLAMP))
        return boxes, ctrs, logits
