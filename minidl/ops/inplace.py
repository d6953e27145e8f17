"""In-place updates: ``add_``, ``mul_`` and ``x[index] = value``.

They follow PyTorch's rule: not on a leaf that requires grad unless under ``no_grad``
(where optimisers and initialisers use them); see ``autograd.check_inplace``. They are
not recorded on the tape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minidl.autograd import Tensor, TensorLike, check_inplace
from minidl.ops.math import _plain_index


def _operand(other: TensorLike, what: str) -> Any:
    if isinstance(other, Tensor):
        return other.data
    if isinstance(other, (np.ndarray, np.generic, int, float, bool)):
        return other
    raise TypeError(f"{what}: other must be a Tensor or a number, got {type(other).__name__}")


def _update(x: Tensor, ufunc: np.ufunc, other: Any, what: str) -> Tensor:
    xd = x.data
    try:
        ufunc(xd, other, out=xd, casting="same_kind")
    except TypeError as err:  # numpy's casting error (float into an int tensor)
        raise TypeError(
            f"{what}: result type {np.result_type(xd, other)} can't be cast to the "
            f"tensor's dtype {xd.dtype}"
        ) from err
    except ValueError as err:
        raise ValueError(
            f"{what}: other of shape {np.shape(other)} does not broadcast to the tensor's "
            f"shape {xd.shape}"
        ) from err
    return x


def add_(x: Tensor, other: TensorLike, *, alpha: float = 1) -> Tensor:
    """x += alpha * other, in place; returns x."""
    check_inplace(x, "add_")
    o = _operand(other, "add_")
    if alpha != 1:
        o = np.multiply(o, alpha)
    return _update(x, np.add, o, "add_")


def mul_(x: Tensor, other: TensorLike) -> Tensor:
    """x *= other, in place; returns x."""
    check_inplace(x, "mul_")
    return _update(x, np.multiply, _operand(other, "mul_"), "mul_")


def setitem(x: Tensor, index: Any, value: TensorLike) -> None:
    """x[index] = value with numpy's indexing rules."""
    check_inplace(x, "__setitem__")
    index, _ = _plain_index(index)
    x.data[index] = _operand(value, "__setitem__")
