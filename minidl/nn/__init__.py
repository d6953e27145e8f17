"""Neural-network building blocks (as ``torch.nn``): Module, Parameter, layers, init."""

from minidl.nn import functional, init, modules, utils
from minidl.nn.modules import *  # noqa: F403 (the layers: modules.__all__ is their one list)
from minidl.nn.parameter import Parameter
from minidl.summary import summary

__all__ = [
    *modules.__all__,
    "Parameter",
    "functional",
    "init",
    "summary",
    "utils",
]
