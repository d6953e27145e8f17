"""Losses, each with its backward next to its forward."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V
from minidl.ops.activation import _log_softmax

# ---- losses -------------------------------------------------------------------------
_ROWS: dict[int, np.ndarray] = {}  # n -> read-only arange(n): the row index of the (N, C) fast path


def _rows(n: int) -> np.ndarray:
    rows = _ROWS.get(n)
    if rows is None:
        if len(_ROWS) > 64:
            _ROWS.clear()
        rows = np.arange(n)
        rows.flags.writeable = False
        _ROWS[n] = rows
    return rows


def cross_entropy(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) (or (C,), or (N, C, d1, ...))
    against integer class indices ``target`` (N,) (or (), or (N, d1, ...)).

    reduction: "mean" (over all targets), "sum" or "none" (shape of ``target``).
    """
    xd = V.data_of("cross_entropy", "input", input)
    td = V.class_targets(target, xd, "cross_entropy")
    V.reduction(reduction, "cross_entropy")
    axis = 0 if xd.ndim == 1 else 1
    logp = _log_softmax(xd, axis)
    if xd.ndim == 2:  # the common case: one fancy-index pick per row
        index = (_rows(xd.shape[0]), td)
        picked = logp[index]
    else:
        index = np.expand_dims(td, axis)
        picked = np.take_along_axis(logp, index, axis).reshape(td.shape)
    count = picked.size
    if reduction == "none":
        out = np.negative(picked, out=picked)
    elif reduction == "sum":
        out = -np.add.reduce(picked, axis=None)
    elif count:
        out = -np.add.reduce(picked, axis=None) / count
    else:
        out = np.asarray(np.nan, xd.dtype)

    def backward(g):
        gx = np.exp(logp)  # softmax (a new array: logp must survive a retained graph)
        if xd.ndim == 2:
            gx[index] -= 1
        else:
            np.put_along_axis(gx, index, np.take_along_axis(gx, index, axis) - 1, axis)
        if reduction == "none":
            return (np.multiply(gx, np.expand_dims(g, axis), out=gx),)
        if reduction == "mean":
            g = g / count
        return (np.multiply(gx, g, out=gx),)

    return record(np.asarray(out, dtype=xd.dtype), (input,), backward)


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of (input - target)**2; shapes must match."""
    xd = V.data_of("mse_loss", "input", input)
    if not isinstance(target, Tensor):  # ndarrays keep their dtype (checked below)
        target = Tensor(
            target if isinstance(target, np.ndarray) else np.asarray(target, dtype=xd.dtype)
        )
    td = target.data
    V.same_float_dtype("mse_loss", input=xd, target=td)
    if xd.shape != td.shape:
        raise ValueError(f"mse_loss: input shape {xd.shape} and target shape {td.shape} differ")
    V.reduction(reduction, "mse_loss")
    diff = xd - td
    sq = diff * diff
    if reduction == "none":
        out, scale = sq, None
    elif reduction == "sum":
        out, scale = sq.sum(), 1
    else:
        out, scale = sq.mean(), 1 / max(diff.size, 1)

    def backward(g):
        gx = 2 * diff * (g if scale is None else g * scale)
        return (gx if input.requires_grad else None, -gx if target.requires_grad else None)

    return record(np.asarray(out, dtype=xd.dtype), (input, target), backward)
