"""Activations and dropout, each with its backward next to its forward."""

from __future__ import annotations

import numpy as np

from minidl import random as _random
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V


# ---- activations --------------------------------------------------------------------
def relu(input: Tensor) -> Tensor:
    xd = V.data_of("relu", "input", input)
    out = np.maximum(xd, 0)

    def backward(g):
        # the float mask (x > 0) written straight into the result, then scaled by g in
        # place: no bool temporary, no bool -> float cast pass
        gx = np.greater(xd, 0, out=np.empty(xd.shape, g.dtype))
        return (np.multiply(gx, g, out=gx),)

    return record(out, (input,), backward)


def sigmoid(input: Tensor) -> Tensor:
    # exp(-log(1 + exp(-x))): no overflow for either sign, full precision in both tails
    out = np.exp(-np.logaddexp(0, -V.data_of("sigmoid", "input", input)))
    return record(out, (input,), lambda g: (g * out * (1 - out),))


def tanh(input: Tensor) -> Tensor:
    out = np.tanh(V.data_of("tanh", "input", input))
    return record(out, (input,), lambda g: (g * (1 - out * out),))


def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (computed with the maximum subtracted)."""
    xd = V.data_of("softmax", "input", input)
    axis = V.dim_index(dim, xd.ndim, "softmax")
    e = np.exp(xd - np.max(xd, axis=axis, keepdims=True))
    out = e / np.sum(e, axis=axis, keepdims=True)
    return record(out, (input,), lambda g: (out * (g - np.sum(g * out, axis=axis, keepdims=True)),))


def _log_softmax(xd: np.ndarray, axis: int) -> np.ndarray:
    # ufunc methods rather than the np.max / np.sum wrappers: same results, fewer calls
    shifted = xd - np.maximum.reduce(xd, axis=axis, keepdims=True)
    return np.subtract(
        shifted, np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True)), out=shifted
    )


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable for logits of any magnitude."""
    xd = V.data_of("log_softmax", "input", input)
    axis = V.dim_index(dim, xd.ndim, "log_softmax")
    out = _log_softmax(xd, axis)
    return record(out, (input,), lambda g: (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),))


# ---- dropout ------------------------------------------------------------------------
def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
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


# ---- relu6 (issue 20) ----------------------------------------------------------------
def relu6(input, inplace: bool = False):
    """min(max(x, 0), 6), MobileNet's activation; the gradient is 1 strictly inside (0, 6)
    and 0 elsewhere (as PyTorch). ``inplace`` is accepted; the result is a new Tensor."""
    xd = V.data_of("relu6", "input", input)
    return record(np.clip(xd, 0, 6), (input,), lambda g: (g * ((xd > 0) & (xd < 6)),))
