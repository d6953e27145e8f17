"""Differentiable ops with PyTorch's names and signatures (``import minidl.nn.functional as F``).

The ops themselves live next to their backward in the ``minidl.ops`` package.
"""

from minidl.ops.activation import (
    dropout,
    dropout2d,
    elu,
    gelu,
    hardtanh,
    leaky_relu,
    log_softmax,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from minidl.ops.conv import conv1d, conv2d, conv_transpose2d, true_conv2d
from minidl.ops.embedding import embedding, one_hot
from minidl.ops.fold import fold, unfold
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
from minidl.ops.normalization import batch_norm
from minidl.ops.normalization_layer import group_norm, layer_norm, normalize
from minidl.ops.padding import pad
from minidl.ops.pooling import avg_pool2d, max_pool2d, max_unpool2d, min_pool2d
from minidl.ops.resize import adaptive_avg_pool2d, interpolate
from minidl.ops.transform_conv import transform_conv2d

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "batch_norm",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "flatten",
    "fold",
    "gelu",
    "group_norm",
    "hardtanh",
    "interpolate",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "min_pool2d",
    "max_unpool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "relu6",
    "sigmoid",
    "smooth_l1_loss",
    "normalize",
    "one_hot",
    "pad",
    "silu",
    "softmax",
    "tanh",
    "transform_conv2d",
    "true_conv2d",
    "unfold",
]
