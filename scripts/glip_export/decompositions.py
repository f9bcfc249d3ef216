"""The ATen decomposition table used to trace training steps into plain ONNX operators.

`make_fx` with PyTorch's core-ATen decompositions, plus two entries the exporter cannot handle
otherwise:

- `aten.convolution_backward`: the gradient of a 2-D convolution (groups 1, dilation 1) as
  convolutions: grad_input is a transposed convolution of grad_output with the weight (its
  output padding chosen so the input size comes back; where that padding depends on a symbolic
  size, the unpadded transposed convolution cropped to the input), grad_weight is a convolution of the input
  (batch and channels swapped) with grad_output as the kernel, dilated by the stride, cropped to
  the kernel size; grad_bias is a sum.
- `aten.upsample_nearest2d_backward` (the FPN's top-down path): a sum over the output pixels
  that copied each input pixel, as `N_h^T @ grad @ N_w` with 0/1 matrices built in the graph
  from the sizes with PyTorch's nearest index rule.
- `aten.empty_permuted`: uninitialised memory becomes zeros.
"""
from __future__ import annotations

import torch
from torch._decomp import core_aten_decompositions

aten = torch.ops.aten


def convolution_backward(grad_out, x, weight, bias_sizes, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask):
    if transposed or groups != 1 or any(d != 1 for d in dilation) or x.dim() != 4:
        raise NotImplementedError("convolution_backward: only plain 2-D convolutions (groups 1, dilation 1)")
    grad_input = grad_weight = grad_bias = None
    kh, kw = weight.shape[-2:]
    if output_mask[0]:
        h, w = x.shape[-2:]
        oh, ow = grad_out.shape[-2:]
        extra_h = h + 2 * padding[0] - ((oh - 1) * stride[0] + kh)
        extra_w = w + 2 * padding[1] - ((ow - 1) * stride[1] + kw)
        if isinstance(extra_h, int) and isinstance(extra_w, int):
            grad_input = aten.convolution(grad_out, weight, None, stride, padding, [1, 1], True, [extra_h, extra_w], 1)
        else:  # ONNX's output_padding is an attribute: the full transposed convolution, cropped
            grad_input = _cropped_transposed_conv(grad_out, weight, stride, padding, (h, w))
    if output_mask[1]:
        g = aten.convolution(x.transpose(0, 1), grad_out.transpose(0, 1), None, [1, 1], padding, stride, False,
                             [0, 0], 1)
        grad_weight = g[:, :, :kh, :kw].transpose(0, 1)
    if output_mask[2]:
        grad_bias = grad_out.sum(dim=(0, 2, 3))
    return grad_input, grad_weight, grad_bias


def _cropped_transposed_conv(grad_out, weight, stride, padding, size):
    """grad_input of a strided convolution whose output padding depends on a symbolic size: the
    transposed convolution without padding (every input position it reaches), zero-extended by
    stride - 1 at the bottom/right (the rows an output padding adds beyond it), cropped to
    [padding, padding + size) per axis. Equal to the padded form for every size."""
    full = aten.convolution(grad_out, weight, None, stride, [0, 0], [1, 1], True, [0, 0], 1)
    full = torch.nn.functional.pad(full, (0, stride[1] - 1, 0, stride[0] - 1))
    return full[:, :, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]


def nearest_weights(n_out, n_in, scale: float | None, dtype: torch.dtype) -> torch.Tensor:
    """[n_out, n_in] 0/1 matrix: output o copies input min(floor(o * s), n_in - 1), where s is
    1/scale when given and n_in/n_out otherwise, computed in float32 as ATen's kernel does. Built
    from torch ops, so symbolic sizes stay symbolic (the training graphs take any canvas)."""
    o = torch.arange(n_out, dtype=torch.float32)
    if scale:
        s = torch.full((), 1.0 / scale, dtype=torch.float32)
    else:
        s = torch.ones((), dtype=torch.float32) * n_in / (torch.ones((), dtype=torch.float32) * n_out)
    src = torch.floor(o * s).clamp(max=n_in - 1)
    return (torch.arange(n_in, dtype=torch.float32)[None, :] == src[:, None]).to(dtype)


def upsample_nearest2d_backward(grad_out, output_size, input_size, scales_h=None, scales_w=None):
    n_h = nearest_weights(output_size[0], input_size[2], scales_h, grad_out.dtype)
    n_w = nearest_weights(output_size[1], input_size[3], scales_w, grad_out.dtype)
    return n_h.transpose(0, 1) @ grad_out @ n_w


def empty_permuted_as_zeros(size, physical_layout, dtype=None, layout=None, device=None, pin_memory=None):
    return torch.zeros(size, dtype=dtype, device=device)


def table() -> dict:
    decomp = dict(core_aten_decompositions())
    decomp[aten.convolution_backward.default] = convolution_backward
    decomp[aten.upsample_nearest2d_backward.default] = upsample_nearest2d_backward
    decomp[aten.empty_permuted.default] = empty_permuted_as_zeros
    return decomp
