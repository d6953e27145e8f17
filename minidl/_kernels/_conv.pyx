"""2-D convolution (cross-correlation, as PyTorch) on im2col + BLAS GEMM, with groups.

Samples are processed in batches of nb consecutive samples (nb depends on the problem
only).  A batch's im2col puts its samples side by side, cols (C*kh*kw, nb*HoWo), so one
GEMM per group serves the whole batch (small planes would otherwise give GEMMs with a
tiny dimension HoWo):
  forward          Y_g (F_g, nb*HoWo)  = W_g (F_g, CK_g) @ cols_g ;  y[n] = Y[:, n] + b
  backward input   cols_g              = W_gᵀ @ dY_g ;  dx[n] = col2im(cols[:, n])
  backward weight  dW_g               += dY_g @ cols_gᵀ ;  db = Σ dY
where CK_g = (C/groups)*kh*kw and dY (F, nb*HoWo) is the batch's grad_out gathered side
by side.  With nb == 1 (large planes; always for the input gradient) the GEMMs read/write
y[n], dy[n] directly.  The forward can keep its im2col of the whole input (keep_input) for
the weight gradient, which then skips its own.

Determinism: batches (and the weight gradient's chunks of batches, each summed into its
own partial and reduced in chunk order) depend on the problem size only, never on the
thread count, so every output is computed by the same operations for 1 and 2 threads.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free
from libc.string cimport memcpy
from cython cimport floating

from minidl._kernels._helpers cimport (
    minidl_planned_threads, choose_threads, gemm, im2col_plane, col2im_plane,
    new_gather_table, plane_scratch_len, use_padded, pad_plane, unfold_padded,
    split_units, partial_chunks, add_partials, sum_bias_partials, scratch_alloc, out_len,
)

cnp.import_array()

cdef enum:
    BATCH_COLS_BUDGET = 1 << 18      # elements of one batch's im2col buffer (weight grad)
    # forward: a smaller batch keeps its cols and GEMM output in L2; measured 5-8% faster
    # at LeNet's conv2 (N=360, 32x4x4 -> 64x4x4) than the weight gradient's budget
    FORWARD_COLS_BUDGET = 1 << 16
    BATCH_MAX_HOWO = 64              # forward / input grad: batch only smaller planes
    LD_PAD = 16


cdef struct Geometry:
    int N, C, H, W, F, groups, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo
    Py_ssize_t HoWo, CK, CKg, Fg
    bint identity_cols     # 1x1 kernel, stride 1, no padding: cols of x[n] is x[n] itself
    const int* table       # im2col gather table for small planes, or NULL
    Py_ssize_t nb          # samples per batch
    Py_ssize_t nbatches
    Py_ssize_t ld          # nb*HoWo: row stride of a batch's cols and gathered dY
    Py_ssize_t buf_len     # per-thread buffer: cols (CK, ld), dY/Y (F, ld), plane scratch
    void* saved_cols       # the whole im2col (CK, saved_ld), sample n at column n*HoWo,
    Py_ssize_t saved_ld    # kept by the forward for the weight gradient; or NULL
    bint fill_saved        # forward: write saved_cols; weight gradient: read it


cdef Geometry _geometry(tuple xshape, tuple wshape, stride, padding, dilation, int groups):
    cdef Geometry g
    g.N = xshape[0]; g.C = xshape[1]; g.H = xshape[2]; g.W = xshape[3]
    g.F = wshape[0]; g.kh = wshape[2]; g.kw = wshape[3]
    g.sh = stride[0]; g.sw = stride[1]
    g.ph = padding[0]; g.pw = padding[1]
    g.dh = dilation[0]; g.dw = dilation[1]
    g.groups = groups
    g.Ho = out_len(g.H, g.ph, g.dh * (g.kh - 1) + 1, g.sh)
    g.Wo = out_len(g.W, g.pw, g.dw * (g.kw - 1) + 1, g.sw)
    g.HoWo = <Py_ssize_t>g.Ho * g.Wo
    g.CK = <Py_ssize_t>g.C * g.kh * g.kw
    g.CKg = g.CK // groups
    g.Fg = g.F // groups
    g.identity_cols = (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1
                       and g.ph == 0 and g.pw == 0)
    g.table = NULL
    g.saved_cols = NULL
    g.saved_ld = 0
    g.fill_saved = False
    _set_batches(&g, 1)
    return g


cdef inline double _cost(const Geometry* g) noexcept nogil:
    """Work of one conv kernel call in choose_threads' unit (element moves).

    Per sample: the im2col/col2im moves (C*kh*kw*HoWo) plus the GEMM's multiply-adds,
    which BLAS does ~16 per element move's time."""
    cdef double moves = 0 if g.identity_cols else <double>g.CK * g.HoWo
    return <double>g.N * (moves + <double>g.F * g.CKg * g.HoWo / 16)


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline Py_ssize_t _padded_len(const Geometry* g) noexcept nogil:
    return <Py_ssize_t>(g.H + 2 * g.ph) * (g.W + 2 * g.pw)


cdef void _set_batches(Geometry* g, Py_ssize_t nb) noexcept nogil:
    """Use batches of nb samples (the last one may be smaller), evened out."""
    if nb < 1:
        nb = 1
    if nb > g.N:
        nb = g.N
    g.nbatches = _ceil_div(g.N, nb)
    g.nb = _ceil_div(g.N, g.nbatches)
    g.ld = g.nb * g.HoWo
    if g.nb > 1:
        # rows a multiple of 4 KiB apart alias in the L1 cache and in the store buffer's
        # address check, which stalled the im2col copies; 16 elements of slack avoid it
        g.ld += LD_PAD
    g.buf_len = (g.CK + g.F) * g.ld + plane_scratch_len(g.H, g.W, g.ph, g.pw)
    if use_padded(g.W, g.sh, g.sw, g.Wo):   # _unfold_batch pads all planes first
        g.buf_len += g.nb * g.C * _padded_len(g)


cdef void _choose_batches(Geometry* g, bint small_planes_only, Py_ssize_t min_batches,
                          Py_ssize_t budget) noexcept nogil:
    """As many samples per batch as fit the cols budget, but at least ``min_batches``
    batches (to have work to split).  Depends on the problem only."""
    cdef Py_ssize_t nb = budget // (g.CK * g.HoWo)
    if small_planes_only and g.HoWo >= BATCH_MAX_HOWO:
        nb = 1
    if min_batches > 1 and nb > _ceil_div(g.N, min_batches):
        nb = _ceil_div(g.N, min_batches)
    _set_batches(g, nb)


cdef inline Py_ssize_t _split_units(const Geometry* g) noexcept nogil:
    """How many parts the call is worth splitting into (a function of the size only:
    LeNet-size layers (~1e5 units) stay whole, a CIFAR-size layer (~1e7) splits)."""
    return split_units(_cost(g))


cdef inline const floating* _unfold_batch(const Geometry* g, const floating* x,
                                          Py_ssize_t n0, Py_ssize_t m, floating* buf,
                                          Py_ssize_t* ld) noexcept nogil:
    """im2col of samples n0..n0+m-1 side by side: (C*kh*kw, ld[0]), sample s at column
    s*HoWo.  Written to the batch buffer ``buf`` (ld g.ld), or with g.saved_cols to its
    columns n0*HoWo.. (ld g.saved_ld; only read if not g.fill_saved).  With one sample
    per batch and a 1x1 kernel, x[n0] itself."""
    cdef floating* cols = buf
    ld[0] = g.ld
    if g.saved_cols != NULL:
        ld[0] = g.saved_ld
        cols = <floating*>g.saved_cols + n0 * g.HoWo
        if not g.fill_saved:
            return cols
    elif g.identity_cols and g.nb == 1:
        return x + n0 * g.C * g.H * g.W
    _im2col_batch(g, x, n0, m, cols, ld[0], buf + (g.CK + g.F) * g.ld)
    return cols


cdef inline void _im2col_batch(const Geometry* g, const floating* x, Py_ssize_t n0,
                               Py_ssize_t m, floating* cols, Py_ssize_t ld,
                               floating* scratch) noexcept nogil:
    cdef Py_ssize_t s
    cdef int c
    cdef const floating* xn
    cdef Py_ssize_t p, plen = _padded_len(g)
    cdef floating* padded = scratch + plane_scratch_len(g.H, g.W, g.ph, g.pw)
    if use_padded(g.W, g.sh, g.sw, g.Wo):
        # small planes: pad them all, then unfold (see unfold_padded)
        for p in range(m * g.C):
            pad_plane(x + (n0 * g.C + p) * g.H * g.W, padded + p * plen, g.H, g.W, g.ph, g.pw)
        for s in range(m):
            for c in range(g.C):
                unfold_padded(padded + (s * g.C + c) * plen, g.W + 2 * g.pw,
                              cols + c * g.kh * g.kw * ld + s * g.HoWo, ld,
                              g.kh, g.kw, g.sh, g.dh, g.dw, g.Ho, g.Wo)
        return
    for s in range(m):
        xn = x + (n0 + s) * g.C * g.H * g.W
        for c in range(g.C):
            im2col_plane(xn + <Py_ssize_t>c * g.H * g.W,
                         cols + c * g.kh * g.kw * ld + s * g.HoWo, ld,
                         g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                         g.Ho, g.Wo, g.table, scratch)


cdef inline const floating* _gather_batch(const Geometry* g, const floating* dy,
                                          Py_ssize_t n0, Py_ssize_t m,
                                          floating* out) noexcept nogil:
    """dy[n0..n0+m-1] (m, F, HoWo) side by side as (F, ld); with nb == 1, dy[n0] itself."""
    cdef Py_ssize_t s, f
    if g.nb == 1:
        return dy + n0 * g.F * g.HoWo
    for s in range(m):
        for f in range(g.F):
            memcpy(out + f * g.ld + s * g.HoWo, dy + ((n0 + s) * g.F + f) * g.HoWo,
                   g.HoWo * sizeof(floating))
    return out


cdef floating* _alloc_buffers(Geometry* g, int nt, floating dummy) except? NULL:
    """One batch buffer per thread; also builds the gather table (both freed by
    _free_buffers, in a ``finally``)."""
    g.table = new_gather_table(g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                               g.Ho, g.Wo)
    return <floating*>scratch_alloc(<size_t>nt * g.buf_len, sizeof(floating))


cdef void _free_buffers(Geometry* g, void* buffers) noexcept:
    free(<void*>g.table)
    g.table = NULL
    free(buffers)


# ----------------------------------------------------------------------------- forward

cdef void _forward_batch(const Geometry* g, const floating* x, const floating* w,
                         const floating* bias, floating* y, Py_ssize_t n0, Py_ssize_t m,
                         floating* buf) noexcept nogil:
    """y[n0..n0+m-1] (m, F, HoWo) = W ⋆ x + b for one batch."""
    cdef Py_ssize_t ld
    cdef const floating* cols = _unfold_batch(g, x, n0, m, buf, &ld)
    cdef floating* out = buf + g.CK * g.ld if g.nb > 1 else y + n0 * g.F * g.HoWo
    cdef floating* yn
    cdef const floating* src
    cdef floating b
    cdef Py_ssize_t s, f, k
    cdef int grp
    for grp in range(g.groups):
        gemm(c'N', c'N', <int>g.Fg, <int>(m * g.HoWo), <int>g.CKg,
             <floating>1, w + grp * g.Fg * g.CKg, <int>g.CKg,
             cols + grp * g.CKg * ld, <int>ld,
             <floating>0, out + grp * g.Fg * g.ld, <int>g.ld)
    # bias added (and a batch scattered to y) right after the GEMM, while in cache
    for s in range(m):
        for f in range(g.F):
            b = bias[f] if bias != NULL else 0
            yn = y + ((n0 + s) * g.F + f) * g.HoWo
            if g.nb == 1:
                if bias != NULL:
                    for k in range(g.HoWo):
                        yn[k] = yn[k] + b
            else:
                src = out + f * g.ld + s * g.HoWo
                for k in range(g.HoWo):
                    yn[k] = src[k] + b


cdef _forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] y,
              Geometry g, int num_threads):
    cdef const floating* bp = NULL
    cdef Py_ssize_t i
    _choose_batches(&g, True, _split_units(&g), FORWARD_COLS_BUDGET)
    cdef int nt = choose_threads(num_threads, _cost(&g), min(g.nbatches, _split_units(&g)))
    cdef floating* buffers = NULL
    cdef floating* buf
    if bias is not None:
        bp = &bias[0]
    try:
        buffers = _alloc_buffers(&g, nt, <floating>0)
        with nogil:
            for i in prange(g.nbatches, num_threads=nt, schedule='static'):
                buf = buffers + threadid() * g.buf_len
                _forward_batch(&g, &x[0, 0, 0, 0], &w[0, 0, 0, 0], bp, &y[0, 0, 0, 0],
                               i * g.nb, min(g.nb, g.N - i * g.nb), buf)
    finally:
        _free_buffers(&g, buffers)


def conv2d_forward(x, weight, bias, *, stride, padding, dilation, int groups,
                   bint keep_input=False, int num_threads):
    """y (N, F, Ho, Wo) = weight (F, C/groups, kh, kw) ⋆ x (N, C, H, W) + bias (F,) or None.

    With keep_input, returns (y, cols): cols is the im2col of the whole input,
    (C*kh*kw, >= N*Ho*Wo) with sample n at columns n*Ho*Wo.., for
    conv2d_backward_weight(..., kept_input=cols); or None where the weight gradient needs
    no im2col (1x1 kernel, stride 1, no padding)."""
    cdef Geometry g = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    y = np.empty((g.N, g.F, g.Ho, g.Wo), dtype=x.dtype)
    cols = None
    if keep_input and not g.identity_cols and y.size != 0:
        cols = np.empty((g.CK, g.N * g.HoWo + LD_PAD), dtype=x.dtype)
        g.saved_cols = cnp.PyArray_DATA(cols)
        g.saved_ld = cols.shape[1]
        g.fill_saved = True
    if y.size != 0:
        if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
            _forward[float](x, weight, bias, y, g, num_threads)
        else:
            _forward[double](x, weight, bias, y, g, num_threads)
    return (y, cols) if keep_input else y


# ------------------------------------------------------------------------ backward: dx

cdef void _backward_input_batch(const Geometry* g, const floating* dy, const floating* w,
                                floating* dx, Py_ssize_t n0, Py_ssize_t m,
                                floating* buf) noexcept nogil:
    """dx[n0..n0+m-1] (m, C, H, W) = col2im(Wᵀ @ dY) for one batch."""
    cdef const floating* dyb = _gather_batch(g, dy, n0, m, buf + g.CK * g.ld)
    cdef floating* scratch = buf + (g.CK + g.F) * g.ld
    cdef floating* cols = buf
    cdef floating* dxn
    cdef Py_ssize_t s
    cdef int grp, c
    if g.identity_cols and g.nb == 1:
        cols = dx + n0 * g.C * g.H * g.W   # 1x1: the GEMM writes dx[n0] directly
    for grp in range(g.groups):
        gemm(c'T', c'N', <int>g.CKg, <int>(m * g.HoWo), <int>g.Fg,
             <floating>1, w + grp * g.Fg * g.CKg, <int>g.CKg,
             dyb + grp * g.Fg * g.ld, <int>g.ld,
             <floating>0, cols + grp * g.CKg * g.ld, <int>g.ld)
    if cols != buf:
        return
    for s in range(m):
        dxn = dx + (n0 + s) * g.C * g.H * g.W
        for c in range(g.C):
            col2im_plane(cols + c * g.kh * g.kw * g.ld + s * g.HoWo, g.ld,
                         dxn + <Py_ssize_t>c * g.H * g.W,
                         g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                         g.Ho, g.Wo, g.table, scratch)


cdef _backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                     floating[:, :, :, ::1] dx, Geometry g, int num_threads):
    cdef Py_ssize_t i
    # One sample per batch: the GEMM reads dy[n] in place.  Batching small planes (as the
    # forward does) measured 5-15% slower here (LeNet conv2, 4x4): gathering dY costs
    # more than the wider GEMM saves.
    _set_batches(&g, 1)
    cdef int nt = choose_threads(num_threads, _cost(&g), min(g.nbatches, _split_units(&g)))
    cdef floating* buffers = NULL
    cdef floating* buf
    try:
        buffers = _alloc_buffers(&g, nt, <floating>0)
        with nogil:
            for i in prange(g.nbatches, num_threads=nt, schedule='static'):
                buf = buffers + threadid() * g.buf_len
                _backward_input_batch(&g, &dy[0, 0, 0, 0], &w[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                      i * g.nb, min(g.nb, g.N - i * g.nb), buf)
    finally:
        _free_buffers(&g, buffers)


def conv2d_backward_input(grad_out, weight, input_shape, *, stride, padding, dilation,
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

cdef inline double _row_sum(const floating* v, Py_ssize_t n) noexcept nogil:
    """Σ v[0:n] in double with 4 independent accumulators (a fixed order)."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t k = 0
    while k + 4 <= n:
        s0 += v[k]
        s1 += v[k + 1]
        s2 += v[k + 2]
        s3 += v[k + 3]
        k += 4
    while k < n:
        s0 += v[k]
        k += 1
    return (s0 + s1) + (s2 + s3)


cdef void _weight_grad_chunk(const Geometry* g, const floating* x, const floating* dy,
                             Py_ssize_t b0, Py_ssize_t b1, floating* dw, double* db,
                             floating* buf) noexcept nogil:
    """dw = Σ over batches b0..b1-1 of dY·colsᵀ (overwrites dw); db (if not NULL) += Σ dY."""
    cdef Py_ssize_t bi, n0, m, f, ld
    cdef int grp
    cdef const floating* cols
    cdef const floating* dyb
    cdef floating beta
    for bi in range(b0, b1):
        n0 = bi * g.nb
        m = min(g.nb, g.N - n0)
        cols = _unfold_batch(g, x, n0, m, buf, &ld)
        dyb = _gather_batch(g, dy, n0, m, buf + g.CK * g.ld)
        beta = 0 if bi == b0 else 1
        for grp in range(g.groups):
            gemm(c'N', c'T', <int>g.Fg, <int>g.CKg, <int>(m * g.HoWo),
                 <floating>1, dyb + grp * g.Fg * g.ld, <int>g.ld,
                 cols + grp * g.CKg * ld, <int>ld,
                 beta, dw + grp * g.Fg * g.CKg, <int>g.CKg)
        if db != NULL:
            for f in range(g.F):
                db[f] += _row_sum(dyb + f * g.ld, m * g.HoWo)


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, floating[::1] db,
                      Geometry g, int num_threads):
    cdef Py_ssize_t weight_size = g.F * g.CKg
    # Number of chunks (partials): a function of the problem only, never of the threads.
    cdef Py_ssize_t nchunks = partial_chunks(_cost(&g), weight_size, g.N)
    _choose_batches(&g, False, nchunks, BATCH_COLS_BUDGET)
    if nchunks > g.nbatches:
        nchunks = g.nbatches
    cdef int nt = choose_threads(num_threads, _cost(&g), nchunks)
    cdef floating* buffers = NULL
    cdef floating* buf
    cdef floating* partials = NULL
    cdef floating* dst
    cdef double* dbp = NULL
    cdef double* dbc
    cdef Py_ssize_t ch
    cdef floating* dwp = &dw[0, 0, 0, 0]
    try:
        buffers = _alloc_buffers(&g, nt, <floating>0)
        if nchunks > 1:
            partials = <floating*>scratch_alloc(<size_t>(nchunks - 1) * weight_size,
                                                sizeof(floating))
        if db is not None:
            dbp = <double*>scratch_alloc(nchunks * g.F, sizeof(double), True)
        with nogil:
            for ch in prange(nchunks, num_threads=nt, schedule='static'):
                buf = buffers + threadid() * g.buf_len
                dst = dwp if ch == 0 else partials + (ch - 1) * weight_size
                dbc = dbp + ch * g.F if dbp != NULL else NULL
                _weight_grad_chunk(&g, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                                   ch * g.nbatches // nchunks, (ch + 1) * g.nbatches // nchunks,
                                   dst, dbc, buf)
            add_partials(dwp, partials, nchunks - 1, weight_size, nt)   # chunk 0 wrote dw itself
            if dbp != NULL:
                sum_bias_partials(dbp, nchunks, g.F, &db[0])
    finally:
        _free_buffers(&g, buffers)
        free(partials)
        free(dbp)


def conv2d_backward_weight(x, grad_out, weight_shape, *, stride, padding, dilation,
                           int groups, bint need_bias, kept_input=None, int num_threads):
    """(grad_weight (F, C/groups, kh, kw), grad_bias (F,) or None) from x and grad_out.

    ``kept_input``: conv2d_forward(..., keep_input=True)'s cols for this same x and
    geometry (skips the im2col), or None."""
    wshape = tuple(weight_shape)
    cdef Geometry g = _geometry(x.shape, wshape, stride, padding, dilation, groups)
    if kept_input is not None:
        g.saved_cols = cnp.PyArray_DATA(kept_input)
        g.saved_ld = kept_input.shape[1]
    dw = np.empty(wshape, dtype=x.dtype)
    db = np.empty(g.F, dtype=x.dtype) if need_bias else None
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


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
