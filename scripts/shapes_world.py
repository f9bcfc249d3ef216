"""A procedural detection world: coloured, textured shapes on cluttered backgrounds.

Every object has a colour, a texture and a shape; its class name depends on the naming scheme
("red circle", "striped square", "blue dotted star", ...), so the same pixels can be prompted
at several granularities, as in grounding data. Everything is a pure function of a seed
(`random.Random`, Pillow drawing), so datasets regenerate bit for bit.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLOURS = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220),
    "yellow": (240, 210, 30), "purple": (148, 72, 189), "orange": (250, 135, 20),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
TEXTURES = ("plain", "striped", "dotted", "checkered")
SCHEMES = {  # naming scheme -> attributes in the name, in order
    "colour_shape": ("colour", "shape"),
    "texture_shape": ("texture", "shape"),
    "full": ("colour", "texture", "shape"),
    "shape": ("shape",),
}
SUPERSAMPLE = 3


@dataclass(frozen=True)
class Thing:
    colour: str
    texture: str
    shape: str

    def name(self, scheme: str) -> str:
        return " ".join(getattr(self, a) for a in SCHEMES[scheme])


@dataclass
class Placed:
    thing: Thing
    box: tuple[int, int, int, int]  # inclusive pixel bounds x0, y0, x1, y1


def all_things() -> list[Thing]:
    return [Thing(c, t, s) for c in COLOURS for t in TEXTURES for s in SHAPES]


def scheme_names(scheme: str) -> list[str]:
    return sorted({t.name(scheme) for t in all_things()})


def matches(thing: Thing, scheme: str, name: str) -> bool:
    return thing.name(scheme) == name


def _shape_polygon(shape: str, cx: float, cy: float, rx: float, ry: float, rot: float):
    if shape == "square":
        return [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    if shape == "triangle":
        pts = [(0.0, -1.0), (0.92, 0.75), (-0.92, 0.75)]
    elif shape == "star":
        pts = [((1.0 if i % 2 == 0 else 0.45) * math.sin(rot + i * math.pi / 5),
                -(1.0 if i % 2 == 0 else 0.45) * math.cos(rot + i * math.pi / 5)) for i in range(10)]
    elif shape == "cross":
        a = 0.36
        pts = [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)]
    else:
        raise ValueError(shape)
    return [(cx + x * rx, cy + y * ry) for x, y in pts]


def _texture(size: tuple[int, int], colour, texture: str, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", size, colour)
    if texture == "plain":
        return img
    draw = ImageDraw.Draw(img)
    ink = (255, 255, 255) if sum(colour) < 450 else (40, 40, 40)
    w, h = size
    period = rng.randint(5, 8) * SUPERSAMPLE
    if texture == "striped":
        width = period // 2
        if rng.random() < 0.5:
            for y in range(-h, h, period):
                draw.polygon([(0, y), (w, y + w), (w, y + w + width), (0, y + width)], fill=ink)
        else:
            for y in range(0, h, period):
                draw.rectangle([0, y, w, y + width - 1], fill=ink)
    elif texture == "dotted":
        r = period // 4
        for y in range(period // 2, h, period):
            for x in range(period // 2, w, period):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    elif texture == "checkered":
        for y in range(0, h, period):
            for x in range(0, w, period):
                if (x // period + y // period) % 2 == 0:
                    draw.rectangle([x, y, x + period - 1, y + period - 1], fill=ink)
    return img


def _background(w: int, h: int, rng: random.Random) -> Image.Image:
    base = tuple(rng.randint(150, 235) for _ in range(3))
    img = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):  # clutter: muted blobs and strokes
        tone = tuple(max(0, min(255, c + rng.randint(-45, 45))) for c in base)
        x, y = rng.randint(-20, w), rng.randint(-20, h)
        if rng.random() < 0.5:
            draw.ellipse([x, y, x + rng.randint(20, 90), y + rng.randint(20, 90)], fill=tone)
        else:
            draw.line([x, y, rng.randint(0, w), rng.randint(0, h)], fill=tone, width=rng.randint(2, 6))
    return img


def render(rng: random.Random, things: list[Thing], size: tuple[int, int], min_side: int = 26,
           max_side: int = 100) -> tuple[Image.Image, list[Placed]]:
    """Draw `things` without overlap (dropping any that do not fit) on a cluttered background."""
    w, h = size
    img = _background(w, h, rng)
    placed: list[Placed] = []
    for thing in things:
        for _ in range(30):
            side = rng.randint(min_side, min(max_side, w - 4, h - 4))
            aspect = rng.uniform(0.8, 1.25)
            bw, bh = max(12, int(side * aspect)), max(12, int(side / aspect))
            x0, y0 = rng.randint(1, w - bw - 2), rng.randint(1, h - bh - 2)
            if all(x0 > p.box[2] + 3 or x0 + bw < p.box[0] - 3 or y0 > p.box[3] + 3 or y0 + bh < p.box[1] - 3
                   for p in placed):
                break
        else:
            continue
        s = SUPERSAMPLE
        mask = Image.new("L", (bw * s, bh * s), 0)
        md = ImageDraw.Draw(mask)
        rx, ry = bw * s / 2 - 1, bh * s / 2 - 1
        if thing.shape == "circle":
            md.ellipse([0, 0, bw * s - 1, bh * s - 1], fill=255)
        else:
            md.polygon(_shape_polygon(thing.shape, bw * s / 2, bh * s / 2, rx, ry, rng.uniform(0, 2 * math.pi)),
                       fill=255)
        fill = _texture((bw * s, bh * s), COLOURS[thing.colour], thing.texture, rng)
        mask = mask.resize((bw, bh), Image.BILINEAR)
        fill = fill.resize((bw, bh), Image.BILINEAR)
        bbox = mask.point(lambda v: 255 if v >= 128 else 0).getbbox()
        if bbox is None:
            continue
        img.paste(fill, (x0, y0), mask)
        placed.append(Placed(thing, (x0 + bbox[0], y0 + bbox[1], x0 + bbox[2] - 1, y0 + bbox[3] - 1)))
    return img, placed


def random_size(rng: random.Random, lo: int = 192, hi: int = 320) -> tuple[int, int]:
    return rng.randint(lo, hi), rng.randint(lo, hi)
