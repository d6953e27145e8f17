"""Resizing layers: AdaptiveAvgPool2d and Upsample (thin wrappers over functional)."""

import math
from numbers import Real

from minidl.nn import functional as F
from minidl.nn.modules.module import Module
from minidl.ops.resize import adaptive_output_size


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed size: (N, C, H, W) -> (N, C, *output_size).

    output_size: an int or a pair of ints / None (None keeps that input size);
    ``AdaptiveAvgPool2d(1)`` is global average pooling.
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        adaptive_output_size("AdaptiveAvgPool2d", output_size)  # a bad size fails here
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def _float_scale(scale_factor):
    """PyTorch stores scale factors as floats (so the repr says 2.0)."""
    if scale_factor is None:
        return None
    values = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Real) or not (math.isfinite(v) and v > 0):
            raise ValueError(
                f"Upsample: scale_factor must be a positive number or a pair of them, "
                f"got {scale_factor!r}"
            )
    if isinstance(scale_factor, (tuple, list)):
        return tuple(float(v) for v in scale_factor)
    return float(scale_factor)


class Upsample(Module):
    """Resize (N, C, H, W) -> (N, C, Ho, Wo) with ``F.interpolate``: give ``size`` or
    ``scale_factor``; mode 'nearest' (default) or 'bilinear' (with ``align_corners``)."""

    def __init__(
        self,
        size=None,
        scale_factor=None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self.scale_factor = _float_scale(scale_factor)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"
