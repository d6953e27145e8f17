"""Direct float32 convolution for stride 1, dilation 1, one group (direct_conv.h).

No im2col: the input is copied once per column offset of the filter (forward, weight
gradient) or dY laid out in the input's row pitch (input gradient), so that every tap
of the filter is one constant shift of a run of output positions, and the three passes
are register-blocked multiply-adds on explicit SIMD vectors (AVX-512 or AVX2 + FMA,
chosen at run time; ``level()`` is 0 where neither is available, and the ops layer then
stays on im2col + GEMM):
  forward          y[n]  (F, Ho, Wo)  from x[n] (C, H, W)
  backward input   dx[n] (C, H, W)    from dY[n]: each tap's sum over F added at its shift
  backward weight  dW (F, C, kh, kw) = Σ_n dY[n] ⋆ x[n], and db = Σ dY

Threads: the forward and input gradient split the batch into one run of samples per
thread (each sample is computed by the same operations whatever the split).  The weight
gradient sums chunks of samples into partials whose number depends on the problem only
(partial_chunks), added in chunk order: bit-identical results for any thread count.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, uint8_t
from libc.stdlib cimport free

from minidl._kernels._helpers cimport (
    minidl_planned_threads, choose_threads, partial_chunks, add_partials, sum_bias_partials,
    scratch_alloc, cpu_level,
)

cnp.import_array()

cdef extern from "max_pool.h" nogil:
    int mp_select_level(int level)
    int minidl_max_2x2_f(const float* x, float* y, uint8_t* code, Py_ssize_t rows,
                         Py_ssize_t wo, float* hm, int32_t* hs, int want_codes)
    void minidl_relu_codes_f(float* y, uint8_t* code, Py_ssize_t n)

cdef extern from "direct_conv.h" nogil:
    ctypedef struct minidl_direct_geom:
        int N, C, H, W, F, kh, kw, ph, pw, Wp, Ho, Wo, vw, fpad, cpad, cb, taps, iq_layout
        Py_ssize_t qlen, wq_len, iq_len, plane
    int minidl_direct_select_level(int level)
    void minidl_direct_init(minidl_direct_geom* g, int level, int N, int C, int H, int W,
                            int F, int kh, int kw, int ph, int pw, int iq_layout)
    Py_ssize_t minidl_direct_forward_scratch(const minidl_direct_geom* g)
    Py_ssize_t minidl_direct_input_scratch(const minidl_direct_geom* g)
    Py_ssize_t minidl_direct_weight_scratch(const minidl_direct_geom* g)
    void minidl_direct_weight_for_forward(const minidl_direct_geom* g, const float* w,
                                          float* wt)
    void minidl_direct_weight_for_input(const minidl_direct_geom* g, const float* w,
                                        float* wc)
    void minidl_direct_forward(const minidl_direct_geom* g, const float* x, const float* wt,
                               const float* bias, float* y, Py_ssize_t n0, Py_ssize_t n1,
                               float* scratch)
    void minidl_direct_input(const minidl_direct_geom* g, const float* dy, const float* wc,
                             float* dx, Py_ssize_t n0, Py_ssize_t n1, float* scratch)
    void minidl_direct_weight(const minidl_direct_geom* g, const float* x, const float* dy,
                              const uint8_t* codes, Py_ssize_t n0, Py_ssize_t n1, float* dw,
                              double* db, float* scratch)

cdef extern from "direct_conv_c1_pool.h" nogil:
    int minidl_direct_c1_pool_applies(const minidl_direct_geom* g)
    int minidl_direct_c1_pool(const minidl_direct_geom* g, const float* x, const float* wt,
                              const float* bias, int relu, float* y, uint8_t* codes,
                              Py_ssize_t n0, Py_ssize_t n1, float* xs)

_LEVEL_NAMES = {0: "none", 1: "avx2", 2: "avx512"}
# the input gradient's dY' layouts (direct_conv.h), by name
LAYOUTS = ("pitch", "rows", "half rows")
_LAYOUT_CODES = {name: code for code, name in enumerate(LAYOUTS)}


# MINIDL_CPU_LEVEL=0 turns the direct kernels off, 1 keeps them on AVX2 where the CPU
# has AVX-512 (cpu_level)
cdef int _LEVEL = minidl_direct_select_level(cpu_level())
mp_select_level(cpu_level())   # this module's copy of the 2x2 pool (conv2d_pool_forward)


def level():
    """The instruction set the direct kernels run on here: 0 (unavailable), 1 (AVX2 +
    FMA) or 2 (AVX-512)."""
    return _LEVEL


def level_name():
    return _LEVEL_NAMES[_LEVEL]


def vector_width():
    """Floats per vector of the level the direct kernels run on (0 where unavailable)."""
    if _LEVEL == 0:
        return 0
    return _geometry((1, 1, 1, 1), (1, 1, 1, 1), (0, 0)).vw


def efficiency(input_shape, weight_shape, *, padding, layout):
    """{"forward", "input", "weight"}: the share of the multiply-adds each pass issues
    that are useful at this shape, the input gradient's dY' laid out as ``layout``.  The
    rest: output positions rounded up to whole register blocks (forward) or vectors
    (weight), the zero lanes of the dY' layout (input), and F (forward, weight) or C
    (input) rounded up to the register block."""
    cdef minidl_direct_geom g = _geometry(tuple(input_shape), tuple(weight_shape), padding,
                                          layout)
    cdef double outputs = <double>g.Ho * g.Wo
    return {"forward": outputs / g.qlen * g.F / g.fpad,
            "input": outputs / g.iq_len * g.C / g.cpad,
            "weight": outputs / g.wq_len * g.F / g.fpad}


def input_channel_block(input_shape, weight_shape, padding):
    """Channels the input gradient sums in one register block at this shape (for tests)."""
    return _geometry(tuple(input_shape), tuple(weight_shape), padding, "pitch").cb


cdef tuple _shape(const float[:, :, :, ::1] a):
    return (a.shape[0], a.shape[1], a.shape[2], a.shape[3])


cdef minidl_direct_geom _geometry(tuple xshape, tuple wshape, padding,
                                  str layout="pitch"):
    """The geometry of a problem, the input gradient laid out as ``layout``."""
    if _LEVEL == 0:
        raise RuntimeError("minidl: the direct convolution kernels are not available here")
    code = _LAYOUT_CODES.get(layout)
    if code is None:
        raise ValueError(f"direct conv: layout must be one of {LAYOUTS}, got {layout!r}")
    cdef minidl_direct_geom g
    minidl_direct_init(&g, _LEVEL, xshape[0], xshape[1], xshape[2], xshape[3],
                       wshape[0], wshape[2], wshape[3], padding[0], padding[1], code)
    if code == 2 and 2 * g.Wo > g.vw:
        raise ValueError(f"direct conv: the {layout!r} layout needs rows of at most "
                         f"{g.vw // 2} outputs, got {g.Wo}")
    return g


cdef inline double _work(const minidl_direct_geom* g, double written) noexcept nogil:
    """choose_threads' unit of work for a pass that writes ``written`` elements:
    multiply-adds / 16, so the MNIST-like 6->16 layer (9.8M multiply-adds a pass) splits
    over 2 threads (measurements: benchmarks/conv_dispatch.md), plus what it writes: with
    few multiply-adds per output (one input channel) the stores take the time."""
    return <double>g.N * g.F * g.C * g.taps * g.Ho * g.Wo / 16 + written


cdef class _Scratch:
    """One 64-byte aligned scratch area a thread (aligned vector loads and stores)."""
    cdef void* raw
    cdef float* base
    cdef Py_ssize_t stride

    def __cinit__(self, Py_ssize_t per_thread, int threads):
        self.stride = (per_thread + 15) // 16 * 16
        self.raw = scratch_alloc(<size_t>(threads * self.stride + 16), sizeof(float))
        self.base = <float*>((<size_t>self.raw + 63) // 64 * 64)

    def __dealloc__(self):
        free(self.raw)


cdef const float* _bias_pointer(bias) except? NULL:
    """The float32 bias's data, or NULL for None (the caller keeps ``bias`` alive)."""
    cdef const float[::1] bv
    if bias is None:
        return NULL
    bv = bias
    return &bv[0]


cdef float[::1] _forward_weights(const minidl_direct_geom* g,
                                 const float[:, :, :, ::1] weight):
    """The weight in the layout the forward reads (minidl_direct_weight_for_forward)."""
    cdef float[::1] wt = np.empty(g.C * g.taps * g.fpad, dtype=np.float32)
    minidl_direct_weight_for_forward(g, &weight[0, 0, 0, 0], &wt[0])
    return wt


def conv2d_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] weight,
                   bias, *, padding, int num_threads):
    """y (N, F, Ho, Wo) from x (N, C, H, W), weight (F, C, kh, kw), bias (F,) or None."""
    cdef minidl_direct_geom g = _geometry(_shape(x), _shape(weight), padding)
    y = np.empty((g.N, g.F, g.Ho, g.Wo), dtype=np.float32)
    if y.size == 0:
        return y
    cdef float[:, :, :, ::1] yv = y
    cdef const float* bp = _bias_pointer(bias)
    cdef float[::1] wt = _forward_weights(&g, weight)
    cdef int nt = choose_threads(num_threads, _work(&g, y.size), g.N)
    cdef _Scratch scratch = _Scratch(minidl_direct_forward_scratch(&g), nt)
    cdef Py_ssize_t t
    with nogil:
        for t in prange(nt, num_threads=nt, schedule='static'):
            minidl_direct_forward(&g, &x[0, 0, 0, 0], &wt[0], bp, &yv[0, 0, 0, 0],
                                  t * g.N // nt, (t + 1) * g.N // nt,
                                  scratch.base + threadid() * scratch.stride)
    return y


# conv outputs a chunk of samples holds at most (floats): the pool reads them from cache
cdef enum:
    POOL_CHUNK = 1 << 14


def conv2d_pool_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] weight,
                        bias, *, padding, bint relu, bint need_codes, int num_threads):
    """max_pool2d(conv2d(x), 2), relu'd with ``relu``, without writing the conv output
    out: each thread convolves a chunk of samples into a buffer that stays in cache and
    pools it from there (the 2x2 kernel of max_pool.h; codes as max_pool2d_2x2_forward's
    and, with ``relu``, as max_pool2d_relu_2x2_forward's); with one input channel, the
    kernel of direct_conv_c1_pool.h, which pools in registers.  Ho and Wo must be even.

    (y (N, F, Ho/2, Wo/2), codes (same shape, uint8) or None without ``need_codes``); or
    None if a NaN reached the pool (the caller then runs the ops one by one).  Every
    sample goes through the same operations whatever the threads: the same bits."""
    cdef minidl_direct_geom g = _geometry(_shape(x), _shape(weight), padding)
    if g.Ho % 2 or g.Wo % 2:
        raise ValueError(f"direct conv: pooling 2x2 needs an even output, got {g.Ho}x{g.Wo}")
    cdef Py_ssize_t plane = <Py_ssize_t>g.F * g.Ho * g.Wo   # a sample's conv outputs
    cdef Py_ssize_t pooled = plane // 4
    y = np.empty((g.N, g.F, g.Ho // 2, g.Wo // 2), dtype=np.float32)
    codes = np.empty(y.shape, dtype=np.uint8) if need_codes else None
    if y.size == 0:
        return y, codes
    cdef const float* bp = _bias_pointer(bias)
    cdef float[::1] wt = _forward_weights(&g, weight)
    cdef Py_ssize_t chunk = max(1, POOL_CHUNK // plane)
    cdef Py_ssize_t nchunks = (g.N + chunk - 1) // chunk
    cdef int nt = choose_threads(num_threads, _work(&g, <double>g.N * plane), nchunks)
    # one input channel: its own kernel (direct_conv_c1_pool.h), a padded plane a thread
    cdef bint c1 = minidl_direct_c1_pool_applies(&g)
    # else a thread's area: the forward's scratch, the chunk's conv outputs, the pool's
    # pair maxima (hm, and hs as floats' room) and its codes when none are kept
    cdef Py_ssize_t fwd_len = (minidl_direct_forward_scratch(&g) + 15) // 16 * 16
    cdef Py_ssize_t out_len = (chunk * plane + 15) // 16 * 16
    cdef Py_ssize_t pair_len = (chunk * plane // 2 + 15) // 16 * 16
    cdef _Scratch scratch = _Scratch(
        g.plane if c1 else fwd_len + out_len + 2 * pair_len + chunk * pooled, nt)
    cdef float[:, :, :, ::1] yv = y
    cdef uint8_t[:, :, :, ::1] cv
    cdef uint8_t* cp = NULL
    if need_codes:
        cv = codes
        cp = &cv[0, 0, 0, 0]
    cdef uint8_t[::1] nan_seen = np.zeros(nchunks, dtype=np.uint8)
    cdef Py_ssize_t ch, n0, m
    cdef float* area
    cdef uint8_t* cc
    with nogil:
        for ch in prange(nchunks, num_threads=nt, schedule='static'):
            area = scratch.base + threadid() * scratch.stride
            n0 = ch * chunk
            m = min(chunk, g.N - n0)
            if c1:
                if minidl_direct_c1_pool(&g, &x[0, 0, 0, 0], &wt[0], bp, relu,
                                         &yv[0, 0, 0, 0], cp, n0, n0 + m, area):
                    nan_seen[ch] = 1
                continue
            minidl_direct_forward(&g, &x[n0, 0, 0, 0], &wt[0], bp, area + fwd_len, 0, m, area)
            cc = (cp + n0 * pooled if cp != NULL
                  else <uint8_t*>(area + fwd_len + out_len + 2 * pair_len))
            if minidl_max_2x2_f(area + fwd_len, &yv[n0, 0, 0, 0], cc, m * g.F * (g.Ho // 2),
                                g.Wo // 2, area + fwd_len + out_len,
                                <int32_t*>(area + fwd_len + out_len + pair_len), cp != NULL):
                nan_seen[ch] = 1
            elif relu:
                minidl_relu_codes_f(&yv[n0, 0, 0, 0], cc, m * pooled)
    if np.asarray(nan_seen).any():
        return None
    return y, codes


def conv2d_backward_input(const float[:, :, :, ::1] grad_out,
                          const float[:, :, :, ::1] weight, input_shape, *, padding,
                          str layout, int num_threads):
    """grad_input (N, C, H, W) from grad_out (N, F, Ho, Wo) and weight (F, C, kh, kw),
    dY' laid out as ``layout`` ("pitch", "rows" or "half rows": direct_conv.h)."""
    cdef minidl_direct_geom g = _geometry(tuple(input_shape), _shape(weight), padding,
                                          layout)
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=np.float32)
    if dx.size == 0:
        return dx
    cdef float[:, :, :, ::1] dxv = dx
    cdef float[::1] wc = np.empty(g.F * g.taps * g.cpad, dtype=np.float32)
    minidl_direct_weight_for_input(&g, &weight[0, 0, 0, 0], &wc[0])
    cdef int nt = choose_threads(num_threads, _work(&g, dx.size), g.N)
    cdef _Scratch scratch = _Scratch(minidl_direct_input_scratch(&g), nt)
    cdef Py_ssize_t t
    with nogil:
        for t in prange(nt, num_threads=nt, schedule='static'):
            minidl_direct_input(&g, &grad_out[0, 0, 0, 0], &wc[0], &dxv[0, 0, 0, 0],
                                t * g.N // nt, (t + 1) * g.N // nt,
                                scratch.base + threadid() * scratch.stride)
    return dx


def conv2d_backward_weight(const float[:, :, :, ::1] x, const float[:, :, :, ::1] grad_out,
                           weight_shape, *, padding, bint need_bias, int num_threads,
                           pool_codes=None):
    """(grad_weight (F, C, kh, kw), grad_bias (F,) or None) from x and grad_out: dY (N, F,
    Ho, Wo), or, with ``pool_codes``, the gradient of a 2x2 max pool of the conv output
    (N, F, Ho/2, Wo/2) and that pool's window codes (max_pool2d_2x2_forward's or
    conv2d_pool_forward's), spread into dY a sample at a time in scratch."""
    wshape = tuple(weight_shape)
    cdef bint need_bias_grad = need_bias
    cdef minidl_direct_geom g = _geometry(_shape(x), wshape, padding)
    cdef const uint8_t[:, :, :, ::1] cv
    cdef const uint8_t* cp = NULL
    if pool_codes is not None:
        pooled = (g.N, g.F, g.Ho // 2, g.Wo // 2)
        if (g.Ho % 2 or g.Wo % 2 or _shape(grad_out) != pooled
                or tuple(pool_codes.shape) != pooled):
            raise ValueError(f"direct conv: a pooled gradient and codes of shape {pooled} "
                             f"needed, got {_shape(grad_out)} and {pool_codes.shape}")
        cv = pool_codes
        cp = &cv[0, 0, 0, 0]
    elif _shape(grad_out) != (g.N, g.F, g.Ho, g.Wo):
        raise ValueError(f"direct conv: grad_out of shape {(g.N, g.F, g.Ho, g.Wo)} needed, "
                         f"got {_shape(grad_out)}")
    if g.N == 0 or g.Ho * g.Wo == 0:
        return (np.zeros(wshape, dtype=np.float32),
                np.zeros(g.F, dtype=np.float32) if need_bias_grad else None)
    # chunk 0 writes dw and sum_bias_partials db: both are overwritten whole
    dw = np.empty(wshape, dtype=np.float32)
    db = np.empty(g.F, dtype=np.float32) if need_bias_grad else None
    cdef Py_ssize_t weight_size = <Py_ssize_t>g.F * g.C * g.taps
    # the number of partial sums depends on the problem only, never on the threads
    # the weights it writes are few; their number of partials stays as it was
    cdef Py_ssize_t nchunks = partial_chunks(_work(&g, 0), weight_size, g.N)
    cdef int nt = choose_threads(num_threads, _work(&g, 0), nchunks)
    cdef _Scratch scratch = _Scratch(minidl_direct_weight_scratch(&g), nt)
    cdef float[:, :, :, ::1] dwv = dw
    cdef float[::1] dbv
    cdef float* dwp = &dwv[0, 0, 0, 0]
    cdef float* partials = NULL
    cdef double* dbp = NULL
    cdef Py_ssize_t ch
    try:
        if nchunks > 1:
            partials = <float*>scratch_alloc(<size_t>(nchunks - 1) * weight_size, sizeof(float))
        if need_bias_grad:
            dbp = <double*>scratch_alloc(nchunks * g.F, sizeof(double), True)
        with nogil:
            for ch in prange(nchunks, num_threads=nt, schedule='static'):
                minidl_direct_weight(&g, &x[0, 0, 0, 0], &grad_out[0, 0, 0, 0], cp,
                                     ch * g.N // nchunks, (ch + 1) * g.N // nchunks,
                                     dwp if ch == 0 else partials + (ch - 1) * weight_size,
                                     dbp + ch * g.F if dbp != NULL else NULL,
                                     scratch.base + threadid() * scratch.stride)
            add_partials(dwp, partials, nchunks - 1, weight_size, nt)   # chunk 0 wrote dw itself
        if need_bias_grad:
            dbv = db
            sum_bias_partials(dbp, nchunks, g.F, &dbv[0])
    finally:
        free(partials)
        free(dbp)
    return dw, db


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
