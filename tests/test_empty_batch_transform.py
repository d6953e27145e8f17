"""An empty batch gives an empty output and zero gradients in TransformConv2d and
true_conv2d too, as in every other layer (issue 24)."""

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import nn


@pytest.mark.parametrize("reduce", ["max", None])
def test_transform_conv2d_empty_batch(reduce):
    layer = nn.TransformConv2d(2, 3, 3, transforms="rot4", reduce=reduce)
    x = minidl.tensor(np.zeros((0, 2, 8, 8), np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == (0, 3 if reduce == "max" else 12, 6, 6)
    assert x.grad.shape == (0, 2, 8, 8)
    np.testing.assert_array_equal(layer.weight.grad, np.zeros((3, 2, 3, 3), np.float32))


def test_true_conv2d_empty_batch():
    x = minidl.tensor(np.zeros((0, 2, 8, 8)), requires_grad=True)
    w = minidl.tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    y = F.true_conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.shape == (0, 3, 8, 8) and x.grad.shape == (0, 2, 8, 8)
    np.testing.assert_array_equal(w.grad, np.zeros((3, 2, 3, 3)))
