"""Max and average pooling on the Cython kernels, each with its backward.

Every argument is validated (minidl.ops._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.
"""

from __future__ import annotations

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, is_grad_enabled, record
from minidl.ops import _validation as V

_contiguous = np.ascontiguousarray


def max_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Max over kh x kw windows of input (N, C, H, W) (padding counts as -inf).

    stride defaults to kernel_size; padding must be at most half the kernel. Only
    dilation=1 and ceil_mode=False are supported. The gradient goes to each window's
    (first) maximum. With return_indices, also returns the flat h*W + w positions.
    """
    what = "max_pool2d"
    if dilation != 1 and V.pair(dilation, "dilation", what) != (1, 1):
        raise ValueError(f"{what}: only dilation=1 is supported, got {dilation!r}")
    if ceil_mode:
        raise ValueError(f"{what}: ceil_mode=True is not supported")
    x = V.data_of(what, "input", input)
    kernel, stride, padding, _ = V.pool_args(what, x, kernel_size, stride, padding)
    x = _contiguous(x)
    recorded = input.requires_grad and is_grad_enabled()
    if (
        recorded
        and not return_indices
        and kernel == stride == (2, 2)
        and padding == (0, 0)
        and x.shape[2] % 2 == 0
        and x.shape[3] % 2 == 0
    ):
        # the common pooling layer: a uint8 window code per output is what the backward
        # needs, 8x less to write and read back than an int64 index
        out, codes = K.max_pool2d_2x2_forward(x, get_num_threads())
        return record(
            out,
            (input,),
            lambda g: (K.max_pool2d_2x2_backward(_contiguous(g), codes, get_num_threads()),),
        )
    # when nothing is recorded (no backward) and no indices are returned, the kernel's
    # values-only path skips the int64 indices, which cost most of the pooling time
    out, indices = K.max_pool2d_forward(
        x, kernel, stride, padding, get_num_threads(), return_indices or recorded
    )
    shape = x.shape
    result = record(
        out,
        (input,),
        lambda g: (K.max_pool2d_backward(_contiguous(g), indices, shape, get_num_threads()),),
    )
    if return_indices:
        return result, Tensor(indices)
    return result


def avg_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over kh x kw windows of input (N, C, H, W).

    stride defaults to kernel_size; padding must be at most half the kernel. The
    divisor is kh*kw when count_include_pad (default), else the number of non-padding
    elements. ceil_mode=True and divisor_override are not supported.
    """
    what = "avg_pool2d"
    if ceil_mode:
        raise ValueError(f"{what}: ceil_mode=True is not supported")
    if divisor_override is not None:
        raise ValueError(f"{what}: divisor_override is not supported")
    x = V.data_of(what, "input", input)
    kernel, stride, padding, _ = V.pool_args(what, x, kernel_size, stride, padding)
    include = bool(count_include_pad)
    x = _contiguous(x)
    out = K.avg_pool2d_forward(x, kernel, stride, padding, include, get_num_threads())
    shape = x.shape
    return record(
        out,
        (input,),
        lambda g: (
            K.avg_pool2d_backward(
                _contiguous(g), shape, kernel, stride, padding, include, get_num_threads()
            ),
        ),
    )
