"""The layers of ``minidl.nn``."""

from minidl.nn.modules.activation import (
    ELU,
    GELU,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from minidl.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from minidl.nn.modules.container import ModuleDict, ModuleList, Sequential
from minidl.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from minidl.nn.modules.depthwise import DepthwiseSeparableConv2d
from minidl.nn.modules.linear import Linear
from minidl.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from minidl.nn.modules.misc import Dropout, Dropout2d, Flatten, Identity, Unflatten
from minidl.nn.modules.module import Module
from minidl.nn.modules.normalization import GroupNorm, LayerNorm
from minidl.nn.modules.pooling import AvgPool2d, MaxPool2d, MaxUnpool2d, MinPool2d
from minidl.nn.modules.resize import AdaptiveAvgPool2d, Upsample
from minidl.nn.modules.sparse import Embedding
from minidl.nn.modules.transform_conv import TransformConv2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "DepthwiseSeparableConv2d",
    "Dropout",
    "Dropout2d",
    "ELU",
    "Embedding",
    "Flatten",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "GELU",
    "GroupNorm",
    "Hardtanh",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "MaxUnpool2d",
    "MinPool2d",
    "Module",
    "NLLLoss",
    "ModuleDict",
    "ModuleList",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Tanh",
    "TransformConv2d",
    "Unflatten",
    "Upsample",
]
