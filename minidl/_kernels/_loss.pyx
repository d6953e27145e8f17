"""Softmax cross-entropy of (N, C) logits against class indices, one pass over each row
forward and backward (minidl.ops.loss, F.cross_entropy's common case).

Per row i, with t the row's class index, the operations of the numpy path
(minidl.ops.activation._log_softmax):

    m = max_j x[i, j],   l = log Σ_j exp(x[i, j] - m),   loss[i] = -((x[i, t] - m) - l)
    backward: dx[i, j] = (exp((x[i, j] - m) - l) - [j == t]) * scale[i]

The forward keeps (m, l) per row for the backward.  One call replaces about ten numpy
calls: inside a training step their fixed costs, not the arithmetic, took the time.
Rows are independent and each is summed left to right, so results do not depend on
anything but the inputs.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.math cimport exp, expf, log, logf
from libc.stdint cimport int64_t

cnp.import_array()


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating _log(floating v) noexcept nogil:
    if floating is float:
        return logf(v)
    else:
        return log(v)


cdef double _forward(const floating[:, ::1] x, const int64_t[:] t, floating[::1] loss,
                     floating[:, ::1] stats) noexcept nogil:
    """loss[i] and stats[i] = (m, l) per row; returns Σ loss in double, row order."""
    cdef Py_ssize_t i, j, C = x.shape[1]
    cdef floating m, s
    cdef double total = 0
    for i in range(x.shape[0]):
        m = x[i, 0]
        for j in range(1, C):
            if x[i, j] > m or x[i, j] != x[i, j]:   # NaN wins, as np.maximum
                m = x[i, j]
        s = 0
        for j in range(C):
            s = s + _exp(x[i, j] - m)
        s = _log(s)
        loss[i] = -((x[i, t[i]] - m) - s)
        stats[i, 0] = m
        stats[i, 1] = s
        total += loss[i]
    return total


cdef void _backward(const floating[:, ::1] x, const int64_t[:] t,
                    const floating[:, ::1] stats, const floating[:] scale,
                    floating[:, ::1] dx) noexcept nogil:
    cdef Py_ssize_t i, j, C = x.shape[1]
    cdef floating s
    for i in range(x.shape[0]):
        s = scale[i if scale.shape[0] > 1 else 0]
        for j in range(C):
            dx[i, j] = _exp((x[i, j] - stats[i, 0]) - stats[i, 1]) * s
        dx[i, t[i]] = (_exp((x[i, t[i]] - stats[i, 0]) - stats[i, 1]) - 1) * s


cdef bint _in_range(const int64_t[:] t, int64_t C) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint ok = True
    for i in range(t.shape[0]):
        ok &= (t[i] >= 0) & (t[i] < C)
    return ok


def cross_entropy_forward(cnp.ndarray x, const int64_t[:] target):
    """(loss (N,), stats (N, 2), Σ loss as a float) for C-contiguous float32 or float64
    logits x (N, C) and class indices target (N,); None if a target lies outside
    0..C-1 (the caller then says which)."""
    if target.shape[0] != x.shape[0] or not _in_range(target, x.shape[1]):
        return None
    loss = np.empty(x.shape[0], dtype=x.dtype)
    stats = np.empty((x.shape[0], 2), dtype=x.dtype)
    cdef double total
    if x.dtype == np.float32:
        total = _forward[float](x, target, loss, stats)
    else:
        total = _forward[double](x, target, loss, stats)
    return loss, stats, total


def cross_entropy_backward(cnp.ndarray x, const int64_t[:] target, cnp.ndarray stats,
                           cnp.ndarray scale):
    """dx (N, C) for cross_entropy_forward's x, target and stats: row i's softmax minus
    its one-hot target, times scale[i] (scale (N,), or (1,) for every row), scale of
    x's dtype."""
    cdef Py_ssize_t n = x.shape[0]
    if (target.shape[0] != n or stats.shape[0] != n or stats.shape[1] != 2
            or (scale.shape[0] != 1 and scale.shape[0] != n)):
        raise ValueError(f"cross_entropy_backward: target {target.shape[0]}, stats "
                         f"{stats.shape[0]}x{stats.shape[1]} and scale {scale.shape[0]} do "
                         f"not fit {n} rows")
    dx = np.empty_like(x)
    if x.dtype == np.float32:
        _backward[float](x, target, stats, scale, dx)
    else:
        _backward[double](x, target, stats, scale, dx)
    return dx
