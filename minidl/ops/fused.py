"""Ops that run a short chain of layers in one pass over memory, for
minidl.nn.modules.fusion (Sequential picks them; they are not public API).

Each returns None where its kernel does not apply; the layers then run one by one.
Values are bit for bit those of the separate ops. Linear -> ReLU is the linear op's own
(minidl.ops.linear.linear_relu), re-exported here.
"""

from __future__ import annotations

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, is_grad_enabled, record
from minidl.ops import _validation as V
from minidl.ops import conv
from minidl.ops.linear import linear_relu  # noqa: F401  (Sequential's Linear -> ReLU)

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


DECLINE = object()  # _early_plan: not the fused kernel's layer


def _early_plan(x, weight, stride, padding, dilation, groups):
    """The plan of a layer given as Conv2d keeps it (int pairs), judged on the shapes
    before the full argument checks, so that a layer that is plainly not the fused
    kernel's does not pay for them twice: DECLINE then, None where the full checks must
    decide (other argument types), else the cached plan of a layer the fused kernel
    takes."""
    w = getattr(weight, "data", None)
    pairs = (stride, padding, dilation)
    if not (
        type(w) is np.ndarray
        and w.ndim == 4
        and type(groups) is int
        and all(type(p) is tuple and len(p) == 2 for p in pairs)
        and all(type(v) is int for p in pairs for v in p)
    ):
        return None
    ho = x.shape[2] + 2 * padding[0] - w.shape[2] + 1
    wo = x.shape[3] + 2 * padding[1] - w.shape[3] + 1
    if (
        stride != (1, 1)
        or dilation != (1, 1)
        or groups != 1
        or w.dtype != np.float32
        or w.shape[1] != x.shape[1]
        or min(padding) < 0
        or ho < 2
        or wo < 2
        or ho % 2
        or wo % 2
    ):
        return DECLINE
    plan = conv.layer_plan(x, w, weight, stride, padding, dilation, groups, pooled=True)
    return plan if plan.forward.pools_as_it_goes else DECLINE


def conv2d_max_pool2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride,
    padding,
    dilation,
    groups,
    relu: bool,
) -> Tensor | None:
    """max_pool2d(conv2d(input, weight, bias, ...), 2), then relu if ``relu``: input
    (N, C, H, W) float32 with N >= 1 -> (N, F, Ho/2, Wo/2), without writing the conv
    output out, where the plan's forward can pool as it goes: the direct kernel (each
    thread convolves a few samples into a buffer in cache and pools them there) and the
    channel-major Winograd F(4x4, 3x3) (each 4x4 output plane pooled in registers). None
    elsewhere, and when a NaN reaches the pool. Gradients as max_pool2d_relu's, then
    conv2d's on the plan's kernels."""
    x = getattr(input, "data", None)
    if (
        type(x) is not np.ndarray
        or x.ndim != 4
        or x.shape[0] == 0
        or x.dtype != np.float32
        or type(padding) is str
    ):
        return None
    plan = _early_plan(x, weight, stride, padding, dilation, groups)
    if plan is DECLINE:
        return None
    x, w, b, stride, padding, dilation, groups = conv.checked_args(
        input, weight, bias, stride, padding, dilation, groups, "conv2d", False
    )
    if plan is None:  # the arguments came in other types: judged now, checked
        ho = x.shape[2] + 2 * padding[0] - w.shape[2] + 1
        wo = x.shape[3] + 2 * padding[1] - w.shape[3] + 1
        if w.dtype != np.float32 or ho % 2 or wo % 2:
            return None
        plan = conv.layer_plan(x, w, weight, stride, padding, dilation, groups, pooled=True)
    if not plan.forward.pools_as_it_goes:
        return None
    inputs = conv._inputs(input, weight, bias)
    recorded = is_grad_enabled() and any(t.requires_grad for t in inputs)
    nt = get_num_threads()
    fits, kept = {}, None
    if plan.forward.path == "direct":
        result = K.direct_conv2d_pool_forward(
            x, w, b, padding=padding, relu=relu, need_codes=recorded, num_threads=nt
        )
    elif not conv._fits(fits, "x", x, nt):  # Winograd would mix an inf into a tile
        return None
    else:
        keep = recorded and plan.keep_input
        result = K.winograd_pool_forward(
            x,
            w,
            b,
            padding=padding,
            tile=4,
            relu=relu,
            need_codes=recorded,
            keep_input=keep,
            num_threads=nt,
        )
        if result is not None:
            result, kept = result[:2], result[2]
    if result is None:
        return None
    out, codes = result
    layer = (input, weight, bias, x, w, stride, padding, dilation, groups, plan)

    def backward(g):
        return conv.conv2d_backward(g, layer, fits, kept, codes)

    return record(out, inputs, backward)
