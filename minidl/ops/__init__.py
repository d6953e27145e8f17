"""The differentiable ops: each validates its inputs, computes its forward on numpy or a
kernel, and records one tape entry whose backward sits next to it.

``math`` (arithmetic, reductions, shapes, indexing), ``activation`` (and dropout),
``loss``, ``linear``, ``conv`` and ``pooling``; ``minidl.nn.functional`` re-exports them
with PyTorch's names. Importing this package attaches the Tensor methods (``+``,
``sum``, ``relu``, ...) to :class:`minidl.autograd.Tensor`, which owns no op itself.
"""

from __future__ import annotations

from minidl.autograd import Tensor
from minidl.ops import activation, conv, linear, loss, math, pooling

__all__ = ["activation", "conv", "linear", "loss", "math", "pooling"]


def _identity(self: Tensor) -> Tensor:
    return self


# Tensor attribute -> the op it is bound to (autograd declares their signatures)
_METHODS = {
    "__add__": math.add,
    "__radd__": math.radd,
    "__sub__": math.sub,
    "__rsub__": math.rsub,
    "__mul__": math.mul,
    "__rmul__": math.rmul,
    "__truediv__": math.div,
    "__rtruediv__": math.rdiv,
    "__pow__": math.pow,
    "__rpow__": math.rpow,
    "__matmul__": math.matmul,
    "__rmatmul__": math.rmatmul,
    "__neg__": math.neg,
    "__pos__": _identity,
    "__abs__": math.abs,
    "__getitem__": math.getitem,
    "__lt__": math.lt,
    "__le__": math.le,
    "__gt__": math.gt,
    "__ge__": math.ge,
    "__eq__": math.eq,
    "__ne__": math.ne,
    "add": math.add,
    "sub": math.sub,
    "mul": math.mul,
    "div": math.div,
    "matmul": math.matmul,
    "neg": math.neg,
    "abs": math.abs,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "sum": math.sum,
    "mean": math.mean,
    "max": math.max,
    "argmax": math.argmax,
    "reshape": math.reshape,
    "view": math.reshape,
    "flatten": math.flatten,
    "transpose": math.transpose,
    "permute": math.permute,
    "T": property(math.t),
    "to": math.to,
    "float": math.float,
    "double": math.double,
    "relu": activation.relu,
    "sigmoid": activation.sigmoid,
    "tanh": activation.tanh,
    "softmax": activation.softmax,
    "log_softmax": activation.log_softmax,
    "clone": math.clone,
}
for _name, _op in _METHODS.items():
    setattr(Tensor, _name, _op)
del _name, _op
