"""minidl: a small, fast deep-learning framework for the CPU.

Python on top, Cython kernels (nogil, OpenMP) underneath. See README.md.
"""
import importlib

__version__ = "0.1.0"

from minidl._threads import get_num_threads, set_num_threads
from minidl.random import manual_seed

# Resolved on first use so that the kernels can be imported and tested on their own
# while the layers above them are built.  (Replaced by plain imports once all exist.)
_LAZY = {
    "Tensor": "minidl.autograd",
    "tensor": "minidl.autograd",
    "no_grad": "minidl.autograd",
    "enable_grad": "minidl.autograd",
    "is_grad_enabled": "minidl.autograd",
    "gradcheck": "minidl.gradcheck",
    "save": "minidl.serialization",
    "load": "minidl.serialization",
}
_SUBMODULES = {"nn", "optim", "data", "models", "reference"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"minidl.{name}")
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")
