"""The PyTorch reference (scripts/glip_export/atss_loss.py: atss_assign, centerness_targets) on
the same cases and in the same output format as atss_oracle.py. Needs torch (ODINW_TORCH_PYTHON).

    python atss_torch.py cases.json  ->  JSON on stdout
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from glip_export import anchors as anchor_lib  # noqa: E402
from glip_export.atss_loss import atss_assign, centerness_targets  # noqa: E402

torch.set_num_threads(1)


def run(levels, boxes):
    sizes = [(h, w) for h, w, _ in levels]
    strides = [s for _, _, s in levels]
    anchors = anchor_lib.grid_anchors(sizes, strides, [8 * s for s in strides])
    counts = [h * w for h, w in sizes]
    gt = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    a = atss_assign(anchors, counts, gt)
    pos = torch.nonzero(a.gt_index >= 0).flatten()
    reg = a.reg_targets[pos]
    ctr = centerness_targets(reg, anchors[pos]) if len(pos) else torch.zeros(0)
    return {"pos": pos.tolist(), "gt": a.gt_index[pos].tolist(), "reg": reg.double().tolist(),
            "ctr": ctr.double().tolist(), "ties": 0}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    json.dump({"cases": [run(c["levels"], c["boxes"]) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
