"""Depth-wise separable convolution (seed 004, MobileNet): a depth-wise conv, one filter
per input channel, then a point-wise 1x1 conv that mixes the channels."""

from __future__ import annotations

from minidl.autograd import Tensor
from minidl.nn.modules.conv import Conv2d
from minidl.nn.modules.module import Module
from minidl.ops import _validation as V


class DepthwiseSeparableConv2d(Module):
    """(N, in_channels, H, W) -> (N, out_channels, H_out, W_out), H_out as Conv2d's.

    Children ``depthwise`` = ``Conv2d(in_channels, in_channels, kernel_size, stride,
    padding, groups=in_channels)`` and ``pointwise`` = ``Conv2d(in_channels, out_channels,
    1)``, so the ``state_dict`` keys are ``depthwise.weight``, ``depthwise.bias``,
    ``pointwise.weight``, ``pointwise.bias``. Parameters: C*k*k + C*F (+ C + F biases)
    against C*F*k*k (+ F) for a standard Conv2d of the same shape.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        what = type(self).__name__
        self.in_channels = V.positive_int(in_channels, "in_channels", what)
        self.out_channels = V.positive_int(out_channels, "out_channels", what)
        self.depthwise = Conv2d(
            in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, bias=bias
        )
        self.pointwise = Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(input))

    def standard_conv_parameters(self) -> int:
        """Parameters of a standard Conv2d with the same in/out channels, kernel and bias."""
        kh, kw = self.depthwise.kernel_size
        bias = self.out_channels if self.pointwise.bias is not None else 0
        return self.in_channels * self.out_channels * kh * kw + bias
