# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Inline helpers shared by every kernel module (declared once, compiled into each).

- OpenMP detection that compiles with or without -fopenmp (verbatim C, #ifdef _OPENMP).
- ``choose_threads``: the single place that decides how many threads a call uses.
- ``gemm``: BLAS GEMM from nogil code over the fused float type (scipy's cython_blas).
- ``im2col_plane`` / ``col2im_plane``: the one per-channel im2col / col2im routine used
  by the standalone im2col/col2im functions and by every convolution kernel.

Layout conventions (all row-major, C-contiguous):
  one input plane      x[h, w]                    (H, W)
  its im2col rows      rows[i*kw + j, oh*Wo + ow] (kh*kw, Ho*Wo)
"""
from libc.string cimport memset, memcpy
from libc.stdlib cimport malloc
cimport cython
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define MINIDL_OPENMP 1
    #else
    #define MINIDL_OPENMP 0
    #endif
    #ifndef MINIDL_BUILD_FLAGS
    #define MINIDL_BUILD_FLAGS "unknown"
    #endif
    """
    int MINIDL_OPENMP
    const char* MINIDL_BUILD_FLAGS

# Below this many multiply-adds (or element moves) per thread, an extra thread costs
# more to wake and join than it saves.
cdef enum:
    MIN_WORK_PER_THREAD = 32768


@cython.cdivision(True)
cdef inline int choose_threads(int requested, double work, Py_ssize_t units) noexcept nogil:
    """Threads to use: at most ``requested``, at most one per independent unit of work,
    and few enough that each thread gets >= MIN_WORK_PER_THREAD of ``work``."""
    cdef double by_work = work / MIN_WORK_PER_THREAD
    cdef int nt = requested
    if not MINIDL_OPENMP:
        return 1
    if by_work < nt:
        nt = <int>by_work
    if units < nt:
        nt = <int>units
    return nt if nt >= 1 else 1


cdef inline void gemm(char transa, char transb, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """Column-major C(m, n) = alpha * op(A) @ op(B) + beta * C, as BLAS ?gemm."""
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>a, &lda,
              <float*>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>a, &lda,
              <double*>b, &ldb, &beta, c, &ldc)


@cython.cdivision(True)
cdef inline void _valid_columns(int W, int Wo, int sw, int offset,
                                int* lo, int* hi) noexcept nogil:
    """Output columns ow in [lo, hi) whose input column ow*sw + offset lies in [0, W)."""
    cdef int a = 0, b
    if offset < 0:
        a = (-offset + sw - 1) // sw
    if W - 1 - offset < 0:
        b = 0
    else:
        b = (W - 1 - offset) // sw + 1
    if a > Wo:
        a = Wo
    if b > Wo:
        b = Wo
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b


# Small planes: instead of walking rows of Wo elements (per-row overhead dominates when
# Wo is small), im2col gathers through a table built once per call: entry e of the
# (kh*kw, Ho*Wo) rows reads plane[table[e]], where index H*W is a zero (padding).  Both
# methods visit the rows in the same (i, j, oh, ow) order, so col2im sums identically.
cdef enum:
    GATHER_MAX_WO = 16


cdef inline bint use_gather_table(int Wo) noexcept nogil:
    return Wo < GATHER_MAX_WO


cdef inline void build_gather_table(int* table, int H, int W, int kh, int kw, int sh, int sw,
                                    int ph, int pw, int dh, int dw,
                                    int Ho, int Wo) noexcept nogil:
    cdef int i, j, oh, ow, ih, iw
    cdef Py_ssize_t e = 0
    for i in range(kh):
        for j in range(kw):
            for oh in range(Ho):
                ih = oh * sh - ph + i * dh
                for ow in range(Wo):
                    iw = ow * sw - pw + j * dw
                    if ih < 0 or ih >= H or iw < 0 or iw >= W:
                        table[e] = H * W
                    else:
                        table[e] = ih * W + iw
                    e += 1


cdef inline int* new_gather_table(int H, int W, int kh, int kw, int sh, int sw,
                                  int ph, int pw, int dh, int dw,
                                  int Ho, int Wo) noexcept nogil:
    """malloc'ed table (caller frees), or NULL when rows are walked instead (or no memory:
    the row method needs no table, so NULL is always safe)."""
    cdef int* table
    if not use_gather_table(Wo):
        return NULL
    table = <int*>malloc(<size_t>kh * kw * Ho * Wo * sizeof(int))
    if table != NULL:
        build_gather_table(table, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return table


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void im2col_plane(const floating* xp, floating* rows,
                              int H, int W, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw,
                              int Ho, int Wo, const int* table,
                              floating* scratch) noexcept nogil:
    """Unfold one (H, W) plane into its (kh*kw, Ho*Wo) rows, zero padding.

    With a gather ``table`` (see new_gather_table), ``scratch`` holds H*W + 1 elements."""
    cdef int i, j, oh, ow, ih, lo, hi, offset
    cdef Py_ssize_t e, HW = <Py_ssize_t>H * W, count = <Py_ssize_t>kh * kw * Ho * Wo
    cdef floating* out
    cdef const floating* src
    if table != NULL:
        memcpy(scratch, xp, HW * sizeof(floating))
        scratch[HW] = 0
        for e in range(count):
            rows[e] = scratch[table[e]]
        return
    for i in range(kh):
        for j in range(kw):
            offset = j * dw - pw
            _valid_columns(W, Wo, sw, offset, &lo, &hi)
            out = rows + <Py_ssize_t>(i * kw + j) * Ho * Wo
            for oh in range(Ho):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= H:
                    memset(out, 0, Wo * sizeof(floating))
                else:
                    src = xp + <Py_ssize_t>ih * W + offset
                    for ow in range(lo):
                        out[ow] = 0
                    if sw == 1 and hi - lo >= 32:
                        memcpy(out + lo, src + lo, (hi - lo) * sizeof(floating))
                    elif sw == 1:
                        for ow in range(lo, hi):
                            out[ow] = src[ow]
                    else:
                        for ow in range(lo, hi):
                            out[ow] = src[ow * sw]
                    for ow in range(hi, Wo):
                        out[ow] = 0
                out += Wo


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void col2im_plane(const floating* rows, floating* xp,
                              int H, int W, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw,
                              int Ho, int Wo, const int* table,
                              floating* scratch) noexcept nogil:
    """Fold one plane's (kh*kw, Ho*Wo) rows into the (H, W) plane ``xp`` (overwritten).

    Overlapping windows are summed in a fixed order (i, j, oh, ow), so the result does
    not depend on how planes are spread over threads, nor on the method."""
    cdef int i, j, oh, ow, ih, lo, hi, offset
    cdef Py_ssize_t e, HW = <Py_ssize_t>H * W, count = <Py_ssize_t>kh * kw * Ho * Wo
    cdef const floating* row
    cdef floating* dst
    if table != NULL:
        memset(scratch, 0, (HW + 1) * sizeof(floating))
        for e in range(count):
            scratch[table[e]] += rows[e]
        memcpy(xp, scratch, HW * sizeof(floating))
        return
    memset(xp, 0, HW * sizeof(floating))
    for i in range(kh):
        for j in range(kw):
            offset = j * dw - pw
            _valid_columns(W, Wo, sw, offset, &lo, &hi)
            row = rows + <Py_ssize_t>(i * kw + j) * Ho * Wo
            for oh in range(Ho):
                ih = oh * sh - ph + i * dh
                if ih >= 0 and ih < H:
                    dst = xp + <Py_ssize_t>ih * W + offset
                    if sw == 1:
                        for ow in range(lo, hi):
                            dst[ow] += row[ow]
                    else:
                        for ow in range(lo, hi):
                            dst[ow * sw] += row[ow]
                row += Wo
