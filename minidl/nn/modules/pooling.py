"""Pooling layers: MaxPool2d, AvgPool2d (stride defaults to kernel_size)."""

from minidl.nn import functional as F
from minidl.nn.modules.module import Module


class MaxPool2d(Module):
    """Max over each window: (N, C, H, W) -> (N, C, H_out, W_out).

    Only PyTorch's defaults dilation=1, return_indices=False, ceil_mode=False are supported.
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False
    ):
        super().__init__()
        if dilation != 1 or return_indices or ceil_mode:
            raise ValueError(
                "MaxPool2d supports only dilation=1, return_indices=False and ceil_mode=False"
            )
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """Mean over each window: (N, C, H, W) -> (N, C, H_out, W_out).

    ``count_include_pad=True`` (PyTorch's default) divides by the full window size.
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        super().__init__()
        if ceil_mode or divisor_override is not None:
            raise ValueError("AvgPool2d supports only ceil_mode=False and divisor_override=None")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            count_include_pad=self.count_include_pad,
        )

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
