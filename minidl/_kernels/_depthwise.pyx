# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depth-wise 2-D convolution (groups = C): forward, input gradient, weight gradient.

Layouts: x (N, C, H, W), weight (F, 1, kh, kw) with F = C * m (m filters per input
channel: filter f reads channel f // m), bias (F,), y / grad_out (N, F, Ho, Wo).

Each filter sees one plane, so there is no GEMM: the kernels loop over the taps and, for
each output row, add ``w[i, j] * input row`` into the output row (the inner loop runs
along ow and vectorises).  A plane with padding is first copied into a zeroed per-thread
scratch plane (Hp, Wp), so the inner loops need no bounds checks.

Parallel over the (n, c) planes: the forward and the input gradient write each output
plane from one thread.  The weight gradient is split into units (chunk of samples,
channel); a unit sums its taps into per-ow lanes (vectorised), then reduces the lanes
into its own partial; partials are added in chunk order.  The chunks depend on the
problem only, so every result is bit-identical for any thread count.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
from cython cimport floating

from minidl._kernels._helpers cimport minidl_planned_threads, choose_threads, partial_chunks

cnp.import_array()


cdef struct Geometry:
    Py_ssize_t N, C, H, W, m, F, Ho, Wo, Hp, Wp
    int kh, kw, sh, sw, ph, pw, dh, dw
    bint padded          # ph or pw > 0: planes go through the padded scratch


cdef Geometry _geometry(tuple xshape, tuple wshape, stride, padding, dilation):
    cdef Geometry g
    g.N, g.C, g.H, g.W = xshape
    g.F = wshape[0]
    g.kh, g.kw = wshape[2], wshape[3]
    g.m = g.F // g.C
    g.sh, g.sw = stride
    g.ph, g.pw = padding
    g.dh, g.dw = dilation
    g.Hp = g.H + 2 * g.ph
    g.Wp = g.W + 2 * g.pw
    g.Ho = (g.Hp - g.dh * (g.kh - 1) - 1) // g.sh + 1
    g.Wo = (g.Wp - g.dw * (g.kw - 1) - 1) // g.sw + 1
    g.padded = g.ph > 0 or g.pw > 0
    return g


cdef inline const floating* _source(const Geometry* g, const floating* plane,
                                    floating* scratch) noexcept nogil:
    """The (Hp, Wp) plane the taps read: the input plane itself, or its zero-padded copy."""
    cdef Py_ssize_t h
    if not g.padded:
        return plane
    memset(scratch, 0, <size_t>(g.Hp * g.Wp) * sizeof(floating))
    for h in range(g.H):
        memcpy(scratch + (h + g.ph) * g.Wp + g.pw, plane + h * g.W, <size_t>g.W * sizeof(floating))
    return scratch


cdef inline void _axpy(floating* y, const floating* x, floating a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        y[k] += a * x[k]


cdef inline void _axpy_strided(floating* y, const floating* x, Py_ssize_t sx, floating a,
                               Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        y[k] += a * x[k * sx]


cdef inline void _scatter_strided(floating* y, Py_ssize_t sy, const floating* x, floating a,
                                  Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        y[k * sy] += a * x[k]


cdef inline void _mul_add(floating* acc, const floating* a, const floating* b, Py_ssize_t sb,
                          Py_ssize_t n) noexcept nogil:
    """acc[k] += a[k] * b[k * sb]"""
    cdef Py_ssize_t k
    if sb == 1:
        for k in range(n):
            acc[k] += a[k] * b[k]
    else:
        for k in range(n):
            acc[k] += a[k] * b[k * sb]


# ---- forward ------------------------------------------------------------------------
cdef void _forward_plane(const Geometry* g, const floating* src, const floating* w,
                         const floating* bias, floating* y, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """y[n, c*m + j] for j < m from the (Hp, Wp) plane src of x[n, c]."""
    cdef Py_ssize_t j, f, oh, ow, i, t
    cdef const floating* wf
    cdef const floating* row
    cdef floating* out
    cdef floating b
    for j in range(g.m):
        f = c * g.m + j
        wf = w + f * g.kh * g.kw
        b = bias[f] if bias != NULL else 0
        for oh in range(g.Ho):
            out = y + ((n * g.F + f) * g.Ho + oh) * g.Wo
            for ow in range(g.Wo):
                out[ow] = b
            for i in range(g.kh):
                row = src + (oh * g.sh + i * g.dh) * g.Wp
                for t in range(g.kw):
                    if g.sw == 1:
                        _axpy(out, row + t * g.dw, wf[i * g.kw + t], g.Wo)
                    else:
                        _axpy_strided(out, row + t * g.dw, g.sw, wf[i * g.kw + t], g.Wo)


cdef _forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w, bias,
              floating[:, :, :, ::1] y, Geometry g, int num_threads):
    cdef Py_ssize_t p, n, c, planes = g.N * g.C
    cdef Py_ssize_t scratch_len = g.Hp * g.Wp
    cdef int nt = choose_threads(num_threads, <double>planes * g.m * g.Ho * g.Wo * g.kh * g.kw,
                                 planes)
    cdef const floating[::1] bview
    cdef const floating* bp = NULL
    cdef floating* scratch = NULL
    cdef floating* mine
    if bias is not None:
        bview = bias
        bp = &bview[0]
    if g.padded:
        scratch = <floating*>malloc(<size_t>(nt * scratch_len) * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("minidl depthwise_conv2d: cannot allocate scratch planes")
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // g.C
            c = p % g.C
            mine = scratch + threadid() * scratch_len if scratch != NULL else NULL
            _forward_plane(&g, _source(&g, &x[n, c, 0, 0], mine), &w[0, 0, 0, 0], bp,
                           &y[0, 0, 0, 0], n, c)
    free(scratch)


# ---- input gradient -----------------------------------------------------------------
cdef void _input_grad_plane(const Geometry* g, const floating* dy, const floating* w,
                            floating* dst, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """Sum every tap's w * dY row into the zeroed (Hp, Wp) plane dst (the adjoint of
    _forward_plane, in the order j, oh, i, t)."""
    cdef Py_ssize_t j, f, oh, i, t
    cdef const floating* wf
    cdef const floating* grow
    cdef floating* row
    for j in range(g.m):
        f = c * g.m + j
        wf = w + f * g.kh * g.kw
        for oh in range(g.Ho):
            grow = dy + ((n * g.F + f) * g.Ho + oh) * g.Wo
            for i in range(g.kh):
                row = dst + (oh * g.sh + i * g.dh) * g.Wp
                for t in range(g.kw):
                    if g.sw == 1:
                        _axpy(row + t * g.dw, grow, wf[i * g.kw + t], g.Wo)
                    else:
                        _scatter_strided(row + t * g.dw, g.sw, grow, wf[i * g.kw + t], g.Wo)


cdef _backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                     floating[:, :, :, ::1] dx, Geometry g, int num_threads):
    cdef Py_ssize_t p, n, c, h, planes = g.N * g.C
    cdef Py_ssize_t scratch_len = g.Hp * g.Wp
    cdef int nt = choose_threads(num_threads, <double>planes * g.m * g.Ho * g.Wo * g.kh * g.kw,
                                 planes)
    cdef floating* scratch = NULL
    cdef floating* dst
    cdef floating* plane
    if g.padded:
        scratch = <floating*>malloc(<size_t>(nt * scratch_len) * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("minidl depthwise_conv2d: cannot allocate scratch planes")
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // g.C
            c = p % g.C
            plane = &dx[n, c, 0, 0]
            dst = scratch + threadid() * scratch_len if scratch != NULL else plane
            memset(dst, 0, <size_t>scratch_len * sizeof(floating))
            _input_grad_plane(&g, &dy[0, 0, 0, 0], &w[0, 0, 0, 0], dst, n, c)
            if scratch != NULL:
                for h in range(g.H):
                    memcpy(plane + h * g.W, dst + (h + g.ph) * g.Wp + g.pw,
                           <size_t>g.W * sizeof(floating))
    free(scratch)


# ---- weight gradient ----------------------------------------------------------------
cdef void _weight_grad_unit(const Geometry* g, const floating* x, const floating* dy,
                            Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t c, bint need_db,
                            floating* lanes, floating* scratch, double* dw_part,
                            double* db_part) noexcept nogil:
    """dw_part[j, tap] (and db_part[j]) for the m filters of channel c, summed over the
    samples n0..n1-1.  lanes: m*(kh*kw + 1) rows of Wo per-ow partial sums."""
    cdef Py_ssize_t khkw = g.kh * g.kw, n, j, f, oh, i, t, ow
    cdef Py_ssize_t lanes_len = g.m * (khkw + 1) * g.Wo
    cdef const floating* src
    cdef const floating* grow
    cdef const floating* row
    cdef floating* acc
    cdef double s
    memset(lanes, 0, <size_t>lanes_len * sizeof(floating))
    for n in range(n0, n1):
        src = _source(g, x + (n * g.C + c) * g.H * g.W, scratch)
        for j in range(g.m):
            f = c * g.m + j
            for oh in range(g.Ho):
                grow = dy + ((n * g.F + f) * g.Ho + oh) * g.Wo
                if need_db:
                    acc = lanes + (g.m * khkw + j) * g.Wo
                    for ow in range(g.Wo):
                        acc[ow] += grow[ow]
                for i in range(g.kh):
                    row = src + (oh * g.sh + i * g.dh) * g.Wp
                    for t in range(g.kw):
                        _mul_add(lanes + (j * khkw + i * g.kw + t) * g.Wo, grow,
                                 row + t * g.dw, g.sw, g.Wo)
    for j in range(g.m * khkw):
        s = 0
        for ow in range(g.Wo):
            s += lanes[j * g.Wo + ow]
        dw_part[c * g.m * khkw + j] = s
    if need_db:
        for j in range(g.m):
            s = 0
            for ow in range(g.Wo):
                s += lanes[(g.m * khkw + j) * g.Wo + ow]
            db_part[c * g.m + j] = s


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, db, Geometry g, int num_threads):
    cdef Py_ssize_t khkw = g.kh * g.kw, wsize = g.F * khkw
    cdef double work = <double>g.N * g.F * g.Ho * g.Wo * khkw
    # chunks of samples (each its own partial): a function of the problem only
    cdef Py_ssize_t nchunks = partial_chunks(work, wsize, g.N)
    cdef Py_ssize_t units = nchunks * g.C, u, k, c, e
    cdef int nt = choose_threads(num_threads, work, units)
    cdef Py_ssize_t lanes_len = g.m * (khkw + 1) * g.Wo
    cdef Py_ssize_t plane_len = g.Hp * g.Wp if g.padded else 0
    cdef Py_ssize_t per_thread = lanes_len + plane_len
    cdef bint need_db = db is not None
    cdef floating* work_buf = <floating*>malloc(<size_t>(nt * per_thread) * sizeof(floating))
    cdef double* dw_parts = <double*>malloc(<size_t>(nchunks * wsize) * sizeof(double))
    cdef double* db_parts = <double*>malloc(<size_t>(nchunks * g.F) * sizeof(double))
    cdef floating* mine
    cdef floating* dwp = &dw[0, 0, 0, 0]
    cdef floating[::1] dbv
    cdef double s
    if work_buf == NULL or dw_parts == NULL or db_parts == NULL:
        free(work_buf); free(dw_parts); free(db_parts)
        raise MemoryError("minidl depthwise_conv2d: cannot allocate weight-gradient buffers")
    with nogil:
        for u in prange(units, num_threads=nt, schedule='static'):
            k = u // g.C
            c = u % g.C
            mine = work_buf + threadid() * per_thread
            _weight_grad_unit(&g, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                              k * g.N // nchunks, (k + 1) * g.N // nchunks, c, need_db,
                              mine, mine + lanes_len, dw_parts + k * wsize,
                              db_parts + k * g.F)
        for e in range(wsize):
            s = 0
            for k in range(nchunks):
                s += dw_parts[k * wsize + e]
            dwp[e] = <floating>s
    if need_db:
        dbv = db
        for e in range(g.F):
            s = 0
            for k in range(nchunks):
                s += db_parts[k * g.F + e]
            dbv[e] = <floating>s
    free(work_buf)
    free(dw_parts)
    free(db_parts)


# ---- Python entry points ------------------------------------------------------------
def depthwise_conv2d_forward(x, weight, bias, stride, padding, dilation, int num_threads):
    """y (N, F, Ho, Wo) = depth-wise conv of x (N, C, H, W) with weight (F, 1, kh, kw),
    F = C * m, plus bias (F,) or None."""
    cdef Geometry g = _geometry(x.shape, weight.shape, stride, padding, dilation)
    y = np.empty((g.N, g.F, g.Ho, g.Wo), dtype=x.dtype)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _forward[float](x, weight, bias, y, g, num_threads)
    else:
        _forward[double](x, weight, bias, y, g, num_threads)
    return y


def depthwise_conv2d_backward_input(grad_out, weight, input_shape, stride, padding, dilation,
                                    int num_threads):
    """grad_input (N, C, H, W) from grad_out (N, F, Ho, Wo) and weight (F, 1, kh, kw)."""
    cdef Geometry g = _geometry(tuple(input_shape), weight.shape, stride, padding, dilation)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=grad_out.dtype)
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _backward_input[float](grad_out, weight, dx, g, num_threads)
    else:
        _backward_input[double](grad_out, weight, dx, g, num_threads)
    return dx


def depthwise_conv2d_backward_weight(x, grad_out, weight_shape, stride, padding, dilation,
                                     bint need_bias_grad, int num_threads):
    """(grad_weight (F, 1, kh, kw), grad_bias (F,) or None) from x and grad_out."""
    wshape = tuple(weight_shape)
    cdef Geometry g = _geometry(x.shape, wshape, stride, padding, dilation)
    dw = np.empty(wshape, dtype=x.dtype)
    db = np.empty(g.F, dtype=x.dtype) if need_bias_grad else None
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _backward_weight[float](x, grad_out, dw, db, g, num_threads)
    else:
        _backward_weight[double](x, grad_out, dw, db, g, num_threads)
    return dw, db


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
