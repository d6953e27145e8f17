# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""2-D convolution (cross-correlation, as PyTorch) on im2col + BLAS GEMM, with groups.

Per sample n (samples are spread over threads with a static prange):
  forward          y[n]_g (F_g, HoWo)  = W_g (F_g, CK_g) @ cols_n,g (CK_g, HoWo) + b
  backward input   cols_n,g            = W_gᵀ @ dY[n]_g ;  dx[n] = col2im(cols_n)
  backward weight  dW_g               += dY[n]_g @ cols_n,gᵀ ;  db = Σ dY
where CK_g = (C/groups)*kh*kw and cols_n is sample n's im2col (C*kh*kw, Ho*Wo) in a
per-thread buffer.  BLAS is column-major, so each row-major product above is passed
as its transpose: no copies, GEMM output lands directly in y / the buffer / dW.

Determinism: forward and backward-input work per sample is thread-independent.  The
weight gradient sums samples in fixed chunks (their number depends on the problem
size only, never on the thread count), each chunk into its own partial, and the
partials are reduced in chunk order, so 1 and 2 threads give identical bits.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, calloc, free
from cython cimport floating

from minidl._kernels._helpers cimport (
    MIN_WORK_PER_THREAD, choose_threads, gemm, im2col_plane, col2im_plane,
    new_gather_table,
)

cnp.import_array()

cdef enum:
    MAX_WEIGHT_CHUNKS = 16
    MAX_PARTIAL_ELEMENTS = 1 << 24   # cap on the memory used by weight-grad partials


cdef struct Geometry:
    int N, C, H, W, F, groups, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo
    Py_ssize_t HoWo, CK, CKg, Fg
    bint identity_cols     # 1x1 kernel, stride 1, no padding: cols_n is x[n] itself
    const int* table       # im2col gather table for small planes, or NULL
    Py_ssize_t buf_len     # per-thread buffer: cols (CK, HoWo) then H*W + 1 scratch


cdef Geometry _geometry(tuple xshape, tuple wshape, stride, padding, dilation, int groups):
    cdef Geometry g
    g.N = xshape[0]; g.C = xshape[1]; g.H = xshape[2]; g.W = xshape[3]
    g.F = wshape[0]; g.kh = wshape[2]; g.kw = wshape[3]
    g.sh = stride[0]; g.sw = stride[1]
    g.ph = padding[0]; g.pw = padding[1]
    g.dh = dilation[0]; g.dw = dilation[1]
    g.groups = groups
    g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) // g.sh + 1
    g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) // g.sw + 1
    g.HoWo = <Py_ssize_t>g.Ho * g.Wo
    g.CK = <Py_ssize_t>g.C * g.kh * g.kw
    g.CKg = g.CK // groups
    g.Fg = g.F // groups
    g.identity_cols = (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1
                       and g.ph == 0 and g.pw == 0)
    g.table = NULL
    g.buf_len = g.CK * g.HoWo + <Py_ssize_t>g.H * g.W + 1
    return g


cdef inline double _cost(const Geometry* g) noexcept nogil:
    """Work of one conv kernel call in choose_threads' unit (element moves).

    Per sample: the im2col/col2im moves (C*kh*kw*HoWo) plus the GEMM's multiply-adds,
    which BLAS does ~16 per element move's time."""
    cdef double moves = 0 if g.identity_cols else <double>g.CK * g.HoWo
    return <double>g.N * (moves + <double>g.F * g.CKg * g.HoWo / 16)


cdef inline const floating* _cols_of_sample(const Geometry* g, const floating* xn,
                                            floating* buf) noexcept nogil:
    """im2col of one sample (C*kh*kw, HoWo) into buf (or x[n] itself when 1x1)."""
    cdef int c
    if g.identity_cols:
        return xn
    for c in range(g.C):
        im2col_plane(xn + <Py_ssize_t>c * g.H * g.W, buf + c * g.kh * g.kw * g.HoWo,
                     g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo,
                     g.table, buf + g.CK * g.HoWo)
    return buf


cdef floating* _alloc_buffers(Geometry* g, int nt, floating dummy) except? NULL:
    """One im2col buffer per thread (NULL when no buffer is needed); also builds the
    gather table (freed by _free_buffers)."""
    cdef floating* p
    if g.identity_cols:
        return NULL
    p = <floating*>malloc(<size_t>nt * g.buf_len * sizeof(floating))
    if p == NULL:
        raise MemoryError("minidl conv2d: cannot allocate the im2col buffer")
    g.table = new_gather_table(g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                               g.Ho, g.Wo)
    return p


cdef void _free_buffers(Geometry* g, void* buffers) noexcept:
    free(<void*>g.table)
    g.table = NULL
    free(buffers)


# ----------------------------------------------------------------------------- forward

cdef void _forward_sample(const Geometry* g, const floating* xn, const floating* w,
                          const floating* bias, floating* yn, floating* buf) noexcept nogil:
    cdef const floating* cols = _cols_of_sample(g, xn, buf)
    cdef Py_ssize_t f, k
    cdef int grp
    cdef floating beta = 0
    if bias != NULL:
        for f in range(g.F):
            for k in range(g.HoWo):
                yn[f * g.HoWo + k] = bias[f]
        beta = 1
    for grp in range(g.groups):
        gemm(c'N', c'N', <int>g.HoWo, <int>g.Fg, <int>g.CKg,
             <floating>1, cols + grp * g.CKg * g.HoWo, <int>g.HoWo,
             w + grp * g.Fg * g.CKg, <int>g.CKg,
             beta, yn + grp * g.Fg * g.HoWo, <int>g.HoWo)


cdef _forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] y,
              Geometry g, int num_threads):
    cdef const floating* bp = NULL
    cdef Py_ssize_t n
    cdef int nt = choose_threads(num_threads, _cost(&g), g.N)
    cdef floating* buffers = _alloc_buffers(&g, nt, <floating>0)
    cdef floating* buf = NULL
    if bias is not None:
        bp = &bias[0]
    with nogil:
        for n in prange(g.N, num_threads=nt, schedule='static'):
            if buffers != NULL:
                buf = buffers + threadid() * g.buf_len
            _forward_sample(&g, &x[n, 0, 0, 0], &w[0, 0, 0, 0], bp, &y[n, 0, 0, 0], buf)
    _free_buffers(&g, buffers)


def conv2d_forward(x, weight, bias, stride, padding, dilation, int groups, int num_threads):
    """y (N, F, Ho, Wo) = weight (F, C/groups, kh, kw) ⋆ x (N, C, H, W) + bias (F,) or None."""
    cdef Geometry g = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    y = np.empty((g.N, g.F, g.Ho, g.Wo), dtype=x.dtype)
    if y.size == 0:
        return y
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _forward[float](x, weight, bias, y, g, num_threads)
    else:
        _forward[double](x, weight, bias, y, g, num_threads)
    return y


# ------------------------------------------------------------------------ backward: dx

cdef void _backward_input_sample(const Geometry* g, const floating* dyn, const floating* w,
                                 floating* dxn, floating* buf) noexcept nogil:
    cdef int grp, c
    cdef floating* cols = dxn if g.identity_cols else buf
    for grp in range(g.groups):
        gemm(c'N', c'T', <int>g.HoWo, <int>g.CKg, <int>g.Fg,
             <floating>1, dyn + grp * g.Fg * g.HoWo, <int>g.HoWo,
             w + grp * g.Fg * g.CKg, <int>g.CKg,
             <floating>0, cols + grp * g.CKg * g.HoWo, <int>g.HoWo)
    if g.identity_cols:
        return
    for c in range(g.C):
        col2im_plane(buf + c * g.kh * g.kw * g.HoWo, dxn + <Py_ssize_t>c * g.H * g.W,
                     g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Ho, g.Wo,
                     g.table, buf + g.CK * g.HoWo)


cdef _backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                     floating[:, :, :, ::1] dx, Geometry g, int num_threads):
    cdef Py_ssize_t n
    cdef int nt = choose_threads(num_threads, _cost(&g), g.N)
    cdef floating* buffers = _alloc_buffers(&g, nt, <floating>0)
    cdef floating* buf = NULL
    with nogil:
        for n in prange(g.N, num_threads=nt, schedule='static'):
            if buffers != NULL:
                buf = buffers + threadid() * g.buf_len
            _backward_input_sample(&g, &dy[n, 0, 0, 0], &w[0, 0, 0, 0], &dx[n, 0, 0, 0], buf)
    _free_buffers(&g, buffers)


def conv2d_backward_input(grad_out, weight, input_shape, stride, padding, dilation,
                          int groups, int num_threads):
    """grad_input (N, C, H, W) from grad_out (N, F, Ho, Wo) and weight (F, C/groups, kh, kw)."""
    cdef Geometry g = _geometry(tuple(input_shape), weight.shape, stride, padding, dilation, groups)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _backward_input[float](grad_out, weight, dx, g, num_threads)
    else:
        _backward_input[double](grad_out, weight, dx, g, num_threads)
    return dx


# -------------------------------------------------------------------- backward: dW, db

cdef void _weight_grad_chunk(const Geometry* g, const floating* x, const floating* dy,
                             Py_ssize_t n0, Py_ssize_t n1, floating* dw, double* db,
                             floating* buf) noexcept nogil:
    """dw = Σ_{n0<=n<n1} dY_n·cols_nᵀ (overwrites dw); db (if not NULL) += Σ dY_n."""
    cdef Py_ssize_t n, f, k
    cdef int grp
    cdef const floating* cols
    cdef const floating* dyn
    cdef floating beta
    cdef double s
    for n in range(n0, n1):
        cols = _cols_of_sample(g, x + n * g.C * g.H * g.W, buf)
        dyn = dy + n * g.F * g.HoWo
        beta = 0 if n == n0 else 1
        for grp in range(g.groups):
            gemm(c'T', c'N', <int>g.CKg, <int>g.Fg, <int>g.HoWo,
                 <floating>1, cols + grp * g.CKg * g.HoWo, <int>g.HoWo,
                 dyn + grp * g.Fg * g.HoWo, <int>g.HoWo,
                 beta, dw + grp * g.Fg * g.CKg, <int>g.CKg)
        if db != NULL:
            for f in range(g.F):
                s = 0
                for k in range(g.HoWo):
                    s += dyn[f * g.HoWo + k]
                db[f] += s


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, floating[::1] db,
                      Geometry g, int num_threads):
    cdef Py_ssize_t weight_size = g.F * g.CKg
    cdef double work = _cost(&g)
    # Number of chunks: a function of the problem only (never of the thread count).
    cdef Py_ssize_t nchunks = <Py_ssize_t>(work / MIN_WORK_PER_THREAD)
    if nchunks > MAX_WEIGHT_CHUNKS:
        nchunks = MAX_WEIGHT_CHUNKS
    if nchunks > MAX_PARTIAL_ELEMENTS // weight_size:
        nchunks = MAX_PARTIAL_ELEMENTS // weight_size
    if nchunks > g.N:
        nchunks = g.N
    if nchunks < 1:
        nchunks = 1
    cdef int nt = choose_threads(num_threads, work, nchunks)
    cdef floating* buffers = _alloc_buffers(&g, nt, <floating>0)
    cdef floating* buf = NULL
    cdef floating* partials = NULL
    cdef floating* dst
    cdef double* dbp = NULL
    cdef double* dbc
    cdef double s
    cdef Py_ssize_t ch, e, f
    cdef floating* dwp = &dw[0, 0, 0, 0]
    if nchunks > 1:
        partials = <floating*>malloc(<size_t>(nchunks - 1) * weight_size * sizeof(floating))
    if db is not None:
        dbp = <double*>calloc(nchunks * g.F, sizeof(double))
    if (nchunks > 1 and partials == NULL) or (db is not None and dbp == NULL):
        _free_buffers(&g, buffers); free(partials); free(dbp)
        raise MemoryError("minidl conv2d: cannot allocate weight-gradient buffers")
    with nogil:
        for ch in prange(nchunks, num_threads=nt, schedule='static'):
            if buffers != NULL:
                buf = buffers + threadid() * g.buf_len
            dst = dwp if ch == 0 else partials + (ch - 1) * weight_size
            dbc = dbp + ch * g.F if dbp != NULL else NULL
            _weight_grad_chunk(&g, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                               ch * g.N // nchunks, (ch + 1) * g.N // nchunks,
                               dst, dbc, buf)
        if nchunks > 1:
            nt = choose_threads(num_threads, <double>weight_size * nchunks, weight_size)
            if nt > 1:
                for e in prange(weight_size, num_threads=nt, schedule='static'):
                    _sum_partials(dwp + e, partials + e, nchunks - 1, weight_size)
            else:  # no parallel region at all: cheaper than a team of one
                for e in range(weight_size):
                    _sum_partials(dwp + e, partials + e, nchunks - 1, weight_size)
        if dbp != NULL:
            for f in range(g.F):
                s = 0
                for ch in range(nchunks):
                    s = s + dbp[ch * g.F + f]
                db[f] = <floating>s
    _free_buffers(&g, buffers)
    free(partials)
    free(dbp)


cdef inline void _sum_partials(floating* out, const floating* parts, Py_ssize_t count,
                               Py_ssize_t stride) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating acc = out[0]
    for i in range(count):
        acc = acc + parts[i * stride]
    out[0] = acc


def conv2d_backward_weight(x, grad_out, weight_shape, stride, padding, dilation,
                           int groups, bint need_bias_grad, int num_threads):
    """(grad_weight (F, C/groups, kh, kw), grad_bias (F,) or None) from x and grad_out."""
    wshape = tuple(weight_shape)
    cdef Geometry g = _geometry(x.shape, wshape, stride, padding, dilation, groups)
    dw = np.empty(wshape, dtype=x.dtype)
    db = np.empty(g.F, dtype=x.dtype) if need_bias_grad else None
    if g.N == 0 or g.HoWo == 0:
        dw.fill(0)
        if db is not None:
            db.fill(0)
        return dw, db
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _backward_weight[float](x, grad_out, dw, db, g, num_threads)
    else:
        _backward_weight[double](x, grad_out, dw, db, g, num_threads)
    return dw, db
