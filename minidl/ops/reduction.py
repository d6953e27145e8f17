"""Reductions, each with its backward: sum, mean, min/max, amin/amax, argmin/argmax,
var, std and norm.

``dim`` is an int or a tuple of ints (None: every dim; numpy's ``axis=`` and
``keepdims=`` are accepted as aliases). A 0-d tensor accepts dim 0 or -1, as in PyTorch.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Union

import numpy as np

from minidl.autograd import Dims, Tensor, record
from minidl.ops import _validation as V

Norm = Union[builtins.float, int, str]


def _axes(dim: Dims | list[int], ndim: int, what: str) -> tuple[int, ...]:
    """Normalised tuple of axes for ``dim`` (int or tuple of ints); None means all."""
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"{what}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{what}: dim {d} out of range for a tensor with {ndim} dimensions")
        axes.append(d % ndim if ndim else 0)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{what}: dim {dim!r} repeats an axis")
    return tuple(axes) if ndim else ()


def _dim_alias(dim: Dims, axis: Dims, keepdim: bool, keepdims: bool | None, what: str):
    """(dim, keepdim) from PyTorch's or numpy's spelling (not both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{what}: give dim or its alias axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _expand_grad(
    g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...], keepdim: bool
) -> np.ndarray:
    """Broadcast the gradient of a reduction over ``axes`` back to ``shape``."""
    if not keepdim and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _float_data(x: Tensor, what: str) -> np.ndarray:
    xd = V.data_of(what, "input", x)
    if xd.dtype.kind != "f":
        raise TypeError(
            f"{what}: needs a floating-point tensor, got dtype {xd.dtype} (use .float())"
        )
    return xd


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    n = 1
    for ax in axes:
        n *= shape[ax]
    return n


# ---- sum and mean -------------------------------------------------------------------
def sum(
    x: Tensor,
    dim: Dims = None,
    keepdim: bool = False,
    *,
    axis: Dims = None,
    keepdims: bool | None = None,
) -> Tensor:
    if axis is not None or keepdims is not None:
        dim, keepdim = _dim_alias(dim, axis, keepdim, keepdims, "sum")
    xd = x.data
    axes = _axes(dim, xd.ndim, "sum")
    out = np.sum(xd, axis=axes, keepdims=keepdim)
    if xd.dtype.kind == "b":
        out = out.astype(np.int64)
    shape = xd.shape
    return record(out, (x,), lambda g: (_expand_grad(g, shape, axes, keepdim),))


def mean(
    x: Tensor,
    dim: Dims = None,
    keepdim: bool = False,
    *,
    axis: Dims = None,
    keepdims: bool | None = None,
) -> Tensor:
    if axis is not None or keepdims is not None:
        dim, keepdim = _dim_alias(dim, axis, keepdim, keepdims, "mean")
    xd = _float_data(x, "mean")
    axes = _axes(dim, xd.ndim, "mean")
    count = _count(xd.shape, axes)
    out = np.mean(xd, axis=axes, keepdims=keepdim)
    shape = xd.shape
    return record(out, (x,), lambda g: (_expand_grad(g / count, shape, axes, keepdim),))


# ---- min and max --------------------------------------------------------------------
# (values, indices) as returned with ``dim`` (like torch.return_types.max / min)
_MaxResult = namedtuple("max", ["values", "indices"])
_MinResult = namedtuple("min", ["values", "indices"])


def _ties_grad(g: np.ndarray, xd: np.ndarray, out: np.ndarray, axes, keepdim) -> np.ndarray:
    """The gradient of a min/max reduction, shared evenly between tied extremes (and
    NaNs, which win), as PyTorch's amax/amin and full max/min."""
    kept = _expand_grad(out, xd.shape, axes, keepdim)
    mask = (xd == kept) | (np.isnan(xd) & np.isnan(kept))
    count = mask.sum(axis=axes, keepdims=True)
    return _expand_grad(g, xd.shape, axes, keepdim) * mask / count


def _extreme(x, dim, keepdim, what, reduce, arg, result):
    xd = V.data_of(what, "input", x)
    if dim is None:
        if xd.size == 0:
            raise ValueError(f"{what}: the tensor is empty (specify a dim)")
        out = np.asarray(reduce(xd))
        axes = tuple(range(xd.ndim))
        return record(out, (x,), lambda g: (_ties_grad(g, xd, out, axes, False),))
    (axis,) = _axes(dim, xd.ndim, what) or (None,)
    if axis is None:  # a 0-d tensor
        return result(record(xd.copy(), (x,), lambda g: (g,)), Tensor(np.zeros((), np.int64)))
    if xd.shape[axis] == 0:
        raise ValueError(f"{what}: cannot reduce over dim {dim} of size 0 (shape {xd.shape})")
    idx = np.expand_dims(arg(xd, axis=axis), axis)
    values = np.take_along_axis(xd, idx, axis)
    if not keepdim:
        values = np.squeeze(values, axis)

    def backward(g):
        gx = np.zeros_like(xd)
        np.put_along_axis(gx, idx, g if keepdim else np.expand_dims(g, axis), axis)
        return (gx,)

    indices = idx if keepdim else np.squeeze(idx, axis)
    return result(record(values, (x,), backward), Tensor(indices.astype(np.int64, copy=False)))


def max(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | _MaxResult:
    """Largest element (dim=None: a 0-d tensor, its gradient shared between ties) or a
    (values, indices) named tuple along ``dim`` (the gradient goes to the index)."""
    return _extreme(x, dim, keepdim, "max", np.max, np.argmax, _MaxResult)


def min(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | _MinResult:
    """Smallest element, or (values, indices) along ``dim``; as ``max``."""
    return _extreme(x, dim, keepdim, "min", np.min, np.argmin, _MinResult)


def _amax_amin(x: Tensor, dim: Dims, keepdim: bool, what: str, reduce) -> Tensor:
    xd = V.data_of(what, "input", x)
    axes = _axes(None if dim == () else dim, xd.ndim, what)
    for ax in axes:
        if xd.shape[ax] == 0:
            raise ValueError(f"{what}: cannot reduce over dim {ax} of size 0 (shape {xd.shape})")
    if xd.size == 0 and not axes:
        raise ValueError(f"{what}: the tensor is empty")
    out = reduce(xd, axis=axes, keepdims=keepdim)
    return record(out, (x,), lambda g: (_ties_grad(g, xd, out, axes, keepdim),))


def amax(x: Tensor, dim: Dims = (), keepdim: bool = False) -> Tensor:
    """Largest values over ``dim`` (default: every dim); ties share the gradient."""
    return _amax_amin(x, dim, keepdim, "amax", np.max)


def amin(x: Tensor, dim: Dims = (), keepdim: bool = False) -> Tensor:
    """Smallest values over ``dim`` (default: every dim); ties share the gradient."""
    return _amax_amin(x, dim, keepdim, "amin", np.min)


def _arg(x: Tensor, dim: int | None, keepdim: bool, what: str, fn) -> Tensor:
    xd = V.data_of(what, "input", x)
    if dim is None:
        if xd.size == 0:
            raise ValueError(f"{what}: the tensor is empty (shape {xd.shape})")
        out = fn(xd)
        if keepdim:
            out = np.reshape(out, (1,) * xd.ndim)
        return Tensor(np.asarray(out, dtype=np.int64))
    (axis,) = _axes(dim, xd.ndim, what) or (None,)
    if axis is None:  # a 0-d tensor
        return Tensor(np.zeros((), np.int64))
    if xd.shape[axis] == 0:
        raise ValueError(f"{what}: cannot reduce over dim {dim} of size 0 (shape {xd.shape})")
    return Tensor(fn(xd, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the first maxima (int64, not differentiable)."""
    return _arg(x, dim, keepdim, "argmax", np.argmax)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the first minima (int64, not differentiable)."""
    return _arg(x, dim, keepdim, "argmin", np.argmin)


# ---- variance, standard deviation, norm ---------------------------------------------
def _moments(x, dim, unbiased, keepdim, correction, what):
    """(data, axes, x - mean, divisor) for var/std with PyTorch's argument forms:
    ``var(dim, unbiased, keepdim)``, ``var(unbiased)`` and ``var(dim, correction=c)``."""
    if isinstance(dim, bool):  # var(False): the old unbiased-only form
        dim, unbiased = None, dim
    if correction is not None and unbiased is not None:
        raise TypeError(f"{what}: give unbiased or correction, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    if isinstance(correction, bool) or not isinstance(correction, (int, builtins.float)):
        raise TypeError(f"{what}: correction must be a number, got {correction!r}")
    xd = _float_data(x, what)
    axes = _axes(dim, xd.ndim, what)
    diff = xd - np.mean(xd, axis=axes, keepdims=True)
    divisor = builtins.max(0, _count(xd.shape, axes) - correction)
    return xd, axes, diff, divisor


def var(
    x: Tensor,
    dim: Dims | bool = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: builtins.float | None = None,
) -> Tensor:
    """Variance over ``dim`` with Bessel's correction by default (``unbiased=False`` or
    ``correction=0`` for the population variance); the divisor is N - correction."""
    xd, axes, diff, divisor = _moments(x, dim, unbiased, keepdim, correction, "var")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sum(diff * diff, axis=axes, keepdims=keepdim) / xd.dtype.type(divisor)
        scale = xd.dtype.type(2) / xd.dtype.type(divisor)
    return record(out, (x,), lambda g: (_expand_grad(g, xd.shape, axes, keepdim) * scale * diff,))


def std(
    x: Tensor,
    dim: Dims | bool = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: builtins.float | None = None,
) -> Tensor:
    """Square root of ``var`` (same arguments); a zero deviation gets a zero gradient."""
    xd, axes, diff, divisor = _moments(x, dim, unbiased, keepdim, correction, "std")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sqrt(np.sum(diff * diff, axis=axes, keepdims=keepdim) / xd.dtype.type(divisor))

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            gs = np.where(out == 0, 0, g / (out * divisor)).astype(xd.dtype, copy=False)
        return (_expand_grad(gs, xd.shape, axes, keepdim) * diff,)

    return record(out, (x,), backward)


def norm(x: Tensor, p: Norm = "fro", dim: Dims = None, keepdim: bool = False) -> Tensor:
    """The p-norm over ``dim`` (default: all elements as one vector): p = "fro" or 2,
    1, inf, -inf, 0 (the count of nonzeros) or any other number."""
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, (int, builtins.float)):
        raise ValueError(f"norm: p must be 'fro' or a number, got {p!r}")
    xd = _float_data(x, "norm")
    axes = _axes(dim, xd.ndim, "norm")
    a = np.abs(xd)
    if p in (np.inf, -np.inf):
        out = (np.max if p > 0 else np.min)(a, axis=axes, keepdims=keepdim)
        return record(out, (x,), lambda g: (_ties_grad(g, a, out, axes, keepdim) * np.sign(xd),))
    if p == 0:
        out = np.sum(xd != 0, axis=axes, keepdims=keepdim).astype(xd.dtype)
        return record(out, (x,), lambda g: (np.zeros_like(xd),))
    if p == 1:
        out = np.sum(a, axis=axes, keepdims=keepdim)
        return record(
            out, (x,), lambda g: (_expand_grad(g, xd.shape, axes, keepdim) * np.sign(xd),)
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == 2:
            out = np.sqrt(np.sum(xd * xd, axis=axes, keepdims=keepdim))
        else:
            out = np.sum(a**p, axis=axes, keepdims=keepdim) ** (1 / p)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if p == 2:
                scaled = np.where(out == 0, 0, g / out).astype(xd.dtype, copy=False)
                return (_expand_grad(scaled, xd.shape, axes, keepdim) * xd,)
            scaled = np.where(out == 0, 0, g / out ** (p - 1)).astype(xd.dtype, copy=False)
            gx = _expand_grad(scaled, xd.shape, axes, keepdim) * np.sign(xd) * a ** (p - 1)
            return (np.where(xd == 0, 0, gx).astype(xd.dtype, copy=False),)

    return record(out, (x,), backward)
