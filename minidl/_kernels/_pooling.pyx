"""Max and average pooling, forward and backward, parallel over (n, c) planes.

Every plane of the output (forward) or of grad_input (backward) is written by exactly
one thread, so nothing races and results do not depend on the thread count.

Max pooling stores, per output element, the flat index ih*W + iw of its window's
maximum in the input plane (int64).  Padding never wins (it acts as -inf); ties go to
the first maximum in row-major window order; a NaN in the window wins, the last NaN
if there are several -- the same rule as PyTorch's CPU kernel.

Max pooling has three kernels (a chunk or plane holding a NaN always goes through the
first, which lets NaN win):
- _max_plane: any window, stride and padding, with the flat indices;
- _max_rows_2x2: 2x2 / stride 2 / no padding with an even W, with the flat indices
  (return_indices, and recorded layers of odd H): two vectorised passes, 2-5x the
  general kernel there;
- the window-code kernel (max_pool.h, AVX-512 for float32 where the CPU has it) for
  2x2 / stride 2 / no padding with an even W: a uint8 code per output, 8x less to write
  and read back than an int64 index, and a backward that writes every input element
  once (no zero-fill, no scatter): what autograd records for the pooling layer of
  LeNet- and CIFAR-style nets.  Under no_grad it writes the values only.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free
from libc.string cimport memset
from libc.math cimport INFINITY
from libc.stdint cimport int32_t, int64_t, uint8_t
from cython cimport floating

from minidl._kernels._helpers cimport (
    minidl_planned_threads, choose_threads, cpu_level, scratch_alloc, out_len,
    _valid_columns as _valid_range,
)

cdef extern from "max_pool.h" nogil:
    float minidl_select_f(int take, float a, float b)
    double minidl_select_d(int take, double a, double b)
    int64_t minidl_select_i(int take, int64_t a, int64_t b)
    int mp_level
    int mp_select_level(int level)
    int minidl_max_2x2_f(const float* x, float* y, uint8_t* code, Py_ssize_t rows,
                         Py_ssize_t wo, float* hm, int32_t* hs, int want_codes)
    int minidl_max_2x2_d(const double* x, double* y, uint8_t* code, Py_ssize_t rows,
                         Py_ssize_t wo, double* hm, int32_t* hs, int want_codes)
    void minidl_max_2x2_backward_f(const float* g, const uint8_t* code, float* dx,
                                   Py_ssize_t rows, Py_ssize_t wo)
    void minidl_max_2x2_backward_d(const double* g, const uint8_t* code, double* dx,
                                   Py_ssize_t rows, Py_ssize_t wo)
    void minidl_relu_codes_f(float* y, uint8_t* code, Py_ssize_t n)
    void minidl_relu_codes_d(double* y, uint8_t* code, Py_ssize_t n)

cnp.import_array()
mp_select_level(cpu_level())


def simd_level():
    """"avx512" when the float32 2x2 max pool runs its AVX-512 paths, else "portable"."""
    return "avx512" if mp_level else "portable"


cdef bint _use_2x2 = True


def _use_2x2_kernels(bint on):
    """Tests and benchmarks: send 2x2 / stride 2 / no padding through max_pool2d_forward's
    general kernel (False) or its 2x2 kernels (True, the default); returns ``on``."""
    global _use_2x2
    _use_2x2 = on
    return on


def _use_simd(bint on):
    """Tests: turn the AVX-512 paths off (or back on where the CPU and MINIDL_CPU_LEVEL
    allow them); returns simd_level()."""
    mp_select_level(cpu_level() if on else 0)
    return simd_level()


cdef enum:
    MAX_FAST_KW = 32       # kernel widths up to this get their column ranges precomputed
    CHUNK_OUTPUTS = 1024   # outputs per chunk of stacked planes in the 2x2 max pool


cdef struct PoolGeometry:
    int N, C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo
    bint count_include_pad


cdef PoolGeometry _geometry(tuple xshape, kernel_size, stride, padding):
    cdef PoolGeometry g
    g.N = xshape[0]; g.C = xshape[1]; g.H = xshape[2]; g.W = xshape[3]
    g.kh = kernel_size[0]; g.kw = kernel_size[1]
    g.sh = stride[0]; g.sw = stride[1]
    g.ph = padding[0]; g.pw = padding[1]
    g.Ho = out_len(g.H, g.ph, g.kh, g.sh)
    g.Wo = out_len(g.W, g.pw, g.kw, g.sw)
    g.count_include_pad = True
    return g


cdef inline int _imax(int a, int b) noexcept nogil:
    return a if a > b else b


cdef inline int _imin(int a, int b) noexcept nogil:
    return a if a < b else b


cdef inline bint _is_2x2(const PoolGeometry* g) noexcept nogil:
    """kernel 2x2, stride 2, no padding: the windows tile the plane (the divisor is 4
    whatever count_include_pad says)."""
    return g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.ph == 0 and g.pw == 0


cdef Py_ssize_t _planes_per_chunk(const PoolGeometry* g) noexcept nogil:
    """Consecutive (n, c) planes the 2x2 paths stack into one chunk: small planes are
    batched (fewer calls per output) when H is even, so planes stack row after row."""
    cdef Py_ssize_t planes = <Py_ssize_t>g.N * g.C, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef Py_ssize_t per_chunk = 1
    if g.H % 2 == 0 and plane_out < CHUNK_OUTPUTS:
        per_chunk = CHUNK_OUTPUTS // plane_out
    return per_chunk if per_chunk < planes else planes


# --------------------------------------------------------------------------- max pool

cdef bint _max_plane(const PoolGeometry* g, const floating* xp, floating* yp, int64_t* ip,
                     bint nan_wins) noexcept nogil:
    """One (n, c) plane, any window.  For each output row, the window offsets (i, j) are
    the outer loops and the output column the inner one: consecutive outputs are
    independent, so the loop pipelines (a per-window loop is one long compare-select
    chain).  Each output still sees its window in row-major order, and only a strictly
    larger value replaces the current maximum: ties keep the first maximum.

    A NaN wins its window (the last one) only with ``nan_wins``; without, the plane is
    scanned for NaN on the side (cheaper than the extra test in the select) and False
    returned if one was seen: the caller then runs it again with ``nan_wins``."""
    cdef int H = g.H, W = g.W, kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw
    cdef int ph = g.ph, pw = g.pw, Ho = g.Ho, Wo = g.Wo
    cdef int oh, ow, ih, i, j, lo, hi, offset
    cdef floating v, m
    cdef floating* yrow
    cdef int64_t* irow
    cdef const floating* src
    cdef int64_t base, row0
    cdef int take, nan_seen = 0
    # valid output-column range per kernel column j (independent of oh and i)
    cdef int los[MAX_FAST_KW]
    cdef int his[MAX_FAST_KW]
    for j in range(_imin(kw, MAX_FAST_KW)):
        _valid_range(W, Wo, sw, j - pw, &los[j], &his[j])
    for oh in range(Ho):
        yrow = yp + <Py_ssize_t>oh * Wo
        irow = ip + <Py_ssize_t>oh * Wo
        # padding acts as -inf; the index starts at the window's first real element
        row0 = <int64_t>_imax(oh * sh - ph, 0) * W
        for ow in range(Wo):
            yrow[ow] = -INFINITY
            irow[ow] = row0 + _imax(ow * sw - pw, 0)
        for i in range(kh):
            ih = oh * sh - ph + i
            if ih < 0 or ih >= H:
                continue
            for j in range(kw):
                offset = j - pw
                if j < MAX_FAST_KW:
                    lo = los[j]
                    hi = his[j]
                else:
                    _valid_range(W, Wo, sw, offset, &lo, &hi)
                src = xp + <Py_ssize_t>ih * W + offset
                base = <int64_t>ih * W + offset
                for ow in range(lo, hi):
                    v = src[ow * sw]
                    m = yrow[ow]
                    take = v > m
                    if nan_wins:
                        take = take | (v != v)
                    else:
                        nan_seen |= v != v
                    irow[ow] = minidl_select_i(take, base + ow * sw, irow[ow])
                    if floating is float:
                        yrow[ow] = minidl_select_f(take, v, m)
                    else:
                        yrow[ow] = minidl_select_d(take, v, m)
    return not nan_seen


cdef bint _max_rows_2x2(int W, int Wo, Py_ssize_t rows, const floating* xp, floating* yp,
                        int64_t* ip, const int64_t* corner, floating* vmax,
                        int* vsel) noexcept nogil:
    """Kernel 2x2, stride 2, no padding, W even: ``rows`` output rows (Wo each) from the
    2*rows input rows (W each) at xp -- one plane, or several stacked planes when H is
    even.  Returns False, writing nothing valid, if the input holds a NaN (the caller
    then runs _max_plane with nan_wins).

    Two branch-free passes that vectorise (a branch on the data mispredicts half the time
    on random data, ~10 ns per output):
    pass 1 (inner loop over the W columns): vmax[r, w] = larger of rows 2r and 2r+1,
    vsel[r, w] = W if the bottom one is strictly larger, else 0 (ties keep the top one);
    pass 2 (linear over the outputs): the larger of the column pair; the right one wins
    if strictly larger, or on a tie when it comes from the top row and the left one from
    the bottom (it is then first in row-major order).
    ``corner[k]`` is the in-plane flat index of output k's top-left input.  Scratch:
    ``vmax`` and ``vsel`` hold rows*W elements."""
    cdef Py_ssize_t r, w, k, n_out = rows * Wo
    cdef int take, sl, sr
    cdef const floating* top
    cdef const floating* bot
    cdef floating* vrow
    cdef int* srow
    cdef floating t, b, left, right
    cdef int nan_seen = 0
    for r in range(rows):
        top = xp + 2 * r * W
        bot = top + W
        vrow = vmax + r * W
        srow = vsel + r * W
        for w in range(W):
            t = top[w]
            b = bot[w]
            nan_seen |= (t != t) | (b != b)
            vrow[w] = b if b > t else t
            srow[w] = (b > t) * W
    if nan_seen:
        return False
    # (rows, W) = (rows, Wo, 2): output k's column pair is vmax[2k], vmax[2k+1]
    for k in range(n_out):
        left = vmax[2 * k]
        right = vmax[2 * k + 1]
        sl = vsel[2 * k]
        sr = vsel[2 * k + 1]
        take = (right > left) | ((right == left) & (sl > sr))
        yp[k] = right if take else left
        ip[k] = corner[k] + (sl + ((-take) & (1 + sr - sl)))
    return True


cdef _max_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                  int64_t[:, :, :, ::1] idx, PoolGeometry g, int num_threads):
    cdef Py_ssize_t p, planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef int64_t* ip = &idx[0, 0, 0, 0]
    cdef int nt = choose_threads(num_threads, <double>planes * g.Ho * g.Wo * g.kh * g.kw, planes)
    if _use_2x2 and _is_2x2(&g) and g.W % 2 == 0:
        _max_forward_2x2(xp, yp, ip, &g, nt)
        return
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            if not _max_plane(&g, xp + p * plane_in, yp + p * plane_out, ip + p * plane_out,
                              False):
                _max_plane(&g, xp + p * plane_in, yp + p * plane_out, ip + p * plane_out, True)


cdef _max_forward_2x2(const floating* xp, floating* yp, int64_t* ip, PoolGeometry* g, int nt):
    """_max_rows_2x2 over chunks of consecutive planes (stacked when H is even, which
    saves the per-plane overhead on small planes)."""
    cdef Py_ssize_t planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef Py_ssize_t per_chunk = _planes_per_chunk(g), ch, p, p0, p1, k
    cdef Py_ssize_t nchunks = (planes + per_chunk - 1) // per_chunk
    cdef int tid
    cdef Py_ssize_t rows = per_chunk * g.Ho
    cdef int oh, ow
    cdef floating* vmax = NULL
    cdef int* vsel = NULL
    cdef int64_t* corner = NULL
    try:
        vmax = <floating*>scratch_alloc(<size_t>nt * rows * g.W, sizeof(floating))
        vsel = <int*>scratch_alloc(<size_t>nt * rows * g.W, sizeof(int))
        corner = <int64_t*>scratch_alloc(<size_t>rows * g.Wo, sizeof(int64_t))
        k = 0
        for p in range(per_chunk):
            for oh in range(g.Ho):
                for ow in range(g.Wo):
                    corner[k] = 2 * oh * g.W + 2 * ow
                    k += 1
        with nogil:
            for ch in prange(nchunks, num_threads=nt, schedule='static'):
                tid = threadid()
                p0 = ch * per_chunk
                p1 = min(p0 + per_chunk, planes)
                if not _max_rows_2x2(g.W, g.Wo, (p1 - p0) * g.Ho, xp + p0 * plane_in,
                                     yp + p0 * plane_out, ip + p0 * plane_out, corner,
                                     vmax + tid * rows * g.W, vsel + tid * rows * g.W):
                    for p in range(p0, p1):
                        _max_plane(g, xp + p * plane_in, yp + p * plane_out,
                                   ip + p * plane_out, True)
    finally:
        free(vmax); free(vsel); free(corner)


cdef void _codes_from_indices(const int64_t* ip, uint8_t* cp, int W, int Ho,
                              int Wo) noexcept nogil:
    """Flat indices ih*W + iw of one plane's 2x2 windows -> window codes."""
    cdef int oh, ow
    cdef int64_t k
    for oh in range(Ho):
        for ow in range(Wo):
            k = ip[oh * Wo + ow]
            cp[oh * Wo + ow] = <uint8_t>(2 * (k // W - 2 * oh) + (k % W - 2 * ow))


cdef _max_2x2(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y, uint8_t* cp,
              PoolGeometry g, int num_threads, bint relu=False):
    """The 2x2 window-code kernel (W even) over chunks of consecutive planes (stacked when
    H is even, which saves the per-plane overhead on small planes): the codes into
    ``cp``, or (NULL) the values only; with ``relu``, relu of the maxima, each chunk while
    it is in cache (code 4 where the ReLU zeroed a maximum)."""
    cdef Py_ssize_t planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef int nt = choose_threads(num_threads, <double>planes * plane_out * 4, planes)
    cdef Py_ssize_t per_chunk = _planes_per_chunk(&g)
    cdef Py_ssize_t nchunks = (planes + per_chunk - 1) // per_chunk
    cdef Py_ssize_t ch, p, p0, p1, chunk_out = per_chunk * plane_out
    cdef Py_ssize_t scratch = 2 * chunk_out  # pair maxima: 2*rows*Wo per chunk
    cdef int tid, nan_seen, want_codes = cp != NULL
    cdef floating* hm = NULL
    cdef int32_t* hs = NULL
    cdef uint8_t* codes = NULL      # values only: the AVX-512 path writes codes anyway
    cdef int64_t* iscratch = NULL   # a plane's indices on the NaN path
    cdef uint8_t* cc
    try:
        hm = <floating*>scratch_alloc(<size_t>nt * scratch, sizeof(floating))
        hs = <int32_t*>scratch_alloc(<size_t>nt * scratch, sizeof(int32_t))
        if cp == NULL:
            codes = <uint8_t*>scratch_alloc(<size_t>nt * chunk_out, sizeof(uint8_t))
        iscratch = <int64_t*>scratch_alloc(<size_t>nt * plane_out, sizeof(int64_t))
        with nogil:
            for ch in prange(nchunks, num_threads=nt, schedule='static'):
                tid = threadid()
                p0 = ch * per_chunk
                p1 = min(p0 + per_chunk, planes)
                cc = cp + p0 * plane_out if cp != NULL else codes + tid * chunk_out
                if floating is float:
                    nan_seen = minidl_max_2x2_f(
                        xp + p0 * plane_in, yp + p0 * plane_out, cc, (p1 - p0) * g.Ho, g.Wo,
                        hm + tid * scratch, hs + tid * scratch, want_codes)
                else:
                    nan_seen = minidl_max_2x2_d(
                        xp + p0 * plane_in, yp + p0 * plane_out, cc, (p1 - p0) * g.Ho, g.Wo,
                        hm + tid * scratch, hs + tid * scratch, want_codes)
                if nan_seen:
                    for p in range(p0, p1):
                        _max_plane(&g, xp + p * plane_in, yp + p * plane_out,
                                   iscratch + tid * plane_out, True)
                        if cp != NULL:
                            _codes_from_indices(iscratch + tid * plane_out, cp + p * plane_out,
                                                g.W, g.Ho, g.Wo)
                if relu:
                    if floating is float:
                        minidl_relu_codes_f(yp + p0 * plane_out, cc, (p1 - p0) * plane_out)
                    else:
                        minidl_relu_codes_d(yp + p0 * plane_out, cc, (p1 - p0) * plane_out)
    finally:
        free(hm); free(hs); free(codes); free(iscratch)


def max_pool2d_relu_2x2_forward(x, int num_threads, bint need_codes):
    """relu(max_pool2d_2x2_forward(x)) in one pass: (y, codes), or (y, None) without
    ``need_codes``; where a maximum is not > 0 (NaN too) its code is 4, for which
    max_pool2d_2x2_backward writes zeros (ReLU's gradient mask is y > 0)."""
    return _pool_2x2(x, num_threads, need_codes, True)


cdef tuple _pool_2x2(x, int num_threads, bint need_codes, bint relu):
    """max_pool2d_2x2_forward's (y, codes), relu'd as max_pool2d_relu_2x2_forward's with
    ``relu``; codes None without ``need_codes``."""
    cdef PoolGeometry g = _geometry(x.shape, (2, 2), (2, 2), (0, 0))
    y = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    codes = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=np.uint8) if need_codes else None
    if y.size == 0:
        return y, codes
    cdef uint8_t[:, :, :, ::1] cv
    cdef uint8_t* cp = NULL
    if need_codes:
        cv = codes
        cp = &cv[0, 0, 0, 0]
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _max_2x2[float](x, y, cp, g, num_threads, relu)
    else:
        _max_2x2[double](x, y, cp, g, num_threads, relu)
    return y, codes


def max_pool2d_forward(x, kernel_size, stride, padding, int num_threads,
                       bint need_indices=True):
    """(y, indices) both (N, C, Ho, Wo); indices int64 flat ih*W + iw into the plane.

    need_indices=False returns (y, None) with the same y bit for bit: for 2x2 / stride 2
    / no padding with an even W the window-code kernel then writes the values only
    (writing the indices is most of the cost there); other configurations compute the
    indices anyway and drop them."""
    cdef PoolGeometry g = _geometry(x.shape, kernel_size, stride, padding)
    y = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    if not need_indices and y.size != 0 and _use_2x2 and _is_2x2(&g) and g.W % 2 == 0:
        if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
            _max_2x2[float](x, y, NULL, g, num_threads)
        else:
            _max_2x2[double](x, y, NULL, g, num_threads)
        return y, None
    idx = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=np.int64)
    if y.size == 0:
        return y, (idx if need_indices else None)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _max_forward[float](x, y, idx, g, num_threads)
    else:
        _max_forward[double](x, y, idx, g, num_threads)
    return y, (idx if need_indices else None)


def max_pool2d_2x2_forward(x, int num_threads):
    """Kernel 2x2, stride 2, no padding, H and W even: (y, codes), both (N, C, H/2, W/2);
    codes uint8, the row-major position (0..3) of each window's maximum, chosen by the
    same rules as the flat indices of max_pool2d_forward (first maximum; a NaN wins, the
    last NaN); y is bit for bit max_pool2d_forward's."""
    return _pool_2x2(x, num_threads, True, False)


def max_pool2d_2x2_backward(grad_out, codes, int num_threads):
    """grad_input (N, C, 2*Ho, 2*Wo) from grad_out and the codes of
    max_pool2d_2x2_forward, both (N, C, Ho, Wo)."""
    cdef Py_ssize_t N = grad_out.shape[0], C = grad_out.shape[1]
    cdef Py_ssize_t Ho = grad_out.shape[2], Wo = grad_out.shape[3]
    dx = np.empty((N, C, 2 * Ho, 2 * Wo), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _max_2x2_backward[float](grad_out, codes, dx, num_threads)
    else:
        _max_2x2_backward[double](grad_out, codes, dx, num_threads)
    return dx


cdef _max_2x2_backward(const floating[:, :, :, ::1] dy, const uint8_t[:, :, :, ::1] codes,
                       floating[:, :, :, ::1] dx, int num_threads):
    cdef PoolGeometry g = _geometry((dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]),
                                    (2, 2), (2, 2), (0, 0))
    cdef Py_ssize_t planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef const floating* dyp = &dy[0, 0, 0, 0]
    cdef const uint8_t* cp = &codes[0, 0, 0, 0]
    cdef floating* dxp = &dx[0, 0, 0, 0]
    cdef int nt = choose_threads(num_threads, <double>planes * plane_in, planes)
    cdef Py_ssize_t per_chunk = _planes_per_chunk(&g)
    cdef Py_ssize_t nchunks = (planes + per_chunk - 1) // per_chunk
    cdef Py_ssize_t ch, p0, p1
    with nogil:
        for ch in prange(nchunks, num_threads=nt, schedule='static'):
            p0 = ch * per_chunk
            p1 = min(p0 + per_chunk, planes)
            if floating is float:
                minidl_max_2x2_backward_f(dyp + p0 * plane_out, cp + p0 * plane_out,
                                          dxp + p0 * plane_in, (p1 - p0) * g.Ho, g.Wo)
            else:
                minidl_max_2x2_backward_d(dyp + p0 * plane_out, cp + p0 * plane_out,
                                          dxp + p0 * plane_in, (p1 - p0) * g.Ho, g.Wo)


cdef void _max_backward_plane(const floating* dyp, const int64_t* ip, floating* dxp,
                              Py_ssize_t plane_in, Py_ssize_t plane_out) noexcept nogil:
    cdef Py_ssize_t k
    memset(dxp, 0, plane_in * sizeof(floating))
    for k in range(plane_out):
        dxp[ip[k]] += dyp[k]


cdef _max_backward(const floating[:, :, :, ::1] dy, const int64_t[:, :, :, ::1] idx,
                   floating[:, :, :, ::1] dx, int num_threads):
    cdef int N = dx.shape[0], C = dx.shape[1]
    cdef Py_ssize_t plane_in = dx.shape[2] * dx.shape[3]
    cdef Py_ssize_t plane_out = dy.shape[2] * dy.shape[3]
    cdef Py_ssize_t p, planes = <Py_ssize_t>N * C
    cdef int nt = choose_threads(num_threads, <double>planes * (plane_in + 2 * plane_out), planes)
    cdef const floating* dyp = &dy[0, 0, 0, 0]
    cdef const int64_t* ip = &idx[0, 0, 0, 0]
    cdef floating* dxp = &dx[0, 0, 0, 0]
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            _max_backward_plane(dyp + p * plane_out, ip + p * plane_out, dxp + p * plane_in,
                                plane_in, plane_out)


def max_pool2d_backward(grad_out, indices, input_shape, int num_threads):
    """grad_input (N, C, H, W): each grad_out element added at its stored argmax."""
    dx = np.empty(tuple(input_shape), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if grad_out.size == 0:
        dx.fill(0)
        return dx
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _max_backward[float](grad_out, indices, dx, num_threads)
    else:
        _max_backward[double](grad_out, indices, dx, num_threads)
    return dx


# --------------------------------------------------------------------------- avg pool

cdef inline double _divisor(const PoolGeometry* g, int oh, int ow) noexcept nogil:
    cdef int h0, h1, w0, w1
    if g.count_include_pad:
        return <double>g.kh * g.kw
    h0 = oh * g.sh - g.ph
    w0 = ow * g.sw - g.pw
    h1 = _imin(h0 + g.kh, g.H)
    w1 = _imin(w0 + g.kw, g.W)
    h0 = _imax(h0, 0)
    w0 = _imax(w0, 0)
    return <double>(h1 - h0) * (w1 - w0)


cdef void _avg_plane(const PoolGeometry* g, const floating* xp, floating* yp) noexcept nogil:
    cdef int oh, ow, ih, iw, h0, h1, w0, w1
    cdef double s
    for oh in range(g.Ho):
        h0 = oh * g.sh - g.ph
        h1 = _imin(h0 + g.kh, g.H)
        h0 = _imax(h0, 0)
        for ow in range(g.Wo):
            w0 = ow * g.sw - g.pw
            w1 = _imin(w0 + g.kw, g.W)
            w0 = _imax(w0, 0)
            s = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    s = s + xp[ih * g.W + iw]
            yp[oh * g.Wo + ow] = <floating>(s / _divisor(g, oh, ow))


cdef void _avg_backward_plane(const PoolGeometry* g, const floating* dyp,
                              floating* dxp) noexcept nogil:
    cdef int oh, ow, ih, iw, h0, h1, w0, w1
    cdef floating share
    memset(dxp, 0, <size_t>g.H * g.W * sizeof(floating))
    for oh in range(g.Ho):
        h0 = oh * g.sh - g.ph
        h1 = _imin(h0 + g.kh, g.H)
        h0 = _imax(h0, 0)
        for ow in range(g.Wo):
            w0 = ow * g.sw - g.pw
            w1 = _imin(w0 + g.kw, g.W)
            w0 = _imax(w0, 0)
            share = <floating>(dyp[oh * g.Wo + ow] / _divisor(g, oh, ow))
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    dxp[ih * g.W + iw] += share


cdef void _avg_plane_2x2(const PoolGeometry* g, const floating* xp, floating* yp) noexcept nogil:
    cdef int W = g.W, Wo = g.Wo, oh, ow
    cdef const floating* p
    for oh in range(g.Ho):
        for ow in range(Wo):
            p = xp + <Py_ssize_t>(2 * oh) * W + 2 * ow
            yp[oh * Wo + ow] = <floating>((<double>p[0] + p[1] + p[W] + p[W + 1]) / 4)


cdef void _avg_backward_plane_2x2(const PoolGeometry* g, const floating* dyp,
                                  floating* dxp) noexcept nogil:
    cdef int W = g.W, Wo = g.Wo, oh, ow
    cdef floating share
    cdef floating* p
    if g.H != 2 * g.Ho or W != 2 * Wo:  # a last odd row/column gets no gradient
        memset(dxp, 0, <size_t>g.H * W * sizeof(floating))
    for oh in range(g.Ho):
        for ow in range(Wo):
            share = <floating>(dyp[oh * Wo + ow] / 4.0)
            p = dxp + <Py_ssize_t>(2 * oh) * W + 2 * ow
            p[0] = share
            p[1] = share
            p[W] = share
            p[W + 1] = share


cdef _avg_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                  PoolGeometry g, int num_threads):
    cdef Py_ssize_t p, planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef const floating* xp = &x[0, 0, 0, 0]
    cdef floating* yp = &y[0, 0, 0, 0]
    cdef int nt = choose_threads(num_threads, <double>planes * g.Ho * g.Wo * g.kh * g.kw, planes)
    cdef bint two_by_two = _is_2x2(&g)
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            if two_by_two:
                _avg_plane_2x2(&g, xp + p * plane_in, yp + p * plane_out)
            else:
                _avg_plane(&g, xp + p * plane_in, yp + p * plane_out)


cdef _avg_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                   PoolGeometry g, int num_threads):
    cdef Py_ssize_t p, planes = <Py_ssize_t>g.N * g.C
    cdef Py_ssize_t plane_in = <Py_ssize_t>g.H * g.W, plane_out = <Py_ssize_t>g.Ho * g.Wo
    cdef const floating* dyp = &dy[0, 0, 0, 0]
    cdef floating* dxp = &dx[0, 0, 0, 0]
    cdef int nt = choose_threads(
        num_threads, <double>planes * (g.Ho * g.Wo * g.kh * g.kw + g.H * g.W), planes)
    cdef bint two_by_two = _is_2x2(&g)
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            if two_by_two:
                _avg_backward_plane_2x2(&g, dyp + p * plane_out, dxp + p * plane_in)
            else:
                _avg_backward_plane(&g, dyp + p * plane_out, dxp + p * plane_in)


def avg_pool2d_forward(x, kernel_size, stride, padding, bint count_include_pad,
                       int num_threads):
    """y (N, C, Ho, Wo): window means (divisor kh*kw, or the non-padding count)."""
    cdef PoolGeometry g = _geometry(x.shape, kernel_size, stride, padding)
    g.count_include_pad = count_include_pad
    y = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    if y.size == 0:
        return y
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _avg_forward[float](x, y, g, num_threads)
    else:
        _avg_forward[double](x, y, g, num_threads)
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride, padding,
                        bint count_include_pad, int num_threads):
    """grad_input (N, C, H, W): each grad_out element spread evenly over its window."""
    cdef PoolGeometry g = _geometry(tuple(input_shape), kernel_size, stride, padding)
    g.count_include_pad = count_include_pad
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _avg_backward[float](grad_out, dx, g, num_threads)
    else:
        _avg_backward[double](grad_out, dx, g, num_threads)
    return dx


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
