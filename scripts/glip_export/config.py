"""Model configurations: GLIP-T and GLIP-L as the official checkpoints were built, and `tiny`.

GLIP-T is `configs/pretrain/glip_Swin_T_O365_GoldG.yaml` (the config of
`glip_tiny_model_o365_goldg_cc_sbu.pth`), GLIP-L is `configs/pretrain/glip_Swin_L.yaml`
(`glip_large_model.pth`). `tiny` keeps every part of the architecture at small widths and depths;
it is the demo model trained by `scripts/train_tiny_glip.py`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .tokenizer import tiny_vocab


@dataclass(frozen=True)
class SwinConfig:
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    mlp_ratio: float = 4.0
    patch_size: int = 4

    def stage_channels(self) -> list[int]:
        return [self.embed_dim * 2**i for i in range(len(self.depths))]


@dataclass(frozen=True)
class BertConfig:
    """A BERT encoder (Hugging Face names); bert-base-uncased for GLIP-T/L."""

    vocab_size: int = 30522
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    max_positions: int = 512
    type_vocab: int = 2
    layer_norm_eps: float = 1e-12


@dataclass(frozen=True)
class HeadConfig:
    """The VLDyHead: NUM_CONVS x (VLFuse, BertEncoderLayer, DyConv), then the ATSS outputs."""

    num_convs: int = 6
    channels: int = 256
    gn_groups: int = 16
    fuse_embed_dim: int = 2048
    fuse_heads: int = 8
    # MODEL.DYHEAD.NUM_CLASSES - 1: only sizes the unused `cls_logits` conv.
    cls_logits_classes: int = 80
    prior_prob: float = 0.01
    log_scale_init: float = 0.0


@dataclass(frozen=True)
class GlipConfig:
    name: str
    swin: SwinConfig
    bert: BertConfig
    head: HeadConfig
    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (64, 128, 256, 512, 1024)
    anchor_strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    # Preprocessing (INPUT.* in GLIP's yaml): min side, max side, pad multiple, BGR 0-255 mean/std.
    min_size: int = 800
    max_size: int = 1333
    size_divisibility: int = 32
    pixel_mean_bgr: tuple[float, float, float] = (103.530, 116.280, 123.675)
    pixel_std_bgr: tuple[float, float, float] = (57.375, 57.120, 58.395)
    # Export defaults.
    image_size: tuple[int, int] = (800, 1344)
    max_text_len: int = 256
    # Post-processing (MODEL.ATSS.*, MODEL.DYHEAD.SCORE_AGG, DATASETS.SEPARATION_TOKENS).
    pre_nms_thresh: float = 0.05
    pre_nms_top_n: int = 1000
    nms_thresh: float = 0.6
    detections_per_img: int = 100
    prompt_separator: str = ". "
    tokenizer: str = "bert-base-uncased"
    extra: dict = field(default_factory=dict)

    def replace(self, **kw) -> "GlipConfig":
        return dataclasses.replace(self, **kw)


GLIP_T = GlipConfig(
    name="glip-t",
    swin=SwinConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7),
    bert=BertConfig(),
    head=HeadConfig(num_convs=6),
)

GLIP_L = GlipConfig(
    name="glip-l",
    swin=SwinConfig(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=12),
    bert=BertConfig(),
    head=HeadConfig(num_convs=8),
)

# The demo model: every part of GLIP at small widths and depths, with a ~100-entry WordPiece
# vocabulary covering the generated world's words (`tokenizer.tiny_vocab`).
TINY = GlipConfig(
    name="tiny",
    swin=SwinConfig(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7),
    bert=BertConfig(vocab_size=len(tiny_vocab()), hidden=64, layers=2, heads=2, intermediate=128, max_positions=64),
    head=HeadConfig(num_convs=2, channels=32, gn_groups=8, fuse_embed_dim=128, fuse_heads=4,
                    cls_logits_classes=8),
    fpn_channels=32,
    min_size=192,
    max_size=192,
    image_size=(192, 192),
    max_text_len=48,
    tokenizer="tiny-wordpiece",
)

CONFIGS = {c.name: c for c in (GLIP_T, GLIP_L, TINY)}


def get_config(name: str) -> GlipConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise SystemExit(f"unknown --config {name!r}: expected one of {', '.join(CONFIGS)}")
