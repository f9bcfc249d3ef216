"""GLIP's FPN (`backbone.fpn`): laterals `fpn_inner2..4`, outputs `fpn_layer2..4`, and P6/P7.

P3-P5 come from Swin stages 1-3 with a nearest-neighbour top-down path; P6 is a stride-2 conv on
P5 (the FPN output, not C5) and P7 a stride-2 conv on relu(P6) (`LastLevelP6P7`). For training
graphs the top-down upsample is written as two matmuls with 0/1 matrices (`upsample_with_matmul`):
its gradient is then matmuls too, where the traced `F.interpolate` decomposes into an indexing
whose gradient is a ScatterND add, which ONNX Runtime's CPU kernel races on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .decompositions import nearest_weights


def upsample_nearest_matmul(x: torch.Tensor, size) -> torch.Tensor:
    """`F.interpolate(x, size, mode="nearest")` as `N_h @ x @ N_w^T`."""
    n_h = nearest_weights(size[0], x.shape[-2], None, x.dtype)
    n_w = nearest_weights(size[1], x.shape[-1], None, x.dtype)
    return n_h @ x @ n_w.transpose(0, 1)


class LastLevelP6P7(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.p6 = nn.Conv2d(channels, channels, 3, 2, 1)
        self.p7 = nn.Conv2d(channels, channels, 3, 2, 1)
        for conv in (self.p6, self.p7):
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, p5: torch.Tensor) -> list[torch.Tensor]:
        p6 = self.p6(p5)
        return [p6, self.p7(F.relu(p6))]


class FPN(nn.Module):
    """[C3, C4, C5] -> [P3, P4, P5, P6, P7], all with `channels` channels."""

    # F.interpolate (ONNX Resize) unless training switches this on.
    upsample_with_matmul = False

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.levels = len(in_channels)
        for idx, cin in enumerate(in_channels, start=2):
            inner = nn.Conv2d(cin, channels, 1)
            layer = nn.Conv2d(channels, channels, 3, 1, 1)
            for conv in (inner, layer):
                nn.init.kaiming_uniform_(conv.weight, a=1)
                nn.init.zeros_(conv.bias)
            self.add_module(f"fpn_inner{idx}", inner)
            self.add_module(f"fpn_layer{idx}", layer)
        self.top_blocks = LastLevelP6P7(channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        last = getattr(self, f"fpn_inner{self.levels + 1}")(feats[-1])
        results = [getattr(self, f"fpn_layer{self.levels + 1}")(last)]
        for idx in range(self.levels, 1, -1):
            lateral = getattr(self, f"fpn_inner{idx}")(feats[idx - 2])
            if lateral.shape[-2:] != last.shape[-2:]:
                if self.upsample_with_matmul:
                    last = upsample_nearest_matmul(last, lateral.shape[-2:])
                else:
                    last = F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            last = lateral + last
            results.insert(0, getattr(self, f"fpn_layer{idx}")(last))
        return results + self.top_blocks(results[-1])
