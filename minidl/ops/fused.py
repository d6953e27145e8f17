"""Ops that run a short chain of layers in one pass over memory, for
minidl.nn.modules.fusion (Sequential picks them; they are not public API).

Each returns None where its kernel does not apply; the layers then run one by one.
Values are bit for bit those of the separate ops.
"""

from __future__ import annotations

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, is_grad_enabled, record
from minidl.ops import _validation as V

_FLOATS = (np.float32, np.float64)


def max_pool2d_relu(input: Tensor) -> Tensor | None:
    """relu(max_pool2d(input, 2)): input (N, C, H, W), N >= 1, H and W even ->
    (N, C, H/2, W/2), the ReLU applied to each chunk of maxima while it is in cache;
    None for any other input.

    The gradient is the separate ops' for every finite upstream gradient; where a maximum
    is not > 0 it is 0 whatever the upstream value, as PyTorch's ReLU gives at a maximum
    <= 0 (minidl's separate ReLU multiplies by its 0/1 mask, so an inf there gives NaN)."""
    x = getattr(input, "data", None)
    if (
        type(x) is not np.ndarray
        or x.ndim != 4
        or x.dtype not in _FLOATS
        or x.shape[0] == 0
        or x.shape[2] % 2
        or x.shape[3] % 2
        or x.size == 0
    ):
        return None
    x = V.kernel_array(x)
    recorded = input.requires_grad and is_grad_enabled()
    out, codes = K.max_pool2d_relu_2x2_forward(x, get_num_threads(), recorded)

    def backward(g):
        return (K.max_pool2d_2x2_backward(V.kernel_array(g), codes, get_num_threads()),)

    return record(out, (input,), backward)
