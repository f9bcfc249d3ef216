"""GLIP's image preprocessing (protocol §6.1): resize rule, BGR 0-255 normalisation, zero padding.

This is the reference the host must match: `maskrcnn_benchmark` `Resize.get_size`, Pillow
bilinear resizing (as Pillow 13 computes it, on any Pillow: `resize_bilinear`), `to_bgr255` +
`Normalize(mean, std)`, then zeros at the bottom/right.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def resized_size(width: int, height: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(new_height, new_width) for an image of (width, height)."""
    size = min_size
    lo, hi = float(min(width, height)), float(max(width, height))
    if hi / lo * size > max_size:
        size = int(round(max_size * lo / hi))
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


def resize_bilinear(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image.convert("RGB").resize((width, height), BILINEAR)` as Pillow 13 computes it, on any Pillow.

    Pillow's bilinear resize is two separable passes through an 8-bit intermediate image, so the
    order of the passes changes the rounding. Pillow 13 runs the vertical pass first when the
    height shrinks by more than twice as many pixels as the width does, the horizontal pass first
    otherwise; Pillow 12 always runs the horizontal one first (190x410 -> 148x319: 2% of the
    values differ by 1, and the demo model's scores by up to 3.6e-4). The host
    (`src/preprocess/resize.rs`) and its pixel oracle (`tests/oracles/preprocess.py`, Pillow
    13.0.0) follow Pillow 13, while the export environment pins Pillow 12.3.0; so the two passes
    run here as two one-axis resizes, each of which is exactly that pass of Pillow's two-pass
    resize (its weights, its 8-bit rounding) on either version."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    if (width, height) == (w, h):
        return rgb
    if width == w or height == h:
        return rgb.resize((width, height), Image.BILINEAR)
    if height < h and h - height > 2 * (w - width):  # Pillow 13: the height shrinks the more
        return rgb.resize((w, height), Image.BILINEAR).resize((width, height), Image.BILINEAR)
    return rgb.resize((width, h), Image.BILINEAR).resize((width, height), Image.BILINEAR)


def normalize(image: Image.Image, mean_bgr, std_bgr) -> np.ndarray:
    """RGB PIL image -> float32 [3,H,W] BGR, (x*255 - mean) / std."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    bgr = rgb[:, :, ::-1].transpose(2, 0, 1) * 255.0
    mean = np.asarray(mean_bgr, dtype=np.float32)[:, None, None]
    std = np.asarray(std_bgr, dtype=np.float32)[:, None, None]
    return (bgr - mean) / std


def canvas_size(resized_hw: tuple[int, int], divisibility: int = 32) -> tuple[int, int]:
    """GLIP's canvas of one image (`to_image_list`): each side rounded up to a multiple of 32."""
    return tuple(-(-v // divisibility) * divisibility for v in resized_hw)


def prepare(image: Image.Image, cfg, input_hw: tuple[int, int] | None = None):
    """-> (normalised, padded [3,H,W] float32 tensor data, (resized_h, resized_w), scale (sx, sy)).

    Padded to `input_hw` (a fixed-size graph) or, when None, to GLIP's own canvas of the image."""
    w, h = image.size
    rh, rw = resized_size(w, h, cfg.min_size, cfg.max_size)
    if input_hw is None:
        input_hw = canvas_size((rh, rw), cfg.size_divisibility)
    if rh > input_hw[0] or rw > input_hw[1]:
        raise ValueError(f"image {w}x{h} resizes to {rw}x{rh}, larger than the graph input "
                         f"{input_hw[1]}x{input_hw[0]}")
    resized = resize_bilinear(image, rw, rh)
    out = np.zeros((3, *input_hw), dtype=np.float32)
    out[:, :rh, :rw] = normalize(resized, cfg.pixel_mean_bgr, cfg.pixel_std_bgr)
    return out, (rh, rw), (rw / w, rh / h)
