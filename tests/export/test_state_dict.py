"""The module tree has the official checkpoints' names and shapes (tables built from GLIP's code)."""
from __future__ import annotations

import re

import pytest
import torch

from conftest import FIXTURES
from glip_export.config import GLIP_L, GLIP_T, TINY
from glip_export.model import Glip, state_dict_shapes

import export_glip


def official(name: str) -> list[tuple[str, str, str]]:
    rows = (FIXTURES / f"{name}-state-dict.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:2] == ["name", "shape"]
    return [tuple(r.split("\t")[i] for i in (0, 1, 4)) for r in rows[1:] if not r.startswith("TOTAL")]


def ours(cfg) -> list[tuple[str, str, str]]:
    with torch.device("meta"):
        model = Glip(cfg)
    buffers = {k for k, _ in model.named_buffers()}
    return [(k, "x".join(map(str, s)), "buffer" if k in buffers else "param") for k, s in state_dict_shapes(model)]


@pytest.mark.parametrize("cfg,table,params", [(GLIP_T, "glip-t", 231_780_222), (GLIP_L, "glip-l", 430_422_384)])
def test_names_shapes_kinds_and_order_equal_the_official_state_dict(cfg, table, params):
    expected, got = official(table), ours(cfg)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    assert got == expected  # same order too
    with torch.device("meta"):
        assert sum(p.numel() for p in Glip(cfg).parameters()) == params


def test_print_state_dict_lists_name_and_shape(capsys):
    assert export_glip.main(["--config", "glip-t", "--print-state-dict"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{n} {s}" for n, s, _ in official("glip-t")]


def test_tiny_is_the_same_architecture_smaller():
    def structure(cfg):  # names with layer/block/level indices abstracted
        return {re.sub(r"\.\d+(?=\.|$)", ".N", k) for k, _, _ in ours(cfg)}
    assert structure(TINY) == structure(GLIP_T)
    with torch.device("meta"):
        n = sum(p.numel() for p in Glip(TINY).parameters())
    assert n < 1_500_000, n
