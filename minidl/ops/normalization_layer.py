"""Layer norm, group norm and ``normalize``: statistics over a sample's own elements.

layer_norm and group_norm share one core: normalise x over some axes with the biased
variance, then scale and shift per feature / channel; its backward is the usual
``rstd * (gy - mean(gy) - xhat * mean(gy * xhat))`` over the same axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V


def _check_eps(eps: float, what: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: eps must be a number, got {type(eps).__name__}")
    if not eps >= 0:
        raise ValueError(f"{what}: eps must be >= 0, got {eps}")
    return float(eps)


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float):
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    return centred * rstd, rstd


def _normalise_backward(gy: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, axes) -> np.ndarray:
    m1 = gy.mean(axis=axes, keepdims=True)
    m2 = (gy * xhat).mean(axis=axes, keepdims=True)
    return rstd * (gy - m1 - xhat * m2)


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise input (*, *normalized_shape) over its trailing normalized_shape dims,
    then ``* weight + bias`` (each of shape normalized_shape)."""
    what = "layer_norm"
    x = V.data_of(what, "input", input)
    w = V.optional_data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    shape = _shape_arg(normalized_shape, what)
    eps = _check_eps(eps, what)
    V.float_image(what, x)
    V.same_float_dtype(what, input=x, weight=w, bias=b)
    k = len(shape)
    if x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise ValueError(
            f"{what}: input shape {x.shape} does not end with normalized_shape {shape}"
        )
    for name, arr in (("weight", w), ("bias", b)):
        if arr is not None and arr.shape != shape:
            raise ValueError(
                f"{what}: {name} shape {arr.shape} does not match normalized_shape {shape}"
            )
    axes = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    return _affine_record(input, weight, bias, x, w, b, axes, lead, eps, lambda a: a)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise input (N, C, *) over each group of C / num_groups channels (and all
    spatial positions), then ``* weight + bias`` per channel (each of shape (C,))."""
    what = "group_norm"
    x = V.data_of(what, "input", input)
    w = V.optional_data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    eps = _check_eps(eps, what)
    V.float_image(what, x)
    V.same_float_dtype(what, input=x, weight=w, bias=b)
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"{what}: num_groups must be an int, got {num_groups!r}")
    if x.ndim < 2:
        raise ValueError(f"{what}: expected an input of shape (N, C, *), got shape {x.shape}")
    c = x.shape[1]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{what}: num_groups={num_groups} must be positive and divide the {c} channels "
            f"(input shape {x.shape})"
        )
    for name, arr in (("weight", w), ("bias", b)):
        if arr is not None and arr.shape != (c,):
            raise ValueError(f"{what}: {name} shape {arr.shape} does not match ({c},)")
    n = x.shape[0]
    if n * (c // num_groups) * int(np.prod(x.shape[2:])) == 1:  # as PyTorch checks it
        raise ValueError(f"{what}: expected more than 1 value per group, got input shape {x.shape}")
    grouped = (n, int(num_groups), -1)
    channel = (1, c) + (1,) * (x.ndim - 2)

    def grouped_view(a: np.ndarray) -> np.ndarray:
        return a.reshape(grouped)

    return _affine_record(
        input,
        weight,
        bias,
        x,
        None if w is None else w.reshape(channel),
        None if b is None else b.reshape(channel),
        (2,),
        (0,) + tuple(range(2, x.ndim)),
        eps,
        grouped_view,
    )


def _affine_record(input, weight, bias, x, w, b, axes, param_axes, eps, view):
    """Record ``normalise(view(x)) * w + b``; the affine arrays broadcast against x.

    ``axes`` are the normalised axes of view(x); ``param_axes`` the axes of x summed
    for the weight and bias gradients."""
    if x.size == 0:
        out = np.zeros(x.shape, x.dtype)
        xhat = rstd = out
    else:
        xhat_v, rstd = _normalise(view(x), axes, eps)
        xhat = xhat_v.reshape(x.shape)
        out = xhat * w if w is not None else xhat.copy()
        if b is not None:
            out += b
    inputs = (input,) + tuple(t for t in (weight, bias) if t is not None)

    def backward(g):
        gx = gw = gb = None
        if input.requires_grad:
            gy = g * w if w is not None else g
            if x.size:
                gx = _normalise_backward(view(gy), xhat_v, rstd, axes).reshape(x.shape)
            else:
                gx = np.zeros(x.shape, g.dtype)
        if weight is not None and weight.requires_grad:
            gw = (g * xhat).sum(axis=param_axes).reshape(weight.shape)
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=param_axes).reshape(bias.shape)
        grads = (gx,)
        if weight is not None:
            grads += (gw,)
        if bias is not None:
            grads += (gb,)
        return grads

    return record(out, inputs, backward)


def _shape_arg(normalized_shape, what: str) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        shape = (int(normalized_shape),)
    elif isinstance(normalized_shape, (tuple, list)):
        shape = tuple(normalized_shape)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape):
            raise TypeError(f"{what}: normalized_shape must contain ints, got {normalized_shape!r}")
        shape = tuple(int(v) for v in shape)
    else:
        raise TypeError(
            f"{what}: normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        )
    if any(v < 1 for v in shape):
        raise ValueError(f"{what}: normalized_shape must be positive, got {shape}")
    return shape


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps) (unit vectors along ``dim``)."""
    what = "normalize"
    x = V.data_of(what, "input", input)
    V.float_image(what, x)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: p must be a number, got {type(p).__name__}")
    if not 0 < p < np.inf:
        raise ValueError(f"{what}: p must be a positive finite number, got {p}")
    eps = _check_eps(eps, what)
    axis = V.dim_index(dim, x.ndim, what)
    p = float(p)
    a = np.abs(x)
    norm = np.sum(a**p, axis=axis, keepdims=True) ** (1 / p)
    denom = np.maximum(norm, eps).astype(x.dtype, copy=False)
    out = x / denom

    def backward(g):
        gx = g / denom
        # where the norm is above eps it depends on x: d||x||/dx = sign(x)|x|^(p-1)/||x||^(p-1)
        live = norm > eps
        safe = np.where(live, norm, 1)
        dnorm = np.sign(x) * a ** (p - 1) / safe ** (p - 1)
        s = np.sum(g * x, axis=axis, keepdims=True) / (denom * denom)
        return (gx - np.where(live, s * dnorm, 0).astype(g.dtype, copy=False),)

    return record(out, (input,), backward)
