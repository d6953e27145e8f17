"""Activations and dropout, each with its backward next to its forward."""

from __future__ import annotations

import warnings

import numpy as np

from minidl import _kernels as K
from minidl import random as _random
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V


# ---- activations --------------------------------------------------------------------
def relu(input: Tensor) -> Tensor:
    xd = V.data_of("relu", "input", input)
    # the kernels: one pass, on minidl's threads, the same bits; None for other arrays
    out = K.relu_forward(xd, get_num_threads())
    if out is None:
        out = np.maximum(xd, 0)
    return record(out, (input,), lambda g: (relu_grad(xd, g),))


def relu_grad(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """ReLU's input gradient (x > 0) * g; x may as well be ReLU's output, whose mask is
    the same (NaN included)."""
    gx = K.relu_backward(x, g, get_num_threads())
    if gx is None:
        # the float mask (x > 0) written straight into the result, then scaled by g
        # in place: no bool temporary, no bool -> float cast pass
        gx = np.greater(x, 0, out=np.empty(x.shape, g.dtype))
        np.multiply(gx, g, out=gx)
    return gx


def sigmoid(input: Tensor) -> Tensor:
    # exp(-log(1 + exp(-x))): no overflow for either sign, full precision in both tails
    out = np.exp(-np.logaddexp(0, -V.data_of("sigmoid", "input", input)))
    return record(out, (input,), lambda g: (g * out * (1 - out),))


def tanh(input: Tensor) -> Tensor:
    out = np.tanh(V.data_of("tanh", "input", input))
    return record(out, (input,), lambda g: (g * (1 - out * out),))


def _implicit_dim(dim: int | None, ndim: int, what: str) -> int:
    """PyTorch's deprecated choice when dim is None: 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {what} has been deprecated. "
        f"Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=4,  # the caller of softmax / log_softmax,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _data_and_axis(input: Tensor, dim: int | None, what: str) -> tuple[np.ndarray, int | None]:
    """The input's array and the axis of ``dim``; axis None for a 0-d input, which (as in
    PyTorch) is computed as one element along dim 0 (``dim`` must then be 0, -1 or None)."""
    xd = V.data_of(what, "input", input)
    if xd.ndim == 0:
        V.dim_index(0 if dim is None else dim, 1, what)
        return xd, None
    if dim is None:
        dim = _implicit_dim(dim, xd.ndim, what)
    return xd, V.dim_index(dim, xd.ndim, what)


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (computed with the maximum subtracted)."""
    xd, axis = _data_and_axis(input, dim, "softmax")
    if axis is None:
        return softmax(input.reshape(1), 0).reshape(())
    e = np.exp(xd - np.max(xd, axis=axis, keepdims=True))
    out = e / np.sum(e, axis=axis, keepdims=True)
    return record(out, (input,), lambda g: (out * (g - np.sum(g * out, axis=axis, keepdims=True)),))


def _log_softmax(xd: np.ndarray, axis: int) -> np.ndarray:
    # ufunc methods rather than the np.max / np.sum wrappers: same results, fewer calls
    shifted = xd - np.maximum.reduce(xd, axis=axis, keepdims=True)
    return np.subtract(
        shifted, np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True)), out=shifted
    )


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable for logits of any magnitude."""
    xd, axis = _data_and_axis(input, dim, "log_softmax")
    if axis is None:
        return log_softmax(input.reshape(1), 0).reshape(())
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


# ---- more activations (PyTorch's everyday set) ----------------------------------------
def _number(value: float, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: {name} must be a number, got {type(value).__name__}")
    return float(value)


def _float_data(what: str, input: Tensor) -> np.ndarray:
    xd = V.data_of(what, "input", input)
    if xd.dtype.kind != "f":
        raise TypeError(f"{what}: needs a floating-point tensor, got dtype {xd.dtype}")
    return xd


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x (the gradient at 0 is negative_slope)."""
    slope = _number(negative_slope, "negative_slope", "leaky_relu")
    xd = _float_data("leaky_relu", input)
    scale = np.where(xd > 0, xd.dtype.type(1), xd.dtype.type(slope))
    return record(xd * scale, (input,), lambda g: (g * scale,))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    a = _number(alpha, "alpha", "elu")
    xd = _float_data("elu", input)
    pos = xd > 0
    e = np.exp(np.minimum(xd, 0))
    out = np.where(pos, xd, a * (e - 1)).astype(xd.dtype, copy=False)
    slope = np.where(pos, 1, a * e).astype(xd.dtype, copy=False)
    return record(out, (input,), lambda g: (g * slope,))


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, else 0."""
    lo = _number(min_val, "min_val", "hardtanh")
    hi = _number(max_val, "max_val", "hardtanh")
    if lo > hi:
        raise ValueError(f"hardtanh: min_val ({lo}) cannot be greater than max_val ({hi})")
    xd = _float_data("hardtanh", input)
    inside = (xd > lo) & (xd < hi)
    return record(
        np.clip(xd, lo, hi).astype(xd.dtype, copy=False), (input,), lambda g: (g * inside,)
    )


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    xd = _float_data("silu", input)
    s = np.exp(-np.logaddexp(0, -xd)).astype(xd.dtype, copy=False)
    return record(xd * s, (input,), lambda g: (g * (s * (1 + xd * (1 - s))),))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with Phi the standard normal CDF (``approximate="none"``), or the tanh
    approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``"tanh"``)."""
    from scipy.special import erf

    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    xd = _float_data("gelu", input)
    t = xd.dtype.type
    if approximate == "none":
        cdf = (0.5 * (1 + erf(xd / np.sqrt(2)))).astype(xd.dtype, copy=False)
        pdf = (np.exp(-0.5 * xd * xd) / np.sqrt(2 * np.pi)).astype(xd.dtype, copy=False)
        return record(xd * cdf, (input,), lambda g: (g * (cdf + xd * pdf),))
    k = t(np.sqrt(2 / np.pi))
    inner = k * (xd + t(0.044715) * xd**3)
    th = np.tanh(inner)
    out = t(0.5) * xd * (1 + th)

    def backward(g):
        d_inner = k * (1 + t(3 * 0.044715) * xd * xd)
        return (g * (t(0.5) * (1 + th) + t(0.5) * xd * (1 - th * th) * d_inner),)

    return record(out, (input,), backward)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels: input (N, C, H, W) (or (N, C, L), as PyTorch treats a 3-D
    input), each (n, c) plane with probability p; the rest are scaled by 1/(1-p)."""
    V.probability(p, "dropout2d")
    xd = _float_data("dropout2d", input)
    if xd.ndim not in (3, 4):
        raise ValueError(
            f"dropout2d: expected a 4-D input (N, C, H, W) or 3-D (N, C, L), got shape {xd.shape}"
        )
    if not training or p == 0:
        return input
    shape = xd.shape[:2] + (1,) * (xd.ndim - 2)
    if p == 1:
        mask = np.zeros(shape, dtype=xd.dtype)
    else:
        keep = _random.get_generator().random(shape) >= p
        mask = keep.astype(xd.dtype) * xd.dtype.type(1 / (1 - p))
    return record(xd * mask, (input,), lambda g: (g * mask,))
