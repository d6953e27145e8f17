"""Differentiable ops with PyTorch's names and signatures (``import minidl.nn.functional as F``).

The ops themselves live next to their backward in the ``minidl.ops`` package.
"""

from minidl.ops.activation import dropout, log_softmax, relu, relu6, sigmoid, softmax, tanh
from minidl.ops.conv import conv1d, conv2d, conv_transpose2d, true_conv2d
from minidl.ops.linear import linear
from minidl.ops.loss import cross_entropy, mse_loss
from minidl.ops.math import flatten
from minidl.ops.pooling import avg_pool2d, max_pool2d
from minidl.ops.resize import adaptive_avg_pool2d, interpolate
from minidl.ops.transform_conv import transform_conv2d

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "interpolate",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "relu",
    "relu6",
    "sigmoid",
    "softmax",
    "tanh",
    "transform_conv2d",
    "true_conv2d",
]
