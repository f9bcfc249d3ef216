"""Oracle side of tests/it/reference_caption.rs: the caption and per-class tokens that
scripts/eval_glip_onnx.py (the Python reference pipeline) queries each task record with.

Usage: reference_captions.py TOKENIZER_JSON RECORD.json...
Prints {"<record path>/<prompt|no-prompt>": {"caption": str, "classes": [[id, [tokens]]]}}.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from tokenizers import Tokenizer  # noqa: E402

import eval_glip_onnx  # noqa: E402
from glip_export.prompts import positive_map  # noqa: E402

MAX_LEN = 256  # GLIP's MAX_QUERY_LEN


def main():
    tokenizer = Tokenizer.from_file(sys.argv[1])
    out = {}
    for path in sys.argv[2:]:
        task = json.loads(Path(path).read_text())
        for mode, use_prompt in (("prompt", True), ("no-prompt", False)):
            caption, spans, ids = eval_glip_onnx.task_caption(task, use_prompt)
            pm = positive_map(tokenizer, caption, spans, MAX_LEN)
            out[f"{path}/{mode}"] = {
                "caption": caption,
                "classes": [[cid, [int(t) for t in row.nonzero()[0]]] for cid, row in zip(ids, pm)],
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
