"""Neural-network building blocks (as ``torch.nn``): Module, Parameter, layers, init."""

from minidl.nn import functional, init, utils
from minidl.nn.modules import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    MSELoss,
    ReLU,
    ReLU6,
    Sequential,
    Sigmoid,
    Tanh,
    TransformConv2d,
    Upsample,
)
from minidl.nn.parameter import Parameter
from minidl.summary import summary

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "ReLU6",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
    "init",
    "summary",
    "utils",
    "TransformConv2d",
    "Upsample",
]
