"""The differentiable ops: each validates its inputs, computes its forward on numpy or a
kernel, and records one tape entry whose backward sits next to it.

``math`` (arithmetic, reductions, shapes, indexing), ``activation`` (and dropout),
``loss``, ``linear``, ``conv`` and ``pooling``; ``minidl.nn.functional`` re-exports them
with PyTorch's names. Importing this package attaches the Tensor methods (``+``,
``sum``, ``relu``, ...) to :class:`minidl.autograd.Tensor`, which owns no op itself.
"""

from minidl.autograd import Tensor
from minidl.ops import activation, conv, linear, loss, math, pooling

__all__ = ["activation", "conv", "linear", "loss", "math", "pooling"]

Tensor.__add__ = math.add
Tensor.__radd__ = math.radd
Tensor.__sub__ = math.sub
Tensor.__rsub__ = math.rsub
Tensor.__mul__ = math.mul
Tensor.__rmul__ = math.rmul
Tensor.__truediv__ = math.div
Tensor.__rtruediv__ = math.rdiv
Tensor.__pow__ = math.pow
Tensor.__rpow__ = math.rpow
Tensor.__matmul__ = math.matmul
Tensor.__rmatmul__ = math.rmatmul
Tensor.__neg__ = math.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = math.abs
Tensor.__getitem__ = math.getitem
Tensor.__lt__ = math.lt
Tensor.__le__ = math.le
Tensor.__gt__ = math.gt
Tensor.__ge__ = math.ge
Tensor.__eq__ = math.eq
Tensor.__ne__ = math.ne
Tensor.add = math.add
Tensor.sub = math.sub
Tensor.mul = math.mul
Tensor.div = math.div
Tensor.matmul = math.matmul
Tensor.neg = math.neg
Tensor.abs = math.abs
Tensor.exp = math.exp
Tensor.log = math.log
Tensor.sqrt = math.sqrt
Tensor.sum = math.sum
Tensor.mean = math.mean
Tensor.max = math.max
Tensor.argmax = math.argmax
Tensor.reshape = math.reshape
Tensor.view = math.reshape
Tensor.flatten = math.flatten
Tensor.transpose = math.transpose
Tensor.permute = math.permute
Tensor.T = property(math.t)
Tensor.to = math.to
Tensor.float = math.float
Tensor.double = math.double
Tensor.relu = activation.relu
Tensor.sigmoid = activation.sigmoid
Tensor.tanh = activation.tanh
Tensor.softmax = activation.softmax
Tensor.log_softmax = activation.log_softmax
Tensor.clone = math.clone
