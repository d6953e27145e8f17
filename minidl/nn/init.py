"""Weight initialisation, in place, as ``torch.nn.init``.

Every function fills ``tensor.data`` (a Tensor/Parameter, or an ndarray) in place, draws
from minidl's global generator (``minidl.manual_seed`` makes it repeat) and returns
``tensor``. Numbers are drawn in float64 and cast to the tensor's dtype.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from minidl.autograd import Tensor, is_tensor
from minidl.random import get_generator

_T = TypeVar("_T", Tensor, np.ndarray)  # what is filled is what is returned


def _array(tensor: Tensor | np.ndarray) -> np.ndarray:
    array = tensor.data if is_tensor(tensor) else tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"init expects a Tensor or ndarray, got {type(tensor).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"init only fills floating point tensors, got dtype {array.dtype}")
    return array


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``)."""
    linear = {
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    }
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor | np.ndarray) -> tuple[int, int]:
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field."""
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than "
            f"2 dimensions (shape {shape})"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor | np.ndarray, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: _T, a: float = 0.0, b: float = 1.0) -> _T:
    """Fill with U(a, b)."""
    array = _array(tensor)
    array[...] = get_generator().uniform(a, b, size=array.shape)
    return tensor


def normal_(tensor: _T, mean: float = 0.0, std: float = 1.0) -> _T:
    """Fill with N(mean, std**2)."""
    array = _array(tensor)
    array[...] = get_generator().normal(mean, std, size=array.shape)
    return tensor


def constant_(tensor: _T, val: float) -> _T:
    _array(tensor)[...] = val
    return tensor


def zeros_(tensor: _T) -> _T:
    return constant_(tensor, 0.0)


def ones_(tensor: _T) -> _T:
    return constant_(tensor, 1.0)


def kaiming_uniform_(
    tensor: _T, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> _T:
    """Fill with U(-bound, bound), bound = gain * sqrt(3 / fan) (He et al., 2015)."""
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(
    tensor: _T, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> _T:
    """Fill with N(0, std**2), std = gain / sqrt(fan)."""
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def xavier_uniform_(tensor: _T, gain: float = 1.0) -> _T:
    """Fill with U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: _T, gain: float = 1.0) -> _T:
    """Fill with N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
