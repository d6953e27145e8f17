"""``pad``: constant, reflect, replicate and circular padding of the trailing dims.

``pad`` lists (left, right) pairs starting from the LAST dim, as PyTorch's ``F.pad``:
``(1, 2)`` pads the last dim by 1 before and 2 after; ``(1, 1, 2, 2)`` also the one
before it. Each non-constant mode is a gather along each padded dim (an index array per
dim), so its backward scatters the gradient back with ``np.add.at``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V

_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_pairs(pad: Sequence[int], ndim: int, mode: str) -> list[tuple[int, int, int]]:
    """[(axis, before, after), ...] from PyTorch's flat last-dim-first ``pad``."""
    what = "pad"
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"{what}: pad must be a tuple of ints, got {type(pad).__name__}")
    for p in pad:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise TypeError(f"{what}: pad must contain ints, got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"{what}: pad must have an even length, got {len(pad)} values {pad!r}")
    k = len(pad) // 2
    if k > ndim:
        raise ValueError(
            f"{what}: pad {tuple(pad)} pads {k} dims but the input has only {ndim} dims"
        )
    if mode != "constant":
        # PyTorch pads the last 1, 2 or 3 dims of an unbatched or batched input
        if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
            raise ValueError(
                f"{what}: mode={mode!r} with {len(pad)} pad values needs a {k + 1}-D or "
                f"{k + 2}-D input, got {ndim}-D"
            )
        if any(p < 0 for p in pad):
            raise ValueError(f"{what}: mode={mode!r} needs non-negative padding, got {pad!r}")
    return [(ndim - 1 - i, int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(k)]


def _gather_index(size: int, before: int, after: int, mode: str, shape: tuple) -> np.ndarray:
    """Source index along one axis of length ``size`` for each padded position."""
    j = np.arange(-before, size + after)
    if mode == "replicate":
        return np.clip(j, 0, size - 1)
    if mode == "circular":
        if before > size or after > size:
            raise ValueError(
                f"pad: circular padding ({before}, {after}) must be at most the dim size "
                f"{size} (input shape {shape})"
            )
        return j % size
    # reflect: mirror without repeating the edge
    if before >= size or after >= size:
        raise ValueError(
            f"pad: reflect padding ({before}, {after}) must be smaller than the dim size "
            f"{size} (input shape {shape})"
        )
    j = np.abs(j)
    return np.where(j > size - 1, 2 * (size - 1) - j, j)


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the trailing dims of ``input`` (``pad`` as in PyTorch: last dim first).

    constant: any number of dims, negative values crop; reflect / replicate / circular:
    2, 4 or 6 values for a (C, W) / (N, C, W), (C, H, W) / (N, C, H, W) or 4-D / 5-D
    input. ``value`` (default 0) fills constant padding only.
    """
    what = "pad"
    x = V.data_of(what, "input", input)
    if mode not in _MODES:
        raise ValueError(f"{what}: mode must be one of {_MODES}, got {mode!r}")
    if value is not None and mode != "constant":
        raise ValueError(f"{what}: value is only used with mode='constant', got mode={mode!r}")
    pairs = _pad_pairs(pad, x.ndim, mode)
    if mode == "constant":
        return _pad_constant(input, x, pairs, 0 if value is None else value)
    for axis, _, _ in pairs:
        if x.shape[axis] == 0:
            raise ValueError(f"{what}: mode={mode!r} cannot pad an empty dim (shape {x.shape})")
    gathers = [(axis, _gather_index(x.shape[axis], b, a, mode, x.shape)) for axis, b, a in pairs]
    out = x
    for axis, idx in gathers:
        out = np.take(out, idx, axis=axis)
    shape = x.shape

    def backward(g):
        for axis, idx in reversed(gathers):
            sizes = list(g.shape)
            sizes[axis] = shape[axis]
            acc = np.zeros(sizes, dtype=g.dtype)
            np.add.at(acc, (slice(None),) * axis + (idx,), g)
            g = acc
        return (g,)

    return record(out, (input,), backward)


def _pad_constant(input: Tensor, x: np.ndarray, pairs: list, value: float) -> Tensor:
    if x.dtype.kind in "iub" and isinstance(value, float) and not float(value).is_integer():
        raise TypeError(f"pad: value {value} does not fit the input's dtype {x.dtype}")
    sizes = list(x.shape)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    for axis, before, after in pairs:
        n = x.shape[axis]
        size = n + before + after
        if size < 0:
            raise ValueError(
                f"pad: padding ({before}, {after}) makes dim {axis} of input shape "
                f"{x.shape} negative"
            )
        sizes[axis] = size
        # negative padding crops
        lo, hi = max(-before, 0), n - max(-after, 0)
        lo, hi = min(lo, n), max(min(hi, n), min(lo, n))
        src[axis] = slice(lo, hi)
        dst[axis] = slice(max(before, 0), max(before, 0) + (hi - lo))
    out = np.full(sizes, value, dtype=x.dtype)
    src_t, dst_t = tuple(src), tuple(dst)
    out[dst_t] = x[src_t]
    shape = x.shape

    def backward(g):
        gx = np.zeros(shape, dtype=g.dtype)
        gx[src_t] = g[dst_t]
        return (gx,)

    return record(out, (input,), backward)
