"""Depth-wise 2-D convolution (groups = C): forward, input gradient, weight gradient.

Layouts: x (N, C, H, W), weight (F, 1, kh, kw) with F = C * m (m filters per input
channel: filter f reads channel f // m), bias (F,), y / grad_out (N, F, Ho, Wo).

Each filter sees one plane, so there is no GEMM.  The forward runs along output rows (the
inner loop over ow vectorises): 3x3 filters with column stride 1 or 2 (MobileNet's) in
one pass of nine multiply-adds per output, other shapes one tap at a time.  A plane with
padding is first copied into a zeroed per-thread scratch plane (Hp, Wp), so the inner
loops need no bounds checks.  The input gradient (strides up to sh*sw = 4) is the same
correlation, of dY spread out by the stride and zero-padded by (kh-1)*dh, (kw-1)*dw, with
the 180°-rotated filter; larger strides scatter each tap's w * dY row onto the padded
plane.  The weight gradient takes each tap as one long dot product of dY with the
shifted input plane, laid out flat at one row pitch (see Flat), in 64-byte vector lanes.
The hot loops are C (GCC vector types), compiled for AVX-512, AVX2 + FMA and the
baseline, one picked at import (``level()``).

Small float32 planes on AVX-512 (up to 16x16 for the forward and input gradient, up to
4096 elements for the weight gradient) skip all of that: at such sizes the per-plane
cost (scratch copies, rows shorter than a vector) is what counts, so depthwise.h
gathers each tap's 16-lane input vector at once from a table built per call (masked
loads, lane permutations of a <= 64-float plane, or masked loads on the plane split
into its stride phases) and computes several planes' vectors side by side.

Parallel over the (n, c) planes: the forward and the input gradient write each output
plane from one thread.  The weight gradient is split into units (chunk of samples,
channel); a unit sums into its own lanes and reduces them into its own partial; partials
are added in chunk order.  The chunks depend on the problem only, so every result is
bit-identical for any thread count.
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
    /* 3x3 planes, the hot case (whole planes per call: a call per row costs as much as
       the row's arithmetic).  DW3_PLANE: out (Ho, Wo) from the rows of src (row pitch
       ld), output row oh reading rows oh*sh + i*dh, column ow reading S*ow + t*dw:
       out[oh, ow] = b + Σ_{i,t} w[3i + t] * src[...] (accumulate: out += the sum).
       DW3_LANES: the weight gradient's per-ow lanes, lane (3i + t) of length Wo:
       lanes[3i + t][ow] += Σ_oh g[oh, ow] * src[(oh*sh + i*dh)*ld + S*ow + t*dw].
       Compiled for AVX-512, AVX2 + FMA and the baseline (minidl_dw_level picks one at
       import); each is a fixed sequence of operations, so results do not depend on the
       thread count. */
    #define MINIDL_DW3_PLANE(NAME, T, S, ATTR)                                        \
    ATTR static void NAME(T* restrict out, const T* restrict src, Py_ssize_t ld,       \
                          const T* restrict w, T b, Py_ssize_t Ho, Py_ssize_t Wo,      \
                          Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw, int accumulate) { \
        const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];      \
        const T w6 = w[6], w7 = w[7], w8 = w[8];                                       \
        Py_ssize_t oh, k;                                                              \
        for (oh = 0; oh < Ho; oh++) {                                                  \
            const T* r0 = src + oh * sh * ld;                                          \
            const T* r1 = r0 + dh * ld;                                                \
            const T* r2 = r1 + dh * ld;                                                \
            const T *r0b = r0 + dw, *r0c = r0 + 2 * dw, *r1b = r1 + dw;                \
            const T *r1c = r1 + 2 * dw, *r2b = r2 + dw, *r2c = r2 + 2 * dw;            \
            T* restrict o = out + oh * Wo;                                             \
            if (accumulate) {                                                          \
                for (k = 0; k < Wo; k++)                                               \
                    o[k] += w0 * r0[S * k] + w1 * r0b[S * k] + w2 * r0c[S * k]         \
                          + w3 * r1[S * k] + w4 * r1b[S * k] + w5 * r1c[S * k]         \
                          + w6 * r2[S * k] + w7 * r2b[S * k] + w8 * r2c[S * k];        \
            } else {                                                                   \
                for (k = 0; k < Wo; k++)                                               \
                    o[k] = b + w0 * r0[S * k] + w1 * r0b[S * k] + w2 * r0c[S * k]      \
                         + w3 * r1[S * k] + w4 * r1b[S * k] + w5 * r1c[S * k]          \
                         + w6 * r2[S * k] + w7 * r2b[S * k] + w8 * r2c[S * k];         \
            }                                                                          \
        }                                                                              \
    }
    /* DOT: the weight gradient's dot products of one dY plane with `taps` (1 to 3)
       shifted input planes, all laid out flat with the same row pitch (see
       _weight_grad_unit): lanes[t][k] += Σ_e g[e*LW + k] * p_t[e*LW + k] for k < LW
       (LW: one 64-byte vector; L a multiple of LW): one vector chain per tap, held in
       registers (GCC vector types: one zmm, two ymm or four xmm). */
    typedef float minidl_dw_vf __attribute__((vector_size(64), aligned(4), may_alias));
    typedef double minidl_dw_vd __attribute__((vector_size(64), aligned(8), may_alias));
    #define MINIDL_DW_DOT(NAME, T, VT, ATTR)                                            \
    ATTR static void NAME(T* restrict lanes, const T* restrict g, const T* restrict p0, \
                          const T* restrict p1, const T* restrict p2, int taps,       \
                          Py_ssize_t L) {                                              \
        const Py_ssize_t LW = 64 / sizeof(T);                                          \
        VT a0 = {0}, a1 = {0}, a2 = {0};                                               \
        Py_ssize_t e;                                                                  \
        if (taps == 3) {                                                               \
            for (e = 0; e < L; e += LW) {                                              \
                VT gk = *(const VT*)(g + e);                                           \
                a0 += gk * *(const VT*)(p0 + e);                                       \
                a1 += gk * *(const VT*)(p1 + e);                                       \
                a2 += gk * *(const VT*)(p2 + e);                                       \
            }                                                                          \
        } else if (taps == 2) {                                                        \
            for (e = 0; e < L; e += LW) {                                              \
                VT gk = *(const VT*)(g + e);                                           \
                a0 += gk * *(const VT*)(p0 + e);                                       \
                a1 += gk * *(const VT*)(p1 + e);                                       \
            }                                                                          \
        } else {                                                                       \
            for (e = 0; e < L; e += LW)                                                \
                a0 += *(const VT*)(g + e) * *(const VT*)(p0 + e);                      \
        }                                                                              \
        *(VT*)lanes += a0;                                                             \
        if (taps > 1) *(VT*)(lanes + LW) += a1;                                        \
        if (taps > 2) *(VT*)(lanes + 2 * LW) += a2;                                    \
    }
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    #define MINIDL_DW_AVX512 __attribute__((target("avx512f")))
    #define MINIDL_DW_AVX2 __attribute__((target("avx2,fma")))
    #define MINIDL_DW_LEVELS 1
    #else
    #define MINIDL_DW_LEVELS 0
    #endif
    #define MINIDL_DW_ALL(SUFFIX, T, S)                                                \
        MINIDL_DW3_PLANE(minidl_dw3_plane_##SUFFIX, T, S, )                                \
        MINIDL_DW_ALL_SIMD(SUFFIX, T, S)
    #if MINIDL_DW_LEVELS
    #define MINIDL_DW_ALL_SIMD(SUFFIX, T, S)                                           \
        MINIDL_DW3_PLANE(minidl_dw3_plane_##SUFFIX##_avx2, T, S, MINIDL_DW_AVX2)           \
        MINIDL_DW3_PLANE(minidl_dw3_plane_##SUFFIX##_avx512, T, S, MINIDL_DW_AVX512)
    #else
    #define MINIDL_DW_ALL_SIMD(SUFFIX, T, S)
    #endif
    MINIDL_DW_ALL(f1, float, 1)
    MINIDL_DW_ALL(f2, float, 2)
    MINIDL_DW_ALL(d1, double, 1)
    MINIDL_DW_ALL(d2, double, 2)
    MINIDL_DW_DOT(minidl_dw_dot_impl_f, float, minidl_dw_vf, )
    MINIDL_DW_DOT(minidl_dw_dot_impl_d, double, minidl_dw_vd, )
    #if MINIDL_DW_LEVELS
    MINIDL_DW_DOT(minidl_dw_dot_impl_f_avx2, float, minidl_dw_vf, MINIDL_DW_AVX2)
    MINIDL_DW_DOT(minidl_dw_dot_impl_d_avx2, double, minidl_dw_vd, MINIDL_DW_AVX2)
    MINIDL_DW_DOT(minidl_dw_dot_impl_f_avx512, float, minidl_dw_vf, MINIDL_DW_AVX512)
    MINIDL_DW_DOT(minidl_dw_dot_impl_d_avx512, double, minidl_dw_vd, MINIDL_DW_AVX512)
    #endif

    static int minidl_dw_level = 0;
    /* the CPU's level, or `wanted` if lower (tests run every level the CPU has) */
    static int minidl_dw_select(int wanted) {
        int top = MINIDL_DW_LEVELS ? minidl_cpu_level() : 0;
        minidl_dw_level = wanted < top ? wanted : top;
        return minidl_dw_level;
    }

    #if MINIDL_DW_LEVELS
    #define MINIDL_DW_PICK(FN, SUFFIX, ARGS)                                           \
        (minidl_dw_level == MINIDL_CPU_AVX512 ? FN##_##SUFFIX##_avx512 ARGS            \
         : minidl_dw_level == MINIDL_CPU_AVX2 ? FN##_##SUFFIX##_avx2 ARGS : FN##_##SUFFIX ARGS)
    #else
    #define MINIDL_DW_PICK(FN, SUFFIX, ARGS) FN##_##SUFFIX ARGS
    #endif
    #define MINIDL_DW_DISPATCH(T, C)                                                   \
    static void minidl_dw3_plane_##C(T* out, const T* src, Py_ssize_t ld, const T* w, T b, \
                                     Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t sh,      \
                                     Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,      \
                                     int acc) {                                        \
        if (sw == 1)                                                                   \
            MINIDL_DW_PICK(minidl_dw3_plane, C##1, (out, src, ld, w, b, Ho, Wo, sh, dh, dw, acc)); \
        else                                                                           \
            MINIDL_DW_PICK(minidl_dw3_plane, C##2, (out, src, ld, w, b, Ho, Wo, sh, dh, dw, acc)); \
    }                                                                                  \
    static void minidl_dw_dot_##C(T* lanes, const T* g, const T* p0, const T* p1,      \
                                  const T* p2, int taps, Py_ssize_t L) {              \
        MINIDL_DW_PICK(minidl_dw_dot_impl, C, (lanes, g, p0, p1, p2, taps, L));             \
    }
    MINIDL_DW_DISPATCH(float, f)
    MINIDL_DW_DISPATCH(double, d)
    """
    int minidl_dw_level
    int minidl_dw_select(int wanted) noexcept nogil
    void minidl_dw3_plane_f(float* out, const float* src, Py_ssize_t ld, const float* w,
                            float b, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t sh,
                            Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, int acc) noexcept nogil
    void minidl_dw3_plane_d(double* out, const double* src, Py_ssize_t ld, const double* w,
                            double b, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t sh,
                            Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, int acc) noexcept nogil
    void minidl_dw_dot_f(float* lanes, const float* g, const float* p0, const float* p1,
                         const float* p2, int taps, Py_ssize_t L) noexcept nogil
    void minidl_dw_dot_d(double* lanes, const double* g, const double* p0, const double* p1,
                         const double* p2, int taps, Py_ssize_t L) noexcept nogil


cdef extern from "depthwise.h" nogil:
    enum:
        MINIDL_DWS_NONE
        MINIDL_DWS_LOADS
        MINIDL_DWS_AVX512
    ctypedef struct minidl_dws_table:
        int mode
        int phases
        Py_ssize_t src_len
    int minidl_dws_build(minidl_dws_table* tb, int transposed, int phases, Py_ssize_t Hs,
                         Py_ssize_t Ws,
                         Py_ssize_t Hout, Py_ssize_t Wout, Py_ssize_t kh, Py_ssize_t kw,
                         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t dh, Py_ssize_t dw)
    void minidl_dws_free(minidl_dws_table* tb)
    void minidl_dws_forward(const minidl_dws_table* tb, const float* x, const float* w,
                            const float* b, float* y, Py_ssize_t C, Py_ssize_t m,
                            Py_ssize_t p0, Py_ssize_t p1, float* buf)
    void minidl_dws_input(const minidl_dws_table* tb, const float* dy, const float* w,
                          float* dx, Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0, Py_ssize_t p1)
    void minidl_dws_weight(const minidl_dws_table* tb, const float* x, const float* dy,
                           Py_ssize_t C, Py_ssize_t m, Py_ssize_t n0, Py_ssize_t n1,
                           Py_ssize_t c, double* dw_part, double* db_part, float* buf)


minidl_dw_select(2)


def level():
    """The instruction-set level of the C loops (0 baseline, 1 AVX2 + FMA, 2 AVX-512)."""
    return minidl_dw_level


def _use_level(int wanted):
    """Tests: run the C loops at ``wanted`` (at most the CPU's level); returns level()."""
    return minidl_dw_select(wanted)


cdef enum:
    # planes (input and output) up to this many elements take the small-plane kernels:
    # the forward and input gradient (larger ones are faster on the row loop), and the
    # weight gradient (faster up to the table's limit)
    SMALL_PLANES = 256
    SMALL_WEIGHT_PLANES = 4096
    SMALL_BLOCK = 16     # planes a task on the small-plane path (shares the call's cost)

cdef Py_ssize_t _small_limit = SMALL_PLANES
cdef Py_ssize_t _small_weight_limit = SMALL_WEIGHT_PLANES


def _use_small_planes(Py_ssize_t limit, Py_ssize_t weight_limit):
    """Tests and benchmarks: float32 planes of up to ``limit`` (forward, input gradient)
    and ``weight_limit`` elements (weight gradient) take the small-plane kernels of
    depthwise.h on AVX-512 (0: never); returns the previous limits."""
    global _small_limit, _small_weight_limit
    old = (_small_limit, _small_weight_limit)
    _small_limit, _small_weight_limit = limit, weight_limit
    return old


cdef bint _small(minidl_dws_table* tb, int transposed, const Geometry* g,
                 Py_ssize_t limit) except -1:
    """Build tb for this pass if the small-plane kernels take it (float32 planes of up to
    ``limit`` elements, AVX-512); False (nothing to free) if not."""
    if not MINIDL_DWS_AVX512 or minidl_dw_level != 2:
        return False
    if max(g.H * g.W, g.Ho * g.Wo) > limit:
        return False
    if transposed:
        rc = minidl_dws_build(tb, 1, 0, g.Ho, g.Wo, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph,
                              g.pw, g.dh, g.dw)
    else:
        rc = minidl_dws_build(tb, 0, 0, g.H, g.W, g.Ho, g.Wo, g.kh, g.kw, g.sh, g.sw, g.ph,
                              g.pw, g.dh, g.dw)
        if rc == 0 and tb.mode == MINIDL_DWS_NONE:  # strided: loads on phase planes?
            minidl_dws_free(tb)
            rc = minidl_dws_build(tb, 0, 1, g.H, g.W, g.Ho, g.Wo, g.kh, g.kw, g.sh, g.sw, g.ph,
                                  g.pw, g.dh, g.dw)
    if rc < 0:
        raise MemoryError("minidl depthwise_conv2d: cannot allocate the small-plane table")
    if tb.mode == MINIDL_DWS_NONE:
        minidl_dws_free(tb)
        return False
    return True


cdef inline double _small_work(const minidl_dws_table* tb, double work) noexcept nogil:
    """choose_threads' work for `work` multiply-adds on the small-plane kernels.  They
    run 3-7x faster than the row loops, and waking the second (passively waiting) thread
    can cost ~100 us on a virtual machine, which 2 threads only win back on calls of a
    few hundred microseconds: counted at an eighth, a call goes to 2 threads from about
    4M multiply-adds (~250 us on one thread)."""
    return work / 8


cdef inline void _plane3(floating* out, const floating* src, Py_ssize_t ld, const floating* w,
                         floating b, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t dh, Py_ssize_t dw, bint accumulate) noexcept nogil:
    if floating is float:
        minidl_dw3_plane_f(out, src, ld, w, b, Ho, Wo, sh, sw, dh, dw, accumulate)
    else:
        minidl_dw3_plane_d(out, src, ld, w, b, Ho, Wo, sh, sw, dh, dw, accumulate)


cdef inline void _dot(floating* lanes, const floating* g, const floating* p0,
                      const floating* p1, const floating* p2, int taps,
                      Py_ssize_t L) noexcept nogil:
    if floating is float:
        minidl_dw_dot_f(lanes, g, p0, p1, p2, taps, L)
    else:
        minidl_dw_dot_d(lanes, g, p0, p1, p2, taps, L)


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


cdef inline Py_ssize_t _thread_stride(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """Elements between two threads' scratch planes of n elements: whole 64-byte lines
    and one more, so that no line is written by two threads (false sharing)."""
    return ((n * itemsize + 63) // 64 + 1) * 64 // itemsize


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


cdef inline void _copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n] for short rows (a libc call costs more than the copy)."""
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] = src[k]


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
        _plane3(out, src, ld, wf, b, Ho, Wo, sh, sw, g.dh, g.dw, accumulate)
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
    cdef Py_ssize_t scratch_len = g.Hp * g.Wp, stride = 0
    cdef int nt = choose_threads(num_threads, <double>planes * g.m * g.Ho * g.Wo * g.kh * g.kw,
                                 planes)
    cdef const floating[::1] bview
    cdef const floating* bp = NULL
    cdef floating* scratch = NULL
    cdef floating* mine
    cdef minidl_dws_table tb
    cdef Py_ssize_t blk, nblk = (planes + SMALL_BLOCK - 1) // SMALL_BLOCK
    if bias is not None:
        bview = bias
        bp = &bview[0]
    if floating is float:
        if _small(&tb, 0, &g, _small_limit):
            nt = choose_threads(num_threads, _small_work(&tb, <double>planes * g.m * g.Ho * g.Wo
                                                         * g.kh * g.kw), nblk)
            if tb.phases:
                stride = _thread_stride(SMALL_BLOCK * tb.src_len, sizeof(float))
                scratch = <floating*>malloc(<size_t>(nt * stride) * sizeof(float))
                if scratch == NULL:
                    minidl_dws_free(&tb)
                    raise MemoryError("minidl depthwise_conv2d: cannot allocate phase planes")
            with nogil:
                for blk in prange(nblk, num_threads=nt, schedule='static'):
                    minidl_dws_forward(&tb, &x[0, 0, 0, 0], &w[0, 0, 0, 0], bp, &y[0, 0, 0, 0],
                                       g.C, g.m, blk * SMALL_BLOCK,
                                       min((blk + 1) * SMALL_BLOCK, planes),
                                       scratch + threadid() * stride if scratch != NULL else NULL)
            free(scratch)
            minidl_dws_free(&tb)
            return
    if g.padded:
        stride = _thread_stride(scratch_len, sizeof(floating))
        scratch = <floating*>malloc(<size_t>(nt * stride) * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("minidl depthwise_conv2d: cannot allocate scratch planes")
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // g.C
            c = p % g.C
            mine = scratch + threadid() * stride if scratch != NULL else NULL
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
    """dx[n, c] = Σ_j stride-1 correlation of dY[n, c*m + j] with the 180°-rotated filter:
    dY is spread out by the stride (zeros between) and zero-padded by (kh-1)*dh rows and
    (kw-1)*dw columns in the scratch plane (Hp + eh, Wp + ew), read at offset (ph, pw)."""
    cdef Py_ssize_t j, f, oh, ow, eh = (g.kh - 1) * g.dh, ew = (g.kw - 1) * g.dw
    cdef Py_ssize_t ld = g.Wp + ew
    cdef const floating* grow
    cdef floating* srow
    memset(scratch, 0, <size_t>((g.Hp + eh) * ld) * sizeof(floating))
    for j in range(g.m):
        f = c * g.m + j
        for oh in range(g.Ho):
            grow = dy + ((n * g.F + f) * g.Ho + oh) * g.Wo
            srow = scratch + (oh * g.sh + eh) * ld + ew
            if g.sw == 1:
                memcpy(srow, grow, <size_t>g.Wo * sizeof(floating))
            else:
                for ow in range(g.Wo):
                    srow[ow * g.sw] = grow[ow]
        _correlate(scratch + g.ph * ld + g.pw, ld, wflip + f * g.kh * g.kw, g, 1, 1, 0,
                   dx + (n * g.C + c) * g.H * g.W, g.H, g.W, j > 0)


cdef _backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                     const floating[:, :, :, ::1] wflip, floating[:, :, :, ::1] dx, Geometry g,
                     int num_threads):
    cdef Py_ssize_t p, n, c, h, planes = g.N * g.C
    # the gather multiplies by sh*sw zeros for every product that counts, but runs on the
    # vectorised correlation; the scatter adds only the products that count, one at a time
    cdef bint gather = g.sh * g.sw <= 4
    cdef Py_ssize_t scratch_len = g.Hp * g.Wp
    cdef int nt = choose_threads(num_threads, <double>planes * g.m * g.Ho * g.Wo * g.kh * g.kw,
                                 planes)
    cdef floating* scratch = NULL
    cdef floating* dst
    cdef floating* plane
    cdef minidl_dws_table tb
    cdef Py_ssize_t blk, nblk = (planes + SMALL_BLOCK - 1) // SMALL_BLOCK
    if floating is float:
        if _small(&tb, 1, &g, _small_limit):
            nt = choose_threads(num_threads, _small_work(&tb, <double>planes * g.m * g.Ho * g.Wo
                                                         * g.kh * g.kw), nblk)
            with nogil:
                for blk in prange(nblk, num_threads=nt, schedule='static'):
                    minidl_dws_input(&tb, &dy[0, 0, 0, 0], &w[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                     g.C, g.m, blk * SMALL_BLOCK,
                                     min((blk + 1) * SMALL_BLOCK, planes))
            minidl_dws_free(&tb)
            return
    if gather:
        scratch_len = (g.Hp + (g.kh - 1) * g.dh) * (g.Wp + (g.kw - 1) * g.dw)
    cdef Py_ssize_t stride = _thread_stride(scratch_len, sizeof(floating))
    if gather or g.padded:
        scratch = <floating*>malloc(<size_t>(nt * stride) * sizeof(floating))
        if scratch == NULL:
            raise MemoryError("minidl depthwise_conv2d: cannot allocate scratch planes")
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // g.C
            c = p % g.C
            if gather:
                _input_grad_gather(&g, &dy[0, 0, 0, 0], &wflip[0, 0, 0, 0],
                                   scratch + threadid() * stride, &dx[0, 0, 0, 0], n, c)
            else:
                plane = &dx[n, c, 0, 0]
                dst = scratch + threadid() * stride if scratch != NULL else plane
                memset(dst, 0, <size_t>scratch_len * sizeof(floating))
                _input_grad_plane(&g, &dy[0, 0, 0, 0], &w[0, 0, 0, 0], dst, n, c)
                if scratch != NULL:
                    for h in range(g.H):
                        memcpy(plane + h * g.W, dst + (h + g.ph) * g.Wp + g.pw,
                               <size_t>g.W * sizeof(floating))
    free(scratch)


# ---- weight gradient ----------------------------------------------------------------
cdef enum:
    # weight gradient: samples side by side in one flat layout, up to this many elements
    # of phase planes (a function of the problem only, so results keep bit-identical)
    FLAT_BATCH_ELEMENTS = 1 << 14


cdef struct Flat:
    # The weight gradient's flat layout: for B samples side by side, ah*aw phase planes
    # of the padded input (Hq rows of pitch Wq a sample) and dY spread out by (gsh, gsw)
    # at the same pitch.  Rows go to sh phase planes (whole rows: cheap copies) and dY
    # is spread along its rows by sw (sw times the multiply-adds, on zeros): (ah, aw) =
    # (sh, 1), (gsh, gsw) = (1, sw).
    Py_ssize_t ah, aw, gsh, gsw
    Py_ssize_t Hq, Wq
    Py_ssize_t B            # samples a batch
    Py_ssize_t max_shift    # largest tap offset
    Py_ssize_t lw           # lanes: 64 bytes of floating
    Py_ssize_t plane_len    # one phase plane of B samples, with zeroed slack
    Py_ssize_t gp_len       # dY of B samples, whole lanes


cdef inline Py_ssize_t _flat_len(const Geometry* g, const Flat* fl, Py_ssize_t b) noexcept nogil:
    """Elements of gp the dot products run over for b samples (whole lanes)."""
    cdef Py_ssize_t n = (b - 1) * fl.Hq * fl.Wq + ((g.Ho - 1) * fl.gsh + 1) * fl.Wq
    return (n + fl.lw - 1) // fl.lw * fl.lw


cdef Flat _flat(const Geometry* g, Py_ssize_t itemsize, Py_ssize_t max_samples) noexcept nogil:
    """The layout for units of at most max_samples samples."""
    cdef Flat fl
    fl.ah = g.sh
    fl.aw = 1
    fl.gsh = 1
    fl.gsw = g.sw
    fl.lw = 64 // itemsize
    fl.Hq = (g.Hp + fl.ah - 1) // fl.ah
    fl.Wq = (g.Wp + fl.aw - 1) // fl.aw
    fl.B = FLAT_BATCH_ELEMENTS // (fl.ah * fl.aw * fl.Hq * fl.Wq)
    fl.B = max(1, min(fl.B, max_samples))
    fl.max_shift = ((g.kh - 1) * g.dh // fl.ah) * fl.Wq + (g.kw - 1) * g.dw // fl.aw
    fl.gp_len = _flat_len(g, &fl, fl.B)
    fl.plane_len = max(fl.B * fl.Hq * fl.Wq, fl.gp_len + fl.max_shift)
    return fl


cdef void _phase_planes(const Geometry* g, const Flat* fl, const floating* xp,
                        floating* ph) noexcept nogil:
    """ph[a][r, q] = xpad[r*ah + a, q] for one sample's plane xp (H, W) (aw = 1); ph is
    the sample's place in the first phase plane (already zeroed)."""
    cdef Py_ssize_t h, hp
    for h in range(g.H):
        hp = h + g.ph
        _copy(ph + (hp % fl.ah) * fl.plane_len + (hp // fl.ah) * fl.Wq + g.pw, xp + h * g.W, g.W)


cdef void _weight_grad_unit(const Geometry* g, const Flat* fl, const floating* x,
                            const floating* dy, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t c,
                            bint need_db, const floating* ones, floating* lanes,
                            floating* phases, floating* gp, double* dw_part,
                            double* db_part) noexcept nogil:
    """dw_part[j, tap] (and db_part[j]) for the m filters of channel c, summed over the
    samples n0..n1-1, in batches of up to B samples.

    Flat layout (see Flat): a batch's dY planes are copied into gp, spread by (gsh, gsw),
    at the phase planes' row pitch Wq (zeros elsewhere), so tap (i, t) is the dot
    product of gp with phase plane (i*dh % ah, t*dw % aw) read from offset
    (i*dh // ah)*Wq + t*dw // aw: one long vectorised loop per tap and batch.  Where gp
    is zero, whatever the shifted plane holds (zero, slack, the next row or sample) adds
    nothing -- unless it is an inf or NaN of x, which then makes that tap's gradient NaN
    even if no window of the tap reads it (its forward outputs are non-finite anyway).
    lanes: fl.lw lanes for each of the m*kh*kw taps, then for each of the m biases."""
    cdef Py_ssize_t khkw = g.kh * g.kw, nb, b, n, j, f, oh, ow, t0, tap, i, t, q, L
    cdef Py_ssize_t tap_lanes = g.m * khkw * fl.lw, sample = fl.Hq * fl.Wq
    cdef const floating* gplane
    cdef floating* gs
    cdef const floating* p[3]
    cdef int taps
    cdef double s
    memset(lanes, 0, <size_t>(tap_lanes + g.m * fl.lw) * sizeof(floating))
    nb = n0
    while nb < n1:
        b = min(fl.B, n1 - nb)
        L = _flat_len(g, fl, b)
        for q in range(fl.ah * fl.aw):
            memset(phases + q * fl.plane_len, 0,
                   <size_t>min(fl.plane_len, L + fl.max_shift) * sizeof(floating))
        memset(gp, 0, <size_t>L * sizeof(floating))
        for n in range(b):
            _phase_planes(g, fl, x + ((nb + n) * g.C + c) * g.H * g.W, phases + n * sample)
        for j in range(g.m):
            f = c * g.m + j
            for n in range(b):
                gplane = dy + ((nb + n) * g.F + f) * g.Ho * g.Wo
                gs = gp + n * sample
                for oh in range(g.Ho):
                    if fl.gsw == 1:
                        _copy(gs + oh * fl.gsh * fl.Wq, gplane + oh * g.Wo, g.Wo)
                    else:
                        for ow in range(g.Wo):
                            gs[oh * fl.gsh * fl.Wq + ow * fl.gsw] = gplane[oh * g.Wo + ow]
            if need_db:  # Σ dY: the dot product with a plane of ones
                _dot(lanes + tap_lanes + j * fl.lw, gp, ones, ones, ones, 1, L)
            t0 = 0
            while t0 < khkw:
                taps = <int>min(3, khkw - t0)
                for q in range(taps):
                    tap = t0 + q
                    i = tap // g.kw
                    t = tap % g.kw
                    p[q] = (phases + ((i * g.dh % fl.ah) * fl.aw + t * g.dw % fl.aw) * fl.plane_len
                            + (i * g.dh // fl.ah) * fl.Wq + t * g.dw // fl.aw)
                for q in range(taps, 3):
                    p[q] = p[0]
                _dot(lanes + (j * khkw + t0) * fl.lw, gp, p[0], p[1], p[2], taps, L)
                t0 += taps
        nb += b
    for tap in range(g.m * khkw):
        s = 0
        for q in range(fl.lw):
            s += lanes[tap * fl.lw + q]
        dw_part[c * g.m * khkw + tap] = s
    if need_db:
        for j in range(g.m):
            s = 0
            for q in range(fl.lw):
                s += lanes[tap_lanes + j * fl.lw + q]
            db_part[c * g.m + j] = s


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, db, Geometry g, int num_threads):
    cdef Py_ssize_t khkw = g.kh * g.kw, wsize = g.F * khkw
    cdef double work = <double>g.N * g.F * g.Ho * g.Wo * khkw
    # chunks of samples (each its own partial): a function of the problem only
    cdef Py_ssize_t nchunks = partial_chunks(work, wsize, g.N)
    cdef Py_ssize_t units = nchunks * g.C, u, k, c, e
    cdef int nt = choose_threads(num_threads, work, units)
    cdef Flat fl = _flat(&g, sizeof(floating), (g.N + nchunks - 1) // nchunks)
    cdef Py_ssize_t lanes_len = g.m * (khkw + 1) * fl.lw
    cdef Py_ssize_t phases_len = fl.ah * fl.aw * fl.plane_len
    cdef Py_ssize_t per_thread = _thread_stride(lanes_len + phases_len + fl.gp_len,
                                                sizeof(floating))
    cdef bint need_db = db is not None
    cdef floating* work_buf = <floating*>malloc(<size_t>(nt * per_thread) * sizeof(floating))
    cdef double* dw_parts = <double*>malloc(<size_t>(nchunks * wsize) * sizeof(double))
    cdef double* db_parts = <double*>malloc(<size_t>(nchunks * g.F) * sizeof(double))
    cdef floating* ones = <floating*>malloc(<size_t>fl.gp_len * sizeof(floating))
    cdef floating* mine
    cdef floating* dwp = &dw[0, 0, 0, 0]
    cdef floating[::1] dbv
    cdef double s
    if work_buf == NULL or dw_parts == NULL or db_parts == NULL or ones == NULL:
        free(work_buf); free(dw_parts); free(db_parts); free(ones)
        raise MemoryError("minidl depthwise_conv2d: cannot allocate weight-gradient buffers")
    cdef minidl_dws_table tb
    cdef bint small = False
    cdef Py_ssize_t stride = 0
    cdef floating* phases = NULL
    if floating is float:
        small = _small(&tb, 0, &g, _small_weight_limit)
        if small:
            nt = choose_threads(num_threads, _small_work(&tb, work), units)
            if tb.phases:
                stride = _thread_stride(2 * tb.src_len, sizeof(float))
                phases = <floating*>malloc(<size_t>(nt * stride) * sizeof(float))
                if phases == NULL:
                    minidl_dws_free(&tb)
                    free(work_buf); free(dw_parts); free(db_parts); free(ones)
                    raise MemoryError("minidl depthwise_conv2d: cannot allocate phase planes")
    for e in range(fl.gp_len):
        ones[e] = 1
    with nogil:
        if small:
            if floating is float:
                for u in prange(units, num_threads=nt, schedule='static'):
                    k = u // g.C
                    minidl_dws_weight(&tb, &x[0, 0, 0, 0], &dy[0, 0, 0, 0], g.C, g.m,
                                      k * g.N // nchunks, (k + 1) * g.N // nchunks, u % g.C,
                                      dw_parts + k * wsize,
                                      db_parts + k * g.F if need_db else NULL,
                                      phases + threadid() * stride if phases != NULL else NULL)
        else:
            for u in prange(units, num_threads=nt, schedule='static'):
                k = u // g.C
                c = u % g.C
                mine = work_buf + threadid() * per_thread
                _weight_grad_unit(&g, &fl, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                                  k * g.N // nchunks, (k + 1) * g.N // nchunks, c, need_db,
                                  ones, mine, mine + lanes_len, mine + lanes_len + phases_len,
                                  dw_parts + k * wsize, db_parts + k * g.F)
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
    if small:
        minidl_dws_free(&tb)
    free(phases)
    free(work_buf)
    free(dw_parts)
    free(db_parts)
    free(ones)


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
