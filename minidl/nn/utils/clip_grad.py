"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, in place on ``.grad``
(an ndarray in minidl), as ``torch.nn.utils`` does on its gradients."""

import math
from collections.abc import Iterable

import numpy as np

from minidl.autograd import Tensor
from minidl.nn.utils._params import as_param_list


def _check_number(what: str, name: str, value: object) -> float:
    if isinstance(value, str) and value.lower() in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: {name} must be a number, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{what}: {name} must not be NaN")
    return float(value)


def _vector_norm(x: np.ndarray, ord: float) -> np.ndarray:
    """The ``ord``-norm of all of ``x`` as a 0-d array of ``x``'s dtype (torch's
    ``vector_norm``: inf = max |x|, -inf = min |x|, 0 = the count of non-zeros)."""
    a = np.abs(x.reshape(-1))
    if ord == math.inf:
        out = a.max(initial=0)
    elif ord == -math.inf:
        out = a.min(initial=math.inf)
    elif ord == 0:
        out = np.count_nonzero(a)
    elif ord == 1:
        out = a.sum()
    elif ord == 2:
        out = np.sqrt(np.dot(a, a))
    else:
        out = np.sum(a**ord) ** (1.0 / ord)
    return np.asarray(out, dtype=x.dtype)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total norm (the
    ``norm_type`` norm of all of them together) is at most ``max_norm``.

    Returns the total norm before clipping as a 0-d Tensor. Parameters whose ``.grad`` is
    None are skipped. The scale is ``min(1, max_norm / (total_norm + 1e-6))``, as in PyTorch;
    a non-finite total norm is a RuntimeError when ``error_if_nonfinite``.
    """
    what = "clip_grad_norm_"
    params = as_param_list(what, parameters)
    max_norm = _check_number(what, "max_norm", max_norm)
    if max_norm < 0:
        raise ValueError(f"{what}: max_norm must be >= 0, got {max_norm}")
    norm_type = _check_number(what, "norm_type", norm_type)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    dtype = np.result_type(*grads)
    norms = np.stack([_vector_norm(np.asarray(g), norm_type) for g in grads]).astype(dtype)
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            f"non-finite, so it cannot be clipped. To disable this error and scale the "
            f"gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    # in the gradients' dtype, as torch computes it; NaN stays NaN (np.minimum keeps it)
    coef = np.minimum(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    for p in params:
        if p.grad is not None:
            _scale_in_place(p, coef)
    return Tensor(total)


def _scale_in_place(p: Tensor, coef: np.ndarray) -> None:
    g = p.grad
    if isinstance(g, np.ndarray) and g.flags.writeable:
        g *= coef.astype(g.dtype)
    else:
        p.grad = np.asarray(g) * coef.astype(np.asarray(g).dtype)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient of ``parameters`` into ``[-clip_value, clip_value]``, in place."""
    what = "clip_grad_value_"
    params = as_param_list(what, parameters)
    clip_value = _check_number(what, "clip_value", clip_value)
    if clip_value < 0:
        raise ValueError(f"{what}: clip_value must be >= 0, got {clip_value}")
    for p in params:
        g = p.grad
        if g is None:
            continue
        if isinstance(g, np.ndarray) and g.flags.writeable:
            np.clip(g, -clip_value, clip_value, out=g)
        else:
            p.grad = np.clip(g, -clip_value, clip_value)
