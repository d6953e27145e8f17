"""Tensor arithmetic, reductions, shape ops and indexing, each with its backward.

Every function takes Tensors (the binary ops also Python scalars and ndarrays) and
returns ``record(out, inputs, backward)``; ``backward(g)`` returns one gradient per input,
shaped like that input, or None where no gradient is needed.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any, Callable

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import Dims, Tensor, TensorLike, record
from minidl.ops import _validation as V


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (undoing numpy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _mixed_dtypes(what: str, da: np.dtype, db: np.dtype) -> TypeError:
    return TypeError(
        f"{what}: mixed dtypes {da} and {db}; convert one (e.g. .float() or .double())"
    )


def _as_operand(x: TensorLike, like: Tensor) -> Tensor:
    """Tensor for the other operand of a binary op with Tensor ``like``.

    Python and numpy scalars adopt ``like``'s dtype when it is floating point; ndarrays
    keep theirs (checked by ``_pair``).
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, (int, builtins.float, bool)):
        dt = like.data.dtype
        if dt.kind != "f" and isinstance(x, builtins.float):
            dt = np.float32
        return Tensor(np.asarray(x, dtype=dt))
    if isinstance(x, (list, tuple)):
        return Tensor(x)
    raise TypeError(f"unsupported operand type {type(x).__name__} for a Tensor operation")


def _pair(a: TensorLike, b: TensorLike, what: str) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of one dtype (float32 with float64 is a TypeError)."""
    if type(a) is not Tensor and not isinstance(a, Tensor):
        a = _as_operand(a, b)
    if type(b) is not Tensor and not isinstance(b, Tensor):
        b = _as_operand(b, a)
    da = a.data.dtype
    db = b.data.dtype
    if da is not db and da != db:
        fa = da.kind == "f"
        fb = db.kind == "f"
        if fa and fb:
            raise _mixed_dtypes(what, da, db)
        if fa:  # integer/bool operand joins the float one (as PyTorch)
            b = Tensor(b.data.astype(da))
        elif fb:
            a = Tensor(a.data.astype(db))
    return a, b


# ---- elementwise arithmetic ---------------------------------------------------------
def add(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = _pair(a, b, "add")
    sa = a.data.shape
    sb = b.data.shape
    return record(
        a.data + b.data,
        (a, b),
        lambda g: (
            _unbroadcast(g, sa) if a.requires_grad else None,
            _unbroadcast(g, sb) if b.requires_grad else None,
        ),
    )


def radd(a: TensorLike, b: TensorLike) -> Tensor:
    return add(b, a)


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = _pair(a, b, "sub")
    sa = a.data.shape
    sb = b.data.shape
    return record(
        a.data - b.data,
        (a, b),
        lambda g: (
            _unbroadcast(g, sa) if a.requires_grad else None,
            _unbroadcast(-g, sb) if b.requires_grad else None,
        ),
    )


def rsub(a: TensorLike, b: TensorLike) -> Tensor:
    return sub(b, a)


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = _pair(a, b, "mul")
    ad = a.data
    bd = b.data
    return record(
        ad * bd,
        (a, b),
        lambda g: (
            _unbroadcast(g * bd, ad.shape) if a.requires_grad else None,
            _unbroadcast(g * ad, bd.shape) if b.requires_grad else None,
        ),
    )


def rmul(a: TensorLike, b: TensorLike) -> Tensor:
    return mul(b, a)


def div(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = _pair(a, b, "div")
    ad = a.data
    bd = b.data
    if ad.dtype.kind != "f":  # true division of integers gives the default float
        a = Tensor(ad.astype(np.float32))
        b = Tensor(bd.astype(np.float32))
        ad, bd = a.data, b.data
    out = ad / bd
    return record(
        out,
        (a, b),
        lambda g: (
            _unbroadcast(g / bd, ad.shape) if a.requires_grad else None,
            _unbroadcast(-g * out / bd, bd.shape) if b.requires_grad else None,
        ),
    )


def rdiv(a: TensorLike, b: TensorLike) -> Tensor:
    return div(b, a)


def pow(a: TensorLike, b: TensorLike) -> Tensor:
    """a ** b: a Tensor, b a Python/numpy scalar or a Tensor (or the other way round)."""
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, Tensor) and isinstance(b, (int, builtins.float)) and not isinstance(b, bool):
        ad = a.data
        p = b
        out = ad**p
        if p == 0:
            return record(out, (a,), lambda g: (np.zeros_like(ad),))
        return record(out, (a,), lambda g: (g * (p * ad ** (p - 1)),))
    a, b = _pair(a, b, "pow")
    ad = a.data
    bd = b.data
    out = ad**bd

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = _unbroadcast(g * bd * ad ** (bd - 1), ad.shape)
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                # d(a^b)/db = a^b log a, taken as 0 where a == 0 and b >= 0 (as PyTorch)
                d = out * np.log(ad)
            d = np.where((ad == 0) & (bd >= 0), 0, d)
            gb = _unbroadcast(g * d, bd.shape)
        return ga, gb

    return record(out, (a, b), backward)


def rpow(a: TensorLike, b: TensorLike) -> Tensor:
    return pow(b, a)


def neg(x: Tensor) -> Tensor:
    return record(-x.data, (x,), lambda g: (-g,))


def abs(x: Tensor) -> Tensor:
    xd = x.data
    return record(np.abs(xd), (x,), lambda g: (g * np.sign(xd),))


def exp(x: Tensor) -> Tensor:
    out = np.exp(x.data)
    return record(out, (x,), lambda g: (g * out,))


def log(x: Tensor) -> Tensor:
    xd = x.data
    return record(np.log(xd), (x,), lambda g: (g / xd,))


def sqrt(x: Tensor) -> Tensor:
    out = np.sqrt(x.data)
    return record(out, (x,), lambda g: (g / (2 * out),))


def clone(x: Tensor) -> Tensor:
    return record(x.data.copy(), (x,), lambda g: (g,))


def to(x: Tensor, dtype: DTypeLike) -> Tensor:
    """A copy of ``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = np.dtype(dtype)
    src = x.data.dtype
    if dtype == src:
        return x
    out = x.data.astype(dtype)
    if dtype.kind != "f":
        return Tensor(out)
    return record(out, (x,), lambda g: (g.astype(src),))


def float(x: Tensor) -> Tensor:
    return to(x, np.float32)


def double(x: Tensor) -> Tensor:
    return to(x, np.float64)


# ---- comparisons (never differentiable) --------------------------------------------
def _compare(ufunc: np.ufunc) -> Callable[[Tensor, TensorLike], Tensor]:
    def compare(a: Tensor, b: TensorLike) -> Tensor:
        bd = b.data if isinstance(b, Tensor) else b
        return Tensor(ufunc(a.data, bd))

    compare.__name__ = ufunc.__name__
    return compare


lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
eq = _compare(np.equal)
ne = _compare(np.not_equal)


# ---- matmul -------------------------------------------------------------------------
def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """a @ b with numpy's rules (1-D operands, batched broadcasting)."""
    a, b = _pair(a, b, "matmul")
    ad = a.data
    bd = b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least 1 dimension, got shapes {ad.shape} and {bd.shape}"
        )
    k_a = ad.shape[-1]
    k_b = bd.shape[0] if bd.ndim == 1 else bd.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {ad.shape} and {bd.shape} cannot be multiplied ({k_a} != {k_b})"
        )
    out = np.matmul(ad, bd)

    def backward(g):
        if ad.ndim == 1 and bd.ndim == 1:
            return (g * bd if a.requires_grad else None, g * ad if b.requires_grad else None)
        a2 = ad[None, :] if ad.ndim == 1 else ad
        b2 = bd[:, None] if bd.ndim == 1 else bd
        if ad.ndim == 1:
            g = np.expand_dims(g, -2)
        if bd.ndim == 1:
            g = np.expand_dims(g, -1)
        ga = gb = None
        if a.requires_grad:
            ga = _unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(ad.shape)
        if b.requires_grad:
            gb = _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(bd.shape)
        return ga, gb

    return record(out, (a, b), backward)


def rmatmul(a: TensorLike, b: TensorLike) -> Tensor:
    return matmul(b, a)


# ---- reductions ---------------------------------------------------------------------
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


def _expand_grad(
    g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...], keepdim: bool
) -> np.ndarray:
    """Broadcast the gradient of a reduction over ``axes`` back to ``shape``."""
    if not keepdim and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def sum(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    xd = x.data
    axes = _axes(dim, xd.ndim, "sum")
    out = np.sum(xd, axis=axes, keepdims=keepdim)
    if xd.dtype.kind == "b":
        out = out.astype(np.int64)
    shape = xd.shape
    return record(out, (x,), lambda g: (_expand_grad(g, shape, axes, keepdim),))


def mean(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    xd = x.data
    if xd.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating-point tensor, got dtype {xd.dtype} (use .float())")
    axes = _axes(dim, xd.ndim, "mean")
    count = 1
    for ax in axes:
        count *= xd.shape[ax]
    out = np.mean(xd, axis=axes, keepdims=keepdim)
    shape = xd.shape
    return record(out, (x,), lambda g: (_expand_grad(g / count, shape, axes, keepdim),))


# (values, indices) as returned by ``max(dim=...)`` (like torch.return_types.max)
_MaxResult = namedtuple("max", ["values", "indices"])


def max(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | _MaxResult:
    """Largest element (dim=None: a 0-d tensor) or (values, indices) along ``dim``.

    The gradient goes to the first maximum.
    """
    xd = x.data
    if xd.size == 0:
        raise ValueError("max: the tensor is empty")
    if dim is None:
        flat_index = int(np.argmax(xd))
        out = xd.reshape(-1)[flat_index]

        def backward(g):
            gx = np.zeros_like(xd)
            gx.reshape(-1)[flat_index] = g
            return (gx,)

        return record(np.asarray(out), (x,), backward)
    (axis,) = _axes(dim, xd.ndim, "max")
    if xd.ndim == 0:
        return _MaxResult(record(xd.copy(), (x,), lambda g: (g,)), Tensor(np.zeros((), np.int64)))
    idx = np.expand_dims(np.argmax(xd, axis=axis), axis)
    values = np.take_along_axis(xd, idx, axis)
    if not keepdim:
        values = np.squeeze(values, axis)

    def backward(g):
        gx = np.zeros_like(xd)
        np.put_along_axis(gx, idx, g if keepdim else np.expand_dims(g, axis), axis)
        return (gx,)

    indices = idx if keepdim else np.squeeze(idx, axis)
    return _MaxResult(record(values, (x,), backward), Tensor(indices))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the first maxima (int64, not differentiable)."""
    xd = x.data
    if dim is None:
        out = np.argmax(xd)
        if keepdim:
            out = np.reshape(out, (1,) * xd.ndim)
        return Tensor(np.asarray(out, dtype=np.int64))
    (axis,) = _axes(dim, xd.ndim, "argmax")
    return Tensor(np.argmax(xd, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


# ---- shape ops ----------------------------------------------------------------------
def reshape(x: Tensor, *shape: int | tuple[int, ...] | list[int]) -> Tensor:
    """x reshaped to ``shape`` (ints or one tuple; one entry may be -1)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    xd = x.data
    try:
        out = xd.reshape(shape)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {xd.shape} into {shape}: {err}"
        ) from None
    in_shape = xd.shape
    return record(out, (x,), lambda g: (g.reshape(in_shape),))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one (as torch.flatten)."""
    shape = V.data_of("flatten", "input", x).shape
    if len(shape) == 0:
        return reshape(x, 1)
    s = V.dim_index(start_dim, len(shape), "flatten")
    e = V.dim_index(end_dim, len(shape), "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = 1
    for n in shape[s : e + 1]:
        merged *= n
    return reshape(x, shape[:s] + (merged,) + shape[e + 1 :])


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    xd = x.data
    d0 = V.dim_index(dim0, xd.ndim, "transpose")
    d1 = V.dim_index(dim1, xd.ndim, "transpose")
    if xd.ndim < 2:
        return record(xd, (x,), lambda g: (g,))
    return record(np.swapaxes(xd, d0, d1), (x,), lambda g: (np.swapaxes(g, d0, d1),))


def permute(x: Tensor, *dims: int | tuple[int, ...] | list[int]) -> Tensor:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    xd = x.data
    axes = tuple(V.dim_index(d, xd.ndim, "permute") for d in dims)
    if sorted(axes) != list(range(xd.ndim)):
        raise ValueError(
            f"permute: {dims} is not a permutation of the {xd.ndim} dims of shape {xd.shape}"
        )
    inverse = tuple(np.argsort(axes))
    return record(np.transpose(xd, axes), (x,), lambda g: (np.transpose(g, inverse),))


def t(x: Tensor) -> Tensor:
    """x.T: all dims reversed (the matrix transpose for 2-D)."""
    xd = x.data
    return record(xd.T, (x,), lambda g: (g.T,))


# ---- indexing -----------------------------------------------------------------------
def _plain_index(index: Any) -> tuple[Any, bool]:
    """The index with Tensors replaced by their arrays; also whether it is 'basic'."""
    if isinstance(index, Tensor):
        return index.data, False
    if isinstance(index, tuple):
        items = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        basic = all(
            i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items
        )
        return items, basic
    basic = index is None or index is Ellipsis or isinstance(index, (int, np.integer, slice))
    return index, basic


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index] with numpy's rules; repeated advanced indices accumulate gradients."""
    index, basic = _plain_index(index)
    xd = x.data
    out = xd[index]

    def backward(g):
        gx = np.zeros_like(xd)
        if basic:
            gx[index] = g
        else:
            np.add.at(gx, index, g)
        return (gx,)

    return record(out, (x,), backward)
