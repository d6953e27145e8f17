"""minidl: a small, fast deep-learning framework for the CPU.

Python on top, Cython kernels (nogil, OpenMP) underneath; names and semantics follow
PyTorch. The layers, bottom up: ``minidl._kernels`` (Cython), ``minidl.autograd`` (Tensor
and the tape), ``minidl.ops`` (differentiable ops, re-exported as ``minidl.nn.functional``),
``minidl.nn`` (modules),
and ``minidl.optim`` / ``minidl.data`` / ``minidl.models`` / ``python -m minidl`` (training).
"""

__version__ = "0.1.0"

from minidl import (
    autograd,
    backends,
    data,
    models,
    nn,
    ops,  # attaches the Tensor methods
    optim,
)
from minidl._fpenv import set_flush_denormal
from minidl._memory import tune_malloc as _tune_malloc
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
from minidl.dtypes import bool, double, float32, float64, int32, int64, long  # noqa: A004  (PyTorch's names)
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.ops.creation import (
    arange,
    cat,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    stack,
    where,
    zeros,
    zeros_like,
)
from minidl.random import manual_seed
from minidl.serialization import load, save

_tune_malloc()  # reuse freed memory across training steps (see minidl._memory)

__all__ = [
    "GradcheckError",
    "Tensor",
    "__version__",
    "arange",
    "autograd",
    "backends",
    "bool",
    "cat",
    "data",
    "double",
    "empty",
    "enable_grad",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "get_num_threads",
    "gradcheck",
    "int32",
    "int64",
    "is_grad_enabled",
    "is_tensor",
    "linspace",
    "load",
    "long",
    "manual_seed",
    "models",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "rand",
    "randint",
    "randn",
    "save",
    "set_grad_enabled",
    "set_flush_denormal",
    "set_num_threads",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
