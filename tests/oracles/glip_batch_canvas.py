"""GLIP's training batch canvas, the oracle for `train::augment::batch_canvas`: maskrcnn_benchmark's
`Resize.get_size` (min size chosen by the caller, max size) on each image, then
`structures/image_list.to_image_list(tensors, size_divisible)` on zero tensors of those sizes,
both written as GLIP has them; and the anchor count of the batch's canvas
(`glip_export.anchors.feature_sizes`). Needs torch (ODINW_TORCH_PYTHON).

    python glip_batch_canvas.py cases.json  ->  JSON on stdout: per case
    {"resized": [[h, w], ...], "canvas": [H, W], "anchors": Q}
"""
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from glip_export import anchors as anchor_lib  # noqa: E402


def get_size(image_size, size, max_size):
    """maskrcnn_benchmark/data/transforms/transforms.py Resize.get_size, with the choice made."""
    w, h = image_size
    if max_size is not None:
        min_original_size = float(min((w, h)))
        max_original_size = float(max((w, h)))
        if max_original_size / min_original_size * size > max_size:
            size = int(round(max_size * min_original_size / max_original_size))
    if (w <= h and w == size) or (h <= w and h == size):
        return (h, w)
    if w < h:
        ow = size
        oh = int(size * h / w)
    else:
        oh = size
        ow = int(size * w / h)
    return (oh, ow)


def to_image_list(tensors, size_divisible=0):
    """maskrcnn_benchmark/structures/image_list.py to_image_list (list-of-tensors branch)."""
    max_size = tuple(max(s) for s in zip(*[img.shape for img in tensors]))
    if size_divisible > 0:
        stride = size_divisible
        max_size = list(max_size)
        max_size[1] = int(math.ceil(max_size[1] / stride) * stride)
        max_size[2] = int(math.ceil(max_size[2] / stride) * stride)
        max_size = tuple(max_size)
    batch_shape = (len(tensors),) + max_size
    batched_imgs = tensors[0].new(*batch_shape).zero_()
    for img, pad_img in zip(tensors, batched_imgs):
        pad_img[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
    image_sizes = [im.shape[-2:] for im in tensors]
    return batched_imgs, image_sizes


def main():
    cases = json.loads(Path(sys.argv[1]).read_text())
    out = []
    for case in cases:
        resized = [get_size((w, h), size, case["max_size"]) for (w, h), size in zip(case["images"], case["min_sizes"])]
        batched, sizes = to_image_list([torch.ones(3, h, w) for h, w in resized], case["size_divisible"])
        assert [tuple(s) for s in sizes] == resized
        canvas = tuple(batched.shape[-2:])
        levels = anchor_lib.feature_sizes(canvas, case["strides"])
        out.append({"resized": [list(r) for r in resized], "canvas": list(canvas),
                    "anchors": sum(h * w for h, w in levels)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
