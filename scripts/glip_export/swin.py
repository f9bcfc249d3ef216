"""GLIP's Swin Transformer backbone (`backbone.body`), written for tracing.

Same parameter names as GLIP's `swint.py` (the Swin-Transformer-Object-Detection layout): patch
merging at the end of a stage (`layers.i.downsample`), per-output LayerNorms `norm1..norm3`
(stage 0 feeds no FPN level and has no norm). Like GLIP, and unlike timm, each block zero-pads
its input to a multiple of the window *before* the cyclic shift, and every odd block shifts,
whatever the feature size. Every size-dependent step (the window padding, the shift mask's
region labels, the patch merging) is written with tensor ops on the feature size, so one exported
graph takes any input size (`onnx_export` exports height and width as dynamic multiples of 32).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinConfig


def relative_position_index(window: int) -> torch.Tensor:
    """[w*w, w*w] index into the (2w-1)^2 relative-position bias table."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :]
    rel = rel.transpose(1, 2, 0) + (window - 1)
    return torch.from_numpy(rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).long()


def shift_window_labels(height, width, window: int, device=None) -> torch.Tensor:
    """[nW, w*w] region label of every token of every window of the padded, shifted map.

    Tokens of one window may attend to each other only when their labels agree: GLIP's shift
    mask is -100 where they differ (built in `SwinStage.forward`). GLIP fills `img_mask` over
    the slices (0, -window), (-window, -shift), (-shift, None) of the padded map, rows and
    columns, label = 3*row_slice + column_slice; this computes the same labels with `arange`,
    so `height` and `width` may be symbolic sizes of an export."""
    shift = window // 2
    hp = (height + window - 1) // window * window
    wp = (width + window - 1) // window * window
    ys = torch.arange(hp, device=device)
    xs = torch.arange(wp, device=device)
    row = (ys >= hp - window).long() + (ys >= hp - shift).long()
    col = (xs >= wp - window).long() + (xs >= wp - shift).long()
    region = (3 * row[:, None] + col[None, :]).float()
    windows = region.reshape(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    return windows.reshape(-1, window * window)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.window = window
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x: [B*nW, N, C]; mask: [nW, N, N] or None
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(-1, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.reshape(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, height: int, width: int, mask: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        w = self.window
        shortcut = x
        x = self.norm1(x).reshape(b, height, width, c)
        # Pad bottom/right to a multiple of the window (GLIP pads before shifting); the pad may
        # be zero, and is always applied so that an export keeps it as a function of the size.
        hp = (height + w - 1) // w * w
        wp = (width + w - 1) // w * w
        x = F.pad(x, (0, 0, 0, wp - width, 0, hp - height))
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = x.reshape(b, hp // w, w, wp // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        windows = self.attn(windows, mask if self.shift else None)
        x = windows.reshape(b, hp // w, wp // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x[:, :height, :width, :]
        x = shortcut + x.reshape(b, height * width, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.reshape(b, height, width, c)
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, downsample: bool):
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, height: int, width: int):
        labels = shift_window_labels(height, width, self.window, x.device).to(dtype=x.dtype)
        mask = (labels[:, None, :] != labels[:, :, None]).to(x.dtype) * -100.0
        for block in self.blocks:
            x = block(x, height, width, mask)
        if self.downsample is None:
            return x, x, height, width
        return x, self.downsample(x, height, width), (height + 1) // 2, (width + 1) // 2


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        h, w = x.shape[-2:]
        return self.proj(F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p)))


class SwinBackbone(nn.Module):
    """Image [B,3,H,W] -> the normed outputs of stages 1..3 (strides 8, 16, 32), NCHW."""

    def __init__(self, cfg: SwinConfig):
        super().__init__()
        self.cfg = cfg
        dims = cfg.stage_channels()
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim)
        self.layers = nn.ModuleList(
            SwinStage(dims[i], cfg.depths[i], cfg.num_heads[i], cfg.window_size, cfg.mlp_ratio,
                      downsample=i < len(cfg.depths) - 1)
            for i in range(len(cfg.depths))
        )
        for i in range(1, len(dims)):
            self.add_module(f"norm{i}", nn.LayerNorm(dims[i]))
        self.apply(_init_weights)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(images)
        b, c, h, w = x.shape
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        outs = []
        for i, stage in enumerate(self.layers):
            out, x, oh, ow = stage(x, h, w)
            if i > 0:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.reshape(b, h, w, -1).permute(0, 3, 1, 2))
            h, w = oh, ow
        return outs


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
