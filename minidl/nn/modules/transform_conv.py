"""TransformConv2d: one filter bank applied under rotations / reflections (seed 004)."""

from minidl.nn import functional as F
from minidl.nn.modules.conv import _ConvNd
from minidl.ops.transform_conv import transform_names


class TransformConv2d(_ConvNd):
    """Cross-correlation under a set of T filter transforms, sharing one weight.

    (N, C_in, H, W) -> (N, C_out, Ho, Wo) with reduce="max" (the maximum over each
    filter's transformed maps), or (N, C_out * T, Ho, Wo) with reduce=None (channel
    c * T + t is filter c under transform t). ``transforms``: "rot4" (rotations by 0, 90,
    180, 270 degrees counter-clockwise, as np.rot90), "flip2" (identity and the left-right
    reflection), "dihedral8" (all eight) or a tuple of the names "id", "rot90", "rot180",
    "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270" (flip_rotK = rotate by K,
    then flip). weight (C_out, C_in, k, k) and bias (C_out,), as a Conv2d.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        transforms="rot4",
        stride=1,
        padding=0,
        bias: bool = True,
        reduce: str | None = "max",
        dtype=None,
    ) -> None:
        names = transform_names(transforms, "TransformConv2d")
        if reduce not in ("max", None):
            raise ValueError(f"TransformConv2d: reduce must be 'max' or None, got {reduce!r}")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, 1, 1, bias, dtype=dtype
        )
        if self.kernel_size[0] != self.kernel_size[1]:
            raise ValueError(f"TransformConv2d: kernel_size must be square, got {self.kernel_size}")
        self.num_transforms = len(names)
        self.transforms = transforms if isinstance(transforms, str) else tuple(transforms)
        self.reduce = reduce

    def forward(self, input):
        return F.transform_conv2d(
            input,
            self.weight,
            self.bias,
            self.transforms,
            self.stride,
            self.padding,
            self.reduce,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, transforms={self.transforms!r}, reduce={self.reduce!r}"
