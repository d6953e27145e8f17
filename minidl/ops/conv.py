"""Convolution on the Cython kernels, each with its backward.

Every argument is validated (minidl._validation) and every array made C-contiguous
before a kernel sees it: the kernels trust their inputs.
"""

import numpy as np

from minidl import _kernels as K
from minidl._threads import get_num_threads
from minidl.autograd import is_grad_enabled, record
from minidl.ops import _validation as V
from minidl.ops.conv_args import (
    conv2d_special,
    conv_transpose2d_special,
    same_padding,
    unbatched_errors,
)
from minidl.ops.padding import pad

_contiguous = np.ascontiguousarray

# The forward's im2col is kept for the weight gradient up to this size (bytes).  Measured
# (fwd + both backward kernels, 1 thread): 1.15-1.2x faster at the LeNet-digits shapes
# (150-220 KB of cols), neutral at LeNet's conv2 (1.2 MB), 10% slower at a CIFAR-size
# layer (19 MB: a fresh buffer that size costs page faults and cache misses).
MAX_SAVED_COLS_BYTES = 2 * 2**20
# When the forward and the weight gradient both run on Winograd, the forward keeps its
# transformed input V (a*a/r*r times x: 2.25x for F(4x4, 3x3)) up to this size, and the
# weight gradient skips transforming x again.  Measured (F.conv2d fwd+bwd, keep / not,
# interleaved, AVX-512 Xeon): LeNet() 32->64 4x4 N=64 (V 295 KB) 1.09-1.14x faster at 1
# thread, 1.05-1.22x at 2; N=360 (1.6 MB) 1.01-1.08x; CIFAR-like 32->64 16x16 (4.7 MB)
# 0.85-0.95x at 1 thread: like big cols, a fresh buffer that size costs more than the
# transform it saves.
MAX_KEPT_WINOGRAD_BYTES = 2 * 2**20

# Winograd F(2x2, 3x3) and F(4x4, 3x3) (minidl._kernels._winograd) for 3x3, stride 1,
# dilation 1, groups 1, padding <= 2 layers (5x5: below).  It saves GEMM work (C*F per
# output: 2.25x fewer multiply-adds) but pays transforms (~C + F per output) and a
# fixed cost per call, so it wins once r = C*F/(C+F) and the work n = N*Ho*Wo*C*F are
# large enough.  Measured
# (benchmarks/bench_conv_paths.py and a sweep of the same kind; 1 thread, float32, p1,
# medians of interleaved repeats; im2col ms -> Winograd ms; "cols": the im2col weight
# gradient with the forward's saved cols):
#   N   C->F   plane   r     n     forward        input          weight
#   64  1->6   8x8    0.9   .02M  0.034->0.106   0.029->0.100   0.034->0.080 (cols 0.023)
#   64  6->16  4x4    4.4   0.1M  0.048->0.053   0.078->0.093   0.093->0.084 (cols 0.046)
#   64  1->32  8x8    1.0   0.1M  0.069->0.238   0.051->0.432   0.165->0.265
#   64  3->32  32x32  2.8   6.3M  1.88->4.85     2.40->8.06     5.24->6.06
#   64  3->64  16x16  2.9   3.1M  0.899->2.50    1.17->4.71     1.98->3.06
#   64  8->16  8x8    5.3   0.5M  0.153->0.194   0.243->0.234   0.306->0.225 (cols 0.216)
#   64  16->16 4x4    8.0   .26M  0.122->0.085   0.149->0.084   0.167->0.095 (cols 0.095)
#   64  16->16 8x8    8.0   1.0M  0.353->0.353   0.564->0.383   0.654->0.449
#   64  12->24 8x8    8.0   1.2M  0.295->0.322   0.422->0.398   0.506->0.472 (cols 0.388)
#   64  16->32 8x8   10.7   2.1M  0.701->0.651   0.908->0.842   1.07->0.776
#   64  32->32 8x8   16.0   4.2M  1.47->0.988    1.93->1.02     1.95->1.29
#   4   32->64 4x4   21.3   .13M  0.056->0.057   0.052->0.082   0.058->0.074
#   8   32->64 4x4   21.3   .26M  0.102->0.076   0.097->0.106   0.106->0.105
#   64  32->64 4x4   21.3   2.1M  0.765->0.404   0.727->0.471   0.929->0.590 (cols 0.659)
#   360 32->64 4x4   21.3    12M  4.25->2.20     4.28->2.58     4.83->3.19
#   64  32->64 16x16 21.3    34M  9.02->6.44     10.5->7.63     12.2->9.94
#   64  64->64 8x8   32.0    17M  5.22->2.47     6.56->2.62     5.92->3.55
# (a shared, busy machine: absolute times drift up to 1.5x between runs, ratios less;
# the forward at r 8-11 on 8x8 planes measured 0.8-1.1x in three runs.)
# So: forward r >= 16, input r >= 8, weight r >= 5, and n >= 2**18 for all three (the
# forward rule leaves the 1.4x of 16->16 4x4 on the table: r alone does not separate it
# from 16->16 8x8).  The weight gradient keeps im2col whenever the forward saved its
# cols (MAX_SAVED_COLS_BYTES: the 8->16, 16->16 4x4 and 12->24 rows, where "cols" is as
# fast or faster); a Winograd forward saves none.  Tests monkeypatch these to send small
# layers through Winograd.
WINOGRAD_MIN_CHANNEL_RATIO = {"forward": 16.0, "input": 8.0, "weight": 5.0}
WINOGRAD_MIN_WORK = {"forward": 2**18, "input": 2**18, "weight": 2**18}
# 5x5 layers: Winograd F(4x4, 5x5) (8x8 patches: 4 multiplications per output instead of
# 25, but 64 GEMMs per block and transforms of 8x8 patches) against the direct kernels
# (benchmarks/bench_conv_paths.py, 1 thread, float32, medians of 7 interleaved repeats,
# ms, direct -> Winograd; a busy machine, ratios hold better than times):
#   N   C->F   plane  p  r    forward       input         weight
#   64  1->6   28x28  0  .9   .454->1.13    1.24->4.14    .560->1.81
#   64  6->16  12x12  0  4.4  .439->.605    .691->2.21    .727->.675
#   64  16->16 16x16  2  8    3.53->3.48    7.52->6.09    6.50->4.67
# The input gradient runs the forward on dY padded by 4 - p: 16 channels of mostly-zero
# patches at 6->16, hence its cost there.  So: the weight gradient from r >= 4, the input
# gradient from r >= 8, the forward only from r >= 16 (never seen to win by more than the
# noise); the same work floor as 3x3.
WINOGRAD5_MIN_CHANNEL_RATIO = {"forward": 16.0, "input": 8.0, "weight": 4.0}
# On 2+ threads the direct kernels split the MNIST-like passes and Winograd's does not
# (AVX2 EPYC, 2 threads, direct -> Winograd weight gradient, ms): 6->16 12x12 r 4.4
# .281->.414, 16->16 16x16 p2 r 8 2.10->1.52.  So there the 5x5 weight gradient from r >= 8.
WINOGRAD5_THREADED_WEIGHT_RATIO = 8.0

# Direct kernels (minidl._kernels._direct: float32, stride 1, dilation 1, groups 1, on
# CPUs with AVX2 + FMA or AVX-512).  They issue no im2col, but waste lanes: on output
# positions rounded up to whole register blocks, on the zero positions of each dY row
# (input gradient) and on F (C for the input gradient) rounded up to the register block;
# K.direct_efficiency gives the useful share.  Measured (benchmarks/bench_conv_paths.py,
# 1 thread, float32, AVX-512, medians of 7 interleaved repeats, ms; "cols": the im2col
# weight gradient with the forward's saved cols, whose forward then costs "+keep";
# r = C*F/(C+F); a busy machine: ratios hold better than times):
#   N   C->F   plane k  r    forward               input               weight
#   64  1->6   8x8   3  .9   .022 (+keep .028)     .029                .022 (cols)
#                            direct .019           direct .060         direct .028
#   64  6->16  4x4   3  4.4  .059, direct .059     .083, direct .071   .037 (cols), direct .094
#   64  1->32  8x8   3  1.0  .057 (+keep .062)     .053                .161 (cols)
#                            direct .063           direct .296         direct .084
#   64  1->6   28x28 5  .9   .422, direct .178     .566, direct .905   1.49 (cols), direct .571
#   64  6->16  12x12 5  4.4  .649, direct .335     1.00, direct .487   1.00 (cols), direct .829
#   64  3->32  32x32 3  2.8  1.98, direct 1.51     2.31, direct 3.45   4.53 (cols), direct 2.25
#   64  3->64  16x16 3  2.9  .900, direct .829     .875, direct 1.64   1.77 (cols), direct 1.33
#   64  16->16 8x8   3  8    wino .690, dir .407   wino .422, dir .337 wino .525, dir .488
#       Zen 4, F(4x4):       wino .212, dir .224   wino .215, dir .314 wino .264, dir .318
#   64  16->16 16x16 5  8    5.02, direct 1.79     5.61, direct 2.16   5.25 (cols), direct 2.44
#   64  32->64 16x16 3  21   wino 4.27, dir 4.97   wino 4.82, dir 4.85 wino 6.34, dir 7.14
#       Zen 4, F(4x4):       wino 3.19, dir 5.85   wino 3.68, dir 6.63 wino 4.89, dir 8.95
#   64  32->64 4x4   3  21   wino .280, dir .704   wino .358, dir .809 wino .438, dir 1.09
# So each pass takes the direct kernel at efficiency >= DIRECT_MIN_EFFICIENCY, planes of
# >= DIRECT_MIN_OUTPUTS outputs and >= DIRECT_MIN_WORK multiply-adds
# (N*Ho*Wo*C*F*kh*kw); Winograd keeps every pass it pays for (with F(4x4) it beats the
# direct kernels on every pass at 16->16 and 32->64, the "Zen 4" rows).  When the
# weight gradient runs on im2col anyway, the forward keeps im2col and its cols
# (LeNet-digits conv1 in training: the pair is as fast that way, and under no_grad the
# direct forward runs).
DIRECT_MIN_EFFICIENCY = {"forward": 0.75, "input": 0.45, "weight": 0.75}
# Planes of fewer outputs: the per-sample copies cost more than the multiply-adds (4x4
# planes: the direct weight gradient took 2.5x the im2col one with saved cols, although
# none of its lanes is wasted).
DIRECT_MIN_OUTPUTS = 32
DIRECT_MIN_WORK = {"forward": 0, "input": 2**21, "weight": 2**20}


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation: input (N, C, H, W), weight (F, C/groups, kh, kw), bias (F,)
    -> (N, F, Ho, Wo) with Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo).

    Also as PyTorch: an unbatched input (C, H, W) -> (F, Ho, Wo), an empty batch, and
    padding="valid" (none) or "same" (output size = input size; stride 1 only)."""
    x = getattr(input, "data", None)
    if type(padding) is str or (
        type(x) is np.ndarray and (x.ndim == 3 or (x.ndim == 4 and x.shape[0] == 0))
    ):
        return conv2d_special(
            _conv2d, input, weight, bias, stride, padding, dilation, groups, "conv2d"
        )
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, "conv2d")


def _conv2d(input, weight, bias, stride, padding, dilation, groups, what, channels_checked=False):
    """conv2d under the name ``what``; channels_checked: the caller (conv1d) has already
    run V.conv_channels (on its own shapes, for its messages)."""
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    V.conv_arrays(what, x, w, b)
    stride, padding, dilation = V.hyper(what, stride, padding, dilation)
    groups = V.groups_arg(what, groups) if type(groups) is not int or groups < 1 else groups
    if not channels_checked:
        V.conv_channels(what, x, w, b, groups)
    ho, wo = V.conv_output_size(what, x.shape, w.shape[2:], stride, padding, dilation)
    x = _contiguous(x)
    w = _contiguous(w)
    if b is not None:
        b = _contiguous(b)
    weight_grad = weight.requires_grad and is_grad_enabled()
    plan = _plan(x, w.shape, ho, wo, stride, padding, dilation, groups, weight_grad)
    cols = kept = None
    nt = get_num_threads()
    if plan["keep_input"]:
        out, kept = K.winograd_forward(x, w, b, padding, nt, 0, True)
    elif plan["forward"] == "winograd":
        out = K.winograd_forward(x, w, b, padding, nt)
    elif plan["forward"] == "direct":
        out = K.direct_conv2d_forward(x, w, b, padding, nt)
    elif plan["keep_cols"]:
        out, cols = K.conv2d_forward(x, w, b, stride, padding, dilation, groups, nt, True)
    else:
        out = K.conv2d_forward(x, w, b, stride, padding, dilation, groups, nt)
    if bias is None:
        inputs = (input, weight)
    else:
        inputs = (input, weight, bias)

    def backward(g):
        g = _contiguous(g)
        nt = get_num_threads()
        gx = gw = gb = None
        if input.requires_grad:
            if plan["input"] == "winograd":
                gx = K.winograd_backward_input(g, w, x.shape, padding, nt)
            elif plan["input"] == "direct":
                gx = K.direct_conv2d_backward_input(g, w, x.shape, padding, nt)
            else:
                gx = K.conv2d_backward_input(g, w, x.shape, stride, padding, dilation, groups, nt)
        need_b = bias is not None and bias.requires_grad
        if weight.requires_grad:
            if plan["weight"] == "winograd":
                gw, gb = K.winograd_backward_weight(x, g, w.shape, padding, need_b, nt, 0, kept)
            elif plan["weight"] == "direct":
                gw, gb = K.direct_conv2d_backward_weight(x, g, w.shape, padding, need_b, nt)
            else:
                gw, gb = K.conv2d_backward_weight(
                    x, g, w.shape, stride, padding, dilation, groups, need_b, nt, cols
                )
        elif need_b:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    return record(out, inputs, backward)


PASSES = ("forward", "input", "weight")


def _plan(x, wshape, ho, wo, stride, padding, dilation, groups, weight_grad):
    """{pass: "winograd" | "direct" | "im2col"} for "forward", "input" and "weight",
    "keep_cols": whether the im2col forward keeps its cols for the weight gradient, and
    "keep_input": whether the Winograd forward keeps its transformed input for it (see
    the constants above)."""
    winograd = _winograd_passes(x.shape, wshape, ho, wo, stride, padding, dilation, groups)
    direct = _direct_passes(x, wshape, ho, wo, stride, padding, dilation, groups)
    # an im2col forward keeps its cols when they are small; the weight gradient then
    # reads them (faster than its own im2col, or Winograd's, at those sizes)
    cols_fit = weight_grad and (
        x.shape[1] * wshape[2] * wshape[3] * x.shape[0] * ho * wo * x.itemsize
        <= MAX_SAVED_COLS_BYTES
    )
    if not winograd and not direct:  # most small layers: every pass on im2col
        return _IM2COL_PLANS[cols_fit]
    plan = {
        p: "winograd" if p in winograd else "direct" if p in direct else "im2col" for p in PASSES
    }
    plan["keep_cols"] = cols_fit and plan["forward"] != "winograd" and plan["weight"] != "direct"
    if plan["keep_cols"]:
        plan["forward"] = plan["weight"] = "im2col"
    plan["keep_input"] = (
        weight_grad
        and plan["forward"] == plan["weight"] == "winograd"
        and K.winograd_kept_input_elements(x.shape, wshape, padding) * x.itemsize
        <= MAX_KEPT_WINOGRAD_BYTES
    )
    return plan


# _plan's answer when neither Winograd nor the direct kernels apply (read-only), indexed
# by whether the cols are kept
_IM2COL_PLANS = tuple(
    dict(forward="im2col", input="im2col", weight="im2col", keep_cols=keep, keep_input=False)
    for keep in (False, True)
)


def _channel_ratio(xshape, wshape):
    """r = C*F/(C+F): Winograd saves GEMM work ~ C*F per output and pays transforms
    ~ C + F, so r is what its rules compare."""
    c, f = xshape[1], wshape[0]
    return c * f / (c + f) if c + f else 0.0


def _winograd_passes(xshape, wshape, ho, wo, stride, padding, dilation, groups):
    """The passes ("forward", "input", "weight") to run on the Winograd kernels: they
    apply to 3x3 and 5x5 kernels, stride 1, dilation 1, groups 1, padding <= k - 1 (the
    input gradient runs the forward with padding k - 1 - p), and each pass must pay (see
    the constants above)."""
    k = wshape[2]
    if not (
        k in (3, 5)
        and wshape[3] == k
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and padding[0] <= k - 1
        and padding[1] <= k - 1
    ):
        return ()
    return tuple(p for p in PASSES if _winograd_pays(p, xshape, wshape, ho, wo))


def _direct_passes(x, wshape, ho, wo, stride, padding, dilation, groups):
    """The passes the direct kernels take (see the constants above): float32, stride 1,
    dilation 1, groups 1, a CPU they were built for, planes of >= DIRECT_MIN_OUTPUTS
    outputs, and per pass enough work and a useful share of the issued multiply-adds."""
    if (
        x.dtype != np.float32
        or stride != (1, 1)
        or dilation != (1, 1)
        or groups != 1
        or not K.direct_level()
        or ho < 1
        or wo < 1
    ):
        return ()
    n, c = x.shape[:2]
    f, _, kh, kw = wshape
    if ho * wo < DIRECT_MIN_OUTPUTS:
        return ()
    work = n * ho * wo * c * f * kh * kw
    useful = K.direct_efficiency(x.shape, wshape, padding)
    return tuple(
        p for p in PASSES if useful[p] >= DIRECT_MIN_EFFICIENCY[p] and work >= DIRECT_MIN_WORK[p]
    )


def _winograd_pays(which, xshape, wshape, ho, wo):
    """Winograd is expected to beat im2col for pass ``which`` (see the constants above)."""
    n, c = xshape[0], xshape[1]
    f = wshape[0]
    if ho < 1 or wo < 1 or c < 1 or f < 1:
        return False
    if wshape[2] == 3:
        floor = WINOGRAD_MIN_CHANNEL_RATIO[which]
    elif which == "weight" and get_num_threads() > 1:
        floor = WINOGRAD5_THREADED_WEIGHT_RATIO
    else:
        floor = WINOGRAD5_MIN_CHANNEL_RATIO[which]
    return (
        _channel_ratio(xshape, wshape) >= floor and n * ho * wo * c * f >= WINOGRAD_MIN_WORK[which]
    )


def true_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """True (textbook) convolution: conv2d with each filter rotated by 180 degrees.

    conv2d, like PyTorch's, is a cross-correlation (no flip); this is the convolution of
    the lecture notes (seed 003). Same shapes and arguments as conv2d; differentiable,
    since the flip is an indexing op on the tape.
    """
    w = V.data_of("true_conv2d", "weight", weight)
    if w.ndim == 4:  # anything else is left for conv2d to reject with its message
        weight = weight[:, :, ::-1, ::-1]
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, "true_conv2d")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
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
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
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
    out = K.conv2d_backward_input(xp, w, out_shape, stride, padding, dilation, groups, nt)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    inputs = (input, weight) if bias is None else (input, weight, bias)

    def backward(g):
        g = _contiguous(g)
        nt = get_num_threads()
        gx = gw = gb = None
        if input.requires_grad:
            gx = K.conv2d_forward(g, w, None, stride, padding, dilation, groups, nt)
            if conv_hw != (h, wd):
                gx = gx[:, :, :h, :wd]
        if weight.requires_grad:
            gw, _ = K.conv2d_backward_weight(
                g, xp, w.shape, stride, padding, dilation, groups, False, nt
            )
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    return record(out, inputs, backward)
