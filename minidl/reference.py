"""Naive reference implementations, written straight from the lecture notes.

This module is the oracle the kernel tests compare against and the baseline the
benchmarks measure, so every function here is written to be obviously correct, not fast:
numpy loops over the batch n, the filter f and the output position (i, j), as in the
naive forward pass of seed 002.

Layouts (as PyTorch):
    input   x        (N, C, H, W)
    weight  w        (F, C // groups, kh, kw)
    bias    b        (F,)
    output  y        (N, F, Ho, Wo)

Every pair argument (kernel_size, stride, padding, dilation) is an ``(h, w)`` tuple; a
plain int means the same value on both axes. Convolution here means cross-correlation (no
filter flip), as in PyTorch; ``true_conv2d`` flips the filter.

Output size per axis (seed 000, extended with dilation):
    Ho = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1
"""

import numpy as np

__all__ = [
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "col2im",
    "conv1d_forward",
    "conv2d_backward",
    "conv2d_backward_loops",
    "conv2d_forward",
    "im2col",
    "interpolate_bilinear_backward",
    "interpolate_bilinear_forward",
    "interpolate_nearest_backward",
    "interpolate_nearest_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "output_size",
    "transform_conv2d",
    "transform_filter",
    "true_conv2d",
]


def _pair(value):
    if isinstance(value, (tuple, list)):
        h, w = value
        return int(h), int(w)
    return int(value), int(value)


def output_size(in_size, kernel, stride=1, padding=0, dilation=1):
    """Output length along one axis: (in + 2*padding - dilation*(kernel-1) - 1)//stride + 1.

    With dilation 1 this is seed 000's floor((W_in - W_k + 2P) / S) + 1.
    """
    return (in_size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pad(x, padding, value=0.0):
    """Pad the two spatial axes of an (N, C, H, W) array by (ph, pw) on each side."""
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _window(planes, i, j, kernel_size, stride, dilation):
    """The (..., kh, kw) patch that output position (i, j) sees in padded (..., H, W) planes."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    top, left = i * sh, j * sw
    return planes[..., top : top + dh * (kh - 1) + 1 : dh, left : left + dw * (kw - 1) + 1 : dw]


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation y = w * x + b.

    x (N, C, H, W), weight (F, C // groups, kh, kw), bias (F,) or None -> y (N, F, Ho, Wo).
    Filter f of group g = f // (F // groups) sees input channels g*Cg ... g*Cg + Cg - 1.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    F, Cg, kh, kw = weight.shape
    Ho = output_size(H, kh, stride[0], padding[0], dilation[0])
    Wo = output_size(W, kw, stride[1], padding[1], dilation[1])
    filters_per_group = F // groups

    x_pad = _pad(x, padding)
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            first_channel = (f // filters_per_group) * Cg
            x_group = x_pad[n, first_channel : first_channel + Cg]  # (Cg, Hp, Wp)
            for i in range(Ho):
                for j in range(Wo):
                    patch = _window(x_group, i, j, (kh, kw), stride, dilation)  # (Cg, kh, kw)
                    y[n, f, i, j] = np.sum(patch * weight[f])
            if bias is not None:
                y[n, f] += bias[f]
    return y


def _dilate(a, factor):
    """Insert (factor - 1) zeros between neighbouring entries of a 2-D array, per axis.

    A stride-s convolution is a stride-1 convolution whose outputs are dropped between
    every s-th one (seed 000); dilating dY by s puts the kept outputs back in place.
    """
    fh, fw = factor
    rows, cols = a.shape
    out = np.zeros(((rows - 1) * fh + 1, (cols - 1) * fw + 1), dtype=a.dtype)
    out[::fh, ::fw] = a
    return out


def _correlate_valid(a, k):
    """2-D 'valid' cross-correlation of a plane a (A, B) with a kernel k (P, Q), loops."""
    P, Q = k.shape
    out = np.zeros((a.shape[0] - P + 1, a.shape[1] - Q + 1), dtype=np.result_type(a, k))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(a[i : i + P, j : j + Q] * k)
    return out


def _full_convolution(rotated_filter, grad):
    """Seed 001's 'full convolution': slide the 180°-rotated filter over grad, zero-padded
    by (kernel - 1) on every side, so that every input position gets every output that
    touched it.  Result shape: grad.shape + kernel.shape - 1."""
    P, Q = rotated_filter.shape
    grad_padded = np.pad(grad, ((P - 1, P - 1), (Q - 1, Q - 1)))
    return _correlate_valid(grad_padded, rotated_filter)


def conv2d_backward(x, weight, grad_out, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of conv2d_forward, written as the two convolutions of seeds 000 and 001.

    x (N, C, H, W), weight (F, C // groups, kh, kw), grad_out dY (N, F, Ho, Wo)
    -> (dx (N, C, H, W), dw (F, C // groups, kh, kw), db (F,)).

        db = sum of dY over n, i, j
        dW = correlation(padded input X, dY)              (seed 001 "Convolution(X, dL/dO)")
        dX = full convolution(rot180(W), dY), then crop    (seed 001)

    Stride s: dY is first dilated with (s - 1) zeros between entries (stride only drops
    outputs, so the dropped ones get zero gradient).  Dilation d: the filter is dilated
    with (d - 1) zeros between taps, and dW is read off at the dilated tap offsets.
    Padding p: the convolutions work on the padded input; dX drops the p-wide border.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    F, Cg, kh, kw = weight.shape
    (ph, pw), (dil_h, dil_w) = padding, dilation
    filters_per_group = F // groups
    dtype = np.result_type(x, weight, grad_out)

    x_pad = _pad(x, padding)
    Hp, Wp = x_pad.shape[2:]
    dx_pad = np.zeros((N, C, Hp, Wp), dtype=dtype)
    dw = np.zeros(weight.shape, dtype=dtype)
    db = grad_out.sum(axis=(0, 2, 3)).astype(dtype)

    for n in range(N):
        for f in range(F):
            first_channel = (f // filters_per_group) * Cg
            dy = _dilate(grad_out[n, f], stride)  # ((Ho-1)*sh+1, (Wo-1)*sw+1)
            for c in range(Cg):
                plane = x_pad[n, first_channel + c]  # (Hp, Wp)

                # dW: correlation of the padded input with dY, read at the filter taps.
                correlation = _correlate_valid(plane, dy)
                dw[f, c] += correlation[
                    : dil_h * (kh - 1) + 1 : dil_h, : dil_w * (kw - 1) + 1 : dil_w
                ]

                # dX: full convolution of the rotated (dilated) filter with dY.
                rotated = _dilate(weight[f, c], dilation)[::-1, ::-1]
                contribution = _full_convolution(rotated, dy)
                # Input rows/cols past the last window (when (Hp - k_eff) % s != 0) were
                # never read by the forward pass, so their gradient stays zero.
                rows, cols = contribution.shape
                dx_pad[n, first_channel + c, :rows, :cols] += contribution

    dx = dx_pad[:, :, ph : ph + H, pw : pw + W]
    return np.ascontiguousarray(dx), dw, db


def conv2d_backward_loops(x, weight, grad_out, stride=1, padding=0, dilation=1, groups=1):
    """The same gradients as conv2d_backward, as seed 002's loops over n, f, i, j: each
    output (i, j) sends dY * window to dW and dY * W back onto its window of dX.

    Same shapes as conv2d_backward.  This is the naive baseline the benchmarks time (it
    does as many numpy calls as the naive forward), while conv2d_backward, written as
    the lecture notes' two convolutions, is the one that reads like the maths.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    F, Cg, kh, kw = weight.shape
    Ho, Wo = grad_out.shape[2:]
    (ph, pw), filters_per_group = padding, F // groups
    dtype = np.result_type(x, weight, grad_out)

    x_pad = _pad(x, padding)
    dx_pad = np.zeros(x_pad.shape, dtype=dtype)
    dw = np.zeros(weight.shape, dtype=dtype)
    db = grad_out.sum(axis=(0, 2, 3)).astype(dtype)
    for n in range(N):
        for f in range(F):
            channels = slice((f // filters_per_group) * Cg, (f // filters_per_group + 1) * Cg)
            for i in range(Ho):
                for j in range(Wo):
                    dy = grad_out[n, f, i, j]
                    dw[f] += _window(x_pad[n, channels], i, j, (kh, kw), stride, dilation) * dy
                    _window(dx_pad[n, channels], i, j, (kh, kw), stride, dilation)[...] += (
                        weight[f] * dy
                    )
    return np.ascontiguousarray(dx_pad[:, :, ph : ph + H, pw : pw + W]), dw, db


def true_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """True (textbook) convolution: cross-correlation with the filter rotated by 180°
    (seed 003).  Same shapes as conv2d_forward."""
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1])
    return conv2d_forward(x, flipped, bias, stride, padding, dilation, groups)


def conv1d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation: x (N, C, L), weight (F, C // groups, k) -> y (N, F, Lo).

    It is conv2d on images of height 1 with (1, k) filters."""
    y = conv2d_forward(
        x[:, :, None, :],
        weight[:, :, None, :],
        bias,
        (1, int(stride)),
        (0, int(padding)),
        (1, int(dilation)),
        groups,
    )
    return y[:, :, 0, :]


# --------------------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------------------


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold every window into a column.

    x (N, C, H, W) -> cols (N, C*kh*kw, Ho*Wo); row c*kh*kw + u*kw + v, column i*Wo + j
    holds x_padded[n, c, i*sh + u*dh, j*sw + v*dw] (zero padding).
    """
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    x_pad = _pad(x, (ph, pw))
    cols = np.zeros((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    for i in range(Ho):
                        for j in range(Wo):
                            cols[n, c * kh * kw + u * kw + v, i * Wo + j] = x_pad[
                                n, c, i * sh + u * dh, j * sw + v * dw
                            ]
    return cols


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an image, summing overlapping windows (adjoint of im2col).

    cols (N, C*kh*kw, Ho*Wo) -> x (N, C, H, W) with input_shape = (N, C, H, W).
    """
    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = input_shape
    Ho, Wo = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    x_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for n in range(N):
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    for i in range(Ho):
                        for j in range(Wo):
                            x_pad[n, c, i * sh + u * dh, j * sw + v * dw] += cols[
                                n, c * kh * kw + u * kw + v, i * Wo + j
                            ]
    return np.ascontiguousarray(x_pad[:, :, ph : ph + H, pw : pw + W])


# --------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------


def _pool_windows(H, W, kernel_size, stride, padding):
    """Yield (i, j, positions) for every output position, where positions lists the
    non-padding input coordinates (h, w) of the window in row-major window order."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    for i in range(Ho):
        for j in range(Wo):
            positions = [
                (i * sh - ph + u, j * sw - pw + v)
                for u in range(kh)
                for v in range(kw)
                if 0 <= i * sh - ph + u < H and 0 <= j * sw - pw + v < W
            ]
            yield i, j, positions


def _resolve_stride(kernel_size, stride):
    return kernel_size if stride is None else _pair(stride)


def _arg_pool(x, kernel_size, stride, padding, start, better):
    """Max or min pooling with the winner's index: each window's value starts at ``start``
    (what padding would be), a value replaces the best one when ``better(value, best)`` or
    when it is a NaN; indices h*W + w in the input plane."""
    kernel_size = _pair(kernel_size)
    stride, padding = _resolve_stride(kernel_size, stride), _pair(padding)
    N, C, H, W = x.shape
    Ho = output_size(H, kernel_size[0], stride[0], padding[0])
    Wo = output_size(W, kernel_size[1], stride[1], padding[1])
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    indices = np.zeros((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            plane = x[n, c]
            for i, j, positions in _pool_windows(H, W, kernel_size, stride, padding):
                best_value, best_index = start, positions[0][0] * W + positions[0][1]
                for h, w in positions:
                    value = plane[h, w]
                    if better(value, best_value) or np.isnan(value):
                        best_value, best_index = value, h * W + w
                y[n, c, i, j] = best_value
                indices[n, c, i, j] = best_index
    return y, indices


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling with argmax: x (N, C, H, W) -> (y (N, C, Ho, Wo), indices int64).

    indices[n, c, i, j] = h*W + w, the flat position in the input plane of the window's
    maximum.  Padding acts as -inf (it never wins).  Ties go to the first maximum in
    row-major window order; a NaN wins over any number (PyTorch's rule
    ``val > best or isnan(val)``, so with several NaNs the last one is kept).
    stride defaults to the kernel size.
    """
    return _arg_pool(x, kernel_size, stride, padding, -np.inf, lambda v, best: v > best)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Route each dY to the input position that won its window (seed 001: 'the error is
    just assigned to where it comes from'); overlapping windows add up.

    grad_out (N, C, Ho, Wo), indices int64 (N, C, Ho, Wo) -> dx with input_shape (N, C, H, W).
    """
    N, C, H, W = input_shape
    dx = np.zeros(input_shape, dtype=grad_out.dtype)
    for n in range(N):
        for c in range(C):
            flat = dx[n, c].reshape(-1)  # a view of the plane
            for i in range(grad_out.shape[2]):
                for j in range(grad_out.shape[3]):
                    flat[indices[n, c, i, j]] += grad_out[n, c, i, j]
    return dx


def _avg_divisor(positions, kernel_size, count_include_pad):
    return kernel_size[0] * kernel_size[1] if count_include_pad else len(positions)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean pooling: x (N, C, H, W) -> y (N, C, Ho, Wo).

    Each window's sum is divided by kh*kw when count_include_pad (padded zeros count, the
    PyTorch default), else by the number of non-padding elements in the window.
    """
    kernel_size = _pair(kernel_size)
    stride, padding = _resolve_stride(kernel_size, stride), _pair(padding)
    N, C, H, W = x.shape
    Ho = output_size(H, kernel_size[0], stride[0], padding[0])
    Wo = output_size(W, kernel_size[1], stride[1], padding[1])
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i, j, positions in _pool_windows(H, W, kernel_size, stride, padding):
                total = sum(x[n, c, h, w] for h, w in positions)
                y[n, c, i, j] = total / _avg_divisor(positions, kernel_size, count_include_pad)
    return y


def avg_pool2d_backward(
    grad_out, input_shape, kernel_size, stride=None, padding=0, count_include_pad=True
):
    """Spread each dY / divisor over its window (seed 001: 'multiplied by 1/(N x N) and
    assigned to the whole pooling block'); padded positions receive nothing.

    grad_out (N, C, Ho, Wo) -> dx with input_shape (N, C, H, W).
    """
    kernel_size = _pair(kernel_size)
    stride, padding = _resolve_stride(kernel_size, stride), _pair(padding)
    N, C, H, W = input_shape
    dx = np.zeros(input_shape, dtype=grad_out.dtype)
    for n in range(N):
        for c in range(C):
            for i, j, positions in _pool_windows(H, W, kernel_size, stride, padding):
                share = grad_out[n, c, i, j] / _avg_divisor(
                    positions, kernel_size, count_include_pad
                )
                for h, w in positions:
                    dx[n, c, h, w] += share
    return dx


# --------------------------------------------------------------------------------------
# Resizing (issue 20): adaptive average pooling, nearest and bilinear interpolation.
# Plain loops over every output (and input) pixel, straight from PyTorch's definitions.
# --------------------------------------------------------------------------------------


def adaptive_pool_window(i, in_size, out_size):
    """Input positions start..end-1 averaged into output i along one axis:
    start = floor(i * in / out), end = ceil((i + 1) * in / out)."""
    return (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)


def adaptive_avg_pool2d_forward(x, output_size):
    """x (N, C, H, W) -> (N, C, Ho, Wo), output_size = (Ho, Wo) ints."""
    N, C, H, W = x.shape
    Ho, Wo = output_size
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                h0, h1 = adaptive_pool_window(i, H, Ho)
                for j in range(Wo):
                    w0, w1 = adaptive_pool_window(j, W, Wo)
                    total = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            total += x[n, c, h, w]
                    y[n, c, i, j] = total / ((h1 - h0) * (w1 - w0))
    return y


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    """Each dY / window size added to every input of its window."""
    N, C, H, W = input_shape
    Ho, Wo = grad_out.shape[2:]
    dx = np.zeros(input_shape, dtype=grad_out.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                h0, h1 = adaptive_pool_window(i, H, Ho)
                for j in range(Wo):
                    w0, w1 = adaptive_pool_window(j, W, Wo)
                    share = grad_out[n, c, i, j] / ((h1 - h0) * (w1 - w0))
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += share
    return dx


def _source_step(ftype, in_size, out_size, scale):
    # PyTorch's step: 1/scale_factor when one was given, else in/out, rounded to ftype
    return ftype(1.0 / scale) if scale is not None else ftype(in_size) / ftype(out_size)


def nearest_source(j, in_size, out_size, scale=None):
    """Input index copied into output j: j when out == in, j // 2 when out == 2 * in,
    else min(floor(j * step), in - 1) with the step in float32 (as PyTorch)."""
    if out_size == in_size:
        return j
    if out_size == 2 * in_size:
        return j // 2
    step = _source_step(np.float32, in_size, out_size, scale)
    return min(int(np.floor(np.float32(j) * step)), in_size - 1)


def interpolate_nearest_forward(x, output_size, scales=(None, None)):
    """x (N, C, H, W) -> (N, C, Ho, Wo): y[i, j] = x[src(i), src(j)]."""
    N, C, H, W = x.shape
    Ho, Wo = output_size
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    h = nearest_source(i, H, Ho, scales[0])
                    w = nearest_source(j, W, Wo, scales[1])
                    y[n, c, i, j] = x[n, c, h, w]
    return y


def interpolate_nearest_backward(grad_out, input_shape, scales=(None, None)):
    N, C, H, W = input_shape
    Ho, Wo = grad_out.shape[2:]
    dx = np.zeros(input_shape, dtype=grad_out.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    h = nearest_source(i, H, Ho, scales[0])
                    w = nearest_source(j, W, Wo, scales[1])
                    dx[n, c, h, w] += grad_out[n, c, i, j]
    return dx


def linear_source(j, in_size, out_size, scale, align_corners, dtype):
    """(i0, i1, l0, l1) for output j along one axis, in ``dtype`` arithmetic as PyTorch:
    position j * (in - 1) / (out - 1) with align_corners, else (j + 0.5) * step - 0.5
    clamped at 0; out == in copies. i0 = floor (at most in - 1), i1 = the next input
    (or i0 at the edge), l1 = position - i0 clamped to [0, 1], l0 = 1 - l1."""
    ft = np.dtype(dtype).type
    if out_size == in_size:
        return j, j, ft(1), ft(0)
    if align_corners:
        step = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
        pos = step * ft(j)
    else:
        step = _source_step(ft, in_size, out_size, scale)
        pos = max(step * (ft(j) + ft(0.5)) - ft(0.5), ft(0))
    i0 = min(int(np.floor(pos)), in_size - 1)
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    l1 = min(max(pos - ft(i0), ft(0)), ft(1))
    return i0, i1, ft(1) - l1, l1


def interpolate_bilinear_forward(x, output_size, scales=(None, None), align_corners=False):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each output mixes the 2 x 2 nearest inputs,
    weights l_h * l_w."""
    N, C, H, W = x.shape
    Ho, Wo = output_size
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        h0, h1, a0, a1 = linear_source(i, H, Ho, scales[0], align_corners, x.dtype)
        for j in range(Wo):
            w0, w1, b0, b1 = linear_source(j, W, Wo, scales[1], align_corners, x.dtype)
            for n in range(N):
                for c in range(C):
                    p = x[n, c]
                    y[n, c, i, j] = a0 * (b0 * p[h0, w0] + b1 * p[h0, w1]) + a1 * (
                        b0 * p[h1, w0] + b1 * p[h1, w1]
                    )
    return y


def interpolate_bilinear_backward(grad_out, input_shape, scales=(None, None), align_corners=False):
    N, C, H, W = input_shape
    Ho, Wo = grad_out.shape[2:]
    dx = np.zeros(input_shape, dtype=grad_out.dtype)
    for i in range(Ho):
        h0, h1, a0, a1 = linear_source(i, H, Ho, scales[0], align_corners, grad_out.dtype)
        for j in range(Wo):
            w0, w1, b0, b1 = linear_source(j, W, Wo, scales[1], align_corners, grad_out.dtype)
            for n in range(N):
                for c in range(C):
                    g = grad_out[n, c, i, j]
                    dx[n, c, h0, w0] += a0 * b0 * g
                    dx[n, c, h0, w1] += a0 * b1 * g
                    dx[n, c, h1, w0] += a1 * b0 * g
                    dx[n, c, h1, w1] += a1 * b1 * g
    return dx


# --------------------------------------------------------------------------------------
# Transform-invariant convolution (seed 004, issue 20): a loop over the transforms.
# --------------------------------------------------------------------------------------


def transform_filter(w, name):
    """w (..., k, k) under one transform: rotK = np.rot90 by K // 90 quarter turns
    (counter-clockwise), flip = left-right mirror, flip_rotK = flip after rotK."""
    turns = {"id": 0, "rot90": 1, "rot180": 2, "rot270": 3}
    if name.startswith("flip"):
        return np.flip(np.rot90(w, turns[name[5:] or "id"], (-2, -1)), -1)
    return np.rot90(w, turns[name], (-2, -1))


def transform_conv2d(x, weight, bias=None, transforms=("id",), stride=1, padding=0, reduce="max"):
    """conv2d_forward with each transformed filter in turn: maps (N, F, T, Ho, Wo); their
    maximum over T with reduce="max", else (N, F * T, Ho, Wo) with channel f * T + t."""
    maps = [
        conv2d_forward(x, transform_filter(weight, name), bias, stride, padding)
        for name in transforms
    ]
    stacked = np.stack(maps, axis=2)
    if reduce == "max":
        return stacked.max(axis=2)
    N, F, T, Ho, Wo = stacked.shape
    return stacked.reshape(N, F * T, Ho, Wo)


# Batch normalisation
# --------------------------------------------------------------------------------------
# Ioffe & Szegedy (2015): per channel c, over the M = N*H*W values of x[:, c],
#     mu = Σ x / M,   var = Σ (x - mu)² / M,   xhat = (x - mu) / sqrt(var + eps),
#     y = gamma * xhat + beta,
# and the running statistics, updated in training with the unbiased variance:
#     running_mean = (1 - momentum) * running_mean + momentum * mu
#     running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
# In eval mode mu and var are the running statistics.


def _channel_values(a, c):
    """The M values of channel c of a (N, C, ...), as a flat float64 vector."""
    return np.asarray(a[:, c], dtype=np.float64).ravel()


def batch_norm_forward(
    x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
):
    """x (N, C, ...), weight and bias (C,) or None (1 and 0) -> (y, running_mean,
    running_var): y float64 shaped like x and the new running statistics (float64 copies;
    None when none were given)."""
    C = x.shape[1]
    y = np.zeros(x.shape, dtype=np.float64)
    new_mean = None if running_mean is None else np.array(running_mean, dtype=np.float64)
    new_var = None if running_var is None else np.array(running_var, dtype=np.float64)
    for c in range(C):
        values = _channel_values(x, c)
        M = values.size
        if training:
            mu = sum(values) / M
            var = sum((v - mu) ** 2 for v in values) / M
            if new_mean is not None:
                new_mean[c] = (1 - momentum) * new_mean[c] + momentum * mu
                new_var[c] = (1 - momentum) * new_var[c] + momentum * var * M / (M - 1)
        else:
            mu, var = float(running_mean[c]), float(running_var[c])
        gamma = 1.0 if weight is None else float(weight[c])
        beta = 0.0 if bias is None else float(bias[c])
        xhat = (np.asarray(x[:, c], dtype=np.float64) - mu) / np.sqrt(var + eps)
        y[:, c] = gamma * xhat + beta
    return y, new_mean, new_var


def batch_norm_backward(
    x, grad_out, running_mean=None, running_var=None, weight=None, training=True, eps=1e-5
):
    """Gradients of batch_norm_forward by the chain rule through mu and var (Ioffe &
    Szegedy, section 3): x, grad_out (N, C, ...) -> (dx, dweight (C,), dbias (C,)),
    float64.  In eval mode mu and var are constants (the running statistics)."""
    C = x.shape[1]
    dx = np.zeros(x.shape, dtype=np.float64)
    dweight = np.zeros(C)
    dbias = np.zeros(C)
    for c in range(C):
        values = _channel_values(x, c)
        dy = _channel_values(grad_out, c)
        M = values.size
        if training:
            mu = sum(values) / M
            var = sum((v - mu) ** 2 for v in values) / M
        else:
            mu, var = float(running_mean[c]), float(running_var[c])
        gamma = 1.0 if weight is None else float(weight[c])
        xhat = (values - mu) / np.sqrt(var + eps)
        dbias[c] = sum(dy)
        dweight[c] = sum(dy * xhat)
        dxhat = dy * gamma
        if training:
            dvar = sum(dxhat * (values - mu)) * -0.5 * (var + eps) ** -1.5
            dmu = sum(-dxhat / np.sqrt(var + eps)) + dvar * sum(-2 * (values - mu)) / M
            grad = dxhat / np.sqrt(var + eps) + dvar * 2 * (values - mu) / M + dmu / M
        else:
            grad = dxhat / np.sqrt(var + eps)
        dx[:, c] = grad.reshape(dx[:, c].shape)
    return dx, dweight, dbias


__all__ += ["batch_norm_backward", "batch_norm_forward"]


def min_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Min pooling with argmin (seed 000 names max, mean and min pooling): x (N, C, H, W)
    -> (y (N, C, Ho, Wo), indices int64 h*W + w).

    Padding never wins (it acts as +inf); ties go to the first minimum in row-major
    window order; a NaN wins (the last one), as in max_pool2d_forward. The backward is
    max_pool2d_backward with these indices: each dY goes to its window's minimum.
    """
    return _arg_pool(x, kernel_size, stride, padding, np.inf, lambda v, best: v < best)


__all__ += ["min_pool2d_forward"]
