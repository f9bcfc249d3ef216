"""Imports onnxruntime-training's artifact generator and on-device training API without PyTorch.

onnxruntime-training 1.19.2 (the last release) ships `onnxruntime/training/__init__.py`, which
imports the legacy ORTTrainer optimizers and through them `torch`; the parts backend 2 uses
(`artifacts`, `onnxblock`, `api`) need only onnx and numpy. When the package import fails on
torch, the package is registered bare (its folder as `__path__`, its `__init__` not run) and the
submodules are imported from it.
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path


class NoTrainingBuild(Exception):
    pass


def load():
    """-> (artifacts, onnxblock, api) modules of onnxruntime.training."""
    try:
        import onnxruntime
    except ImportError as err:
        raise NoTrainingBuild(f"{sys.executable}: cannot import onnxruntime ({err}); "
                              "install scripts/requirements-ort-training.txt") from err
    folder = Path(onnxruntime.__file__).parent / "training"
    if not (folder / "api").is_dir():
        raise NoTrainingBuild(
            f"{sys.executable}: onnxruntime {onnxruntime.__version__} at {Path(onnxruntime.__file__).parent} "
            "has no training API (stock builds do not); use the environment of "
            "scripts/requirements-ort-training.txt (onnxruntime-training-cpu 1.19.2)")
    try:
        importlib.import_module("onnxruntime.training")
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        sys.modules.pop("onnxruntime.training", None)
        package = types.ModuleType("onnxruntime.training")
        package.__path__ = [str(folder)]
        package.__file__ = str(folder / "__init__.py")
        sys.modules["onnxruntime.training"] = package
    artifacts = importlib.import_module("onnxruntime.training.artifacts")
    onnxblock = importlib.import_module("onnxruntime.training.onnxblock")
    api = importlib.import_module("onnxruntime.training.api")
    return artifacts, onnxblock, api
