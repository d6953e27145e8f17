"""LeNet-style networks: conv-pool-relu, conv-pool-relu, flatten, MLP (seed 004).

Pooling comes before the ReLU: max and relu are both monotone, so max_pool(relu(x)) ==
relu(max_pool(x)) exactly (and the gradients agree), and this order does a quarter of
the ReLU work. The conv layers keep the Sequential indices 0 and 3 either way.

``LeNet()`` is the model ``minidl train`` trains on the 8x8 digits; ``LeNet(input_size=28)``
is the classic LeNet-5 layout for 1x28x28 images (MNIST-sized).
"""

from __future__ import annotations

from collections.abc import Sequence

from minidl import nn
from minidl.autograd import Tensor

_LAYOUTS: dict[int, tuple[int, int, int]] = {
    # input_size: (kernel, padding, spatial size after the two 2x2 pools)
    8: (3, 1, 2),  # 8 -> conv 8 -> pool 4 -> conv 4 -> pool 2
    28: (5, 2, 5),  # 28 -> conv 28 -> pool 14 -> conv(pad 0) 10 -> pool 5
}
_DEFAULT_WIDTHS: dict[int, tuple[int, ...]] = {8: (32, 64, 128), 28: (6, 16, 120, 84)}


class LeNet(nn.Module):
    """(N, in_channels, S, S) images -> (N, num_classes) logits, S = input_size (8 or 28).

    ``widths``: channels of the two conv layers then the hidden sizes of the MLP.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 8,
        widths: Sequence[int] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if input_size not in _LAYOUTS:
            raise ValueError(f"LeNet supports input_size 8 or 28, got {input_size!r}")
        kernel, padding, final = _LAYOUTS[input_size]
        widths = tuple(_DEFAULT_WIDTHS[input_size] if widths is None else widths)
        if len(widths) < 2:
            raise ValueError(f"widths needs two conv widths then hidden sizes, got {widths!r}")
        c1, c2, hidden = widths[0], widths[1], widths[2:]
        second_padding = padding if input_size == 8 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel, padding=padding),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel, padding=second_padding),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        layers: list[nn.Module] = [nn.Flatten()]
        size = c2 * final * final
        for h in hidden:
            layers += [nn.Linear(size, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            size = h
        layers.append(nn.Linear(size, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
