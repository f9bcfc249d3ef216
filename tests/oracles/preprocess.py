#!/usr/bin/env python3
"""Oracle for pre-processing: GLIP's test-time image transform with Pillow and numpy, written
from the protocol (§6.1): Image.open().convert('RGB'), Resize(800, 1333) size rule, Pillow
BILINEAR resize, ToTensor + Normalize(bgr255) in float32 with torch's order of operations,
zero padding of a batch to a multiple of 32.

    preprocess.py OUT_DIR [IMAGE ...]
    preprocess.py --hash IMAGE ...      (sha256 of each decoded RGB image, one per line)

Also writes synthetic images to OUT_DIR/gen (odd sizes, extreme aspect ratios, PNG modes,
JPEG subsamplings, restart markers, progressive). For every image (synthetic first) it writes
OUT_DIR/<i>.decoded (RGB bytes), <i>.resized (RGB bytes) and <i>.tensor (CHW float32 BGR,
little-endian); then OUT_DIR/batch.tensor for the first two synthetic images as one batch.
Prints a JSON manifest on stdout.
"""
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image

PIXEL_MEAN = np.array([103.530, 116.280, 123.675], np.float32)
PIXEL_STD = np.array([57.375, 57.120, 58.395], np.float32)


def get_size(w, h, size=800, max_size=1333):
    """GLIP's Resize.get_size, returning (width, height)."""
    min_original = float(min((w, h)))
    max_original = float(max((w, h)))
    if max_original / min_original * size > max_size:
        size = int(round(max_size * min_original / max_original))
    if (w <= h and w == size) or (h <= w and h == size):
        return w, h
    if w < h:
        ow = size
        oh = int(size * h / w)
    else:
        oh = size
        ow = int(size * w / h)
    return ow, oh


def to_tensor(img):
    """ToTensor then Normalize(bgr255), float32 like torch: /255, BGR, *255, -mean, /std."""
    x = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255)
    x = x.transpose(2, 0, 1)[::-1] * np.float32(255)
    return (x - PIXEL_MEAN[:, None, None]) / PIXEL_STD[:, None, None]


def synthetic(out):
    """Seeded random images with smooth structure (so JPEG keeps detail) and noise."""
    rng = np.random.default_rng(6)
    os.makedirs(out, exist_ok=True)
    cases = []

    def pattern(w, h, channels=3):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack(
            [np.sin(xx / (3 + 5 * c) + yy / (7 + c)) * 100 + 128 for c in range(channels)], -1
        )
        noise = rng.integers(-60, 60, (h, w, channels))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    def save(name, img, **kw):
        path = os.path.join(out, name)
        img.save(path, **kw)
        cases.append(path)

    # The first two are the batch.
    save("odd_37x23.png", Image.fromarray(pattern(37, 23)))
    save("tall_9x50.png", Image.fromarray(pattern(9, 50)))
    save("wide_61x5.png", Image.fromarray(pattern(61, 5)))
    save("extreme_3000x40.png", Image.fromarray(pattern(3000, 40)))
    save("extreme_17x1999.png", Image.fromarray(pattern(17, 1999)))
    save("big_1500x1101.png", Image.fromarray(pattern(1500, 1101)))
    save("gray_L_333x101.png", Image.fromarray(pattern(333, 101, 1)[:, :, 0], "L"))
    save("rgba_45x80.png", Image.fromarray(pattern(45, 80, 4), "RGBA"))
    save("la_31x77.png", Image.fromarray(pattern(31, 77, 2), "LA"))
    save("palette_90x64.png", Image.fromarray(pattern(90, 64)).quantize(37))
    save("exact_800x600.png", Image.fromarray(pattern(800, 600)))
    for w, h in ((1001, 333), (57, 801), (800, 1200), (1333, 799)):
        for sub in (0, 1, 2):  # 4:4:4, 4:2:2, 4:2:0
            save(f"q90_{w}x{h}_s{sub}.jpg", Image.fromarray(pattern(w, h)), quality=90, subsampling=sub)
    save("gray_803x301.jpg", Image.fromarray(pattern(803, 301, 1)[:, :, 0], "L"), quality=75)
    save("tiny_3x2.jpg", Image.fromarray(pattern(3, 2)), quality=95, subsampling=2)
    save("tiny_4x9.jpg", Image.fromarray(pattern(4, 9)), quality=95, subsampling=1)
    save("q20_517x389.jpg", Image.fromarray(pattern(517, 389)), quality=20, subsampling=2)
    save(
        "restart_611x403.jpg",
        Image.fromarray(pattern(611, 403)),
        quality=85,
        subsampling=2,
        restart_marker_blocks=7,
    )
    save(
        "restart_rows_300x200.jpg",
        Image.fromarray(pattern(300, 200)),
        quality=85,
        restart_marker_rows=1,
    )
    save("optimized_640x480.jpg", Image.fromarray(pattern(640, 480)), quality=80, optimize=True)
    save(
        "progressive_640x480.jpg",
        Image.fromarray(pattern(640, 480)),
        quality=80,
        progressive=True,
    )
    return cases


def main():
    if sys.argv[1] == "--hash":
        for path in sys.argv[2:]:
            with Image.open(path) as im:
                print(hashlib.sha256(im.convert("RGB").tobytes()).hexdigest())
        return
    out = sys.argv[1]
    paths = synthetic(os.path.join(out, "gen")) + sys.argv[2:]
    manifest = []
    resized_first = []
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            decoded = im.convert("RGB")
        w, h = decoded.size
        ow, oh = get_size(w, h)
        resized = decoded.resize((ow, oh), Image.BILINEAR)
        if i < 2:
            resized_first.append(resized)
        prefix = os.path.join(out, str(i))
        with open(prefix + ".decoded", "wb") as f:
            f.write(decoded.tobytes())
        with open(prefix + ".resized", "wb") as f:
            f.write(resized.tobytes())
        to_tensor(resized).astype("<f4").tofile(prefix + ".tensor")
        manifest.append(
            {"path": path, "prefix": prefix, "size": [w, h], "resized": [ow, oh]}
        )
    tensors = [to_tensor(r) for r in resized_first]
    bh = -(-max(t.shape[1] for t in tensors) // 32) * 32
    bw = -(-max(t.shape[2] for t in tensors) // 32) * 32
    batch = np.zeros((len(tensors), 3, bh, bw), np.float32)
    for i, t in enumerate(tensors):
        batch[i, :, : t.shape[1], : t.shape[2]] = t
    batch.astype("<f4").tofile(os.path.join(out, "batch.tensor"))
    json.dump({"images": manifest, "batch": [len(tensors), 3, bh, bw]}, sys.stdout)


if __name__ == "__main__":
    main()
