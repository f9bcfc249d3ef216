#!/usr/bin/env python3
"""GLIP-T on a GPU: PyTorch eager vs ONNX Runtime's CUDA EP (fp32 and fp16), same inputs.

STATUS: NOT YET RUN. Written for an H100 task; no GPU was available when it was committed, so it
has never been executed on a GPU and it reports no numbers yet.

    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install -r benchmarks/requirements-glip-gpu.txt
    .venv-gpu/bin/python benchmarks/glip_onnx_gpu.py [--image-size 800x1344] [--iters 20] [--json out.json]

It exports random-init GLIP-T (seed 0) at the given size twice (fp32 and fp16, into --work), then
times, per image (batch 1, a 256-token ODinW-style prompt padded like GLIP):
  - PyTorch eager fp32 on CUDA (the module the graphs were exported from),
  - ONNX Runtime CUDA EP with the fp32 graphs and with the fp16 graphs,
each as text encoder + image backbone + head (the text encoder is also reported alone, since
the engine caches it per prompt). Outputs are compared with PyTorch fp32: max |a-b| / max |b| per
output, and for fp16 also the largest change of a token probability (sigmoid of token_logits).
Prints a table with ratios to PyTorch eager.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from glip_export.config import GLIP_T  # noqa: E402
from glip_export.model import Glip, HeadGraph, ImageBackboneGraph, TextEncoderGraph  # noqa: E402
from glip_export.onnx_export import GRAPH_FILES, HEAD_OUTPUTS, LEVELS, export_graphs  # noqa: E402
from glip_export.prompts import build_caption  # noqa: E402
from glip_export.tokenizer import encode_batch, make_tokenizer  # noqa: E402

PROMPT = ["boat", "car", "dock", "jetski", "lift", "fish", "jellyfish", "penguin", "puffin", "shark", "starfish",
          "stingray", "person", "bicycle", "traffic light"]


def parse_size(text):
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def timed(fn, iters, warmup, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=parse_size, default=(800, 1344))
    ap.add_argument("--text-len", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="where to export (default: a temp dir)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device visible to torch", file=sys.stderr)
        return 1
    import onnxruntime as ort
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print(f"error: onnxruntime {ort.__version__} has no CUDAExecutionProvider "
              "(install onnxruntime-gpu, see benchmarks/requirements-glip-gpu.txt)", file=sys.stderr)
        return 1
    work = args.work or Path(tempfile.mkdtemp(prefix="glip-gpu-"))
    hw, t_len = args.image_size, args.text_len

    torch.manual_seed(0)
    model = Glip(GLIP_T).eval()
    started = time.time()
    export_graphs(model, work / "fp32", hw, t_len)
    fp16_model = Glip(GLIP_T).eval()
    fp16_model.load_state_dict(model.state_dict())
    export_graphs(fp16_model, work / "fp16", hw, t_len, fp16=True)
    print(f"exported fp32 and fp16 graphs to {work} in {time.time() - started:.0f}s")

    tok = make_tokenizer("bert-base-uncased")
    caption, _ = build_caption(PROMPT)
    ids, mask = encode_batch(tok, [caption], t_len)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(1, 3, *hw, generator=g).numpy()

    dev = torch.device("cuda")
    model = model.to(dev)
    backbone, encoder, head = ImageBackboneGraph(model), TextEncoderGraph(model), HeadGraph(model, hw).to(dev)
    t_img, t_ids, t_mask = (torch.from_numpy(a).to(dev) for a in (images, ids, mask))

    @torch.no_grad()
    def torch_all():
        return head(*backbone(t_img), encoder(t_ids, t_mask), t_mask)

    @torch.no_grad()
    def torch_text():
        return encoder(t_ids, t_mask)

    sync = torch.cuda.synchronize
    reference = [o.float().cpu().numpy() for o in torch_all()]
    rows = [{"engine": "pytorch eager fp32", "ms_total": timed(torch_all, args.iters, args.warmup, sync),
             "ms_text": timed(torch_text, args.iters, args.warmup, sync)}]

    for precision in ("fp32", "fp16"):
        opts = ort.SessionOptions()
        sessions = {k: ort.InferenceSession(str(work / precision / f), opts, providers=["CUDAExecutionProvider"])
                    for k, f in GRAPH_FILES.items()}
        for name, s in sessions.items():
            if s.get_providers()[0] != "CUDAExecutionProvider":
                print(f"error: {precision} {name} did not get the CUDA EP: {s.get_providers()}", file=sys.stderr)
                return 1

        def ort_text():
            return sessions["text_encoder"].run(None, {"input_ids": ids, "attention_mask": mask})[0]

        def ort_all():
            feats = sessions["image_backbone"].run(None, {"images": images})
            text = ort_text()
            return sessions["head"].run(None, dict(zip(LEVELS, feats), text_hidden=text, attention_mask=mask))

        outs = ort_all()
        row = {"engine": f"onnxruntime cuda {precision}", "ms_total": timed(ort_all, args.iters, args.warmup, lambda: None),
               "ms_text": timed(ort_text, args.iters, args.warmup, lambda: None)}
        real = mask[0].astype(bool)
        for name, a, b in zip(HEAD_OUTPUTS, outs, reference):
            if name == "token_logits":
                a, b = a[..., real], b[..., real]
                sig = lambda v: 1 / (1 + np.exp(-np.clip(v, -60, 60)))  # noqa: E731
                row["max_abs_token_prob_diff"] = float(np.abs(sig(a) - sig(b)).max())
            row[f"max_rel_{name}"] = rel(a, b)
        rows.append(row)

    base = rows[0]["ms_total"]
    print(f"\nGLIP-T random init, {hw[0]}x{hw[1]}, text {t_len}, batch 1, {torch.cuda.get_device_name()}, "
          f"ort {ort.__version__}, torch {torch.__version__}")
    for r in rows:
        extra = " ".join(f"{k}={v:.2e}" for k, v in r.items() if k.startswith("max_"))
        print(f"{r['engine']:<24} {r['ms_total']:8.2f} ms/img (x{base / r['ms_total']:.2f} vs eager)  "
              f"text {r['ms_text']:7.2f} ms  {extra}")
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(), "image_size": hw, "text_len": t_len,
                                         "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
