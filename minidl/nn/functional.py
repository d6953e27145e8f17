"""Differentiable ops with PyTorch's names and signatures (``import minidl.nn.functional as F``).

The ops themselves live next to their backward in the ``minidl.ops`` package.
"""

from minidl.ops.activation import dropout, log_softmax, relu, relu6, sigmoid, softmax, tanh
from minidl.ops.conv import conv1d, conv2d, conv_transpose2d, true_conv2d
from minidl.ops.linear import linear
from minidl.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from minidl.ops.math import flatten
from minidl.ops.pooling import avg_pool2d, max_pool2d
from minidl.ops.resize import adaptive_avg_pool2d, interpolate
from minidl.ops.transform_conv import transform_conv2d

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "interpolate",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "relu6",
    "sigmoid",
    "smooth_l1_loss",
    "softmax",
    "tanh",
    "transform_conv2d",
    "true_conv2d",
]
