# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depth-wise 2-D convolution (groups = C): forward, input gradient, weight gradient.

Layouts: x (N, C, H, W), weight (F, 1, kh, kw) with F = C * m (m filters per input
channel: filter f reads channel f // m), bias (F,), y / grad_out (N, F, Ho, Wo).

Each filter sees one plane, so there is no GEMM: the kernels run along output rows (the
inner loop over ow vectorises).  3x3 filters with column stride 1 or 2 (MobileNet's)
compute each output row in one pass of nine multiply-adds per output (C, compiled for
AVX-512, AVX2 + FMA and the baseline, picked at import); other shapes add one tap at a
time.  A plane with padding is first copied into a zeroed per-thread scratch plane
(Hp, Wp), so the inner loops need no bounds checks.  The input gradient at stride 1 is
the same correlation, of dY zero-padded by (kh-1)*dh, (kw-1)*dw with the 180°-rotated
filter; other strides scatter each tap's w * dY row back onto the padded plane.

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

cdef extern from *:
    """
    #include "cpu_level.h"
    /* 3x3 rows, the hot case.  DW3_ROW: n outputs of one output row from the three
       input rows r0..r2 it reads (at their first tap), taps d apart, input step S per
       output: out[k] = b + Σ_{i,t} w[3i + t] * r_i[S*k + t*d] (accumulate: out[k] += the
       sum).  DW3_LANES: the weight gradient's per-ow lanes of one input row's three taps,
       a_t[k] += g[k] * r[S*k + t*d].  Compiled for AVX-512, AVX2 + FMA and the baseline
       (minidl_dw_level picks one at import); each is a fixed sequence of operations, so
       results do not depend on the thread count. */
    #define MINIDL_DW3_ROW(NAME, T, S, ATTR)                                          \
    ATTR static void NAME(T* restrict out, const T* restrict r0, const T* restrict r1, \
                          const T* restrict r2, const T* restrict w, T b,            \
                          Py_ssize_t n, Py_ssize_t d, int accumulate) {               \
        const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];      \
        const T w6 = w[6], w7 = w[7], w8 = w[8];                                       \
        const T* restrict r0b = r0 + d; const T* restrict r0c = r0 + 2 * d;            \
        const T* restrict r1b = r1 + d; const T* restrict r1c = r1 + 2 * d;            \
        const T* restrict r2b = r2 + d; const T* restrict r2c = r2 + 2 * d;            \
        Py_ssize_t k;                                                                  \
        if (accumulate) {                                                              \
            for (k = 0; k < n; k++)                                                    \
                out[k] += w0 * r0[S * k] + w1 * r0b[S * k] + w2 * r0c[S * k]           \
                        + w3 * r1[S * k] + w4 * r1b[S * k] + w5 * r1c[S * k]           \
                        + w6 * r2[S * k] + w7 * r2b[S * k] + w8 * r2c[S * k];          \
        } else {                                                                       \
            for (k = 0; k < n; k++)                                                    \
                out[k] = b + w0 * r0[S * k] + w1 * r0b[S * k] + w2 * r0c[S * k]        \
                       + w3 * r1[S * k] + w4 * r1b[S * k] + w5 * r1c[S * k]            \
                       + w6 * r2[S * k] + w7 * r2b[S * k] + w8 * r2c[S * k];           \
        }                                                                              \
    }
    #define MINIDL_DW3_LANES(NAME, T, S, ATTR)                                        \
    ATTR static void NAME(T* restrict a0, T* restrict a1, T* restrict a2,             \
                          const T* restrict g, const T* restrict r, Py_ssize_t n,     \
                          Py_ssize_t d) {                                              \
        const T* restrict rb = r + d; const T* restrict rc = r + 2 * d;                \
        Py_ssize_t k;                                                                  \
        for (k = 0; k < n; k++) {                                                      \
            T gk = g[k];                                                               \
            a0[k] += gk * r[S * k];                                                    \
            a1[k] += gk * rb[S * k];                                                   \
            a2[k] += gk * rc[S * k];                                                   \
        }                                                                              \
    }
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    #define MINIDL_DW_AVX512 __attribute__((target("avx512f")))
    #define MINIDL_DW_AVX2 __attribute__((target("avx2,fma")))
    #define MINIDL_DW_LEVELS 1
    #else
    #define MINIDL_DW_LEVELS 0
    #endif
    #define MINIDL_DW_ALL(SUFFIX, T, S)                                                \
        MINIDL_DW3_ROW(minidl_dw3_row_##SUFFIX, T, S, )                                \
        MINIDL_DW3_LANES(minidl_dw3_lanes_##SUFFIX, T, S, )                            \
        MINIDL_DW_ALL_SIMD(SUFFIX, T, S)
    #if MINIDL_DW_LEVELS
    #define MINIDL_DW_ALL_SIMD(SUFFIX, T, S)                                           \
        MINIDL_DW3_ROW(minidl_dw3_row_##SUFFIX##_avx2, T, S, MINIDL_DW_AVX2)           \
        MINIDL_DW3_LANES(minidl_dw3_lanes_##SUFFIX##_avx2, T, S, MINIDL_DW_AVX2)       \
        MINIDL_DW3_ROW(minidl_dw3_row_##SUFFIX##_avx512, T, S, MINIDL_DW_AVX512)       \
        MINIDL_DW3_LANES(minidl_dw3_lanes_##SUFFIX##_avx512, T, S, MINIDL_DW_AVX512)
    #else
    #define MINIDL_DW_ALL_SIMD(SUFFIX, T, S)
    #endif
    MINIDL_DW_ALL(f1, float, 1)
    MINIDL_DW_ALL(f2, float, 2)
    MINIDL_DW_ALL(d1, double, 1)
    MINIDL_DW_ALL(d2, double, 2)

    static int minidl_dw_level = 0;
    static void minidl_dw_init(void) { minidl_dw_level = MINIDL_DW_LEVELS ? minidl_cpu_level() : 0; }

    #if MINIDL_DW_LEVELS
    #define MINIDL_DW_PICK(FN, SUFFIX, ARGS)                                           \
        (minidl_dw_level == MINIDL_CPU_AVX512 ? FN##_##SUFFIX##_avx512 ARGS            \
         : minidl_dw_level == MINIDL_CPU_AVX2 ? FN##_##SUFFIX##_avx2 ARGS : FN##_##SUFFIX ARGS)
    #else
    #define MINIDL_DW_PICK(FN, SUFFIX, ARGS) FN##_##SUFFIX ARGS
    #endif
    #define MINIDL_DW_DISPATCH(T, C)                                                   \
    static void minidl_dw3_row_##C(T* out, const T* r0, const T* r1, const T* r2,      \
                                   const T* w, T b, Py_ssize_t n, Py_ssize_t s,       \
                                   Py_ssize_t d, int acc) {                            \
        if (s == 1) MINIDL_DW_PICK(minidl_dw3_row, C##1, (out, r0, r1, r2, w, b, n, d, acc)); \
        else MINIDL_DW_PICK(minidl_dw3_row, C##2, (out, r0, r1, r2, w, b, n, d, acc)); \
    }                                                                                  \
    static void minidl_dw3_lanes_##C(T* a0, T* a1, T* a2, const T* g, const T* r,     \
                                     Py_ssize_t n, Py_ssize_t s, Py_ssize_t d) {       \
        if (s == 1) MINIDL_DW_PICK(minidl_dw3_lanes, C##1, (a0, a1, a2, g, r, n, d));  \
        else MINIDL_DW_PICK(minidl_dw3_lanes, C##2, (a0, a1, a2, g, r, n, d));         \
    }
    MINIDL_DW_DISPATCH(float, f)
    MINIDL_DW_DISPATCH(double, d)
    """
    int minidl_dw_level
    void minidl_dw_init() noexcept nogil
    void minidl_dw3_row_f(float* out, const float* r0, const float* r1, const float* r2,
                          const float* w, float b, Py_ssize_t n, Py_ssize_t s, Py_ssize_t d,
                          int acc) noexcept nogil
    void minidl_dw3_row_d(double* out, const double* r0, const double* r1, const double* r2,
                          const double* w, double b, Py_ssize_t n, Py_ssize_t s, Py_ssize_t d,
                          int acc) noexcept nogil
    void minidl_dw3_lanes_f(float* a0, float* a1, float* a2, const float* g, const float* r,
                            Py_ssize_t n, Py_ssize_t s, Py_ssize_t d) noexcept nogil
    void minidl_dw3_lanes_d(double* a0, double* a1, double* a2, const double* g,
                            const double* r, Py_ssize_t n, Py_ssize_t s,
                            Py_ssize_t d) noexcept nogil

minidl_dw_init()


def level():
    """The instruction-set level of the 3x3 paths (0 baseline, 1 AVX2 + FMA, 2 AVX-512)."""
    return minidl_dw_level


cdef inline void _row3(floating* out, const floating* r0, const floating* r1,
                       const floating* r2, const floating* w, floating b, Py_ssize_t n,
                       Py_ssize_t s, Py_ssize_t d, bint accumulate) noexcept nogil:
    if floating is float:
        minidl_dw3_row_f(out, r0, r1, r2, w, b, n, s, d, accumulate)
    else:
        minidl_dw3_row_d(out, r0, r1, r2, w, b, n, s, d, accumulate)


cdef inline void _lanes3(floating* a0, const floating* g, const floating* r, Py_ssize_t n,
                         Py_ssize_t s, Py_ssize_t d, Py_ssize_t lane_len) noexcept nogil:
    """Lanes a0, a0 + lane_len, a0 + 2*lane_len of one input row's three taps."""
    if floating is float:
        minidl_dw3_lanes_f(a0, a0 + lane_len, a0 + 2 * lane_len, g, r, n, s, d)
    else:
        minidl_dw3_lanes_d(a0, a0 + lane_len, a0 + 2 * lane_len, g, r, n, s, d)


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
cdef void _correlate(const floating* src, Py_ssize_t ld, const floating* wf, const Geometry* g,
                     int sh, int sw, floating b, floating* out, Py_ssize_t Ho, Py_ssize_t Wo,
                     bint accumulate) noexcept nogil:
    """out[oh, ow] (+)= b + Σ_{i,t} wf[i, t] * src[(oh*sh + i*dh)*ld + ow*sw + t*dw] for
    the (Ho, Wo) plane out (b only when not accumulating)."""
    cdef Py_ssize_t oh, ow, i, t
    cdef const floating* row
    cdef floating* o
    if g.kh == 3 and g.kw == 3 and sw <= 2:
        for oh in range(Ho):
            row = src + oh * sh * ld
            _row3(out + oh * Wo, row, row + g.dh * ld, row + 2 * g.dh * ld, wf, b, Wo, sw,
                  g.dw, accumulate)
        return
    for oh in range(Ho):
        o = out + oh * Wo
        if not accumulate:
            for ow in range(Wo):
                o[ow] = b
        for i in range(g.kh):
            row = src + (oh * sh + i * g.dh) * ld
            for t in range(g.kw):
                if sw == 1:
                    _axpy(o, row + t * g.dw, wf[i * g.kw + t], Wo)
                else:
                    _axpy_strided(o, row + t * g.dw, sw, wf[i * g.kw + t], Wo)


cdef void _forward_plane(const Geometry* g, const floating* src, const floating* w,
                         const floating* bias, floating* y, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    """y[n, c*m + j] for j < m from the (Hp, Wp) plane src of x[n, c]."""
    cdef Py_ssize_t j, f
    for j in range(g.m):
        f = c * g.m + j
        _correlate(src, g.Wp, w + f * g.kh * g.kw, g, g.sh, g.sw,
                   bias[f] if bias != NULL else 0, y + (n * g.F + f) * g.Ho * g.Wo,
                   g.Ho, g.Wo, False)


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


cdef void _input_grad_gather(const Geometry* g, const floating* dy, const floating* wflip,
                             floating* scratch, floating* dx, Py_ssize_t n,
                             Py_ssize_t c) noexcept nogil:
    """Stride 1: dx[n, c] = Σ_j correlation of dY[n, c*m + j], zero-padded by
    ((kh-1)*dh, (kw-1)*dw), with the 180°-rotated filter (read at offset (ph, pw))."""
    cdef Py_ssize_t j, f, oh, eh = (g.kh - 1) * g.dh, ew = (g.kw - 1) * g.dw
    cdef Py_ssize_t ld = g.Wo + 2 * ew, rows = g.Ho + 2 * eh
    memset(scratch, 0, <size_t>(rows * ld) * sizeof(floating))
    for j in range(g.m):
        f = c * g.m + j
        for oh in range(g.Ho):
            memcpy(scratch + (oh + eh) * ld + ew, dy + ((n * g.F + f) * g.Ho + oh) * g.Wo,
                   <size_t>g.Wo * sizeof(floating))
        _correlate(scratch + g.ph * ld + g.pw, ld, wflip + f * g.kh * g.kw, g, 1, 1, 0,
                   dx + (n * g.C + c) * g.H * g.W, g.H, g.W, j > 0)


cdef _backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                     const floating[:, :, :, ::1] wflip, floating[:, :, :, ::1] dx, Geometry g,
                     int num_threads):
    cdef Py_ssize_t p, n, c, h, planes = g.N * g.C
    cdef bint gather = g.sh == 1 and g.sw == 1
    cdef Py_ssize_t scratch_len = g.Hp * g.Wp
    cdef int nt = choose_threads(num_threads, <double>planes * g.m * g.Ho * g.Wo * g.kh * g.kw,
                                 planes)
    cdef floating* scratch = NULL
    cdef floating* dst
    cdef floating* plane
    if gather:
        scratch_len = (g.Ho + 2 * (g.kh - 1) * g.dh) * (g.Wo + 2 * (g.kw - 1) * g.dw)
    if gather or g.padded:
        scratch = <floating*>malloc(<size_t>(nt * scratch_len) * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("minidl depthwise_conv2d: cannot allocate scratch planes")
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // g.C
            c = p % g.C
            if gather:
                _input_grad_gather(&g, &dy[0, 0, 0, 0], &wflip[0, 0, 0, 0],
                                   scratch + threadid() * scratch_len, &dx[0, 0, 0, 0], n, c)
            else:
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
                    if g.kw == 3 and g.sw <= 2:
                        _lanes3(lanes + (j * khkw + i * 3) * g.Wo, grow, row, g.Wo, g.sw,
                                g.dw, g.Wo)
                    else:
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
    wflip = np.ascontiguousarray(weight[:, :, ::-1, ::-1])
    if cnp.PyArray_TYPE(grad_out) == cnp.NPY_FLOAT:
        _backward_input[float](grad_out, weight, wflip, dx, g, num_threads)
    else:
        _backward_input[double](grad_out, weight, wflip, dx, g, num_threads)
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
