#!/usr/bin/env python3
"""Export a random-init GLIP model for the GPU benchmark and keep its weights for PyTorch.

    export_model.py --config glip-t --out /tmp/glipt [--image-size 800x1344] [--seed 0]

Runs scripts/export_glip.py (`--random-init`), then saves the same random-init state dict as
`<out>/random_init_state.pt`, so that PyTorch eager runs the weights the ONNX graphs hold
(the export seeds torch with --seed and builds `Glip(cfg)`, as done here; the saved dict is
checked against the graphs' initializers by name, where names match).

Without the `tokenizers` package (the GPU host's Python may lack it), the tokenizer.json
written is the committed one odinw also embeds (models/bert-base-uncased for glip-t/glip-l,
models/demo for tiny), read through a stand-in with the two methods the export calls.
Prints one JSON line: seconds per step and the initializer check.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import torch  # noqa: E402

import export_glip  # noqa: E402
from glip_export.config import get_config  # noqa: E402
from glip_export.model import Glip  # noqa: E402

COMMITTED_TOKENIZERS = {
    "bert-base-uncased": REPO / "models/bert-base-uncased/tokenizer.json",
    "tiny-wordpiece": REPO / "models/demo/tokenizer.json",
}


class CommittedTokenizer:
    """A committed tokenizer.json, offering what export_glip.py uses of a tokenizers object."""

    def __init__(self, kind: str):
        self.text = COMMITTED_TOKENIZERS[kind].read_text()
        self.vocab = json.loads(self.text)["model"]["vocab"]

    def to_str(self, pretty: bool = True) -> str:
        return self.text

    def token_to_id(self, token: str):
        return self.vocab.get(token)


def have_tokenizers() -> bool:
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def initializer_check(out: Path, state: dict) -> dict:
    """Compares the state dict with the graphs' initializers that carry the same names."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    matched, max_diff, missing_shapes = 0, 0.0, 0
    for graph in ("image_backbone.onnx", "text_encoder.onnx", "head.onnx"):
        model = onnx.load(str(out / graph), load_external_data=True)
        for init in model.graph.initializer:
            if init.name not in state:
                continue
            want = state[init.name].detach().float().numpy()
            got = numpy_helper.to_array(init).astype(np.float32)
            if got.shape != want.shape:
                missing_shapes += 1
                continue
            matched += 1
            max_diff = max(max_diff, float(np.abs(got - want).max()) if got.size else 0.0)
    return {"initializers_matched": matched, "state_dict_entries": len(state),
            "max_abs_diff": max_diff, "shape_mismatches": missing_shapes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--image-size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip the initializer check")
    args = ap.parse_args(argv)
    cfg = get_config(args.config)
    report = {"config": cfg.name, "tokenizers_package": have_tokenizers(), "torch": torch.__version__}
    if not report["tokenizers_package"]:
        export_glip.make_tokenizer = CommittedTokenizer

    started = time.time()
    cli = ["--config", cfg.name, "--random-init", "--seed", str(args.seed), "--out", str(args.out)]
    if args.image_size:
        cli += ["--image-size", args.image_size]
    rc = export_glip.main(cli)
    report["export_s"] = round(time.time() - started, 1)
    if rc != 0:
        print(json.dumps(report))
        return rc

    started = time.time()
    torch.manual_seed(args.seed)
    state = Glip(cfg).eval().state_dict()
    torch.save(state, args.out / "random_init_state.pt")
    report["state_dict_s"] = round(time.time() - started, 1)
    if not args.no_check:
        started = time.time()
        report["check"] = initializer_check(args.out, state)
        report["check_s"] = round(time.time() - started, 1)
    print(json.dumps(report))
    if not args.no_check and (report["check"]["initializers_matched"] == 0 or report["check"]["max_abs_diff"] != 0):
        print("error: the saved state dict does not match the exported graphs' weights", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
