"""Depth-wise convolution (conv2d with groups = C) on its own kernel, with its backward.

Every argument is validated (minidl.ops._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.
"""

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V

_contiguous = V.kernel_array


def depthwise_conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1
) -> Tensor:
    """conv2d(input, weight, bias, stride, padding, dilation, groups=C) on the depth-wise
    kernel: input (N, C, H, W), weight (C*m, 1, kh, kw) (m filters per channel; filter f
    reads channel f // m), bias (C*m,) -> (N, C*m, Ho, Wo)."""
    what = "depthwise_conv2d"
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    V.conv_arrays(what, x, w, b)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    if w.shape[1] != 1:
        raise ValueError(f"{what}: weight must have shape (C*multiplier, 1, kh, kw), got {w.shape}")
    V.conv_channels(what, x, w, b, x.shape[1])
    V.conv_output_size(what, x.shape, w.shape[2:], stride, padding, dilation)
    x = _contiguous(x)
    w = _contiguous(w)
    if b is not None:
        b = _contiguous(b)
    out = K.depthwise_conv2d_forward(x, w, b, stride, padding, dilation, get_num_threads())
    inputs = (input, weight) if bias is None else (input, weight, bias)

    def backward(g):
        g = _contiguous(g)
        nt = get_num_threads()
        gx = gw = gb = None
        if input.requires_grad:
            gx = K.depthwise_conv2d_backward_input(g, w, x.shape, stride, padding, dilation, nt)
        need_b = bias is not None and bias.requires_grad
        if weight.requires_grad:
            gw, gb = K.depthwise_conv2d_backward_weight(
                x, g, w.shape, stride, padding, dilation, need_b, nt
            )
        elif need_b:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    return record(out, inputs, backward)
