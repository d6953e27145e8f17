"""LeNet-style networks: conv-pool-relu, conv-pool-relu, flatten, MLP (seed 004).

Pooling comes before the ReLU: max and relu are both monotone, so max_pool(relu(x)) ==
relu(max_pool(x)) exactly (and the gradients agree), and this order does a quarter of
the ReLU work. The conv layers keep the Sequential indices 0 and 3 either way.

``LeNet()`` is the model ``minidl train`` trains on the 8x8 digits; ``LeNet(input_size=28)``
is the classic LeNet-5 layout for 1x28x28 images (MNIST-sized). Any other size, square or
``(H, W)``, gets 3x3 same-size convolutions and 2x2 pools (1 along a side already down to
1 pixel), so even 1x2 inputs (scikit-learn's estimator checks) have a network.
"""

import numpy as np

from minidl import nn

_LAYOUTS = {
    # input_size: (kernel, padding, spatial size after the two 2x2 pools)
    8: (3, 1, 2),  # 8 -> conv 8 -> pool 4 -> conv 4 -> pool 2
    28: (5, 2, 5),  # 28 -> conv 28 -> pool 14 -> conv(pad 0) 10 -> pool 5
}
_DEFAULT_WIDTHS = {8: (32, 64, 128), 28: (6, 16, 120, 84)}
_GENERIC_WIDTHS = (6, 16, 120, 84)  # LeNet-5's


def _size_pair(input_size):
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

    def __init__(self, num_classes=10, in_channels=1, input_size=8, widths=None, dropout=0.0):
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
        layers = [nn.Flatten()]
        size = c2 * final_h * final_w
        for h in hidden:
            layers += [nn.Linear(size, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            size = h
        layers.append(nn.Linear(size, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        return self.classifier(self.features(x))
