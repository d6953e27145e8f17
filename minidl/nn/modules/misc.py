"""Shape and regularisation layers: Identity, Flatten, Unflatten, Dropout, Dropout2d."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn.modules.module import Module
from minidl.ops import _validation as V


class Flatten(Module):
    """Flatten dims start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (any constructor arguments are ignored, as PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``: (N, 12) -> (N, 3, 4) for dim=1, (3, 4)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Unflatten: dim must be an int, got {dim!r}")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in unflattened_size
        ):
            raise TypeError(
                f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}"
            )
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.shape
        axis = V.dim_index(self.dim, len(shape), "Unflatten")
        sizes = self.unflattened_size
        known = int(np.prod([v for v in sizes if v != -1]))
        free = sizes.count(-1)
        if (
            free > 1
            or (free == 0 and known != shape[axis])
            or (free and (known == 0 or shape[axis] % known))
        ):
            raise ValueError(
                f"Unflatten: unflattened_size {sizes} does not multiply to the size "
                f"{shape[axis]} of dim {self.dim} (input shape {tuple(shape)})"
            )
        return input.reshape(shape[:axis] + sizes + shape[axis + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) with probability p in training mode."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training)


class Dropout(_DropoutNd):
    """Zero each element with probability p in training mode (scaling the rest by 1/(1-p))."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)
