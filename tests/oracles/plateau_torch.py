"""torch.optim.lr_scheduler.ReduceLROnPlateau as GLIP's WarmupReduceLROnPlateau drives it
(WARMUP_ITERS 0: `elif metrics: super().step(metrics)`), for tests/it/train_optim.rs.
Needs torch (ODINW_TORCH_PYTHON).

    python plateau_torch.py spec.json  ->  per sequence, the learning rates after each AP (JSON)
"""
import json
import sys

import torch


def run(lrs, patience, aps):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.1, patience=patience, threshold=1e-4, threshold_mode="rel",
        cooldown=0, min_lr=1e-6, eps=1e-8)
    out = []
    for ap in aps:
        if ap:  # GLIP's `elif metrics:`
            sched.step(ap)
        out.append([g["lr"] for g in opt.param_groups])
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    json.dump([run(s["lrs"], s["patience"], s["aps"]) for s in spec], sys.stdout)


if __name__ == "__main__":
    main()
