"""The conv2d cases its kernels do not take: ``padding="same" | "valid"``, unbatched
(C, H, W) inputs and empty batches (N = 0). Each is turned into a call of the plain
conv (``conv``: ``minidl.ops.conv._conv2d``) or answered here, as PyTorch answers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from minidl.autograd import Tensor, no_grad, record
from minidl.ops import _validation as V
from minidl.ops.padding import pad


@contextmanager
def unbatched_errors(shape: tuple[int, ...]) -> Iterator[None]:
    """Errors raised on the (1, *shape) batch of an unbatched input name ``shape``."""
    try:
        yield
    except ValueError as err:
        raise ValueError(str(err).replace(str((1,) + shape), str(shape))) from None


def same_padding(
    what: str, padding: Any, stride: Any, dilation: Any, kernel: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(symmetric padding, extra padding on the right/bottom) for a string ``padding``."""
    n = len(kernel)
    if padding == "valid":
        return (0,) * n, (0,) * n
    if padding != "same":
        raise ValueError(
            f"{what}: padding must be 'valid', 'same', an int or a tuple of ints, got {padding!r}"
        )
    if V.pair(stride, "stride", what, n) != (1,) * n:
        raise ValueError(f"{what}: padding='same' is not supported for strided convolutions")
    dilation = V.pair(dilation, "dilation", what, n)
    total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
    return tuple(t // 2 for t in total), tuple(t % 2 for t in total)


def conv2d_special(
    conv: Callable[..., Tensor],
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    what: str,
    **kw: Any,
) -> Tensor:
    """conv2d for a string padding, an unbatched input or an empty batch."""
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    if x.ndim == 3:  # unbatched (C, H, W)
        with unbatched_errors(x.shape):
            out = conv2d_special(
                conv,
                input.reshape((1,) + x.shape),
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
                what,
                **kw,
            )
        return out.reshape(out.shape[1:])
    V.conv_arrays(what, x, w, V.optional_data_of(what, "bias", bias))
    if isinstance(padding, str):
        padding, extra = same_padding(what, padding, stride, dilation, w.shape[2:])
        if extra != (0, 0):
            # an even kernel: PyTorch puts the odd pixel on the right/bottom
            input = pad(input, (0, extra[1], 0, extra[0]))
            x = input.data
    if x.shape[0] == 0:
        return _empty_batch(input, weight, bias, x, w, stride, padding, dilation, groups, what)
    return conv(input, weight, bias, stride, padding, dilation, groups, what, **kw)


def _empty_batch(input, weight, bias, x, w, stride, padding, dilation, groups, what):
    """The (0, F, Ho, Wo) output of an empty batch: zero gradients for every input."""
    b = V.optional_data_of(what, "bias", bias)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    groups = V.groups_arg(what, groups)
    f = V.conv_channels(what, x, w, b, groups, empty_batch_ok=True)
    ho, wo = V.conv_output_size(what, x.shape, w.shape[2:], stride, padding, dilation)
    out = np.zeros((0, f, ho, wo), dtype=x.dtype)
    inputs = (input, weight) if bias is None else (input, weight, bias)
    return record(out, inputs, lambda g: tuple(np.zeros(t.shape, g.dtype) for t in inputs))


def conv_transpose2d_special(
    conv_transpose: Callable[..., Tensor], input: Tensor, *args: Any
) -> Tensor:
    """conv_transpose2d for an unbatched (C, H, W) input or an empty batch (N = 0)."""
    x = V.data_of("conv_transpose2d", "input", input)
    if x.ndim == 3:
        with unbatched_errors(x.shape):
            out = conv_transpose(input.reshape((1,) + x.shape), *args)
        return out.reshape(out.shape[1:])
    # one sample of zeros runs every check and gives the output's shape
    with no_grad():
        shape = conv_transpose(Tensor(np.zeros((1,) + x.shape[1:], x.dtype)), *args).shape
    params = tuple(t for t in args[:2] if t is not None)
    inputs = (input,) + params
    out = np.zeros((0,) + shape[1:], dtype=x.dtype)
    return record(out, inputs, lambda g: tuple(np.zeros(t.shape, g.dtype) for t in inputs))
