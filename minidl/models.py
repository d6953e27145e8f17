"""LeNet-style networks: conv-pool-relu, conv-pool-relu, flatten, MLP (seed 004), and a
small MobileNet (MobileNetDigits).

Pooling comes before the ReLU: max and relu are both monotone, so max_pool(relu(x)) ==
relu(max_pool(x)) exactly (and the gradients agree), and this order does a quarter of
the ReLU work. The conv layers keep the Sequential indices 0 and 3 either way.

``LeNet()`` is the model ``minidl train`` trains on the 8x8 digits; ``LeNet(input_size=28)``
is the classic LeNet-5 layout for 1x28x28 images (MNIST-sized). Any other size, square or
``(H, W)``, gets 3x3 same-size convolutions and 2x2 pools (1 along a side already down to
1 pixel), so even 1x2 inputs (scikit-learn's estimator checks) have a network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minidl import nn
from minidl.autograd import Tensor

_LAYOUTS: dict[int, tuple[int, int, int]] = {
    # input_size: (kernel, padding, spatial size after the two 2x2 pools)
    8: (3, 1, 2),  # 8 -> conv 8 -> pool 4 -> conv 4 -> pool 2
    28: (5, 2, 5),  # 28 -> conv 28 -> pool 14 -> conv(pad 0) 10 -> pool 5
}
_DEFAULT_WIDTHS: dict[int, tuple[int, ...]] = {8: (32, 64, 128), 28: (6, 16, 120, 84)}
_GENERIC_WIDTHS = (6, 16, 120, 84)  # LeNet-5's


def _size_pair(input_size: int | Sequence[int]) -> tuple[int, int]:
    """``input_size`` as (H, W): an int for a square or a pair, each >= 1."""
    pair = input_size if isinstance(input_size, (tuple, list)) else (input_size, input_size)
    if len(pair) != 2 or any(
        isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in pair
    ):
        raise ValueError(f"LeNet: input_size must be an int >= 1 or (H, W), got {input_size!r}")
    return int(pair[0]), int(pair[1])


class LeNet(nn.Module):
    """(N, in_channels, H, W) images -> (N, num_classes) logits; input_size = H = W or (H, W).

    ``widths``: channels of the two conv layers then the hidden sizes of the MLP.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int | Sequence[int] = 8,
        widths: Sequence[int] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        height, width = _size_pair(input_size)
        if height == width and height in _LAYOUTS:
            kernel, padding, final = _LAYOUTS[height]
            pools = (2, 2)
            final_h = final_w = final
            second_padding = padding if height == 8 else 0
            default_widths = _DEFAULT_WIDTHS[height]
        else:
            kernel, padding, second_padding = 3, 1, 1  # both convolutions keep the size
            pools, final_h, final_w = [], height, width
            for _ in range(2):
                pool = (min(2, final_h), min(2, final_w))
                pools.append(pool)
                final_h, final_w = final_h // pool[0], final_w // pool[1]
            default_widths = _GENERIC_WIDTHS
        widths = tuple(default_widths if widths is None else widths)
        if len(widths) < 2:
            raise ValueError(f"widths needs two conv widths then hidden sizes, got {widths!r}")
        c1, c2, hidden = widths[0], widths[1], widths[2:]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel, padding=padding),
            nn.MaxPool2d(pools[0]),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel, padding=second_padding),
            nn.MaxPool2d(pools[1]),
            nn.ReLU(),
        )
        layers: list[nn.Module] = [nn.Flatten()]
        size = c2 * final_h * final_w
        for h in hidden:
            layers += [nn.Linear(size, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            size = h
        layers.append(nn.Linear(size, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class InvariantLeNet(nn.Module):
    """(N, in_channels, S, S) images (S even, e.g. the 8x8 digits) -> (N, num_classes)
    logits that do not change when the input is rotated by 90, 180 or 270 degrees
    (``transforms="rot4"``; "dihedral8" adds the reflections, "flip2" is the mirror alone).

    conv1 is a TransformConv2d(reduce=None): T maps per filter, branch t holding the
    filters under transform t. Rotating the input rotates every map and moves branch t to
    t + 1. conv2 continues each branch with its own transform of the second filter (the
    branches folded into the batch, the matching transform of conv2's output kept), which
    keeps that property; ReLU and 2x2 max pooling commute with quarter turns. Global
    average pooling then removes the rotation of the maps and the max over the branches
    removes the shift, so the logits are invariant. (Equivalently: one CNN applied to the
    input under every transform, the maximum over transforms taken at the end.)
    ``widths``: the two conv widths, then the hidden size of the classifier.
    """

    def __init__(
        self, num_classes=10, in_channels=1, widths=(16, 32, 64), transforms="rot4"
    ) -> None:
        super().__init__()
        if transforms not in ("rot4", "flip2", "dihedral8"):
            raise ValueError(
                f"InvariantLeNet: transforms must be 'rot4', 'flip2' or 'dihedral8' (a group), "
                f"got {transforms!r}"
            )
        c1, c2, hidden = widths
        self.conv1 = nn.TransformConv2d(in_channels, c1, 3, transforms, padding=1, reduce=None)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.TransformConv2d(c1, c2, 3, transforms, padding=1, reduce=None)
        # He init: with PyTorch's default the globally pooled features start out nearly
        # equal for every digit and the loss sits at log(10) for the first epochs
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        self.classifier = nn.Sequential(
            nn.Linear(c2, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        t = self.conv1.num_transforms
        h = self.pool(self.conv1(x)).relu()  # (N, C1 * T, S/2, S/2), channel c * T + t
        n, ct, hh, ww = h.shape
        branches = h.reshape(n, ct // t, t, hh, ww).permute(0, 2, 1, 3, 4)
        u = self.conv2(branches.reshape(n * t, ct // t, hh, ww)).relu()
        pooled = u.mean((2, 3)).reshape(n, t, -1, t)  # (N, branch, C2, transform)
        matching = np.arange(t)
        features = pooled[:, matching, :, matching].max(0).values  # (N, C2)
        return self.classifier(features)


class MobileNetDigits(nn.Module):
    """A small MobileNet (seed 004) for (N, in_channels, 8, 8) digits -> (N, num_classes).

    A 3x3 conv stem, then depth-wise separable blocks (``DepthwiseSeparableConv2d``,
    BatchNorm2d, ReLU6) whose second and fourth halve the planes (8 -> 4 -> 2), global
    average pooling (``AdaptiveAvgPool2d(1)``) and one linear layer. ``widths``: the stem's
    channels, then each block's output channels; blocks 2 and 4 have stride 2. The convs
    have no bias (the batch norm after each has one).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 128, 256),
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2:
            raise ValueError(f"MobileNetDigits: widths needs a stem and a block, got {widths!r}")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU6(),
        ]
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
            stride = 2 if i % 2 == 1 else 1
            layers += [
                nn.DepthwiseSeparableConv2d(c_in, c_out, 3, stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU6(),
            ]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)))
