"""Fixtures of the ONNX Runtime training tests (run by scripts/test_ort_training.sh in .venv-ortrain).

`artifacts`: scripts/make_ort_training_artifacts.py run on the demo model into a scratch folder;
`reference`: tests/ort_training/reference_torch.py's PyTorch reference for them (.npz), run in the
export environment ($ODINW_EXPORT_PYTHON, else .venv-export/bin/python).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

DEMO = REPO / "models" / "demo"
COMMITTED = REPO / "tests" / "fixtures" / "ort_training" / "demo-linear"


def torch_python() -> str:
    python = os.environ.get("ODINW_EXPORT_PYTHON") or str(REPO / ".venv-export" / "bin" / "python")
    if not Path(python).exists():
        pytest.fail(f"{python}: the export environment is missing (bash scripts/test_export.sh creates it)")
    return python


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    run([sys.executable, str(REPO / "scripts" / "make_ort_training_artifacts.py"), "--model", str(DEMO),
         "--track", "linear", "--out", str(out), "--torch-python", torch_python()])
    return out


@pytest.fixture(scope="session")
def manifest(artifacts) -> dict:
    return json.loads((artifacts / "ort_training.json").read_text())


@pytest.fixture(scope="session")
def reference(artifacts, tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    run([torch_python(), str(REPO / "tests" / "ort_training" / "reference_torch.py"), "--model", str(DEMO),
         "--artifacts", str(artifacts), "--out", str(path)])
    return dict(np.load(path))
