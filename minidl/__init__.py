"""minidl: a small, fast deep-learning framework for the CPU.

Python on top, Cython kernels (nogil, OpenMP) underneath; names and semantics follow
PyTorch. The layers, bottom up: ``minidl._kernels`` (Cython), ``minidl.autograd`` (Tensor
and the tape), ``minidl.ops`` (differentiable ops, re-exported as ``minidl.nn.functional``),
``minidl.nn`` (modules),
and ``minidl.optim`` / ``minidl.data`` / ``minidl.models`` / ``python -m minidl`` (training).
"""

__version__ = "0.1.0"

from minidl import (
    data,
    models,
    nn,
    ops,  # attaches the Tensor methods
    optim,
)
from minidl._threads import get_num_threads, set_num_threads
from minidl.autograd import (
    Tensor,
    enable_grad,
    is_grad_enabled,
    is_tensor,
    no_grad,
    set_grad_enabled,
    tensor,
)
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.random import manual_seed
from minidl.serialization import load, save

__all__ = [
    "GradcheckError",
    "Tensor",
    "__version__",
    "data",
    "enable_grad",
    "get_num_threads",
    "gradcheck",
    "is_grad_enabled",
    "is_tensor",
    "load",
    "manual_seed",
    "models",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "save",
    "set_grad_enabled",
    "set_num_threads",
    "tensor",
]
