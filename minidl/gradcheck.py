"""Finite-difference check of the tape's gradients: ``minidl.gradcheck(fn, inputs)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import numpy as np

from minidl.autograd import Tensor, enable_grad, is_tensor

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(AssertionError):
    """The tape's gradient and the finite-difference gradient disagree."""


def _output_data(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...]) -> Tensor:
    out = fn(*inputs)
    if not is_tensor(out):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Compare d(sum(fn(*inputs) * v))/d(input) from the tape with central differences.

    inputs: a sequence of Tensors; those with requires_grad must be float64 (others are
    passed through unchanged). v is a fixed random weighting of the output, so every
    element of the Jacobian contributes. Raises GradcheckError (an AssertionError)
    naming the input index and the worst element (index, analytic, numeric) when
    |analytic - numeric| > atol + rtol * |numeric| anywhere; returns True otherwise.
    """
    if is_tensor(inputs):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = []
    for i, t in enumerate(inputs):
        if not is_tensor(t):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, expected a Tensor")
        if t.requires_grad:
            if t.dtype != np.float64:
                raise TypeError(
                    f"gradcheck: input {i} requires grad but has dtype {t.dtype}; finite "
                    f"differences need float64 (use .double() or dtype=np.float64)"
                )
            if not t.is_leaf:
                raise ValueError(
                    f"gradcheck: input {i} is not a leaf (it was computed by an "
                    f"op); pass a leaf tensor, e.g. t.detach().requires_grad_()"
                )
            checked.append(i)
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")

    with enable_grad():
        saved = [inputs[i].grad for i in checked]
        for i in checked:
            inputs[i].grad = None
        out = _output_data(fn, inputs)
        weights = np.random.default_rng(seed).standard_normal(out.shape)
        if out.requires_grad:
            out.backward(weights.astype(out.dtype))
        analytic = [
            inputs[i].grad if inputs[i].grad is not None else np.zeros_like(inputs[i].data)
            for i in checked
        ]
        for i, g in zip(checked, saved):
            inputs[i].grad = g

    def objective() -> float:
        return float(np.sum(np.asarray(_output_data(fn, inputs).data, np.float64) * weights))

    for i, a_grad in zip(checked, analytic):
        x = inputs[i].data
        numeric = np.zeros(x.shape)
        for k in np.ndindex(x.shape):  # perturb in place: fn sees the new value
            orig = x[k]
            x[k] = orig + eps
            plus = objective()
            x[k] = orig - eps
            minus = objective()
            x[k] = orig
            numeric[k] = (plus - minus) / (2 * eps)
        excess = np.abs(a_grad - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(excess <= 0)  # NaN counts as a mismatch
        if bad.any():
            worst = np.unravel_index(
                int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), x.shape
            )
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {x.shape}) is wrong at {int(bad.sum())} "
                f"of {x.size} elements; worst at index {tuple(int(j) for j in worst)}: "
                f"analytic {float(a_grad[worst])!r} vs numeric {float(numeric[worst])!r} "
                f"(atol={atol}, rtol={rtol}, eps={eps})"
            )
    return True
