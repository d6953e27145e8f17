"""Tensor arithmetic, reductions, shape ops and indexing, each with its backward.

Every function takes Tensors (the binary ops also Python scalars and ndarrays) and
returns ``record(out, inputs, backward)``; ``backward(g)`` returns one gradient per input,
shaped like that input, or None where no gradient is needed.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import Tensor, TensorLike, record
from minidl.dtypes import as_dtype
from minidl.ops import _validation as V
from minidl.ops import reduction as _reduction


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


def to(
    x: Tensor,
    *args: Any,
    dtype: DTypeLike | None = None,
    device: Any = None,
    copy: bool = False,
    non_blocking: bool = False,
) -> Tensor:
    """x converted to ``dtype`` (differentiable between float dtypes), as ``Tensor.to``:
    ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)`` or keywords.
    The only device is the CPU. ``copy=True`` copies even when nothing changes."""
    for a in args:
        if isinstance(a, Tensor):
            a = a.data.dtype
        if _is_device(a):
            device = a
        elif dtype is None:
            dtype = a
        else:
            raise TypeError(f"to: unexpected argument {a!r}")
    if device is not None and not _is_device(device):
        raise ValueError(f"to: minidl runs on the CPU only, got device {device!r}")
    src = x.data.dtype
    dtype = src if dtype is None else as_dtype(dtype, "to")
    if dtype == src:
        return clone(x) if copy else x
    out = x.data.astype(dtype)
    if dtype.kind != "f":
        return Tensor(out)
    return record(out, (x,), lambda g: (g.astype(src),))


def _is_device(a: object) -> bool:
    """'cpu' (or 'cpu:0') or an object whose str is; any other string is a bad device."""
    name = a if isinstance(a, str) else getattr(a, "type", None)
    if not isinstance(name, str):
        return False
    if name.split(":")[0] == "cpu":
        return True
    try:
        np.dtype(name)
    except TypeError:
        raise ValueError(f"to: minidl runs on the CPU only, got device {a!r}") from None
    return False


def float(x: Tensor) -> Tensor:
    return to(x, np.float32)


def double(x: Tensor) -> Tensor:
    return to(x, np.float64)


# Tensor.long / .int / .bool (named so as not to hide the builtins here)
def to_long(x: Tensor) -> Tensor:
    return to(x, np.int64)


def to_int(x: Tensor) -> Tensor:
    return to(x, np.int32)


def to_bool(x: Tensor) -> Tensor:
    return to(x, np.bool_)


def tolist(x: Tensor) -> Any:
    """The values as (nested lists of) Python numbers; a Python number for a 0-d tensor."""
    return x.data.tolist()


def clamp(x: Tensor, min: TensorLike | None = None, max: TensorLike | None = None) -> Tensor:
    """x limited to [min, max] (either bound may be None, not both; Tensor bounds
    broadcast). The gradient goes to x where min <= x <= max, else to the bound used."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    out = x
    if min is not None:
        out = _bound(out, min, np.maximum, "clamp")
    if max is not None:
        out = _bound(out, max, np.minimum, "clamp")
    return out


def _bound(x: Tensor, b: TensorLike, pick: np.ufunc, what: str) -> Tensor:
    """pick(x, b) (np.maximum for a lower bound), the gradient to x where x is kept."""
    if isinstance(b, Tensor):
        x, bt = _pair(x, b, what)
    else:
        if isinstance(b, np.generic):
            b = b.item()
        if isinstance(b, bool) or not isinstance(b, (int, builtins.float)):
            raise TypeError(f"{what}: min and max must be numbers or Tensors, got {b!r}")
        bt = _as_operand(b, x)
    xd = x.data
    bd = bt.data
    out = pick(xd, bd)

    def backward(g):
        keep = (xd >= bd) if pick is np.maximum else (xd <= bd)
        keep = keep | np.isnan(xd)
        zero = np.zeros((), g.dtype)
        return (
            _unbroadcast(np.where(keep, g, zero), xd.shape) if x.requires_grad else None,
            _unbroadcast(np.where(keep, zero, g), bd.shape) if bt.requires_grad else None,
        )

    return record(out, (x, bt), backward)


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


# the reductions moved to their own module; importable from here as before

argmax = _reduction.argmax
max = _reduction.max
mean = _reduction.mean
sum = _reduction.sum
