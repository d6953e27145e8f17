"""Convolution on the Cython kernels, each with its backward.

Every argument is validated (minidl.ops._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.  Which kernel runs each pass of
conv2d is decided by minidl.ops.conv_plan, nowhere here.
"""

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import Tensor, is_grad_enabled, record
from minidl.ops import _validation as V
from minidl.ops.conv_args import (
    conv2d_special,
    conv_transpose2d_special,
    same_padding,
    unbatched_errors,
)
from minidl.ops.conv_plan import cached_plan
from minidl.ops.padding import pad

_contiguous = V.kernel_array


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """Cross-correlation: input (N, C, H, W), weight (F, C/groups, kh, kw), bias (F,)
    -> (N, F, Ho, Wo) with Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo).

    Also as PyTorch: an unbatched input (C, H, W) -> (F, Ho, Wo), an empty batch, and
    padding="valid" (none) or "same" (output size = input size; stride 1 only). The kernel
    of each pass is minidl.ops.conv_plan's choice for the shape."""
    return _conv2d_any(input, weight, bias, stride, padding, dilation, groups, "conv2d")


def _conv2d_any(input, weight, bias, stride, padding, dilation, groups, what):
    """conv2d under the name ``what`` for every input PyTorch takes: unbatched (C, H, W),
    an empty batch and string padding go through conv_args, the rest straight to the
    kernels."""
    x = getattr(input, "data", None)
    if type(padding) is str or (
        type(x) is np.ndarray and (x.ndim == 3 or (x.ndim == 4 and x.shape[0] == 0))
    ):
        return conv2d_special(_conv2d, input, weight, bias, stride, padding, dilation, groups, what)
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, what)


def _fits(memo: dict, name: str, a: np.ndarray, nt: int) -> bool:
    """K.fits_winograd(a) on ``nt`` threads, remembered in ``memo`` under ``name``: one
    scan per operand."""
    ok = memo.get(name)
    if ok is None:
        ok = memo[name] = K.fits_winograd(a, nt)
    return ok


def checked_args(input, weight, bias, stride, padding, dilation, groups, what, channels_checked):
    """conv2d's arguments validated, the arrays as the kernels read them: (x, w, b or
    None, stride, padding, dilation, groups)."""
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    V.conv_arrays(what, x, w, b)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    groups = V.groups_arg(what, groups) if type(groups) is not int or groups < 1 else groups
    if not channels_checked:
        V.conv_channels(what, x, w, b, groups)
    V.conv_output_size(what, x.shape, w.shape[2:], stride, padding, dilation)
    x = _contiguous(x)
    w = _contiguous(w)
    if b is not None:
        b = _contiguous(b)
    return x, w, b, stride, padding, dilation, groups


def layer_plan(x, w, weight, stride, padding, dilation, groups, pooled=False):
    """The plan of the conv layer of these checked arrays on this call's threads;
    ``pooled``: its output goes into a fused 2x2 max pool (cached_plan)."""
    weight_grad = weight.requires_grad and is_grad_enabled()
    return cached_plan(
        x.shape,
        w.shape,
        x.dtype,
        stride,
        padding,
        dilation,
        groups,
        weight_grad,
        get_num_threads(),
        pooled,
    )


def _conv2d(input, weight, bias, stride, padding, dilation, groups, what, channels_checked=False):
    """conv2d under the name ``what``; channels_checked: the caller (conv1d) has already
    run V.conv_channels (on its own shapes, for its messages)."""
    x, w, b, stride, padding, dilation, groups = checked_args(
        input, weight, bias, stride, padding, dilation, groups, what, channels_checked
    )
    nt = get_num_threads()
    plan = layer_plan(x, w, weight, stride, padding, dilation, groups)
    keep = plan.keep_input
    path = plan.forward.path
    # Winograd mixes a whole tile: a pass whose operands hold an inf (or a value past
    # fits_winograd's bound) runs on im2col; each operand is checked once
    fits = {}
    if path == "winograd" and not _fits(fits, "x", x, nt):
        path, keep = "im2col", False
    if path == "im2col":
        out = K.conv2d_forward(
            x,
            w,
            b,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            keep_input=keep,
            num_threads=nt,
        )
    elif path == "winograd":
        out = K.winograd_forward(
            x,
            w,
            b,
            padding=padding,
            tile=plan.forward.tile,
            keep_input=keep,
            num_threads=nt,
            channel_major=plan.forward.channel_major,
        )
    elif path == "depthwise":
        out = K.depthwise_conv2d_forward(x, w, b, stride, padding, dilation, nt)
    else:
        out = K.direct_conv2d_forward(x, w, b, padding=padding, num_threads=nt)
    kept = None
    if keep:
        out, kept = out
    layer = (input, weight, bias, x, w, stride, padding, dilation, groups, plan)

    def backward(g):
        return conv2d_backward(g, layer, fits, kept)

    return record(out, _inputs(input, weight, bias), backward)


def _inputs(input, weight, bias):
    return (input, weight) if bias is None else (input, weight, bias)


def conv2d_backward(g, layer, fits, kept, codes=None):
    """The gradients of the conv2d ``layer`` (its tensors, checked arrays, geometry and
    plan) for dY ``g``, each pass on the plan's kernel: (gx, gw) or (gx, gw, gb).
    ``fits`` remembers which operands fit Winograd; ``kept`` is what the forward kept
    of x (cols or V) or None. With ``codes``, ``g`` is the gradient of a 2x2 max pool of
    the layer's output and ``codes`` that pool's window codes (ops.fused): the
    channel-major Winograd passes and the direct weight gradient spread them into dY
    themselves; any other pass reads dY, made once, when first needed."""
    input, weight, bias, x, w, stride, padding, dilation, groups, plan = layer
    g = _contiguous(g)
    nt = get_num_threads()
    dy = g if codes is None else None

    def full_dy():
        nonlocal dy
        if dy is None:
            dy = K.max_pool2d_2x2_backward(g, codes, nt)
        return dy

    def spreads(which):
        """Whether a pass reads the pooled gradient and codes (before dY exists)."""
        return codes is not None and dy is None and getattr(plan, which).spreads_pooled(which)

    def fits_g(src):
        return _fits(fits, "g" if src is g else "dy", src, nt)

    gx = gw = gb = None
    if input.requires_grad:
        path = plan.input.path
        spread = spreads("input")
        src = g if spread else full_dy()
        if path == "winograd" and not fits_g(src):
            path, spread, src = "im2col", False, full_dy()
        if path == "im2col":
            gx = K.conv2d_backward_input(
                src,
                w,
                x.shape,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                num_threads=nt,
            )
        elif path == "winograd":
            gx = K.winograd_backward_input(
                src,
                w,
                x.shape,
                padding=padding,
                tile=plan.input.tile,
                num_threads=nt,
                pool_codes=codes if spread else None,
                channel_major=plan.input.channel_major,
            )
        elif path == "depthwise":
            gx = K.depthwise_conv2d_backward_input(src, w, x.shape, stride, padding, dilation, nt)
        else:
            gx = K.direct_conv2d_backward_input(
                src, w, x.shape, padding=padding, layout=plan.input.layout, num_threads=nt
            )
    need_b = bias is not None and bias.requires_grad
    if weight.requires_grad:
        path = plan.weight.path
        spread = spreads("weight")
        src = g if spread else full_dy()
        if path == "winograd" and not (_fits(fits, "x", x, nt) and fits_g(src)):
            path, kept, spread, src = "im2col", None, False, full_dy()  # kept: V, not cols
        if path == "im2col":
            gw, gb = K.conv2d_backward_weight(
                x,
                src,
                w.shape,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                need_bias=need_b,
                kept_input=kept,
                num_threads=nt,
            )
        elif path == "winograd":
            gw, gb = K.winograd_backward_weight(
                x,
                src,
                w.shape,
                padding=padding,
                tile=plan.weight.tile,
                need_bias=need_b,
                kept_input=kept,
                num_threads=nt,
                pool_codes=codes if spread else None,
                channel_major=plan.weight.channel_major,
            )
        elif path == "depthwise":
            gw, gb = K.depthwise_conv2d_backward_weight(
                x, src, w.shape, stride, padding, dilation, need_b, nt
            )
        else:
            gw, gb = K.direct_conv2d_backward_weight(
                x,
                src,
                w.shape,
                padding=padding,
                need_bias=need_b,
                num_threads=nt,
                pool_codes=codes if spread else None,
            )
    elif need_b:
        gb = full_dy().sum(axis=(0, 2, 3))
    return (gx, gw) if bias is None else (gx, gw, gb)


def true_conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """True (textbook) convolution: conv2d with each filter rotated by 180 degrees.

    conv2d, like PyTorch's, is a cross-correlation (no flip); this is the convolution of
    the lecture notes (seed 003). Same shapes and arguments as conv2d; differentiable,
    since the flip is an indexing op on the tape.
    """
    w = V.data_of("true_conv2d", "weight", weight)
    if w.ndim == 4:  # anything else is left for conv2d to reject with its message
        weight = weight[:, :, ::-1, ::-1]
    return _conv2d_any(input, weight, bias, stride, padding, dilation, groups, "true_conv2d")


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> Tensor:
    """input (N, C, L) or (C, L), weight (F, C/groups, k), bias (F,) -> (N, F, Lo):
    conv2d with H=1. padding may be "valid" or "same", as for conv2d."""
    what = "conv1d"
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    if x.ndim == 2:  # unbatched (C, L)
        with unbatched_errors(x.shape):
            out = conv1d(
                input.reshape((1,) + x.shape), weight, bias, stride, padding, dilation, groups
            )
        return out.reshape(out.shape[1:])
    if x.ndim != 3:
        raise ValueError(f"{what}: expected a 3-D input (N, C, L), got shape {x.shape}")
    if w.ndim != 3:
        raise ValueError(f"{what}: expected a 3-D weight (F, C/groups, k), got shape {w.shape}")
    (s,) = V.pair(stride, "stride", what, 1)
    (d,) = V.pair(dilation, "dilation", what, 1)
    if isinstance(padding, str):
        (p,), (extra,) = same_padding(what, padding, s, d, w.shape[2:])
        if extra:
            input = pad(input, (0, extra))
            x = input.data
    else:
        (p,) = V.pair(padding, "padding", what, 1)
    n, c, length = x.shape
    f, cg, k = w.shape
    b = V.optional_data_of(what, "bias", bias)
    V.conv_channels(what, x, w, b, V.groups_arg(what, groups), empty_batch_ok=True)
    if s < 1 or d < 1 or p < 0:
        raise ValueError(
            f"{what}: stride and dilation must be >= 1 and padding >= 0, got {s}, {d}, {p}"
        )
    if length + 2 * p - d * (k - 1) - 1 < 0:
        raise ValueError(
            f"{what}: input shape {x.shape} is too short for weight shape {w.shape} "
            f"(padding {p}, dilation {d}: the output would be empty)"
        )
    out = (conv2d if n == 0 else _conv2d)(
        input.reshape(n, c, 1, length),
        weight.reshape(f, cg, 1, k),
        bias,
        (1, s),
        (0, p),
        (1, d),
        groups,
        *(() if n == 0 else (what, True)),
    )
    return out.reshape(n, f, out.shape[3])


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """Transposed convolution (the gradient of conv2d with respect to its input).

    input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,) ->
    (N, C_out, Ho, Wo) with Ho = (H-1)*sh - 2*ph + dh*(kh-1) + output_padding_h + 1.
    """
    what = "conv_transpose2d"
    x = V.data_of(what, "input", input)
    if x.ndim == 3 or (x.ndim == 4 and x.shape[0] == 0):  # unbatched, empty batch
        return conv_transpose2d_special(
            conv_transpose2d, input, weight, bias, stride, padding, output_padding, groups, dilation
        )
    w = V.data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    V.conv_arrays(what, x, w, b)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    groups = V.groups_arg(what, groups)
    out_pad = V.pair(output_padding, "output_padding", what)
    for axis in range(2):
        if out_pad[axis] < 0 or out_pad[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"{what}: output_padding {out_pad} must be >= 0 and smaller than either "
                f"stride {stride} or dilation {dilation}"
            )
    c_out = V.conv_channels(what, x, w, b, groups, transposed=True)
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    out_hw = tuple(
        (size - 1) * stride[a] - 2 * padding[a] + dilation[a] * (k - 1) + out_pad[a] + 1
        for a, (size, k) in enumerate(((h, kh), (wd, kw)))
    )
    if out_hw[0] < 1 or out_hw[1] < 1:
        raise ValueError(
            f"{what}: computed output size {out_hw[0]}x{out_hw[1]} is too small "
            f"(input shape {x.shape}, weight shape {w.shape}, stride {stride}, "
            f"padding {padding}, dilation {dilation})"
        )
    out_shape = (n, c_out) + out_hw
    # the kernels run the conv2d of out_shape: its sizes must fit their index type
    V.conv_output_size(what, out_shape, (kh, kw), stride, padding, dilation)
    V.index_sizes(what, output_size=out_hw[0] * out_hw[1])
    # The conv2d whose input gradient this is maps out_shape to conv_hw; conv_hw exceeds
    # (H, W) only when output_padding >= stride: the extra positions see zeros.
    conv_hw = tuple(
        (out_hw[a] + 2 * padding[a] - dilation[a] * ((kh, kw)[a] - 1) - 1) // stride[a] + 1
        for a in range(2)
    )
    x = _contiguous(x)
    w = _contiguous(w)
    if conv_hw != (h, wd):
        xp = np.zeros((n, x.shape[1]) + conv_hw, dtype=x.dtype)
        xp[:, :, :h, :wd] = x
    else:
        xp = x
    nt = get_num_threads()
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = K.conv2d_backward_input(xp, w, out_shape, **geometry, num_threads=nt)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    inputs = (input, weight) if bias is None else (input, weight, bias)

    def backward(g):
        g = _contiguous(g)
        nt = get_num_threads()
        gx = gw = gb = None
        if input.requires_grad:
            gx = K.conv2d_forward(g, w, None, **geometry, num_threads=nt)
            if conv_hw != (h, wd):
                gx = gx[:, :, :h, :wd]
        if weight.requires_grad:
            gw, _ = K.conv2d_backward_weight(
                g, xp, w.shape, **geometry, need_bias=False, num_threads=nt
            )
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    return record(out, inputs, backward)
