"""Shape ops that add, drop, repeat or reorder dims: unsqueeze, squeeze, expand, repeat,
contiguous, t and mT, each with its backward (``reshape``, ``permute`` and ``transpose``
are in ``math``)."""

from __future__ import annotations

from typing import Union

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V
from minidl.ops.math import _unbroadcast
from minidl.ops.reduction import _axes

Sizes = Union[int, tuple[int, ...], list[int]]


def _sizes(sizes: tuple, what: str) -> tuple[int, ...]:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{what}: sizes must be ints or one tuple of ints, got {sizes!r}")
    return tuple(int(n) for n in sizes)


def _reshaped(x: Tensor, out: np.ndarray) -> Tensor:
    in_shape = x.data.shape
    return record(out, (x,), lambda g: (g.reshape(in_shape),))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """x with a new dim of size 1 at ``dim`` (in [-ndim - 1, ndim])."""
    xd = V.data_of("unsqueeze", "input", x)
    axis = V.dim_index(dim, xd.ndim + 1, "unsqueeze")
    return _reshaped(x, np.expand_dims(xd, axis))


def squeeze(x: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """x without its size-1 dims (only those in ``dim`` when given; others are kept)."""
    xd = V.data_of("squeeze", "input", x)
    axes = _axes(dim, xd.ndim, "squeeze")
    drop = tuple(a for a in axes if xd.shape[a] == 1)
    return _reshaped(x, np.squeeze(xd, drop) if drop else xd)


def expand(x: Tensor, *sizes: Sizes) -> Tensor:
    """A broadcast (read-only) view of x with shape ``sizes``; -1 keeps a dim's size and
    only size-1 dims (or new leading dims) can grow."""
    xd = V.data_of("expand", "input", x)
    sizes = _sizes(sizes, "expand")
    extra = len(sizes) - xd.ndim
    if extra < 0:
        raise ValueError(
            f"expand: the number of sizes ({len(sizes)}) must be at least the number of "
            f"dims of the tensor ({xd.ndim})"
        )
    shape = []
    for i, n in enumerate(sizes):
        old = xd.shape[i - extra] if i >= extra else None
        if n == -1:
            if old is None:
                raise ValueError(f"expand: -1 is not allowed in a new leading dim ({sizes!r})")
            n = old
        elif n < 0 or (old is not None and old != 1 and old != n):
            raise ValueError(
                f"expand: the expanded size {n} must match the existing size {old} at "
                f"non-singleton dim {i} (tensor of shape {xd.shape}, sizes {sizes!r})"
            )
        shape.append(n)
    in_shape = xd.shape
    out = np.broadcast_to(xd, tuple(shape))
    return record(out, (x,), lambda g: (_unbroadcast(g, in_shape),))


def repeat(x: Tensor, *sizes: Sizes) -> Tensor:
    """x tiled ``sizes[i]`` times along each dim (as ``torch.Tensor.repeat``)."""
    xd = V.data_of("repeat", "input", x)
    reps = _sizes(sizes, "repeat")
    if len(reps) < xd.ndim:
        raise ValueError(
            f"repeat: the number of repeat dims ({len(reps)}) can not be smaller than the "
            f"number of dims of the tensor ({xd.ndim})"
        )
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: repeats must be non-negative, got {reps!r}")
    src_shape = (1,) * (len(reps) - xd.ndim) + xd.shape
    in_shape = xd.shape
    out = np.tile(xd.reshape(src_shape), reps)

    def backward(g):
        # (r0, s0, r1, s1, ...) then sum over the repeat axes
        split = tuple(n for pair in zip(reps, src_shape) for n in pair)
        return (g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(in_shape),)

    return record(out, (x,), backward)


def contiguous(x: Tensor) -> Tensor:
    """x with C-contiguous data (x itself when it already is)."""
    xd = V.data_of("contiguous", "input", x)
    if xd.flags.c_contiguous:
        return x
    return record(np.ascontiguousarray(xd), (x,), lambda g: (g,))


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (0-D and 1-D tensors are returned as they are)."""
    xd = V.data_of("t", "input", x)
    if xd.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dims, got shape {xd.shape}")
    return record(xd.T, (x,), lambda g: (g.T,))


def mT(x: Tensor) -> Tensor:
    """x with its last two dims swapped (a batch of matrices transposed)."""
    xd = V.data_of("mT", "input", x)
    if xd.ndim < 2:
        raise ValueError(
            f"mT: only supported on matrices or batches of matrices, got shape {xd.shape}"
        )
    return record(np.swapaxes(xd, -1, -2), (x,), lambda g: (np.swapaxes(g, -1, -2),))
