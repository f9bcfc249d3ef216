"""torch.optim.AdamW with torch.nn.utils.clip_grad_norm_ on generated gradients, for
tests/it/train_optim.rs. Needs torch (ODINW_TORCH_PYTHON).

    python adamw_torch.py spec.json out.bin  ->  per-step gradient norms (JSON) on stdout,
                                                 final parameters (f32 LE, concatenated) in out.bin

Parameters and gradients come from splitmix64 hashes of (step, tensor, index) so that both
sides generate the same numbers: value = (hash >> 40) / 2**24 - 0.5 (float32), gradients times a
per-step float32 scale. Step 1000 gives the initial parameters.
"""
import json
import sys

import numpy as np
import torch

M = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def values(step, tensor, n):
    i = np.arange(n, dtype=np.uint64)
    key = (np.uint64(step * 16 + tensor) << np.uint64(32)) + i
    u = (splitmix(key) >> np.uint64(40)).astype(np.float32)
    return u * np.float32(1.0 / 2**24) - np.float32(0.5)


def main():
    spec = json.load(open(sys.argv[1]))
    groups = spec["groups"]
    params = [torch.nn.Parameter(torch.from_numpy(values(1000, t, g["len"]).copy())) for t, g in enumerate(groups)]
    opt = torch.optim.AdamW(
        [{"params": [p], "lr": g["lr"], "weight_decay": g["weight_decay"]} for p, g in zip(params, groups)],
        betas=tuple(spec["betas"]), eps=spec["eps"])
    norms = []
    for step, scale in enumerate(spec["scales"]):
        change = spec["lr_changes"].get(str(step))
        if change is not None:
            for group, lr in zip(opt.param_groups, change):
                group["lr"] = lr
        for t, p in enumerate(params):
            p.grad = torch.from_numpy(values(step, t, p.numel()) * np.float32(scale))
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, spec["clip"])))
        opt.step()
    np.concatenate([p.detach().numpy() for p in params]).astype("<f4").tofile(sys.argv[2])
    json.dump(norms, sys.stdout)


if __name__ == "__main__":
    main()
