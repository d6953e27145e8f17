"""``unfold`` / ``fold``: the im2col and col2im of the lecture notes made visible.

unfold turns (N, C, H, W) into (N, C*kh*kw, L): one column per sliding block, rows
ordered c*kh*kw + i*kw + j, columns oh*Wo + ow. fold sums such columns back into an
image (overlaps add up), so each is the other's backward. Both run the Cython kernels
of the convolution (minidl._kernels.im2col / col2im).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V

IntOrPair = Union[int, Sequence[int]]


def _geometry(what, kernel_size, dilation, padding, stride):
    kernel = V.pair(kernel_size, "kernel_size", what)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    if min(kernel) < 1:
        raise ValueError(f"{what}: kernel_size must be >= 1, got {kernel}")
    return kernel, dilation, padding, stride


def unfold(
    input: Tensor,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: IntOrPair = 0,
    stride: IntOrPair = 1,
) -> Tensor:
    """input (N, C, H, W) or (C, H, W) -> (N, C*kh*kw, L) or (C*kh*kw, L), L the number
    of blocks (zero padding)."""
    what = "unfold"
    x = V.data_of(what, "input", input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{what}: expected a 3-D or 4-D input, got shape {x.shape}")
    V.float_image(what, x)
    kernel, dilation, padding, stride = _geometry(what, kernel_size, dilation, padding, stride)
    batched = x if x.ndim == 4 else x[None]
    if 0 in batched.shape[1:]:
        raise ValueError(f"{what}: empty input of shape {x.shape}")
    V.conv_output_size(what, batched.shape, kernel, stride, padding, dilation)
    cols = K.im2col(V.kernel_array(batched), kernel, stride, padding, dilation, get_num_threads())
    shape = batched.shape

    def backward(g):
        g = V.kernel_array(g.reshape(cols.shape))
        gx = K.col2im(g, shape, kernel, stride, padding, dilation, get_num_threads())
        return (gx.reshape(x.shape),)

    return record(cols if x.ndim == 4 else cols[0], (input,), backward)


def fold(
    input: Tensor,
    output_size: IntOrPair,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: IntOrPair = 0,
    stride: IntOrPair = 1,
) -> Tensor:
    """input (N, C*kh*kw, L) or (C*kh*kw, L) -> (N, C, H, W) or (C, H, W) with
    (H, W) = output_size, summing the values that land on one pixel."""
    what = "fold"
    cols = V.data_of(what, "input", input)
    if cols.ndim not in (2, 3):
        raise ValueError(f"{what}: expected a 2-D or 3-D input, got shape {cols.shape}")
    V.float_image(what, cols)
    out_hw = V.pair(output_size, "output_size", what)
    kernel, dilation, padding, stride = _geometry(what, kernel_size, dilation, padding, stride)
    batched = cols if cols.ndim == 3 else cols[None]
    n, rows, length = batched.shape
    kk = kernel[0] * kernel[1]
    if rows == 0 or rows % kk:
        raise ValueError(
            f"{what}: input shape {cols.shape}: dim {cols.ndim - 2} ({rows}) must be a "
            f"positive multiple of kh*kw = {kk}"
        )
    if min(out_hw) < 1:
        raise ValueError(f"{what}: output_size must be positive, got {out_hw}")
    shape = (n, rows // kk) + out_hw
    blocks = V.conv_output_size(what, shape, kernel, stride, padding, dilation)
    if blocks[0] * blocks[1] != length:
        raise ValueError(
            f"{what}: input shape {cols.shape} has {length} blocks, but output_size {out_hw} "
            f"with kernel_size {kernel}, dilation {dilation}, padding {padding}, stride {stride} "
            f"gives {blocks[0]}x{blocks[1]} = {blocks[0] * blocks[1]}"
        )
    if n == 0:
        out = np.zeros(shape, cols.dtype)
    else:
        out = K.col2im(
            V.kernel_array(batched),
            shape,
            kernel,
            stride,
            padding,
            dilation,
            get_num_threads(),
        )

    def backward(g):
        g = V.kernel_array(g.reshape(shape))
        if n == 0:
            return (np.zeros(cols.shape, g.dtype),)
        gc = K.im2col(g, kernel, stride, padding, dilation, get_num_threads())
        return (gc.reshape(cols.shape),)

    return record(out if cols.ndim == 3 else out[0], (input,), backward)
