"""The fully connected layer's op, with its backward next to its forward.

Its three GEMMs run on minidl's linear kernel (minidl._kernels._linear: scipy's BLAS on
one thread per fixed block of output rows), so results do not depend on the thread
count and numpy's BLAS pool is never woken; empty arrays go through numpy.
"""

from __future__ import annotations

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V
from minidl.ops.activation import relu_grad

_contiguous = np.ascontiguousarray
_KERNEL_DTYPES = (np.float32, np.float64)


def _rows(a: np.ndarray) -> np.ndarray:
    """a (..., n) as a C-contiguous (M, n) matrix."""
    return _contiguous(a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input (..., in) @ weight.T (out, in) + bias (out,) -> (..., out)."""
    return _linear(input, weight, bias, False)


def linear_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor | None:
    """relu(linear(input, weight, bias)), the ReLU applied to each block of rows of the
    output while it is in cache: the same values and gradients as the two ops. None,
    computing nothing, where the linear kernel does not run (empty arrays, other
    dtypes): the caller then runs the two ops."""
    return _linear(input, weight, bias, True)


def _linear(input, weight, bias, relu: bool) -> Tensor | None:
    xd = V.data_of("linear", "input", input)
    wd = V.data_of("linear", "weight", weight)
    bd = V.optional_data_of("linear", "bias", bias)
    V.linear_args(xd, wd, bd)
    fast = xd.size > 0 and wd.size > 0 and xd.dtype == wd.dtype and xd.dtype in _KERNEL_DTYPES
    if fast:
        b = None if bd is None else _contiguous(bd, dtype=xd.dtype)
        out = K.linear_forward(_rows(xd), _contiguous(wd), b, get_num_threads(), relu=relu)
        out = out.reshape(xd.shape[:-1] + (wd.shape[0],))
    elif relu:
        return None
    else:
        out = xd @ wd.T
        if bd is not None:
            out += bd
    inputs: tuple[Tensor, ...]
    inputs = (input, weight) if bias is None else (input, weight, bias)

    def backward(g):
        nt = get_num_threads()
        if relu:
            g = relu_grad(out, g)
        g2 = _contiguous(g.reshape(-1, g.shape[-1]), dtype=xd.dtype)
        gx = gw = gb = None
        if input.requires_grad:
            if fast:
                gx = K.linear_backward_input(g2, _contiguous(wd), nt).reshape(xd.shape)
            else:
                gx = g @ wd
        if weight.requires_grad:
            if fast:
                gw = K.linear_backward_weight(g2, _rows(xd), nt)
            else:
                gw = g.reshape(-1, g.shape[-1]).T @ xd.reshape(-1, xd.shape[-1])
        if bias is None:
            return gx, gw
        if bias.requires_grad:
            gb = g2.sum(axis=0)
        return gx, gw, gb

    return record(out, inputs, backward)
