"""Tensor creation as in PyTorch: constant fills, random draws, ranges, ``from_numpy``,
and the differentiable joins ``cat``, ``stack`` and ``where``.

Every creator returns a new leaf (``requires_grad=`` and ``dtype=`` as PyTorch; floats
default to float32). The random ones draw from minidl's global generator, so
``minidl.manual_seed`` makes them repeat; ``generator=`` takes a ``np.random.Generator``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import DTypeLike

from minidl import random as _random
from minidl.autograd import Tensor, TensorLike, record
from minidl.dtypes import as_dtype
from minidl.ops import _validation as V
from minidl.ops.math import _pair, _unbroadcast

__all__ = [
    "arange",
    "cat",
    "empty",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "stack",
    "where",
    "zeros",
    "zeros_like",
]

Size = Union[int, Sequence[int]]
_INT = (int, np.integer)


def _size(size: tuple[Any, ...], what: str) -> tuple[int, ...]:
    """``(2, 3)`` from ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])``; non-negative ints."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, builtins.bool) or not isinstance(n, _INT):
            raise TypeError(f"{what}: size must be ints or one tuple of ints, got {size!r}")
        if n < 0:
            raise ValueError(f"{what}: negative dimension {n} in size {size!r}")
    return tuple(int(n) for n in size)


def _float_dtype(dtype: DTypeLike | None, what: str) -> np.dtype:
    return np.dtype(np.float32) if dtype is None else as_dtype(dtype, what)


# ---- constant fills -----------------------------------------------------------------
def zeros(*size: Size, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
    shape = _size(size, "zeros")
    return Tensor(np.zeros(shape, _float_dtype(dtype, "zeros")), requires_grad=requires_grad)


def ones(*size: Size, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size``."""
    shape = _size(size, "ones")
    return Tensor(np.ones(shape, _float_dtype(dtype, "ones")), requires_grad=requires_grad)


def empty(*size: Size, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of shape ``size``."""
    shape = _size(size, "empty")
    return Tensor(np.empty(shape, _float_dtype(dtype, "empty")), requires_grad=requires_grad)


def _fill_dtype(fill_value: object, dtype: DTypeLike | None, what: str) -> np.dtype:
    """full's dtype: given, else inferred from the value as PyTorch (bool, int64, float32)."""
    if dtype is not None:
        return as_dtype(dtype, what)
    if isinstance(fill_value, (builtins.bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(fill_value, _INT):
        return np.dtype(np.int64)
    if isinstance(fill_value, (builtins.float, np.floating)):
        return np.dtype(np.float32)
    raise TypeError(f"{what}: fill_value must be a number, got {type(fill_value).__name__}")


def full(
    size: Size,
    fill_value: builtins.float,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    shape = _size((size,), "full")
    dt = _fill_dtype(fill_value, dtype, "full")
    return Tensor(np.full(shape, fill_value, dt), requires_grad=requires_grad)


def _like(x: Tensor, dtype: DTypeLike | None, what: str) -> tuple[tuple[int, ...], np.dtype]:
    xd = V.data_of(what, "input", x)
    return xd.shape, xd.dtype if dtype is None else as_dtype(dtype, what)


def zeros_like(
    input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """Zeros shaped (and typed, unless ``dtype``) like ``input``."""
    shape, dt = _like(input, dtype, "zeros_like")
    return Tensor(np.zeros(shape, dt), requires_grad=requires_grad)


def ones_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Ones shaped (and typed, unless ``dtype``) like ``input``."""
    shape, dt = _like(input, dtype, "ones_like")
    return Tensor(np.ones(shape, dt), requires_grad=requires_grad)


def full_like(
    input: Tensor,
    fill_value: builtins.float,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``fill_value`` shaped (and typed, unless ``dtype``) like ``input``."""
    shape, dt = _like(input, dtype, "full_like")
    return Tensor(np.full(shape, fill_value, dt), requires_grad=requires_grad)


def eye(
    n: int, m: int | None = None, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """The (n, m) identity matrix (m defaults to n)."""
    (n,) = _size((n,), "eye")
    (m,) = _size((n if m is None else m,), "eye")
    return Tensor(np.eye(n, m, dtype=_float_dtype(dtype, "eye")), requires_grad=requires_grad)


# ---- random draws -------------------------------------------------------------------
def _rng(generator: np.random.Generator | None, what: str) -> np.random.Generator:
    if generator is None:
        return _random.get_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"{what}: generator must be a numpy.random.Generator, got {type(generator).__name__}"
        )
    return generator


def _random_float(what: str, size: tuple, generator, dtype, requires_grad, draw) -> Tensor:
    shape = _size(size, what)
    dt = _float_dtype(dtype, what)
    if dt.kind != "f":
        raise TypeError(f"{what}: dtype must be a floating-point dtype, got {dt}")
    return Tensor(draw(_rng(generator, what), shape, dt), requires_grad=requires_grad)


def rand(
    *size: Size,
    generator: np.random.Generator | None = None,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform draws from [0, 1) of shape ``size``."""
    return _random_float(
        "rand", size, generator, dtype, requires_grad, lambda r, s, d: r.random(s, dtype=d)
    )


def randn(
    *size: Size,
    generator: np.random.Generator | None = None,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal draws of shape ``size``."""
    return _random_float(
        "randn",
        size,
        generator,
        dtype,
        requires_grad,
        lambda r, s, d: r.standard_normal(s, dtype=d),
    )


def randint(
    *args: int | Sequence[int],
    size: Sequence[int] | None = None,
    generator: np.random.Generator | None = None,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)`` (size may be given as ``size=``); int64 by default."""
    if size is None:
        if not args:
            raise TypeError("randint: missing the size argument")
        *args, size = args
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint: takes randint(high, size) or randint(low, high, size)")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, builtins.bool) or not isinstance(v, _INT):
            raise TypeError(f"randint: {name} must be an int, got {v!r}")
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be smaller than high ({high})")
    shape = _size((size,) if isinstance(size, _INT) else (tuple(size),), "randint")
    dt = np.dtype(np.int64) if dtype is None else as_dtype(dtype, "randint")
    draws = _rng(generator, "randint").integers(low, high, shape, dtype=np.int64)
    return Tensor(draws.astype(dt, copy=False), requires_grad=requires_grad)


# ---- ranges -------------------------------------------------------------------------
def _number(v: object, name: str, what: str) -> builtins.float | int:
    if isinstance(v, Tensor):
        v = v.item()
    if isinstance(v, builtins.bool) or not isinstance(v, (int, builtins.float, np.number)):
        raise TypeError(f"{what}: {name} must be a number, got {type(v).__name__}")
    return v.item() if isinstance(v, np.generic) else v


def arange(
    start: builtins.float = 0,
    end: builtins.float | None = None,
    step: builtins.float = 1,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values start, start + step, ... below ``end`` (``arange(n)``: 0..n-1); int64 when
    every argument is an int, float32 otherwise (as PyTorch)."""
    if end is None:
        start, end = 0, start
    start, end, step = (
        _number(v, n, "arange") for v, n in ((start, "start"), (end, "end"), (step, "step"))
    )
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(
            f"arange: upper bound and larger bound inconsistent with step sign "
            f"(start={start}, end={end}, step={step})"
        )
    if dtype is not None:
        dt = as_dtype(dtype, "arange")
    elif all(isinstance(v, int) for v in (start, end, step)):
        dt = np.dtype(np.int64)
    else:
        dt = np.dtype(np.float32)
    n = int(np.ceil((end - start) / step))
    # values computed in float64 (or int64), then cast, as PyTorch does
    values = start + np.arange(n, dtype=np.float64 if dt.kind == "f" else np.int64) * step
    return Tensor(values.astype(dt), requires_grad=requires_grad)


def linspace(
    start: builtins.float,
    end: builtins.float,
    steps: int,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    start = _number(start, "start", "linspace")
    end = _number(end, "end", "linspace")
    if isinstance(steps, builtins.bool) or not isinstance(steps, _INT):
        raise TypeError(f"linspace: steps must be an int, got {steps!r}")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dt = _float_dtype(dtype, "linspace")
    return Tensor(np.linspace(start, end, int(steps)).astype(dt), requires_grad=requires_grad)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory (writes to either show in the other)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf" or ndarray.dtype == np.float16:
        raise TypeError(
            f"from_numpy: can't convert an array of dtype {ndarray.dtype}; supported: "
            "float32, float64, signed and unsigned integers, bool"
        )
    return Tensor(ndarray)


# ---- differentiable joins -----------------------------------------------------------
def _tensors(tensors: Sequence[Tensor], what: str) -> list[Tensor]:
    """The tensors to join, converted to one dtype (float32 with float64 is an error)."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{what}: tensors must be a list or tuple of Tensors")
    if not tensors:
        raise ValueError(f"{what}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        V.data_of(what, f"tensors[{i}]", t)
    ts = list(tensors)
    first = ts[0]
    for i in range(1, len(ts)):
        first, ts[i] = _pair(first, ts[i], what)
    return [_pair(t, first, what)[0] for t in ts]


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along existing dim ``dim`` (all other sizes must match)."""
    ts = _tensors(tensors, "cat")
    datas = [t.data for t in ts]
    for i, d in enumerate(datas):
        if d.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be joined")
    ref = datas[0]
    axis = V.dim_index(dim, ref.ndim, "cat")
    for i, d in enumerate(datas):
        if d.ndim != ref.ndim or d.shape[:axis] + d.shape[axis + 1 :] != (
            ref.shape[:axis] + ref.shape[axis + 1 :]
        ):
            raise ValueError(
                f"cat: sizes must match except in dim {dim}: tensors[0] has shape "
                f"{ref.shape}, tensors[{i}] has shape {d.shape}"
            )
    bounds = np.cumsum([d.shape[axis] for d in datas])[:-1]

    def backward(g):
        parts = np.split(g, bounds, axis=axis)
        return tuple(p if t.requires_grad else None for p, t in zip(parts, ts))

    return record(np.concatenate(datas, axis=axis), tuple(ts), backward)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new dim ``dim``."""
    ts = _tensors(tensors, "stack")
    datas = [t.data for t in ts]
    ref = datas[0]
    axis = V.dim_index(dim, ref.ndim + 1, "stack")
    for i, d in enumerate(datas):
        if d.shape != ref.shape:
            raise ValueError(
                f"stack: expects each tensor to be equal size, but got {ref.shape} at "
                f"entry 0 and {d.shape} at entry {i}"
            )

    def backward(g):
        return tuple(
            np.take(g, i, axis=axis) if t.requires_grad else None for i, t in enumerate(ts)
        )

    return record(np.stack(datas, axis=axis), tuple(ts), backward)


def where(
    condition: Tensor | np.ndarray, input: TensorLike | None = None, other: TensorLike | None = None
) -> Tensor | tuple[Tensor, ...]:
    """``input`` where ``condition`` holds, else ``other`` (broadcast together).
    ``where(condition)`` alone gives the indices of its nonzero entries, one tensor per dim."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(cond, np.ndarray):
        raise TypeError(f"where: condition must be a Tensor, got {type(condition).__name__}")
    if input is None and other is None:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(cond))
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither")
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = Tensor(input)
    a, b = _pair(input, other, "where")
    ad = a.data
    bd = b.data
    try:
        out = np.where(cond, ad, bd)
    except ValueError:
        raise ValueError(
            f"where: shapes {cond.shape}, {ad.shape} and {bd.shape} do not broadcast"
        ) from None

    def backward(g):
        zero = np.zeros((), g.dtype)
        return (
            _unbroadcast(np.where(cond, g, zero), ad.shape) if a.requires_grad else None,
            _unbroadcast(np.where(cond, zero, g), bd.shape) if b.requires_grad else None,
        )

    return record(out, (a, b), backward)
