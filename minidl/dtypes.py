"""The dtype objects ``minidl.float32``, ``float64``, ``int64``, ``int32``, ``bool``.

They are numpy dtypes, so they work wherever numpy takes a dtype and compare equal to a
tensor's ``.dtype``; ``double`` and ``long`` are PyTorch's other names for two of them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
double = float64
int64 = np.dtype(np.int64)
long = int64
int32 = np.dtype(np.int32)
bool = np.dtype(np.bool_)  # noqa: A001 - PyTorch's name

__all__ = ["as_dtype", "bool", "double", "float32", "float64", "int32", "int64", "long"]


def as_dtype(dtype: DTypeLike, what: str) -> np.dtype:
    """``dtype`` (a minidl/numpy dtype, type or name) as a numpy dtype minidl supports:
    float32, float64, a signed or unsigned integer type, or bool; a TypeError otherwise."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dtype is None or dt.kind not in "biuf" or dt == np.float16:
        raise TypeError(
            f"{what}: dtype must be minidl.float32, float64, int64, int32 or bool "
            f"(or another numpy integer dtype), got {dtype!r}"
        )
    return dt
