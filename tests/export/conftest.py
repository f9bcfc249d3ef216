"""Shared helpers for the export tests: import path, model builders, the relative-error metric."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

FIXTURES = Path(__file__).parent / "fixtures"
RTOL = 1e-4  # fp32 parity bound: max |a - b| / max |b| per output


def max_rel_error(actual, expected) -> float:
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    scale = expected.abs().max().item()
    return (actual - expected).abs().max().item() / (scale if scale > 0 else 1.0)


def perturb_(model: torch.nn.Module, seed: int = 0, scale: float = 0.02) -> torch.nn.Module:
    """Add noise to every parameter, so zero-initialised ones (biases, bias_lang) are exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale * max(p.abs().mean().item(), 0.05))
    return model


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
