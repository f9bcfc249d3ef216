#!/usr/bin/env python3
"""Backend 2 of issue #8: ONNX Runtime training artifacts for a fine-tuning track.

    .venv-ortrain/bin/python scripts/make_ort_training_artifacts.py --model models/demo --track linear --out DIR

Run it with the environment of scripts/requirements-ort-training.txt (onnxruntime-training-cpu
1.19.2, the last onnxruntime-training release); scripts/test_ort_training.sh creates it as
.venv-ortrain. The PyTorch half (scripts/export_ort_loss_graph.py) runs in the export
environment, `--torch-python` (default $ODINW_EXPORT_PYTHON, else .venv-export/bin/python).

Writes into --out:
- features.onnx: the DyHead tower (p3..p7, text_hidden, attention_mask -> f3..f7, text_fused),
  for caching the track's inputs with stock ONNX Runtime;
- loss_graph.onnx: the forward+loss graph the artifacts are built from (GLIP's loss, §9);
- checkpoint, training_model.onnx, eval_model.onnx, optimizer_model.onnx: from
  onnxruntime-training's `generate_artifacts` (requires_grad = GLIP's linear_prob set, frozen =
  the per-level scales, no extra loss block since the graph outputs the loss, AdamW with torch's
  semantics (decoupled decay before the update), betas (0.9, 0.999), eps 1e-8, the track's weight
  decay and global gradient-norm clipping at 1.0);
- ort_training.json: inputs, outputs, parameters, optimizer settings (contract odinw-ort-training
  version 2, "canvas": "dynamic": the graphs take GLIP's per-batch training canvas; the inputs'
  level sizes and anchor count are named dims, f3_height ... anchors).

Only `linear` is possible: ONNX Runtime has no gradient for DeformConv or InstanceNormalization
(GroupNorm), which every deeper track crosses. ONNX Runtime's AdamW takes one learning rate and
one weight decay for all parameters, so TRAIN_CONTRACT.md's bias group (lr x 2, no decay) is not
reproduced: every parameter gets the track's lr and weight decay.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import onnx  # noqa: E402

import ort_training_api  # noqa: E402

ARTIFACTS = {"checkpoint": "checkpoint", "training_model": "training_model.onnx",
             "eval_model": "eval_model.onnx", "optimizer_model": "optimizer_model.onnx"}
BETAS = (0.9, 0.999)
EPS = 1e-8
CLIP_GRAD_NORM = 1.0
# onnxruntime-training 1.19.2 reads ONNX IR versions up to 10 and opsets up to 21.
MAX_IR_VERSION = 10
MAX_OPSET = 21


def default_torch_python() -> str:
    env = os.environ.get("ODINW_EXPORT_PYTHON")
    if env:
        return env
    return str(SCRIPTS.parent / ".venv-export" / "bin" / "python")


def export_loss_graph(torch_python: str, model: Path, track: str, batch: int, out: Path) -> dict:
    if not Path(torch_python).exists():
        raise SystemExit(f"--torch-python {torch_python}: no such interpreter; create the export environment "
                         "(bash scripts/test_export.sh, or python3 -m venv .venv-export && .venv-export/bin/pip "
                         "install -r scripts/requirements-export.txt) or point --torch-python at one")
    cmd = [torch_python, str(SCRIPTS / "export_ort_loss_graph.py"), "--model", str(model), "--track", track,
           "--batch", str(batch), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"exporting the loss graph failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    print(done.stdout.strip())
    return json.loads((out / "ort_training.json").read_text())


def check_limits(model: onnx.ModelProto, path: Path) -> None:
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if model.ir_version > MAX_IR_VERSION or opset > MAX_OPSET:
        raise SystemExit(f"{path}: IR version {model.ir_version}, opset {opset}; onnxruntime-training 1.19.2 "
                         f"reads at most IR {MAX_IR_VERSION}, opset {MAX_OPSET}")


@contextlib.contextmanager
def native_stderr_to(path: Path):
    """Sends file descriptor 2 to `path` for the block: the gradient builder of onnxruntime-training
    logs every graph transformation there at INFO level, whatever the Python logger settings."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield path
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in text[-lines:])


def use_torch_adamw(path: Path) -> None:
    """onnxblock's AdamW writes adam_mode 1 (Hugging Face: decay after the update); mode 0 is
    torch.optim.AdamW's (decay before the update), which the contract specifies."""
    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type == "AdamWOptimizer"]
    if len(nodes) != 1:
        raise SystemExit(f"{path}: expected one AdamWOptimizer node, found {len(nodes)}")
    attrs = {a.name: a for a in nodes[0].attribute}
    attrs["adam_mode"].i = 0
    if attrs["correct_bias"].i != 1:
        raise SystemExit(f"{path}: AdamW without bias correction")
    onnx.save(model, str(path))


def generate(desc: dict, staging: Path, weight_decay: float) -> None:
    artifacts, onnxblock, api = ort_training_api.load()
    loss_path = staging / desc["loss_graph"]
    model = onnx.load(str(loss_path))
    check_limits(model, loss_path)
    trainable = [p["name"] for p in desc["trainable"]]
    frozen = [p["name"] for p in desc["frozen"]]
    optimizer = onnxblock.optim.AdamW(bias_correction=True, betas=BETAS, eps=EPS, weight_decay=weight_decay,
                                      clip_grad=onnxblock.optim.ClipGradNorm(CLIP_GRAD_NORM))
    # loss=None: the graph's first output already is the loss (onnxblock's PassThrough).
    with native_stderr_to(staging / "generate_artifacts.log") as log:
        try:
            artifacts.generate_artifacts(model, requires_grad=trainable, frozen_params=frozen, loss=None,
                                         optimizer=optimizer, artifact_directory=staging)
        except Exception as err:  # noqa: BLE001 - reported with ONNX Runtime's own log
            raise SystemExit(f"generate_artifacts failed: {err}\n{tail(log)}") from err
    use_torch_adamw(staging / ARTIFACTS["optimizer_model"])

    # Load them back with the training API, as a trainer would.
    state = api.CheckpointState.load_checkpoint(str(staging / ARTIFACTS["checkpoint"]))
    module = api.Module(str(staging / ARTIFACTS["training_model"]), state, str(staging / ARTIFACTS["eval_model"]),
                        device="cpu")
    api.Optimizer(str(staging / ARTIFACTS["optimizer_model"]), module)
    want_inputs = [i["name"] for i in desc["inputs"]]
    if module.input_names() != want_inputs or module.output_names() != desc["outputs"]:
        raise SystemExit(f"the training model takes {module.input_names()} and gives {module.output_names()}; "
                         f"expected {want_inputs} and {desc['outputs']}")
    stored = sorted(state.parameters[n].name for n in trainable + frozen)
    if stored != sorted(trainable + frozen):
        raise SystemExit(f"the checkpoint holds {stored}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="exported model directory (model.json, head.onnx)")
    ap.add_argument("--track", choices=["linear"], required=True)
    ap.add_argument("--batch", type=int, default=2, help="static batch size (default 2)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--torch-python", default=default_torch_python(),
                    help="interpreter with scripts/requirements-export.txt (default: $ODINW_EXPORT_PYTHON, "
                         "else .venv-export/bin/python)")
    args = ap.parse_args(argv)
    try:
        ort_training_api.load()
    except ort_training_api.NoTrainingBuild as err:
        raise SystemExit(str(err))

    args.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=args.out))
    try:
        desc = export_loss_graph(args.torch_python, args.model, args.track, args.batch, staging)
        weight_decay = desc["recipe"]["weight_decay"]
        generate(desc, staging, weight_decay)
        import onnxruntime

        desc["artifacts"] = dict(ARTIFACTS)
        desc["optimizer"] = {
            "kind": "adamw", "semantics": "torch.optim.AdamW (ONNX Runtime AdamWOptimizer adam_mode 0)",
            "betas": list(BETAS), "eps": EPS, "weight_decay": weight_decay, "clip_grad_norm": CLIP_GRAD_NORM,
            "base_lr": desc["recipe"]["base_lr"],
            "param_groups": "one: every trainable parameter gets base_lr and weight_decay (ONNX Runtime's "
                            "AdamW has no per-parameter groups; the contract's bias group is not reproduced)",
        }
        desc["generated_with"] = {"onnxruntime_training": onnxruntime.__version__, "onnx": onnx.__version__}
        (staging / "ort_training.json").write_text(json.dumps(desc, indent=1) + "\n")
        names = [desc["features"]["file"], desc["loss_graph"], *ARTIFACTS.values(), "ort_training.json"]
        for name in names:  # the description last: a folder with it is complete
            os.replace(staging / name, args.out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {', '.join(names)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
