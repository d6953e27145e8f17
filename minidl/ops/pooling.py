"""Max, min and average pooling on the Cython kernels, each with its backward.

Every argument is validated (minidl.ops._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, is_grad_enabled, record
from minidl.ops import _validation as V
from minidl.ops.padding import pad

_contiguous = V.kernel_array
IntOrPair = Union[int, Sequence[int]]


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Max over kh x kw windows of input (N, C, H, W) or (C, H, W) (padding counts as -inf).

    stride defaults to kernel_size; padding must be at most half the kernel. Only
    dilation=1 is supported. ceil_mode rounds the output size up (as PyTorch: the last
    window must start inside the input or its left padding). The gradient goes to each
    window's (first) maximum. With return_indices, also returns the flat h*W + w positions.
    """
    what = "max_pool2d"
    if dilation != 1 and V.pair(dilation, "dilation", what) != (1, 1):
        raise ValueError(f"{what}: only dilation=1 is supported, got {dilation!r}")
    x = V.data_of(what, "input", input)
    if x.ndim == 3:  # unbatched (C, H, W)
        args = (kernel_size, stride, padding, 1, ceil_mode, return_indices)
        return _unbatched(max_pool2d, input, args, return_indices)
    kernel, stride, padding, out_hw = V.pool_args(what, x, kernel_size, stride, padding, ceil_mode)
    if x.shape[0] == 0:
        return _empty_batch(input, x, out_hw, return_indices)
    extra = _ceil_extra(x.shape, kernel, stride, padding, out_hw) if ceil_mode else (0, 0)
    if extra == (0, 0):
        return _max_pool2d(input, x, kernel, stride, padding, return_indices)
    # ceil_mode: windows past the right edge see -inf, so never win
    padded = pad(input, (0, extra[1], 0, extra[0]), value=-np.inf)
    result = _max_pool2d(padded, padded.data, kernel, stride, padding, return_indices)
    if not return_indices:
        return result
    out, indices = result
    wide = x.shape[3] + extra[1]
    return out, Tensor(indices.data // wide * x.shape[3] + indices.data % wide)


def _unbatched(op, input, args, return_indices=False):
    """``op(batch, *args)`` on the (1, C, H, W) batch of an unbatched (C, H, W) input, the
    batch axis dropped again (from the indices too)."""
    out = op(input.reshape((1,) + input.data.shape), *args)
    if return_indices:
        return out[0].reshape(out[0].shape[1:]), Tensor(out[1].data[0])
    return out.reshape(out.shape[1:])


def _empty_batch(input, x, out_hw, return_indices=False):
    """The empty (0, C, Ho, Wo) output of a pooling of an empty batch (and its empty int64
    indices); zero gradient."""
    out = np.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    out = record(out, (input,), lambda g: (np.zeros(x.shape, g.dtype),))
    return (out, Tensor(np.zeros(out.shape, np.int64))) if return_indices else out


def _ceil_extra(shape, kernel, stride, padding, out_hw):
    """Positions to add past the right/bottom padding so the last window fits."""
    return tuple(
        max(0, (out_hw[a] - 1) * stride[a] + kernel[a] - shape[2 + a] - 2 * padding[a])
        for a in range(2)
    )


def _max_pool2d(input, x, kernel, stride, padding, return_indices):
    """The kernel call on a validated (N, C, H, W) input, N > 0."""
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
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over kh x kw windows of input (N, C, H, W) or (C, H, W).

    stride defaults to kernel_size; padding must be at most half the kernel. The
    divisor is the window's size within the padded input when count_include_pad
    (default), else the number of input elements it covers, or divisor_override.
    ceil_mode rounds the output size up, as PyTorch's (see max_pool2d).
    """
    what = "avg_pool2d"
    if divisor_override is not None and (
        isinstance(divisor_override, bool)
        or not isinstance(divisor_override, (int, np.integer))
        or divisor_override < 1
    ):
        raise ValueError(
            f"{what}: divisor_override must be None or a positive int, got {divisor_override!r}"
        )
    x = V.data_of(what, "input", input)
    if x.ndim == 3:  # unbatched (C, H, W)
        args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return _unbatched(avg_pool2d, input, args)
    kernel, stride, padding, out_hw = V.pool_args(what, x, kernel_size, stride, padding, ceil_mode)
    if x.shape[0] == 0:
        return _empty_batch(input, x, out_hw)
    include = bool(count_include_pad)
    extra = _ceil_extra(x.shape, kernel, stride, padding, out_hw) if ceil_mode else (0, 0)
    if extra == (0, 0) and divisor_override is None:
        return _avg_pool2d(input, x, kernel, stride, padding, include)
    # the kernel's mean over the whole window (zeros past the edge), rescaled to
    # PyTorch's divisor for each output position
    padded = pad(input, (0, extra[1], 0, extra[0])) if extra != (0, 0) else input
    mean = _avg_pool2d(padded, padded.data, kernel, stride, padding, True)
    if divisor_override is not None:
        divisor = np.full(out_hw, float(divisor_override))
    else:
        h, w = (
            _window_sizes(x.shape[2 + a], kernel[a], stride[a], padding[a], out_hw[a], include)
            for a in range(2)
        )
        divisor = np.outer(h, w)
    return mean * (kernel[0] * kernel[1] / divisor).astype(x.dtype)


def _window_sizes(size, k, s, p, out, include):
    """Per output position along one axis: the window's length clipped to the padded
    input (include) or to the input itself (not include), as PyTorch divides."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if include:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_pool2d(input, x, kernel, stride, padding, include):
    """The kernel call on a validated (N, C, H, W) input, N > 0."""
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


def max_unpool2d(
    input: Tensor,
    indices: Tensor | np.ndarray,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """The inverse of max_pool2d(return_indices=True): input (N, C, H, W) or (C, H, W)
    written at its flat h*W_out + w ``indices`` into zeros of (N, C, H_out, W_out), with
    H_out = (H - 1) * stride - 2 * padding + kernel_size unless ``output_size`` says."""
    what = "max_unpool2d"
    x = V.data_of(what, "input", input)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if x.ndim not in (3, 4):
        raise ValueError(f"{what}: expected a 3-D or 4-D input, got shape {x.shape}")
    V.float_image(what, x)
    if idx.shape != x.shape:
        raise ValueError(f"{what}: indices shape {idx.shape} does not match input shape {x.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: indices must be integers, got dtype {idx.dtype}")
    kernel = V.pair(kernel_size, "kernel_size", what)
    stride = kernel if stride is None else V.pair(stride, "stride", what)
    padding = V.pair(padding, "padding", what)
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"{what}: kernel_size and stride must be >= 1 and padding >= 0, got "
            f"{kernel}, {stride}, {padding}"
        )
    default = tuple(
        (x.shape[-2 + a] - 1) * stride[a] - 2 * padding[a] + kernel[a] for a in range(2)
    )
    if output_size is None:
        out_hw = default
    else:
        size = tuple(output_size.shape if isinstance(output_size, Tensor) else output_size)
        if len(size) not in (2, x.ndim):
            raise ValueError(f"{what}: output_size must have 2 or {x.ndim} entries, got {size}")
        out_hw = tuple(int(v) for v in size[-2:])
        for a in range(2):
            if not default[a] - stride[a] < out_hw[a] < default[a] + stride[a]:
                raise ValueError(
                    f"{what}: output_size {out_hw} must be between "
                    f"{tuple(d - s + 1 for d, s in zip(default, stride))} and "
                    f"{tuple(d + s - 1 for d, s in zip(default, stride))}"
                )
    if min(out_hw) < 1:
        raise ValueError(
            f"{what}: computed output size {out_hw} is too small (input shape {x.shape})"
        )
    lead = x.shape[:-2]
    planes = int(np.prod(lead))
    plane = out_hw[0] * out_hw[1]
    flat_idx = idx.reshape(planes, -1).astype(np.int64, copy=False)
    if flat_idx.size and (flat_idx.min() < 0 or flat_idx.max() >= plane):
        raise ValueError(
            f"{what}: index {flat_idx.max() if flat_idx.max() >= plane else flat_idx.min()} "
            f"is out of range for an output plane of {out_hw[0]}x{out_hw[1]}"
        )
    rows = np.arange(planes)[:, None]
    out = np.zeros((planes, plane), dtype=x.dtype)
    out[rows, flat_idx] = x.reshape(planes, -1)

    def backward(g):
        return (g.reshape(planes, plane)[rows, flat_idx].reshape(x.shape),)

    return record(out.reshape(lead + out_hw), (input,), backward)


def min_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Min over kh x kw windows of input (N, C, H, W) or (C, H, W) (padding counts as +inf).

    Exactly ``-max_pool2d(-input)`` in value and gradient, and computed that way on the
    max-pool kernels: ties go to the first minimum in row-major window order, padding
    never wins, a NaN wins. stride defaults to kernel_size; padding must be at most half
    the kernel. With return_indices, also returns the flat h*W + w positions (the argmin).
    """
    what = "min_pool2d"
    x = V.data_of(what, "input", input)
    if x.ndim == 3:  # unbatched (C, H, W)
        args = (kernel_size, stride, padding, return_indices)
        return _unbatched(min_pool2d, input, args, return_indices)
    kernel, stride, padding, out_hw = V.pool_args(what, x, kernel_size, stride, padding)
    if x.shape[0] == 0:
        return _empty_batch(input, x, out_hw, return_indices)
    # one tape entry: the max kernels on -x, the output negated in place (its backward
    # reads only the argmax positions, which are the argmin of x, so dx needs no sign)
    result = _max_pool2d(input, np.negative(x), kernel, stride, padding, return_indices)
    out = result[0] if return_indices else result
    np.negative(out.data, out=out.data)
    return result
