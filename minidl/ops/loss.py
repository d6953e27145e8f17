"""Losses, each with its backward next to its forward."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidl import _kernels as K
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V
from minidl.ops.activation import _log_softmax

# ---- losses -------------------------------------------------------------------------
_KERNEL_DTYPES = (np.float32, np.float64)
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


def cross_entropy(
    input: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | np.ndarray | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) (or (C,), or (N, C, d1, ...))
    against integer class indices ``target`` (N,) (or (), or (N, d1, ...)), or against
    class probabilities ``target`` of the input's shape.

    weight: (C,) per-class weights. ignore_index: class-index targets equal to it add
    nothing. label_smoothing: in [0, 1], mixes the target with the uniform distribution.
    reduction: "mean", "sum" or "none" (shape of ``target`` without the class dim). With
    class indices, "mean" divides by the summed weight of the targets not ignored (their
    count without ``weight``); with probabilities, by the number of positions.
    """
    xd = V.data_of("cross_entropy", "input", input)
    if getattr(getattr(target, "dtype", None), "kind", None) == "f":  # class probabilities
        return _cross_entropy_probs(
            input, xd, target, weight, ignore_index, reduction, label_smoothing
        )
    ignore = _ignore_index("cross_entropy", ignore_index)
    # (N, C) logits: the kernel checks the targets' range (their numpy check, cold inside
    # a training step, took longer than the loss)
    rows = xd.ndim == 2 and xd.dtype in _KERNEL_DTYPES and weight is None and not label_smoothing
    td, ignored = V.class_targets(target, xd, "cross_entropy", ignore, check_range=not rows)
    V.reduction(reduction, "cross_entropy")
    if rows and td.size and ignored is None:
        out = _cross_entropy_rows(input, xd, td, reduction)
        if out is not None:
            return out
        td, ignored = V.class_targets(target, xd, "cross_entropy", ignore)  # ignored, or raise
    if weight is not None or label_smoothing or ignored is not None:
        return _class_loss(
            "cross_entropy", input, xd, td, ignored, weight, reduction, label_smoothing, True
        )
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
        if reduction == "mean" and count:  # an empty batch has nothing to scale
            g = g / count
        return (np.multiply(gx, g, out=gx),)

    return record(np.asarray(out, dtype=xd.dtype), (input,), backward)


def mse_loss(input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of (input - target)**2; shapes must match."""
    xd = V.data_of("mse_loss", "input", input)
    target, td = _float_target("mse_loss", target, xd)
    V.reduction(reduction, "mse_loss")
    diff = xd - td
    sq = diff * diff
    if reduction == "none":
        out, scale = sq, None
    elif reduction == "sum":
        out, scale = sq.sum(), 1
    else:
        out, scale = _reduced(sq, "mean", sq.size), 1 / max(diff.size, 1)  # nan if empty

    def backward(g):
        gx = 2 * diff * (g if scale is None else g * scale)
        return (gx if input.requires_grad else None, -gx if target.requires_grad else None)

    return record(np.asarray(out, dtype=xd.dtype), (input, target), backward)


# ---- arguments shared by the losses below -------------------------------------------------
def _float_target(what, target, xd):
    """``target`` as a Tensor (arrays and numbers are wrapped; ndarrays keep their dtype)
    with the input's float dtype and shape, and its ndarray."""
    if not isinstance(target, Tensor):
        data = None
        if target is not None and not isinstance(target, (str, bytes)):
            try:
                data = target if isinstance(target, np.ndarray) else np.asarray(target, xd.dtype)
            except (TypeError, ValueError):
                data = None
        if data is None:
            raise TypeError(
                f"{what}: argument 'target' must be a minidl.Tensor or an array, "
                f"not {type(target).__name__}"
            )
        target = Tensor(data)
    td = target.data
    V.same_float_dtype(what, input=xd, target=td)
    if xd.shape != td.shape:
        raise ValueError(f"{what}: input shape {xd.shape} and target shape {td.shape} differ")
    return target, td


def _operands(what, input, target, reduction):
    """(input ndarray, target Tensor, target ndarray) of an elementwise loss, all checked."""
    xd = V.data_of(what, "input", input)
    target, td = _float_target(what, target, xd)
    V.reduction(reduction, what)
    return xd, target, td


def _constant(what, name, value, xd):
    """A weight argument (a Tensor without gradient, or an ndarray) as an ndarray of the
    input's dtype, or None."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise ValueError(
                f"{what}: no gradient flows to {name}; pass it without requires_grad "
                f"(e.g. {name}.detach())"
            )
        value = value.data
    elif not isinstance(value, np.ndarray):
        hint = (
            " (reduction and the options after it are keyword-only)"
            if isinstance(value, str)
            else ""
        )
        raise TypeError(
            f"{what}: argument '{name}' must be a minidl.Tensor or None, "
            f"not {type(value).__name__}{hint}"
        )
    V.same_float_dtype(what, input=xd, **{name: value})
    return value


def _broadcast_constant(what, name, value, xd):
    """_constant, also required to broadcast to the input's shape."""
    value = _constant(what, name, value, xd)
    if value is not None:
        try:
            ok = np.broadcast_shapes(value.shape, xd.shape) == xd.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{what}: {name} shape {value.shape} does not broadcast to the input "
                f"shape {xd.shape}"
            )
    return value


def _number(what, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: {name} must be a number, got {type(value).__name__}")
    return float(value)


def _ignore_index(what, value):
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what}: ignore_index must be an int, got {value!r}")
    return int(value)


def _label_smoothing(value):
    value = _number("cross_entropy", "label_smoothing", value)
    if not 0 <= value <= 1:  # also rejects NaN
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {value}")
    return value


def _class_weight(what, weight, xd, axis):
    wd = _constant(what, "weight", weight, xd)
    if wd is not None and wd.shape != (xd.shape[axis],):
        raise ValueError(
            f"{what}: weight shape {wd.shape} does not match the {xd.shape[axis]} classes "
            f"of input shape {xd.shape} (expected ({xd.shape[axis]},))"
        )
    return wd


def _along(values, axis, ndim):
    """(C,) values shaped to broadcast along the class axis of an ndim-dimensional input."""
    shape = [1] * ndim
    shape[axis] = values.shape[0]
    return values.reshape(shape)


# ---- reductions -----------------------------------------------------------------------------
def _reduced(per, reduction, divisor):
    """The loss of the per-position losses ``per``: 'mean' divides the sum by ``divisor``
    (nan when it is 0, as in PyTorch)."""
    if reduction == "none":
        return per
    total = np.add.reduce(per, axis=None)
    if reduction == "sum":
        return total
    return total / divisor if divisor else np.asarray(np.nan, per.dtype)


def _spread(g, reduction, divisor):
    """The gradient of each position's loss given the gradient ``g`` of the output."""
    if reduction == "mean":
        return g / divisor if divisor else np.zeros_like(g)
    return g


def _pointwise(input, target, per, reduction, local, divisor=None):
    """Record elementwise losses ``per`` (shape of input and target).

    local(need_input, need_target) -> (d per / d input, d per / d target), None where not
    needed. 'mean' divides by ``divisor`` (default: the number of elements).
    """
    if divisor is None:
        divisor = per.size
    out = _reduced(per, reduction, divisor)

    def backward(g):
        g = _spread(g, reduction, divisor)
        dx, dt = local(input.requires_grad, target.requires_grad)
        return (None if dx is None else dx * g, None if dt is None else dt * g)

    return record(np.asarray(out, dtype=per.dtype), (input, target), backward)


# ---- class losses: cross_entropy's general path and nll_loss --------------------------------
def _class_loss(what, input, xd, td, ignored, weight, reduction, smoothing, from_logits):
    """Weighted, smoothed negative log-likelihood of class indices ``td``.

    Each position's loss is -sum_c P_c * logp_c, with P = (1 - smoothing) * w[t] * onehot(t)
    + smoothing / C * w (zero where ignored), logp = log_softmax(input) when
    ``from_logits`` else the input; 'mean' divides by the sum of w[t] over the targets
    not ignored.
    """
    smoothing = _label_smoothing(smoothing) if smoothing else 0.0
    axis = 0 if xd.ndim == 1 else 1
    n_classes = xd.shape[axis]
    wd = _class_weight(what, weight, xd, axis)
    safe = td if ignored is None else np.where(ignored, 0, td)
    index = np.expand_dims(safe, axis)
    picked_w = np.ones(td.shape, xd.dtype) if wd is None else np.asarray(wd[safe])
    if ignored is not None:
        picked_w[ignored] = 0
    divisor = np.add.reduce(picked_w, axis=None) if reduction == "mean" else None
    logp = _log_softmax(xd, axis) if from_logits else xd
    picked = np.take_along_axis(logp, index, axis).reshape(td.shape)
    per = np.asarray(-(1 - smoothing) * picked_w * picked)  # an array even when 0-d
    if smoothing:
        weighted = logp if wd is None else logp * _along(wd, axis, xd.ndim)
        per -= (smoothing / n_classes) * np.add.reduce(weighted, axis=axis)
    if ignored is not None:
        per[ignored] = 0  # also where an ignored position's log-probability is -inf
    out = _reduced(per, reduction, divisor)

    def backward(g):
        coef = np.zeros_like(xd)
        np.put_along_axis(coef, index, np.expand_dims((1 - smoothing) * picked_w, axis), axis)
        if smoothing:
            uniform = np.full(n_classes, smoothing / n_classes, xd.dtype)
            if wd is not None:
                uniform *= wd
            uniform = _along(uniform, axis, xd.ndim)
            coef += uniform if ignored is None else uniform * np.expand_dims(~ignored, axis)
        if from_logits:  # d(-log_softmax)/dx: softmax * sum(P) - P
            gx = np.exp(logp) * np.add.reduce(coef, axis=axis, keepdims=True) - coef
        else:
            gx = np.negative(coef, out=coef)
        g = _spread(g, reduction, divisor)
        return (gx * (np.expand_dims(g, axis) if reduction == "none" else g),)

    return record(np.asarray(out, dtype=xd.dtype), (input,), backward)


def _cross_entropy_rows(
    input: Tensor, xd: np.ndarray, td: np.ndarray, reduction: str
) -> Tensor | None:
    """cross_entropy of (N, C) logits against N >= 1 class indices in one kernel call each
    way (minidl._kernels._loss), the numpy path's operations row by row; None if a target
    lies outside 0..C-1."""
    xd = np.ascontiguousarray(xd)
    result = K.cross_entropy_forward(xd, td)
    if result is None:
        return None
    loss, stats, total = result
    count = td.size
    if reduction == "none":
        out = loss
    else:
        out = np.asarray(total / count if reduction == "mean" else total, dtype=xd.dtype)

    def backward(g):
        g = np.asarray(g, dtype=xd.dtype)
        if reduction == "mean":
            g = g / count
        scale = np.ascontiguousarray(g.reshape(-1), dtype=xd.dtype)
        return (K.cross_entropy_backward(xd, td, stats, scale),)

    return record(out, (input,), backward)


def _cross_entropy_probs(input, xd, target, weight, ignore_index, reduction, smoothing):
    """cross_entropy against class probabilities ``target`` of the input's shape."""
    what = "cross_entropy"
    shape = tuple(getattr(target, "shape", ()))
    if shape != xd.shape:
        raise TypeError(
            f"{what}: target must hold integer class indices, or class probabilities of the "
            f"input's shape {xd.shape}; got a {target.dtype} target of shape {shape}"
        )
    if xd.ndim == 0 or xd.shape[0 if xd.ndim == 1 else 1] == 0:
        raise ValueError(f"{what}: input must have shape (N, C) or (C,) with C >= 1, got {shape}")
    if _ignore_index(what, ignore_index) >= 0:
        raise ValueError(f"{what}: ignore_index is not supported for class-probability targets")
    target, td = _float_target(what, target, xd)
    V.reduction(reduction, what)
    smoothing = _label_smoothing(smoothing)
    axis = 0 if xd.ndim == 1 else 1
    n_classes = xd.shape[axis]
    wd = _class_weight(what, weight, xd, axis)
    logp = _log_softmax(xd, axis)
    soft = td if not smoothing else td * (1 - smoothing) + smoothing / n_classes
    coef = soft if wd is None else soft * _along(wd, axis, xd.ndim)
    per = -np.add.reduce(coef * logp, axis=axis)
    divisor = xd.size // n_classes
    out = _reduced(per, reduction, divisor)

    def backward(g):
        g = _spread(g, reduction, divisor)
        if reduction == "none":
            g = np.expand_dims(g, axis)
        gx = gt = None
        if input.requires_grad:
            gx = (np.exp(logp) * np.add.reduce(coef, axis=axis, keepdims=True) - coef) * g
        if target.requires_grad:
            gt = -(1 - smoothing) * logp * g
            if wd is not None:
                gt *= _along(wd, axis, xd.ndim)
        return (gx, gt)

    return record(np.asarray(out, dtype=xd.dtype), (input, target), backward)


def nll_loss(
    input: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | np.ndarray | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) (or (C,), or
    (N, C, d1, ...)) at integer class indices ``target`` (N,) (or (), or (N, d1, ...)).

    weight, ignore_index and reduction as in :func:`cross_entropy`, whose class-index
    form is ``nll_loss(log_softmax(input, 1), target)``.
    """
    xd = V.data_of("nll_loss", "input", input)
    td, ignored = V.class_targets(target, xd, "nll_loss", _ignore_index("nll_loss", ignore_index))
    V.reduction(reduction, "nll_loss")
    return _class_loss("nll_loss", input, xd, td, ignored, weight, reduction, 0.0, False)


# ---- elementwise losses ---------------------------------------------------------------------
def l1_loss(input: Tensor, target: Tensor | ArrayLike, *, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced; input and target of the same shape."""
    xd, target, td = _operands("l1_loss", input, target, reduction)
    diff = xd - td

    def local(need_x, need_t):
        sign = np.sign(diff)  # 0 where input == target, as in PyTorch
        return sign, (-sign if need_t else None)

    return _pointwise(input, target, np.abs(diff), reduction, local)


def smooth_l1_loss(
    input: Tensor, target: Tensor | ArrayLike, *, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """0.5 * d**2 / beta where |d| < beta, |d| - 0.5 * beta elsewhere (d = input - target);
    beta = 0 gives l1_loss."""
    xd, target, td = _operands("smooth_l1_loss", input, target, reduction)
    beta = _number("smooth_l1_loss", "beta", beta)
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    diff = xd - td
    size = np.abs(diff)
    inside = size < beta
    per = np.where(inside, (0.5 / beta if beta else 0) * diff * diff, size - 0.5 * beta)

    def local(need_x, need_t):
        dx = np.where(inside, diff / beta if beta else 0, np.sign(diff))
        return dx, (-dx if need_t else None)

    return _pointwise(input, target, per.astype(xd.dtype, copy=False), reduction, local)


def huber_loss(
    input: Tensor, target: Tensor | ArrayLike, reduction: str = "mean", delta: float = 1.0
) -> Tensor:
    """0.5 * d**2 where |d| < delta, delta * (|d| - 0.5 * delta) elsewhere (d = input -
    target): smooth_l1_loss with beta = delta, scaled by delta."""
    xd, target, td = _operands("huber_loss", input, target, reduction)
    delta = _number("huber_loss", "delta", delta)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    diff = xd - td
    size = np.abs(diff)
    inside = size < delta
    per = np.where(inside, 0.5 * diff * diff, delta * (size - 0.5 * delta))

    def local(need_x, need_t):
        dx = np.where(inside, diff, delta * np.sign(diff))
        return dx, (-dx if need_t else None)

    return _pointwise(input, target, per.astype(xd.dtype, copy=False), reduction, local)


def _in_unit_interval(what, name, data):
    if not np.all((data >= 0) & (data <= 1)):  # also rejects NaN
        raise ValueError(f"{what}: all elements of {name} must be between 0 and 1")


def binary_cross_entropy(
    input: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | np.ndarray | None = None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """-weight * (t * log(x) + (1 - t) * log(1 - x)) of probabilities ``input`` x and
    targets t in [0, 1] of the same shape; each log is clamped at -100, as in PyTorch.

    weight: broadcasts to the input's shape.
    """
    what = "binary_cross_entropy"
    xd, target, td = _operands(what, input, target, reduction)
    wd = _broadcast_constant(what, "weight", weight, xd)
    _in_unit_interval(what, "input", xd)
    _in_unit_interval(what, "target", td)
    with np.errstate(divide="ignore"):
        log_x, log_1mx = np.log(xd), np.log1p(-xd)
    per = -(td * np.maximum(log_x, -100) + (1 - td) * np.maximum(log_1mx, -100))
    if wd is not None:
        per *= wd

    def local(need_x, need_t):
        dx = dt = None
        if need_x:
            dx = (xd - td) / np.maximum(xd * (1 - xd), xd.dtype.type(1e-12))
        if need_t:
            dt = log_1mx - log_x
        if wd is not None:
            dx = None if dx is None else dx * wd
            dt = None if dt is None else dt * wd
        return dx, dt

    return _pointwise(input, target, per, reduction, local)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor | ArrayLike,
    weight: Tensor | np.ndarray | None = None,
    *,
    reduction: str = "mean",
    pos_weight: Tensor | np.ndarray | None = None,
) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target), computed from the logits without
    overflow: (1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)), times weight.

    weight and pos_weight (one entry per class, the last dim) broadcast to the input.
    """
    what = "binary_cross_entropy_with_logits"
    xd, target, td = _operands(what, input, target, reduction)
    wd = _broadcast_constant(what, "weight", weight, xd)
    pw = _broadcast_constant(what, "pos_weight", pos_weight, xd)
    softplus = np.logaddexp(0, -xd)  # -log(sigmoid(x)), finite for any x
    scale = 1 if pw is None else 1 + (pw - 1) * td
    per = (1 - td) * xd + scale * softplus
    if wd is not None:
        per *= wd

    def local(need_x, need_t):
        dx = dt = None
        if need_x:
            dx = (1 - td) - scale * np.exp(-np.logaddexp(0, xd))  # ... * sigmoid(-x)
        if need_t:
            dt = -xd if pw is None else (pw - 1) * softplus - xd
        if wd is not None:
            dx = None if dx is None else dx * wd
            dt = None if dt is None else dt * wd
        return dx, dt

    return _pointwise(input, target, per, reduction, local)


_KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


def kl_div(
    input: Tensor,
    target: Tensor | ArrayLike,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence sum t * (log(t) - x) of log-probabilities ``input`` x
    from probabilities ``target`` t (log-probabilities when ``log_target``), same shape.

    reduction: "mean" (over all elements), "batchmean" (the sum divided by the batch
    size input.shape[0]: the true KL divergence per sample), "sum" or "none".
    """
    what = "kl_div"
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(
            f"{what}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}"
        )
    xd = V.data_of(what, "input", input)
    target, td = _float_target(what, target, xd)
    if not isinstance(log_target, (bool, np.bool_)):
        raise TypeError(f"{what}: log_target must be a bool, got {type(log_target).__name__}")
    if log_target:
        prob = np.exp(td)
        per = prob * (td - xd)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_t = np.log(td)
            per = np.asarray(td * log_t)  # an array even when 0-d
        per[td == 0] = 0  # 0 * log(0) counts as 0
        per -= td * xd
    divisor = None
    if reduction == "batchmean":
        divisor, reduction = (xd.shape[0] if xd.ndim else 1), "mean"

    def local(need_x, need_t):
        dx = dt = None
        if log_target:
            dx = -prob if need_x else None
            dt = prob * (td - xd + 1) if need_t else None
        else:
            dx = -td if need_x else None
            if need_t:
                dt = np.asarray(log_t + 1 - xd)
                dt[td == 0] = np.nan  # PyTorch's gradient there (d/dt of t*log(t) at 0)
        return dx, dt

    return _pointwise(input, target, per, reduction, local, divisor)
