"""Differentiable ops with PyTorch's names and signatures (``import minidl.nn.functional as F``).

The ops themselves live next to their backward in ``_ops_nn`` (activations, losses,
linear, dropout), ``_ops_conv`` (convolution, pooling) and ``_ops_math`` (flatten).
"""
from minidl.nn._ops_conv import (
    avg_pool2d, conv1d, conv2d, conv_transpose2d, max_pool2d, true_conv2d,
)
from minidl.nn._ops_math import flatten
from minidl.nn._ops_nn import (
    cross_entropy, dropout, linear, log_softmax, mse_loss, relu, sigmoid, softmax, tanh,
)

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy", "mse_loss",
    "linear", "dropout", "flatten", "conv2d", "conv1d", "conv_transpose2d", "max_pool2d",
    "avg_pool2d", "true_conv2d",
]
