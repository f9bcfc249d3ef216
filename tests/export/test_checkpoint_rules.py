"""The README's checkpoint rules for export_glip.py ("Exporting GLIP"), without exporting graphs:
--state-key picks the dict entry, --max-text-len is range-checked, and strict loading names a
mismatched parameter, keeps the unused cls_logits, and reports (never loads) differing buffers."""
from __future__ import annotations

import pytest
import torch

import export_glip
from glip_export import checkpoint
from glip_export.config import TINY
from glip_export.model import Glip

BUFFER = "language_backbone.body.model.embeddings.position_ids"


def file_state(model: Glip, cls_classes: int = 80) -> dict[str, torch.Tensor]:
    """`module.`-prefixed state dict as GLIP saves it, cls_logits sized for `cls_classes`."""
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    state["module.rpn.head.cls_logits.weight"] = torch.randn(cls_classes, model.cfg.head.channels, 1, 1)
    state["module.rpn.head.cls_logits.bias"] = torch.randn(cls_classes)
    return state


def seeded(seed: int) -> Glip:
    torch.manual_seed(seed)
    return Glip(TINY).eval()


def test_state_key_reads_that_entry(tmp_path):
    main, ema = seeded(1), seeded(2)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": file_state(main), "model_ema": file_state(ema), "iteration": 3}, path)
    for key, source in (("model", main), ("model_ema", ema)):
        target = seeded(9)
        checkpoint.load_into(target, checkpoint.read_state_dict(path, key=key), str(path))
        for name, value in source.named_parameters():
            if not name.startswith("rpn.head.cls_logits."):
                assert torch.equal(dict(target.named_parameters())[name], value), (key, name)
    with pytest.raises(checkpoint.CheckpointError, match=r"ckpt.pth: no state dict under 'ema'.*model_ema"):
        checkpoint.read_state_dict(path, key="ema")


def test_cli_state_key_loads_the_ema_weights(tmp_path, monkeypatch, capsys):
    """export_glip.py --state-key model_ema hands the EMA weights to the exporter."""
    main, ema = seeded(1), seeded(2)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": file_state(main), "model_ema": file_state(ema)}, path)
    exported = []

    class Stop(Exception):
        pass

    def capture(model, *args, **kwargs):
        exported.append(model)
        raise Stop

    monkeypatch.setattr(export_glip, "export_graphs", capture)
    for key, source in (("model_ema", ema), ("model", main)):
        with pytest.raises(Stop):
            export_glip.main(["--config", "tiny", "--weights", str(path), "--state-key", key,
                              "--out", str(tmp_path / "out")])
        got = dict(exported.pop().named_parameters())
        for name, value in source.named_parameters():
            if not name.startswith("rpn.head.cls_logits."):
                assert torch.equal(got[name], value), (key, name)
    assert export_glip.main(["--config", "tiny", "--weights", str(path), "--state-key", "nope",
                             "--out", str(tmp_path / "out")]) == 1
    assert "no state dict under 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1", "0", "-3", str(TINY.bert.max_positions + 1)])
def test_max_text_len_out_of_range_is_refused(tmp_path, capsys, value):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        export_glip.main(["--config", "tiny", "--random-init", "--out", str(out), "--max-text-len", value])
    assert exc.value.code == 2
    assert f"--max-text-len {value}: must be in 2..{TINY.bert.max_positions}" in capsys.readouterr().err
    assert not out.exists()


def test_shape_mismatch_outside_cls_logits_is_named(tmp_path, capsys):
    state = file_state(seeded(1))
    state["module.rpn.head.bbox_pred.weight"] = torch.randn(8, TINY.head.channels, 3, 3)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"ckpt.pth: does not fit.*1 mismatched.*rpn\.head\.bbox_pred\.weight: file \(8, "):
        checkpoint.load_into(seeded(2), {k[len("module."):]: v for k, v in state.items()}, "ckpt.pth")
    torch.save({"model": state}, tmp_path / "ckpt.pth")
    code = export_glip.main(["--config", "tiny", "--weights", str(tmp_path / "ckpt.pth"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and "rpn.head.bbox_pred.weight" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cls_logits_mismatch_keeps_the_modules_own():
    state = {k[len("module."):]: v for k, v in file_state(seeded(1), cls_classes=3).items()}
    target = seeded(2)
    own = {k: v.clone() for k, v in target.named_parameters() if k.startswith("rpn.head.cls_logits.")}
    report = checkpoint.load_into(target, state, "ckpt.pth")
    assert sorted(n.split(" ")[0] for n in report.kept_unused) == sorted(own)
    for name, value in own.items():
        assert torch.equal(dict(target.named_parameters())[name], value), name
    assert any(line.startswith("kept the module's own (unused, shape differs): rpn.head.cls_logits.")
               for line in report.lines())


def test_differing_buffer_is_reported_and_the_rebuilt_value_used():
    state = {k[len("module."):]: v for k, v in file_state(seeded(1)).items()}
    target = seeded(2)
    rebuilt = dict(target.named_buffers())[BUFFER].clone()
    state[BUFFER] = rebuilt.flip(-1)
    report = checkpoint.load_into(target, state, "ckpt.pth")
    assert report.buffer_mismatches == [BUFFER]
    assert report.buffers_checked == len(list(target.buffers()))
    assert f"WARNING buffers differing from the rebuilt values: {BUFFER}" in report.lines()
    assert torch.equal(dict(target.named_buffers())[BUFFER], rebuilt)
    state[BUFFER] = rebuilt.clone()
    report = checkpoint.load_into(seeded(2), state, "ckpt.pth")
    assert not report.buffer_mismatches and not any("WARNING" in line for line in report.lines())
