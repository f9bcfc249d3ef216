"""Each part of the re-implementation against an independent oracle.

- DCNv2 with GLIP's offset reinterpretation vs a NumPy transcription of maskrcnn_benchmark's CUDA
  kernel (raw per-image offset/mask buffers, bilinear sampling with its bounds rules).
- Swin (GLIP layout, pad-then-shift) vs timm's Swin, at a size where both orders agree.
- BERT and the head's clamped BERT layer vs Hugging Face transformers.
- Anchors vs the values in GLIP's protocol notes; the box coder round trip.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import max_rel_error
from glip_export import anchors as anchor_lib
from glip_export.bert import BertLayer, BertModel
from glip_export.config import GLIP_T, TINY, BertConfig
from glip_export.decompositions import _cropped_transposed_conv, convolution_backward, upsample_nearest2d_backward
from glip_export.dyhead import (DeformConv3x3, deform_conv3x3_gather, deform_conv3x3_grid_sample,
                                upsample_bilinear_matmul)
from glip_export.fpn import upsample_nearest_matmul
from glip_export.swin import SwinBackbone


# ---------------------------------------------------------------- DCNv2, GLIP's kernel semantics
def _bilinear(img: np.ndarray, h: float, w: float) -> float:
    height, width = img.shape
    hl, wl = math.floor(h), math.floor(w)
    hh, wh = hl + 1, wl + 1
    lh, lw = h - hl, w - wl
    v = lambda y, x: img[y, x] if 0 <= y <= height - 1 and 0 <= x <= width - 1 else 0.0  # noqa: E731
    return ((1 - lh) * (1 - lw) * v(hl, wl) + (1 - lh) * lw * v(hl, wh)
            + lh * (1 - lw) * v(hh, wl) + lh * lw * v(hh, wh))


def glip_kernel_dcn(x, offset_buf, mask_buf, weight, bias, stride):
    """modulated_deformable_im2col_gpu_kernel + GEMM, reading offsets from each image's raw
    buffer laid out as [18, oH, oW] whatever shape the tensor that was passed had."""
    n, c, height, width = x.shape
    oh = (height + 2 - 3) // stride + 1
    ow = (width + 2 - 3) // stride + 1
    out = np.zeros((n, weight.shape[0], oh, ow))
    for b in range(n):
        off = offset_buf[b].reshape(-1)
        msk = mask_buf[b].reshape(-1)
        cols = np.zeros((c, 9, oh, ow))
        for i in range(3):
            for j in range(3):
                k = i * 3 + j
                for y in range(oh):
                    for z in range(ow):
                        dh = off[((2 * k) * oh + y) * ow + z]
                        dw = off[((2 * k + 1) * oh + y) * ow + z]
                        m = msk[(k * oh + y) * ow + z]
                        hi = y * stride - 1 + i + dh
                        wi = z * stride - 1 + j + dw
                        if -1 < hi < height and -1 < wi < width:
                            for ch in range(c):
                                cols[ch, k, y, z] = _bilinear(x[b, ch], hi, wi) * m
        out[b] = np.einsum("ock,ckyz->oyz", weight.reshape(weight.shape[0], c, 9), cols) + bias[:, None, None]
    return out


@pytest.mark.parametrize("stride,in_hw,off_hw", [(1, (5, 6), (10, 11)), (1, (4, 4), (4, 4)), (2, (8, 10), (4, 5))])
def test_dcn_matches_glip_kernel_including_offset_reinterpretation(stride, in_hw, off_hw):
    g = torch.Generator().manual_seed(0)
    conv = DeformConv3x3(3, 4, stride)
    with torch.no_grad():
        conv.bias.normal_(generator=g)
    x = torch.randn(2, 3, *in_hw, generator=g)
    offset = torch.randn(2, 18, *off_hw, generator=g) * 1.5  # level-l offsets, maybe larger than the output
    mask = torch.rand(2, 9, *off_hw, generator=g)
    expected = glip_kernel_dcn(x.double().numpy(), offset.double().numpy(), mask.double().numpy(),
                               conv.weight.detach().double().numpy(), conv.bias.detach().double().numpy(), stride)
    with torch.no_grad():
        got = conv(x, offset, mask)
        DeformConv3x3.use_grid_sample = True
        try:
            got_gs = conv(x, offset, mask)
        finally:
            DeformConv3x3.use_grid_sample = False
        DeformConv3x3.use_gather = True
        try:
            got_gather = conv(x, offset, mask)
        finally:
            DeformConv3x3.use_gather = False
    assert got.shape == expected.shape
    assert max_rel_error(got, expected) < 1e-5
    assert max_rel_error(got_gs, expected) < 1e-5
    assert max_rel_error(got_gather, expected) < 1e-5


def test_grid_sample_dcn_gradients_match_torchvision():
    from torchvision.ops import deform_conv2d
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 9, 7, generator=g, requires_grad=True)
    off = (torch.randn(2, 18, 5, 4, generator=g) * 2).requires_grad_()
    m = torch.rand(2, 9, 5, 4, generator=g).requires_grad_()
    w = torch.randn(3, 4, 3, 3, generator=g).requires_grad_()
    b = torch.randn(3, generator=g).requires_grad_()
    a = deform_conv2d(x, off, w, b, stride=2, padding=1, mask=m)
    c = deform_conv3x3_grid_sample(x, off, w, b, 2, m)
    grad = torch.randn(a.shape, generator=g)
    for ga, gc in zip(torch.autograd.grad(a, (x, off, m, w, b), grad), torch.autograd.grad(c, (x, off, m, w, b), grad)):
        assert max_rel_error(gc, ga) < 1e-4


@pytest.mark.parametrize("stride,in_hw", [(1, (9, 7)), (2, (9, 7)), (1, (1, 1)), (2, (2, 3))])
def test_gather_dcn_values_and_gradients_match_torchvision(stride, in_hw):
    """The training graphs' DCN (row gathers) is torchvision's function, gradients included (float64)."""
    from torchvision.ops import deform_conv2d
    g = torch.Generator().manual_seed(2)
    oh, ow = ((d + 2 - 3) // stride + 1 for d in in_hw)
    x = torch.randn(2, 4, *in_hw, generator=g, dtype=torch.float64, requires_grad=True)
    off = (torch.randn(2, 18, oh, ow, generator=g, dtype=torch.float64) * 2).requires_grad_()
    m = torch.rand(2, 9, oh, ow, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.randn(3, 4, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_()
    a = deform_conv2d(x, off, w, b, stride=stride, padding=1, mask=m)
    c = deform_conv3x3_gather(x, off, w, b, stride, m)
    assert max_rel_error(c, a) < 1e-12
    grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
    for ga, gc in zip(torch.autograd.grad(a, (x, off, m, w, b), grad), torch.autograd.grad(c, (x, off, m, w, b), grad)):
        assert max_rel_error(gc, ga) < 1e-10


@pytest.mark.parametrize("in_hw,out_hw", [((3, 3), (6, 6)), ((2, 2), (3, 3)), ((25, 42), (50, 84)), ((1, 1), (2, 2)), ((1, 2), (2, 4)),
                                           ((3, 4), (1, 1))])
def test_matmul_upsample_matches_interpolate(in_hw, out_hw):
    x = torch.randn(2, 3, *in_hw, dtype=torch.float64)
    expected = torch.nn.functional.interpolate(x, size=out_hw, mode="bilinear", align_corners=True)
    assert max_rel_error(upsample_bilinear_matmul(x, out_hw), expected) < 1e-12


@pytest.mark.parametrize("in_hw,out_hw", [((6, 6), (12, 12)), ((25, 42), (50, 84)), ((7, 5), (13, 11)), ((1, 2), (2, 4))])
def test_matmul_nearest_upsample_matches_interpolate(in_hw, out_hw):
    x = torch.randn(2, 3, *in_hw, dtype=torch.float64)
    expected = torch.nn.functional.interpolate(x, size=out_hw, mode="nearest")
    assert torch.equal(upsample_nearest_matmul(x, out_hw), expected)


@pytest.mark.parametrize("in_hw,out_hw", [((6, 6), (12, 12)), ((25, 42), (50, 84)), ((7, 5), (13, 11)), ((1, 2), (2, 4))])
def test_nearest_upsample_backward_decomposition(in_hw, out_hw):
    x = torch.randn(2, 3, *in_hw, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.interpolate(x, size=out_hw, mode="nearest")
    grad = torch.randn_like(y)
    expected, = torch.autograd.grad(y, x, grad)
    assert max_rel_error(upsample_nearest2d_backward(grad, list(out_hw), list(x.shape)), expected) < 1e-12


@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (1, 0, 1), (2, 0, 3), (4, 0, 4)])
def test_convolution_backward_decomposition(stride, padding, kernel):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 13, 17, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, kernel, kernel, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
    grad = torch.randn(y.shape, generator=g, dtype=torch.float64)
    expected = torch.autograd.grad(y, (x, w, b), grad)
    got = convolution_backward(grad, x, w, [5], [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1,
                               [True, True, True])
    for a, e in zip(got, expected):
        assert max_rel_error(a, e) < 1e-12


@pytest.mark.parametrize("hw", [(13, 17), (12, 16), (14, 19), (5, 6)])
@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (2, 0, 3), (3, 1, 3), (4, 0, 4), (2, 2, 5)])
def test_cropped_transposed_conv_is_the_input_gradient(stride, padding, kernel, hw):
    """The symbolic-size form of grad_input (no output padding) equals autograd's."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, *hw, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, kernel, kernel, generator=g, dtype=torch.float64)
    y = torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)
    grad = torch.randn(y.shape, generator=g, dtype=torch.float64)
    expected, = torch.autograd.grad(y, x, grad)
    got = _cropped_transposed_conv(grad, w, [stride] * 2, [padding] * 2, hw)
    assert got.shape == expected.shape and max_rel_error(got, expected) < 1e-12


# ---------------------------------------------------------------- Swin vs timm
def test_swin_matches_timm_where_pad_and_shift_orders_agree():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ours = SwinBackbone(GLIP_T.swin).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=0,
                            always_partition=True).eval()
    state = {}
    for k, v in ours.state_dict().items():
        if k.endswith("relative_position_index") or k.startswith(("norm1.", "norm2.")):
            continue
        if ".downsample." in k:
            i = int(k.split(".")[1])
            k = k.replace(f"layers.{i}.", f"layers.{i + 1}.", 1)
        state[k.replace("norm3.", "norm.")] = v
    ref.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        got = ours(x)
        t = ref.patch_embed(x)
        stages = []
        for layer in ref.layers:
            t = layer(t)
            stages.append(t)
        expected = [ours.norm1(stages[1]), ours.norm2(stages[2]), ref.norm(stages[3])]
    for a, b in zip(got, expected):
        assert max_rel_error(a, b.permute(0, 3, 1, 2)) < 1e-5


# ---------------------------------------------------------------- BERT vs transformers
@pytest.mark.parametrize("cfg", [TINY.bert, GLIP_T.bert], ids=["tiny", "bert-base"])
def test_bert_matches_transformers(cfg: BertConfig):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = BertModel(cfg).eval()
    hf_cfg = transformers.BertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                                     num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate,
                                     max_position_embeddings=cfg.max_positions, type_vocab_size=cfg.type_vocab,
                                     layer_norm_eps=cfg.layer_norm_eps)
    hf = transformers.BertModel(hf_cfg, add_pooling_layer=False).eval()
    missing, unexpected = hf.load_state_dict(ours.state_dict(), strict=False)
    assert not [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))], missing
    assert not [k for k in unexpected if not k.endswith("position_ids")], unexpected
    ids = torch.randint(1, cfg.vocab_size, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, 7:] = 0
    with torch.no_grad():
        got = ours(ids, mask)
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert max_rel_error(got[real], expected[real]) < 1e-5
    # the head's BertLayer (clamped) equals HF's layer while nothing reaches the clamp
    layer = BertLayer(cfg, clamp=True).eval()
    layer.load_state_dict(hf.encoder.layer[0].state_dict())
    x = torch.randn(2, 12, cfg.hidden)
    with torch.no_grad():
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        expected = hf.encoder.layer[0](x, attention_mask=ext)
        expected = expected[0] if isinstance(expected, tuple) else expected
        assert max_rel_error(layer(x, mask)[real], expected[real]) < 1e-5


# ---------------------------------------------------------------- anchors and box coder
def test_anchors_match_glip():
    expected = {8: [-28, -28, 35, 35], 16: [-56, -56, 71, 71], 32: [-112, -112, 143, 143],
                64: [-224, -224, 287, 287], 128: [-448, -448, 575, 575]}
    for stride, size in zip(GLIP_T.anchor_strides, GLIP_T.anchor_sizes):
        assert anchor_lib.cell_anchor(stride, size) == expected[stride]
    sizes = anchor_lib.feature_sizes((800, 1344), GLIP_T.anchor_strides)
    assert sizes == [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]
    grid = anchor_lib.grid_anchors(sizes, GLIP_T.anchor_strides, GLIP_T.anchor_sizes)
    assert grid.shape == (22400, 4)
    assert grid[1].tolist() == [-20, -28, 43, 35]  # x advances first within a row
    assert grid[168].tolist() == [-28, -20, 35, 43]
    assert grid[16800].tolist() == expected[16]


def test_box_coder_round_trip_and_clamp():
    g = torch.Generator().manual_seed(0)
    anchors = torch.tensor([[0.0, 0, 63, 63], [10, 20, 40, 90]])
    boxes = torch.tensor([[5.0, 3, 50, 70], [0, 0, 9, 9]])
    assert max_rel_error(anchor_lib.decode(anchor_lib.encode(boxes, anchors), anchors), boxes) < 1e-6
    huge = anchor_lib.decode(torch.tensor([[0.0, 0, 100, 100]]), anchors[:1])
    assert huge[0, 2] - huge[0, 0] + 1 == pytest.approx(64 * 1000 / 16, rel=1e-5)
    del g
