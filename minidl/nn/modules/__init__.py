"""The layers of ``minidl.nn``."""

from minidl.nn.modules.activation import ReLU, ReLU6, Sigmoid, Tanh
from minidl.nn.modules.container import Sequential
from minidl.nn.modules.conv import Conv1d, Conv2d, ConvTranspose2d
from minidl.nn.modules.linear import Linear
from minidl.nn.modules.loss import CrossEntropyLoss, MSELoss
from minidl.nn.modules.misc import Dropout, Flatten
from minidl.nn.modules.module import Module
from minidl.nn.modules.pooling import AvgPool2d, MaxPool2d
from minidl.nn.modules.resize import AdaptiveAvgPool2d, Upsample
from minidl.nn.modules.transform_conv import TransformConv2d

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
    "ReLU",
    "ReLU6",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "TransformConv2d",
    "Upsample",
]
