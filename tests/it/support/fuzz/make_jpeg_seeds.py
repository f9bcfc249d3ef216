"""Writes the JPEG seed inputs of `tests/it/fuzz_corpus.rs` into tests/fixtures/fuzz/ with Pillow
(GLIP's image library): small images of odd sizes, colour and grey, baseline and progressive,
several qualities and chroma subsamplings. Deterministic: `python3 make_jpeg_seeds.py`."""
import os
import random

from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "fuzz")


def pattern(w, h, mode, seed):
    rng = random.Random(seed)
    channels = len(mode)
    data = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(channels):
                base = x * 255 // max(w, 1) + y * 97 // max(h, 1) + c * 40
                data.append((base + rng.randrange(24)) % 256)
    return Image.frombytes(mode, (w, h), bytes(data))


CASES = [
    # name, size, mode, save options
    ("rgb_1x1", (1, 1), "RGB", dict(quality=90)),
    ("rgb_7x5", (7, 5), "RGB", dict(quality=75)),
    ("rgb_16x16_444", (16, 16), "RGB", dict(quality=95, subsampling=0)),
    ("rgb_33x17_q50", (33, 17), "RGB", dict(quality=50)),
    ("rgb_64x48", (64, 48), "RGB", dict(quality=85)),
    ("grey_21x13", (21, 13), "L", dict(quality=80)),
    ("rgb_3x200", (3, 200), "RGB", dict(quality=90)),
    ("rgb_40x30_progressive", (40, 30), "RGB", dict(quality=85, progressive=True)),
    ("rgb_24x20_422", (24, 20), "RGB", dict(quality=70, subsampling=1)),
]

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for i, (name, size, mode, opts) in enumerate(CASES):
        pattern(*size, mode, i).save(os.path.join(OUT, name + ".jpg"), "JPEG", **opts)
