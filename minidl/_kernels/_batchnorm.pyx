"""Batch normalisation over x (N, C, H, W), forward and backward, parallel over channels.

Per channel c, with M = N*H*W values x[:, c]:
  training   mean = Σx / M,  var = Σ(x - mean)² / M  (biased; two passes, in double)
  eval       mean, var given (the running statistics)
  forward    invstd = 1/sqrt(var + eps);  y = x * a + b0  with a = w*invstd, b0 = b - mean*a
  backward   dbias = Σdy,  dweight = Σ(x - mean)·dy · invstd
             training:  dx = (dy - Σdy/M - (x - mean) · Σ(x - mean)·dy · invstd² / M) · w·invstd
             eval:      dx = dy · w·invstd
Each channel is handled by one thread, its sums taken in a fixed order (four lanes in
double, combined at the end), so results are bit-identical for any thread count.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport sqrt
from cython cimport floating

from minidl._kernels._helpers cimport minidl_planned_threads, choose_threads

cnp.import_array()


cdef struct Geometry:
    Py_ssize_t N, C, L      # L = H*W: one channel of one sample is L contiguous values


cdef inline double _sum(const floating* x, const Geometry* g) noexcept nogil:
    """Σ over n, l of x[n, c, l] (x points at x[0, c, 0]), four lanes."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t n, l
    cdef const floating* p
    for n in range(g.N):
        p = x + n * g.C * g.L
        l = 0
        while l + 4 <= g.L:
            s0 += p[l]
            s1 += p[l + 1]
            s2 += p[l + 2]
            s3 += p[l + 3]
            l += 4
        while l < g.L:
            s0 += p[l]
            l += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _sum_sq(const floating* x, const Geometry* g, double mean) noexcept nogil:
    """Σ (x[n, c, l] - mean)², four lanes."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, d0, d1, d2, d3
    cdef Py_ssize_t n, l
    cdef const floating* p
    for n in range(g.N):
        p = x + n * g.C * g.L
        l = 0
        while l + 4 <= g.L:
            d0 = p[l] - mean
            d1 = p[l + 1] - mean
            d2 = p[l + 2] - mean
            d3 = p[l + 3] - mean
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
            l += 4
        while l < g.L:
            d0 = p[l] - mean
            s0 += d0 * d0
            l += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _dot_centred(const floating* x, const floating* dy, const Geometry* g,
                                double mean) noexcept nogil:
    """Σ (x[n, c, l] - mean) * dy[n, c, l], four lanes."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t n, l
    cdef const floating* p
    cdef const floating* q
    for n in range(g.N):
        p = x + n * g.C * g.L
        q = dy + n * g.C * g.L
        l = 0
        while l + 4 <= g.L:
            s0 += (p[l] - mean) * q[l]
            s1 += (p[l + 1] - mean) * q[l + 1]
            s2 += (p[l + 2] - mean) * q[l + 2]
            s3 += (p[l + 3] - mean) * q[l + 3]
            l += 4
        while l < g.L:
            s0 += (p[l] - mean) * q[l]
            l += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _affine(const floating* x, floating* y, const Geometry* g, floating a,
                         floating b) noexcept nogil:
    """y[n, c, l] = x[n, c, l] * a + b."""
    cdef Py_ssize_t n, l, off
    for n in range(g.N):
        off = n * g.C * g.L
        for l in range(g.L):
            y[off + l] = x[off + l] * a + b


cdef _forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, weight, bias,
              double[::1] mean, double[::1] var, double[::1] invstd, bint training,
              double eps, int num_threads):
    cdef Geometry g
    g.N, g.C, g.L = x.shape[0], x.shape[1], x.shape[2]
    cdef const floating[::1] wv
    cdef const floating[::1] bv
    cdef const floating* wp = NULL
    cdef const floating* bp = NULL
    cdef Py_ssize_t c
    cdef double M = <double>g.N * g.L, mu, a
    cdef int nt = choose_threads(num_threads, (3.0 if training else 1.0) * g.N * g.C * g.L, g.C)
    if weight is not None:
        wv = weight
        wp = &wv[0]
    if bias is not None:
        bv = bias
        bp = &bv[0]
    with nogil:
        for c in prange(g.C, num_threads=nt, schedule='static'):
            if training:
                mu = _sum(&x[0, c, 0], &g) / M
                mean[c] = mu
                var[c] = _sum_sq(&x[0, c, 0], &g, mu) / M
            mu = mean[c]
            invstd[c] = 1.0 / sqrt(var[c] + eps)
            a = invstd[c] * (wp[c] if wp != NULL else 1.0)
            _affine(&x[0, c, 0], &y[0, c, 0], &g, <floating>a,
                    <floating>((bp[c] if bp != NULL else 0.0) - mu * a))


cdef _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x, floating[:, :, ::1] dx,
               weight, double[::1] mean, double[::1] invstd, double[::1] sum_dy,
               double[::1] dot, bint training, bint need_sums, int num_threads):
    cdef Geometry g
    g.N, g.C, g.L = x.shape[0], x.shape[1], x.shape[2]
    cdef const floating[::1] wv
    cdef const floating* wp = NULL
    cdef floating* dxp = &dx[0, 0, 0] if dx is not None else NULL
    cdef Py_ssize_t c, n, l, off
    cdef double M = <double>g.N * g.L, scale
    cdef floating mu, k, gm, s
    cdef const floating* xc
    cdef const floating* gc
    cdef floating* oc
    cdef double passes = (2.0 if need_sums else 0.0) + (1.0 if dxp != NULL else 0.0)
    cdef int nt = choose_threads(num_threads, passes * g.N * g.C * g.L, g.C)
    if weight is not None:
        wv = weight
        wp = &wv[0]
    with nogil:
        for c in prange(g.C, num_threads=nt, schedule='static'):
            xc = &x[0, c, 0]
            gc = &dy[0, c, 0]
            if need_sums:
                sum_dy[c] = _sum(gc, &g)
                dot[c] = _dot_centred(xc, gc, &g, mean[c])
            if dxp != NULL:
                scale = invstd[c] * (wp[c] if wp != NULL else 1.0)
                oc = dxp + c * g.L
                s = <floating>scale
                if training:
                    mu = <floating>mean[c]
                    gm = <floating>(sum_dy[c] / M)
                    k = <floating>(dot[c] * invstd[c] * invstd[c] / M)
                    for n in range(g.N):
                        off = n * g.C * g.L
                        for l in range(g.L):
                            oc[off + l] = ((gc[off + l] - gm) - (xc[off + l] - mu) * k) * s
                else:
                    _affine(gc, oc, &g, s, 0)


def batch_norm_forward(x, weight, bias, mean, var, bint training, double eps, int num_threads):
    """(y (N, C, L), invstd (C,) float64) for x (N, C, L) (L = H*W), weight and bias (C,)
    or None.  mean, var: float64 (C,); training writes the batch mean and biased variance
    into them, eval reads them (the running statistics)."""
    y = np.empty_like(x)
    invstd = np.empty(x.shape[1], dtype=np.float64)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _forward[float](x, y, weight, bias, mean, var, invstd, training, eps, num_threads)
    else:
        _forward[double](x, y, weight, bias, mean, var, invstd, training, eps, num_threads)
    return y, invstd


def batch_norm_backward(grad_out, x, weight, mean, invstd, bint training,
                        bint need_input_grad, bint need_param_grads, int num_threads):
    """(grad_input (N, C, L) or None, grad_weight (C,), grad_bias (C,)) for the forward
    that gave mean and invstd (float64 (C,)); the parameter gradients (float64, whatever
    the affine parameters are) are None unless need_param_grads."""
    cdef bint need_sums = need_param_grads or (need_input_grad and training)
    dx = np.empty_like(x) if need_input_grad else None
    sum_dy = np.empty(x.shape[1], dtype=np.float64)
    dot = np.empty(x.shape[1], dtype=np.float64)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _backward[float](grad_out, x, dx, weight, mean, invstd, sum_dy, dot, training,
                         need_sums, num_threads)
    else:
        _backward[double](grad_out, x, dx, weight, mean, invstd, sum_dy, dot, training,
                          need_sums, num_threads)
    if not need_param_grads:
        return dx, None, None
    return dx, dot * invstd, sum_dy


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
