"""LayerNorm and GroupNorm: statistics over each sample's own elements (no running
averages, the same in training and evaluation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn.modules.module import Module
from minidl.nn.parameter import Parameter
from minidl.ops import _validation as V


class _AffineNorm(Module):
    """A normalisation followed by an optional ``* weight + bias`` (ones and zeros)."""

    def _affine_parameters(
        self, affine: bool, bias: bool, shape: tuple[int, ...], dtype: DTypeLike | None
    ) -> None:
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if affine:
            self.weight = Parameter(np.ones(shape, dtype))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data[...] = 1
        if self.bias is not None:
            self.bias.data[...] = 0


class LayerNorm(_AffineNorm):
    """Normalise (*, *normalized_shape) over the trailing normalized_shape dims, then
    ``* weight + bias`` (ones and zeros of shape normalized_shape, when affine)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(
            V.positive_int(v, "normalized_shape", "LayerNorm") for v in normalized_shape
        )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self._affine_parameters(elementwise_affine, bias, self.normalized_shape, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(_AffineNorm):
    """Normalise (N, C, *) over groups of C / num_groups channels, then ``* weight +
    bias`` per channel (ones and zeros of shape (C,), when affine)."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: str | None = None,
        dtype: DTypeLike | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_groups = V.positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = V.positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.eps = eps
        self.affine = affine
        self._affine_parameters(affine, bias, (num_channels,), dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
