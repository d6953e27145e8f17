"""Resizing ops (seed 004's "expanding" side): adaptive average pooling and interpolation.

Each is separable over H and W, so it is computed one axis at a time with index arrays
(gathers forward, sorted-segment sums backward); no Python loop over pixels. The index
maths is PyTorch's, including its float32 rounding for float32 inputs, so the same pixels
are picked.
"""

import math as _math
from numbers import Real

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V

__all__ = ["adaptive_avg_pool2d", "interpolate"]

_MODES = ("nearest", "bilinear")


# ---- shared helpers ------------------------------------------------------------------
def _image(what: str, input: Tensor, ndims: tuple) -> np.ndarray:
    x = V.data_of(what, "input", input)
    if x.ndim not in ndims:
        shapes = " or ".join({3: "3-D (C, H, W)", 4: "4-D (N, C, H, W)"}[n] for n in ndims)
        raise ValueError(f"{what}: expected a {shapes} input, got shape {x.shape}")
    V.float_image(what, x)
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"{what}: input has an empty spatial size, shape {x.shape}")
    return x


def _sum_into(g: np.ndarray, index: np.ndarray, size: int, axis: int) -> np.ndarray:
    """out with ``size`` entries along ``axis``: out[index[k]] += g[k], index sorted.

    A sorted index makes each target one contiguous run of g, summed by reduceat (the
    backward of a gather along one axis; no np.add.at).
    """
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    shape = list(g.shape)
    shape[axis] = size
    out = np.zeros(shape, g.dtype)
    where = [slice(None)] * g.ndim
    where[axis] = index[starts]
    out[tuple(where)] = np.add.reduceat(g, starts, axis=axis)
    return out


# ---- adaptive average pooling ----------------------------------------------------------
def adaptive_output_size(what: str, output_size, in_hw: tuple | None = None) -> tuple:
    """``output_size`` (an int, or a pair whose entries are ints or None) as a pair.

    None entries take the input's size (``in_hw``); with ``in_hw=None`` they stay None
    (a module checking its argument before it has seen an input).
    """
    if output_size is None:
        raise TypeError(f"{what}: output_size must be an int or a pair of ints/None, got None")
    pair = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(pair) != 2:
        raise ValueError(f"{what}: output_size must have 2 entries, got {output_size!r}")
    out = []
    for k, v in enumerate(pair):
        if v is None:
            out.append(None if in_hw is None else in_hw[k])
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(
                f"{what}: output_size must be an int or a pair of ints/None, got {output_size!r}"
            )
        if v < 0:
            raise ValueError(f"{what}: output_size must be >= 0, got {output_size!r}")
        out.append(int(v))
    return tuple(out)


def _adaptive_windows(size: int, out: int, dtype) -> tuple:
    """(0/1 window matrix (out, size), window lengths): window i covers
    floor(i*size/out) .. ceil((i+1)*size/out) - 1 (PyTorch's start/end formula)."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    pos = np.arange(size)
    windows = ((pos >= start[:, None]) & (pos < end[:, None])).astype(dtype)
    return windows, (end - start).astype(dtype)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size: (N, C, H, W) -> (N, C, Ho, Wo) (or 3-D
    (C, H, W) -> (C, Ho, Wo)).

    output_size: an int or a pair of ints / None (None keeps that input size). Output
    element i along an axis of size S averages inputs floor(i*S/O) .. ceil((i+1)*S/O) - 1,
    so the windows may differ in size and overlap; ``output_size=1`` is global average
    pooling. The gradient spreads each dY / window size over its window.
    """
    what = "adaptive_avg_pool2d"
    x = _image(what, input, (3, 4))
    ho, wo = adaptive_output_size(what, output_size, x.shape[-2:])
    if ho == wo == 1:  # global average pooling: one contiguous sum per plane
        return _global_avg_pool2d(input, x)
    wh, nh = _adaptive_windows(x.shape[-2], ho, x.dtype)
    ww, nw = _adaptive_windows(x.shape[-1], wo, x.dtype)
    counts = nh[:, None] * nw[None, :]
    # a window sum is a product of row and column indicators: rows @ x @ cols.T
    out = np.matmul(np.matmul(wh, x), ww.T) / counts

    def backward(g):
        return (np.matmul(np.matmul(wh.T, g / counts), ww),)

    return record(out, (input,), backward)


def _global_avg_pool2d(input: Tensor, x: np.ndarray) -> Tensor:
    """adaptive_avg_pool2d to 1 x 1: x (..., H, W) -> (..., 1, 1), the mean of each plane
    (the general path's batch of tiny matmuls took 10x longer)."""
    count = x.shape[-1] * x.shape[-2]
    planes = x.reshape(-1, count)
    # einsum's sum of each row: 3x faster than np.add.reduce's on rows this short
    out = (np.einsum("ij->i", planes) / x.dtype.type(count)).reshape(x.shape[:-2] + (1, 1))

    def backward(g):
        return (np.broadcast_to(g / x.dtype.type(count), x.shape).copy(),)

    return record(out, (input,), backward)


# ---- interpolation ---------------------------------------------------------------------
def _positive_real(what: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what}: {name} must be a number or a pair of numbers, got {value!r}")
    if not (_math.isfinite(value) and value > 0):
        raise ValueError(f"{what}: {name} must be finite and > 0, got {value!r}")
    return float(value)


def interpolation_plan(
    what: str, in_hw: tuple, size, scale_factor, mode, align_corners, recompute_scale_factor
) -> tuple:
    """Validated (output (Ho, Wo), scales (sh, sw) or (None, None), align_corners)."""
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{what}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(
                f"{what}: align_corners can only be set with mode='bilinear' "
                f"(got align_corners={align_corners!r} with mode='nearest')"
            )
    elif align_corners is None:
        align_corners = False
    elif not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"{what}: align_corners must be a bool or None, got {align_corners!r}")
    if size is not None and scale_factor is not None:
        raise ValueError(f"{what}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{what}: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{what}: recompute_scale_factor is not meaningful with a size")
        out = V.pair(size, "size", what)
        if min(out) < 1:
            raise ValueError(f"{what}: size must be >= 1, got {size!r}")
        V.index_sizes(what, size=max(out))
        return out, (None, None), bool(align_corners)
    if isinstance(scale_factor, (tuple, list)):
        if len(scale_factor) != 2:
            raise ValueError(f"{what}: scale_factor must have 2 entries, got {scale_factor!r}")
        scales = tuple(_positive_real(what, "scale_factor", s) for s in scale_factor)
    else:
        scales = (_positive_real(what, "scale_factor", scale_factor),) * 2
    out = tuple(int(_math.floor(n * s)) for n, s in zip(in_hw, scales))
    if min(out) < 1:
        raise ValueError(
            f"{what}: scale_factor {scale_factor!r} turns the input size {in_hw} into an "
            f"output size {out}; both must be >= 1"
        )
    V.index_sizes(what, scale_factor=max(out))
    if recompute_scale_factor:
        scales = (None, None)  # the index maths then uses in/out, as PyTorch
    return out, scales, bool(align_corners)


def _inverse_scale(ft, in_size: int, out_size: int, scale):
    """PyTorch's source step per output pixel: 1/scale_factor if given, else in/out,
    rounded to the compute dtype ``ft``."""
    return ft(1.0 / scale) if scale is not None else ft(in_size) / ft(out_size)


def nearest_indices(in_size: int, out_size: int, scale=None) -> np.ndarray:
    """Source index of each output pixel: min(floor(dst * step), in_size - 1) with the
    float32 step of PyTorch's nearest mode (exact for out == in and out == 2 * in)."""
    dst = np.arange(out_size)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    step = _inverse_scale(np.float32, in_size, out_size, scale)
    src = np.floor(dst.astype(np.float32) * step).astype(np.int64)
    return np.minimum(src, in_size - 1)


def linear_taps(in_size: int, out_size: int, scale, align_corners: bool, dtype) -> tuple:
    """(i0, i1, l0, l1): output pixel j = l0[j] * x[i0[j]] + l1[j] * x[i1[j]].

    Source position: j * (in-1)/(out-1) with align_corners, else (j + 0.5) * step - 0.5
    clamped at 0, computed in ``dtype`` as PyTorch does; i0 = floor of it (at most in-1),
    i1 = i0 + 1 except at the last pixel. out == in copies (as PyTorch, whatever the scale).
    """
    ft = np.dtype(dtype).type
    dst = np.arange(out_size, dtype=dtype)
    if out_size == in_size:
        src = dst
    elif align_corners:
        step = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
        src = step * dst
    else:
        step = _inverse_scale(ft, in_size, out_size, scale)
        src = np.maximum(step * (dst + ft(0.5)) - ft(0.5), ft(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    l1 = np.clip(src - i0.astype(dtype), ft(0), ft(1))
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, ft(1) - l1, l1


def _interpolate_nearest(input, x, out_hw, scales):
    H, W = x.shape[-2:]
    ih = nearest_indices(H, out_hw[0], scales[0])
    iw = nearest_indices(W, out_hw[1], scales[1])
    out = x[..., ih[:, None], iw]

    def backward(g):
        return (_sum_into(_sum_into(g, ih, H, -2), iw, W, -1),)

    return record(out, (input,), backward)


def _interpolate_bilinear(input, x, out_hw, scales, align_corners):
    H, W = x.shape[-2:]
    h0, h1, a0, a1 = linear_taps(H, out_hw[0], scales[0], align_corners, x.dtype)
    w0, w1, b0, b1 = linear_taps(W, out_hw[1], scales[1], align_corners, x.dtype)
    a0, a1 = a0[:, None], a1[:, None]
    rows = x[..., w0] * b0 + x[..., w1] * b1  # along W first: (N, C, H, Wo)
    out = rows[..., h0, :] * a0 + rows[..., h1, :] * a1

    def backward(g):
        g_rows = _sum_into(g * a0, h0, H, -2) + _sum_into(g * a1, h1, H, -2)
        return (_sum_into(g_rows * b0, w0, W, -1) + _sum_into(g_rows * b1, w1, W, -1),)

    return record(out, (input,), backward)


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize input (N, C, H, W) -> (N, C, Ho, Wo) by ``mode`` 'nearest' or 'bilinear'.

    Exactly one of ``size`` (an int or (Ho, Wo)) and ``scale_factor`` (a number or a pair;
    Ho = floor(H * scale)) is given. nearest: output pixel j copies input
    min(floor(j * step), H - 1), step = 1/scale_factor when given (else H/Ho), in float32
    as PyTorch. bilinear: align_corners=False (default) maps pixel centres,
    src = (j + 0.5) * step - 0.5 clamped at 0; align_corners=True maps the corner pixels
    onto each other, src = j * (H - 1)/(Ho - 1). recompute_scale_factor=True uses H/Ho as
    the step even when scale_factor is given. antialias=True is not supported.
    """
    what = "interpolate"
    if antialias:
        raise ValueError(f"{what}: antialias=True is not supported")
    x = _image(what, input, (4,))
    out_hw, scales, align_corners = interpolation_plan(
        what, x.shape[-2:], size, scale_factor, mode, align_corners, recompute_scale_factor
    )
    if mode == "nearest":
        return _interpolate_nearest(input, x, out_hw, scales)
    return _interpolate_bilinear(input, x, out_hw, scales, align_corners)
