"""Batch normalisation on the fused Cython kernel, with its backward.

Every argument is validated (minidl.ops._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.
"""

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, record
from minidl.ops import _validation as V

_contiguous = V.kernel_array


def batch_norm(
    input: Tensor,
    running_mean: "Tensor | np.ndarray | None",
    running_var: "Tensor | np.ndarray | None",
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of input (N, C, ...) ((N, C), (N, C, L), (N, C, H, W), ...):
    y = (x - mean) / sqrt(var + eps) * weight + bias, weight and bias (C,) or None.

    training: mean and var are the batch's (over every dim but C; var biased), and the
    running statistics (C,), when given, are updated in place:
    running = (1 - momentum) * running + momentum * batch (the variance unbiased).
    Otherwise mean and var are running_mean and running_var, which are then required.
    """
    what = "batch_norm"
    x = V.data_of(what, "input", input)
    w = V.optional_data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    rm = V.buffer_of(what, "running_mean", running_mean)
    rv = V.buffer_of(what, "running_var", running_var)
    training = bool(training)
    V.batch_norm_args(what, x, w, b, rm, rv, training, momentum, eps)
    n, c = x.shape[:2]
    x3 = _contiguous(x).reshape(n, c, -1)
    if w is not None:
        w = _contiguous(w)
    if b is not None:
        b = _contiguous(b)
    if training:
        mean = np.empty(c)
        var = np.empty(c)
    else:
        mean = rm.astype(np.float64)
        var = rv.astype(np.float64)
    y, invstd = K.batch_norm_forward(x3, w, b, mean, var, training, float(eps), get_num_threads())
    if training and rm is not None:
        m = x3.shape[0] * x3.shape[2]
        rm[...] = (1 - momentum) * rm + momentum * mean
        rv[...] = (1 - momentum) * rv + momentum * (var * (m / (m - 1)))
    inputs = (input,) + tuple(t for t in (weight, bias) if t is not None)

    def backward(g):
        need_dw = weight is not None and weight.requires_grad
        need_db = bias is not None and bias.requires_grad
        dx, dweight, dbias = K.batch_norm_backward(
            _contiguous(g).reshape(x3.shape),
            x3,
            w,
            mean,
            invstd,
            training,
            input.requires_grad,
            need_dw or need_db,
            get_num_threads(),
        )
        grads = [None if dx is None else dx.reshape(x.shape)]
        if weight is not None:
            grads.append(dweight.astype(x.dtype) if need_dw else None)
        if bias is not None:
            grads.append(dbias.astype(x.dtype) if need_db else None)
        return tuple(grads)

    return record(y.reshape(x.shape), inputs, backward)
