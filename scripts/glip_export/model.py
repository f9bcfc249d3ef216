"""The GLIP module tree (official state_dict names) and the three exported graphs.

`Glip` mirrors `GeneralizedVLRCNN` with `VLDYHEAD`: `backbone.{body,fpn}`,
`language_backbone.body.model`, `rpn.head` and `rpn.anchor_generator.cell_anchors.{0..4}`.
The graphs split it where the training tracks cache frozen parts:

- `ImageBackboneGraph`: images -> p3..p7
- `TextEncoderGraph`: input_ids, attention_mask -> text_hidden
- `HeadGraph`: p3..p7, text_hidden, attention_mask -> box_deltas, boxes, centerness, token_logits
  (levels concatenated; the anchors follow the feature maps' sizes, so one graph takes any canvas)
"""
from __future__ import annotations

import torch
from torch import nn

from . import anchors as anchor_lib
from .bert import BertModel
from .config import GlipConfig
from .dyhead import VLDyHead
from .fpn import FPN
from .swin import SwinBackbone


class Backbone(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.body = SwinBackbone(cfg.swin)
        self.fpn = FPN(cfg.swin.stage_channels()[1:], cfg.fpn_channels)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(images))


class LanguageBody(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.model = BertModel(cfg.bert)


class LanguageBackbone(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.body = LanguageBody(cfg)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.body.model(input_ids, attention_mask)


class AnchorGenerator(nn.Module):
    """Holds GLIP's `cell_anchors` buffers (one [1,4] anchor per level) for checkpoint fidelity."""

    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.cell_anchors = nn.Module()
        for i, (stride, size) in enumerate(zip(cfg.anchor_strides, cfg.anchor_sizes)):
            self.cell_anchors.register_buffer(str(i), torch.tensor([anchor_lib.cell_anchor(stride, size)]))


class Rpn(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        self.head = VLDyHead(cfg.head, cfg.bert)
        self.anchor_generator = AnchorGenerator(cfg)
        self.tunable_linear = None

    def enable_prompt_tuning(self, weight: torch.Tensor) -> None:
        """GLIP's `language_prompt_v2` layer: its first T rows are added to the text features."""
        self.tunable_linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            self.tunable_linear.weight.copy_(weight)

    def head_text(self, text: torch.Tensor) -> torch.Tensor:
        if self.tunable_linear is None:
            return text
        return text + self.tunable_linear.weight[: text.shape[1]].unsqueeze(0)


class Glip(nn.Module):
    def __init__(self, cfg: GlipConfig):
        super().__init__()
        assert cfg.head.channels == cfg.fpn_channels, "DyHead channels must equal the FPN width"
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.language_backbone = LanguageBackbone(cfg)
        self.rpn = Rpn(cfg)

    def forward(self, images, input_ids, attention_mask):
        """Per-level head outputs (lists), as `VLDyHead.forward` returns them."""
        feats = self.backbone(images)
        text = self.rpn.head_text(self.language_backbone(input_ids, attention_mask))
        return self.rpn.head(feats, text, attention_mask)


def concat_levels(box_reg, centerness, token_logits):
    """Per-level outputs -> [B,Q,4], [B,Q], [B,Q,T] (y-major within a level, levels in order)."""
    deltas = torch.cat([b.flatten(2).transpose(1, 2) for b in box_reg], dim=1)
    ctr = torch.cat([c.flatten(1) for c in centerness], dim=1)
    return deltas, ctr, torch.cat(token_logits, dim=1)


class _Graph(nn.Module):
    """Graph inputs/outputs stay float32; compute runs in `compute_dtype` (the module's dtype)."""

    def __init__(self, compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.compute_dtype = compute_dtype

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.compute_dtype) if x.is_floating_point() and x.dtype != self.compute_dtype else x

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() if x.dtype != torch.float32 else x


class ImageBackboneGraph(_Graph):
    def __init__(self, glip: Glip, compute_dtype: torch.dtype = torch.float32):
        super().__init__(compute_dtype)
        self.backbone = glip.backbone

    def forward(self, images):
        return tuple(self._out(f) for f in self.backbone(self._in(images)))


class TextEncoderGraph(_Graph):
    def __init__(self, glip: Glip, compute_dtype: torch.dtype = torch.float32):
        super().__init__(compute_dtype)
        self.language_backbone = glip.language_backbone

    def forward(self, input_ids, attention_mask):
        return self._out(self.language_backbone(input_ids, attention_mask))


class HeadGraph(_Graph):
    def __init__(self, glip: Glip, image_hw: tuple[int, int] | None = None,
                 compute_dtype: torch.dtype = torch.float32):
        super().__init__(compute_dtype)
        self.cfg = glip.cfg
        self.rpn = glip.rpn

    def forward(self, p3, p4, p5, p6, p7, text_hidden, attention_mask):
        feats = [self._in(p) for p in (p3, p4, p5, p6, p7)]
        text = self.rpn.head_text(self._in(text_hidden))
        box_reg, ctr, logits = self.rpn.head(feats, text, attention_mask)
        deltas, ctr, logits = (self._out(t) for t in concat_levels(box_reg, ctr, logits))
        sizes = [tuple(p.shape[-2:]) for p in (p3, p4, p5, p6, p7)]
        anchors = anchor_lib.grid_anchors(sizes, self.cfg.anchor_strides, self.cfg.anchor_sizes)
        boxes = anchor_lib.decode(deltas, anchors.to(deltas.device))
        return deltas, boxes, ctr, logits


def state_dict_shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
