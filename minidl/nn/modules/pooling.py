"""Pooling layers: MaxPool2d, MinPool2d, AvgPool2d, MaxUnpool2d (stride defaults to kernel_size).

Each keeps PyTorch's attributes and hands all of them to its functional, which accepts
what it supports and rejects the rest with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn.modules.module import Module
from minidl.ops import _validation as V


class MaxPool2d(Module):
    """Max over each window: (N, C, H, W) -> (N, C, H_out, W_out), or unbatched (C, H, W).

    With ``return_indices=True`` the forward also returns the flat h*W + w position of
    each maximum (what MaxUnpool2d takes). ``ceil_mode`` rounds H_out and W_out up.
    Only dilation=1 is supported (F.max_pool2d).
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MinPool2d(Module):
    """Min over each window (seed 000): (N, C, H, W) -> (N, C, H_out, W_out), or unbatched
    (C, H, W); ``-MaxPool2d(-x)`` in value and gradient (F.min_pool2d). PyTorch has no
    MinPool2d: the arguments are MaxPool2d's without dilation and ceil_mode.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        return_indices: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.min_pool2d(input, self.kernel_size, self.stride, self.padding, self.return_indices)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over each window: (N, C, H, W) -> (N, C, H_out, W_out), or unbatched (C, H, W).

    ``count_include_pad=True`` (PyTorch's default) counts the zero padding in the divisor;
    ``ceil_mode`` rounds H_out and W_out up; ``divisor_override`` replaces the divisor.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(Module):
    """The inverse of MaxPool2d(return_indices=True): (N, C, H, W) values and indices ->
    (N, C, H_out, W_out) zeros with each value back at its index."""

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
    ) -> None:
        super().__init__()
        what = "MaxUnpool2d"
        self.kernel_size = V.pair(kernel_size, "kernel_size", what)
        self.stride = V.pair(kernel_size if stride is None else stride, "stride", what)
        self.padding = V.pair(padding, "padding", what)

    def forward(
        self, input: Tensor, indices: Tensor, output_size: Sequence[int] | None = None
    ) -> Tensor:
        return F.max_unpool2d(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
