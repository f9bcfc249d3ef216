#!/usr/bin/env python3
"""Oracle for image decoding: Pillow's verdict on generated, crafted and mutated JPEG and PNG
files, as GLIP loads them (`Image.open(p).convert("RGB")`, default MAX_IMAGE_PIXELS, truncated
images refused).

    decode_mutants.py OUT_DIR SEED N [SOURCE.jpg ...]

Writes into OUT_DIR: generated JPEGs (Pillow-encoded, seeded: baseline 4:2:0 / 4:2:2 / 4:4:4,
progressive, optimized, grayscale, CMYK, restart markers), crafted files (issue 12: an
over-subscribed Huffman table, a 10000x10000 frame whose SOS repeats 100 times with no data,
tiny files declaring huge sizes, cut files, markers Pillow does not know, 12-bit and 2-layer
frames, thin images, PNGs whole and cut), then N seeded mutants (Python's random) spread over
the generated JPEGs, N/4 over the PNGs, and, N again, over the SOURCE files (real JPEGs). Prints one JSON
line per file: {"file", "kind", "ok", and "size" + "sha256" of the RGB bytes, or "error"}.
"""
import hashlib
import io
import json
import os
import random
import sys
import warnings

import numpy as np
from PIL import Image

warnings.simplefilter("ignore")  # DecompressionBombWarning between the two limits


def pillow(path):
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        return {
            "ok": True,
            "size": list(rgb.size),
            "sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
        }
    except Exception as e:  # every exception is a refusal, whatever its class
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def pattern(rng, w, h, channels=3):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / (3 + c) + yy / (5 + 2 * c)) for c in range(channels)], -1)
    noise = rng.normal(0, 0.15, (h, w, channels))
    return np.clip((base * 0.4 + 0.5 + noise) * 255, 0, 255).astype(np.uint8)


def encode(img, **kw):
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def generated(rng):
    """Pillow-encoded JPEGs covering the decoder's paths."""
    rgb = Image.fromarray(pattern(rng, 67, 45))
    big = Image.fromarray(pattern(rng, 160, 120))
    out = {
        "gen_420.jpg": encode(rgb, quality=90),
        "gen_422.jpg": encode(big, quality=85, subsampling=1),
        "gen_444.jpg": encode(rgb, quality=95, subsampling=0),
        "gen_progressive.jpg": encode(big, quality=80, progressive=True),
        "gen_optimized.jpg": encode(rgb, quality=60, optimize=True),
        "gen_grey.jpg": encode(Image.fromarray(pattern(rng, 33, 70, 1)[:, :, 0]), quality=90),
        "gen_cmyk.jpg": encode(Image.fromarray(pattern(rng, 40, 30, 4), "CMYK"), quality=90),
        "gen_q20.jpg": encode(big, quality=20),
    }
    try:
        out["gen_restart.jpg"] = encode(big, quality=90, restart_marker_blocks=3)
    except TypeError:
        pass
    return out


def segments(data):
    """(marker, start, end) of each header segment up to and including the first SOS."""
    out, pos = [], 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        n = int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, pos, pos + 2 + n))
        if marker == 0xDA:
            break
        pos += 2 + n
    return out


def crafted(base, progressive, png_rng):
    """Files for the defects of issue 12 and the rules where Pillow and libjpeg differ."""
    segs = segments(base)
    sof = next(s for s in segs if s[0] in (0xC0, 0xC1, 0xC2))
    sos = next(s for s in segs if s[0] == 0xDA)
    header = base[: sos[1]]
    sos_seg = base[sos[1] : sos[2]]
    out = {}
    # Defect 2: a DHT declaring three 1-bit codes (over-subscribed), before the scan.
    dht = b"\xff\xc4\x00\x16\x00" + bytes([3] + [0] * 15) + b"\x00\x01\x02"
    out["huffman_oversubscribed.jpg"] = header + dht + base[sos[1] :]

    def with_size(data, w, h):
        s = bytearray(data)
        s[sof[1] + 5 : sof[1] + 9] = h.to_bytes(2, "big") + w.to_bytes(2, "big")
        return bytes(s)

    # Defect 4: 10000x10000, the SOS header 100 times, no entropy-coded data.
    out["sos_repeated.jpg"] = with_size(header, 10000, 10000) + sos_seg * 100
    prog = segments(progressive)
    psos = next(s for s in prog if s[0] == 0xDA)
    out["sos_repeated_progressive.jpg"] = (
        with_size_at(progressive[: psos[1]], prog, 10000, 10000)
        + progressive[psos[1] : psos[2]] * 100
    )
    # Tiny files declaring huge sizes: over Pillow's bomb limit, and just under it.
    for w, h in ((65500, 65500), (30000, 20000), (13000, 13000), (60000, 2)):
        out[f"huge_{w}x{h}.jpg"] = with_size(base[: min(len(base), 629)], w, h)
    out["huge_9000x9000_eoi.jpg"] = with_size(header, 9000, 9000) + sos_seg + b"\xff\xd9"
    # Cut files (a real BCCD JPEG cut to 1000 bytes was scored: defect 6).
    for frac in (0.25, 0.6, 0.95):
        out[f"cut_{int(frac * 100)}.jpg"] = base[: int(len(base) * frac)]
    out["no_eoi.jpg"] = base[:-2]
    out["no_eoi_progressive.jpg"] = progressive[:-2]
    out["header_only.jpg"] = header
    out["trailing_junk.jpg"] = base + b"\x00junk" * 10
    # A TEM marker (libjpeg skips it, Pillow's marker table does not know it).
    out["tem_marker.jpg"] = base[:2] + b"\xff\x01" + base[2:]
    out["fill_bytes.jpg"] = header + b"\xff\xff\xff" + base[sos[1] :]
    twelve = bytearray(base)
    twelve[sof[1] + 4] = 12
    out["precision_12.jpg"] = bytes(twelve)
    out["zero_height.jpg"] = with_size(base, 67, 0)
    # Thin images (issue 12, defect 1: they resize to a 0-px side).
    thin = Image.fromarray(pattern(png_rng, 1, 400))
    out["thin_1x400.jpg"] = encode(thin, quality=90)
    for mode in ("RGB", "RGBA", "L", "P"):
        img = Image.fromarray(pattern(png_rng, 29, 17)).convert(mode)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out[f"png_{mode}.png"] = buf.getvalue()
    buf = io.BytesIO()
    thin.save(buf, "PNG")
    out["thin_1x400.png"] = buf.getvalue()
    full = out["png_RGB.png"]
    out["png_cut_half.png"] = full[: len(full) // 2]
    out["png_cut_iend.png"] = full[:-12]
    return out


def with_size_at(data, segs, w, h):
    sof = next(s for s in segs if s[0] in (0xC0, 0xC1, 0xC2))
    s = bytearray(data)
    s[sof[1] + 5 : sof[1] + 9] = h.to_bytes(2, "big") + w.to_bytes(2, "big")
    return bytes(s)


def mutate(rng, data):
    """One seeded mutation: the kinds of damage a download or a disk does, and worse."""
    d = bytearray(data)
    op = rng.choice(["truncate", "flip", "header", "insert", "delete", "marker", "dup"])
    if op == "truncate":
        d = d[: rng.randrange(1, len(d))]
    elif op == "flip":
        for _ in range(rng.randint(1, 5)):
            d[rng.randrange(len(d))] = rng.randrange(256)
    elif op == "header":
        for _ in range(rng.randint(1, 3)):
            d[rng.randrange(min(len(d), 700))] = rng.randrange(256)
    elif op == "insert":
        at = rng.randrange(len(d))
        d[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif op == "delete":
        at = rng.randrange(len(d))
        del d[at : at + rng.randint(1, 16)]
    elif op == "marker":
        at = rng.randrange(2, len(d) - 1)
        d[at : at + 2] = bytes([0xFF, rng.randrange(256)])
    else:
        a = rng.randrange(len(d))
        b = min(len(d), a + rng.randint(1, 400))
        d[b:b] = d[a:b]
    return op, bytes(d)


def main():
    out_dir, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sources = sys.argv[4:]
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    gen = generated(np.random.default_rng(12))
    files.update({k: ("generated", v) for k, v in gen.items()})
    crafted_files = crafted(gen["gen_420.jpg"], gen["gen_progressive.jpg"], np.random.default_rng(3))
    files.update({k: ("crafted", v) for k, v in crafted_files.items()})
    rng = random.Random(seed)
    gen_names = sorted(gen)
    for i in range(n):
        src = gen_names[i % len(gen_names)]
        op, data = mutate(rng, gen[src])
        files[f"mut{seed}_{i:05d}_{op}_{src}"] = ("mutant", data)
    pngs = sorted(k for k in crafted_files if k.startswith("png_") and "cut" not in k)
    for i in range(n // 4):
        src = pngs[i % len(pngs)]
        op, data = mutate(rng, crafted_files[src])
        files[f"png{seed}_{i:05d}_{op}_{src}"] = ("png_mutant", data)
    real = [open(p, "rb").read() for p in sources]
    for i in range(n if real else 0):
        j = i % len(real)
        op, data = mutate(rng, real[j])
        name = os.path.basename(sources[j])
        files[f"real{seed}_{i:05d}_{op}_{name}"] = ("real_mutant", data)
    for name, (kind, data) in files.items():
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        print(json.dumps({"file": path, "kind": kind, **pillow(path)}), flush=True)


if __name__ == "__main__":
    main()
