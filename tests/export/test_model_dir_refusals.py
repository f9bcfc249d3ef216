"""export_train_step.py refuses, before writing anything, a rebuilt model that does not reproduce
the model directory's graphs (here: the committed demo graphs with another checkpoint's weights)
and a model directory whose model.json says fp16 (README, "Training graphs")."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import export_train_step
from conftest import REPO
from glip_export import model_dir
from glip_export.config import TINY
from glip_export.model import Glip

MODEL = REPO / "models" / "demo"


def other_checkpoint(path):
    torch.manual_seed(5)
    torch.save({"model": Glip(TINY).state_dict()}, path)


def test_weights_that_do_not_reproduce_the_graphs_are_refused(tmp_path, capsys):
    ckpt = tmp_path / "other.pth"
    other_checkpoint(ckpt)
    with pytest.raises(model_dir.ModelDirError,
                       match=r"the rebuilt PyTorch model does not reproduce the graphs \(image_backbone .*head .*"
                             r"> 0\.0001\); is .*other\.pth the checkpoint these graphs were exported from\?"):
        model_dir.load(model_dir.read(MODEL), ckpt, log=lambda *_: None)
    out = tmp_path / "train"
    code = export_train_step.main(["--model", str(MODEL), "--track", "linear", "--weights", str(ckpt),
                                   "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "does not reproduce the graphs" in err and "Traceback" not in err
    assert not out.exists()


def test_fp16_model_directory_is_refused(tmp_path, capsys):
    fp16 = tmp_path / "fp16"
    shutil.copytree(MODEL, fp16, ignore=shutil.ignore_patterns("train"))
    desc = json.loads((fp16 / "model.json").read_text())
    assert desc["precision"] == "fp32"
    desc["precision"] = "fp16"
    (fp16 / "model.json").write_text(json.dumps(desc))
    with pytest.raises(model_dir.ModelDirError, match="fp16 graphs; rebuilding needs fp32 graphs or --weights CKPT"):
        model_dir.load(model_dir.read(fp16), log=lambda *_: None)
    code = export_train_step.main(["--model", str(fp16), "--track", "prompt"])
    err = capsys.readouterr().err
    assert code == 1 and "fp16 graphs" in err and "Traceback" not in err
    assert not (fp16 / "train").exists()
