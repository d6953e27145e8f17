"""Depth-wise convolution: conv2d with groups = C, which conv_plan runs on the depth-wise
kernel (minidl/_kernels/_depthwise.pyx)."""

from minidl.autograd import Tensor
from minidl.ops import _validation as V
from minidl.ops.conv import _conv2d


def depthwise_conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1
) -> Tensor:
    """conv2d(input, weight, bias, stride, padding, dilation, groups=C): input (N, C, H, W),
    weight (C*m, 1, kh, kw) (m filters per channel; filter f reads channel f // m), bias
    (C*m,) -> (N, C*m, Ho, Wo)."""
    what = "depthwise_conv2d"
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    if x.ndim == 4 and w.ndim == 4 and w.shape[1] != 1:
        raise ValueError(f"{what}: weight must have shape (C*multiplier, 1, kh, kw), got {w.shape}")
    groups = x.shape[1] if x.ndim == 4 else 1
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, what)
