"""minidl: a small, fast deep-learning framework for the CPU.

Python on top, Cython kernels (nogil, OpenMP) underneath; names and semantics follow
PyTorch. The layers, bottom up: ``minidl._kernels`` (Cython), ``minidl.autograd`` (Tensor
and the tape), ``minidl.ops`` (differentiable ops, re-exported as ``minidl.nn.functional``),
``minidl.nn`` (modules),
and ``minidl.optim`` / ``minidl.data`` / ``minidl.models`` / ``python -m minidl`` (training).
"""
__version__ = "0.1.0"

from minidl._threads import get_num_threads, set_num_threads
from minidl.autograd import (Tensor, enable_grad, is_grad_enabled, no_grad,
                             set_grad_enabled, tensor)
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.random import manual_seed
from minidl.serialization import load, save
from minidl import ops  # attaches the Tensor methods
from minidl import data, models, nn, optim

__all__ = [
    "Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "gradcheck", "GradcheckError", "manual_seed", "set_num_threads", "get_num_threads",
    "save", "load", "nn", "ops", "optim", "data", "models", "__version__",
]
