"""GLIP's image preprocessing (protocol §6.1): resize rule, BGR 0-255 normalisation, zero padding.

This is the reference the host must match: `maskrcnn_benchmark` `Resize.get_size`, Pillow
bilinear resizing, `to_bgr255` + `Normalize(mean, std)`, then zeros at the bottom/right.
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
    resized = image.convert("RGB").resize((rw, rh), Image.BILINEAR) if (rw, rh) != (w, h) else image.convert("RGB")
    out = np.zeros((3, *input_hw), dtype=np.float32)
    out[:, :rh, :rw] = normalize(resized, cfg.pixel_mean_bgr, cfg.pixel_std_bgr)
    return out, (rh, rw), (rw / w, rh / h)
