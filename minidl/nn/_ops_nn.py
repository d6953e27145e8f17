"""Activations, losses, linear and dropout, each with its backward next to its forward."""
import numpy as np

from minidl.autograd import Tensor, record
from minidl import _validation as V
from minidl import random as _random


# ---- activations --------------------------------------------------------------------
def relu(input):
    xd = input.data
    out = np.maximum(xd, 0)
    return record(out, (input,), lambda g: (g * (xd > 0),))


def sigmoid(input):
    # exp(-log(1 + exp(-x))): no overflow for either sign, full precision in both tails
    out = np.exp(-np.logaddexp(0, -input.data))
    return record(out, (input,), lambda g: (g * out * (1 - out),))


def tanh(input):
    out = np.tanh(input.data)
    return record(out, (input,), lambda g: (g * (1 - out * out),))


def softmax(input, dim):
    """exp(x) / sum(exp(x)) along ``dim`` (computed with the maximum subtracted)."""
    xd = input.data
    axis = V.dim_index(dim, xd.ndim, "softmax")
    e = np.exp(xd - np.max(xd, axis=axis, keepdims=True))
    out = e / np.sum(e, axis=axis, keepdims=True)
    return record(out, (input,), lambda g: (
        out * (g - np.sum(g * out, axis=axis, keepdims=True)),))


def _log_softmax(xd, axis):
    shifted = xd - np.max(xd, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def log_softmax(input, dim):
    """x - logsumexp(x) along ``dim``, stable for logits of any magnitude."""
    xd = input.data
    axis = V.dim_index(dim, xd.ndim, "log_softmax")
    out = _log_softmax(xd, axis)
    return record(out, (input,), lambda g: (
        g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),))


# ---- losses -------------------------------------------------------------------------
def cross_entropy(input, target, reduction="mean"):
    """Softmax cross-entropy of logits ``input`` (N, C) (or (C,), or (N, C, d1, ...))
    against integer class indices ``target`` (N,) (or (), or (N, d1, ...)).

    reduction: "mean" (over all targets), "sum" or "none" (shape of ``target``).
    """
    xd = input.data
    td = V.class_targets(target, xd, "cross_entropy")
    V.reduction(reduction, "cross_entropy")
    logp = _log_softmax(xd, 0 if xd.ndim == 1 else 1)
    picked = np.expand_dims(td, 0 if xd.ndim == 1 else 1)
    losses = -np.squeeze(np.take_along_axis(logp, picked, 0 if xd.ndim == 1 else 1),
                         0 if xd.ndim == 1 else 1)
    if reduction == "none":
        out = losses
    elif reduction == "sum":
        out = losses.sum()
    else:
        out = losses.mean() if losses.size else np.asarray(np.nan, xd.dtype)
    axis = 0 if xd.ndim == 1 else 1
    count = losses.size

    def backward(g):
        gx = np.exp(logp)  # softmax
        np.put_along_axis(gx, picked, np.take_along_axis(gx, picked, axis) - 1, axis)
        if reduction == "none":
            return (gx * np.expand_dims(g, axis),)
        if reduction == "mean":
            g = g / count
        return (gx * g,)

    return record(np.asarray(out, dtype=xd.dtype), (input,), backward)


def mse_loss(input, target, reduction="mean"):
    """Mean (or sum, or none) of (input - target)**2; shapes must match."""
    if not isinstance(target, Tensor):  # ndarrays keep their dtype (checked below)
        target = Tensor(target if isinstance(target, np.ndarray)
                        else np.asarray(target, dtype=input.data.dtype))
    xd = input.data
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
    xd = input.data
    wd = weight.data
    V.linear_args(xd, wd, None if bias is None else bias.data)
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
    xd = input.data
    if xd.dtype.kind != "f":
        raise TypeError(f"dropout: needs a floating-point tensor, got dtype {xd.dtype}")
    if p == 1:
        mask = np.zeros_like(xd)
    else:
        keep = _random.get_generator().random(xd.shape) >= p
        mask = keep.astype(xd.dtype) * xd.dtype.type(1 / (1 - p))
    return record(xd * mask, (input,), lambda g: (g * mask,))
