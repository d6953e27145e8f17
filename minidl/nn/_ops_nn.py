"""Activations, losses, linear and dropout, each with its backward next to its forward."""
import numpy as np

from minidl.autograd import Tensor, record
from minidl import _validation as V
from minidl import random as _random


# ---- activations --------------------------------------------------------------------
def relu(input):
    xd = V.data_of("relu", "input", input)
    out = np.maximum(xd, 0)

    def backward(g):
        # the float mask (x > 0) written straight into the result, then scaled by g in
        # place: no bool temporary, no bool -> float cast pass
        gx = np.greater(xd, 0, out=np.empty(xd.shape, g.dtype))
        return (np.multiply(gx, g, out=gx),)

    return record(out, (input,), backward)


def sigmoid(input):
    # exp(-log(1 + exp(-x))): no overflow for either sign, full precision in both tails
    out = np.exp(-np.logaddexp(0, -V.data_of("sigmoid", "input", input)))
    return record(out, (input,), lambda g: (g * out * (1 - out),))


def tanh(input):
    out = np.tanh(V.data_of("tanh", "input", input))
    return record(out, (input,), lambda g: (g * (1 - out * out),))


def softmax(input, dim):
    """exp(x) / sum(exp(x)) along ``dim`` (computed with the maximum subtracted)."""
    xd = V.data_of("softmax", "input", input)
    axis = V.dim_index(dim, xd.ndim, "softmax")
    e = np.exp(xd - np.max(xd, axis=axis, keepdims=True))
    out = e / np.sum(e, axis=axis, keepdims=True)
    return record(out, (input,), lambda g: (
        out * (g - np.sum(g * out, axis=axis, keepdims=True)),))


def _log_softmax(xd, axis):
    # ufunc methods rather than the np.max / np.sum wrappers: same results, fewer calls
    shifted = xd - np.maximum.reduce(xd, axis=axis, keepdims=True)
    return np.subtract(shifted, np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True)),
                       out=shifted)


def log_softmax(input, dim):
    """x - logsumexp(x) along ``dim``, stable for logits of any magnitude."""
    xd = V.data_of("log_softmax", "input", input)
    axis = V.dim_index(dim, xd.ndim, "log_softmax")
    out = _log_softmax(xd, axis)
    return record(out, (input,), lambda g: (
        g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),))


# ---- losses -------------------------------------------------------------------------
_ROWS = {}  # n -> read-only arange(n): the row index of the (N, C) fast path


def _rows(n):
    rows = _ROWS.get(n)
    if rows is None:
        if len(_ROWS) > 64:
            _ROWS.clear()
        rows = np.arange(n)
        rows.flags.writeable = False
        _ROWS[n] = rows
    return rows


def cross_entropy(input, target, reduction="mean"):
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


def mse_loss(input, target, reduction="mean"):
    """Mean (or sum, or none) of (input - target)**2; shapes must match."""
    xd = V.data_of("mse_loss", "input", input)
    if not isinstance(target, Tensor):  # ndarrays keep their dtype (checked below)
        target = Tensor(target if isinstance(target, np.ndarray)
                        else np.asarray(target, dtype=xd.dtype))
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


# ---- linear -------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """input (..., in) @ weight.T (out, in) + bias (out,) -> (..., out)."""
    xd = V.data_of("linear", "input", input)
    wd = V.data_of("linear", "weight", weight)
    V.linear_args(xd, wd, V.optional_data_of("linear", "bias", bias))
    out = xd @ wd.T
    if bias is not None:
        out += bias.data
        inputs = (input, weight, bias)
    else:
        inputs = (input, weight)

    def backward(g):
        gx = g @ wd if input.requires_grad else None
        gw = gb = None
        if weight.requires_grad:
            g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
            x2 = xd.reshape(-1, xd.shape[-1]) if xd.ndim != 2 else xd
            gw = g2.T @ x2
        if bias is not None and bias.requires_grad:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0) if g.ndim else g
        return (gx, gw, gb)

    return record(out, inputs, backward)


# ---- dropout ------------------------------------------------------------------------
def dropout(input, p=0.5, training=True):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The identity when ``training`` is False or p == 0. The mask comes from
    minidl.random.get_generator(), so minidl.manual_seed makes it repeat.
    """
    V.probability(p, "dropout")
    if not training or p == 0:
        return input
    xd = V.data_of("dropout", "input", input)
    if xd.dtype.kind != "f":
        raise TypeError(f"dropout: needs a floating-point tensor, got dtype {xd.dtype}")
    if p == 1:
        mask = np.zeros_like(xd)
    else:
        keep = _random.get_generator().random(xd.shape) >= p
        mask = keep.astype(xd.dtype) * xd.dtype.type(1 / (1 - p))
    return record(xd * mask, (input,), lambda g: (g * mask,))
