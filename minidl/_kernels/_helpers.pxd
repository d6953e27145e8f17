"""Inline helpers shared by every kernel module (declared once, compiled into each).

- OpenMP detection that compiles with or without -fopenmp (verbatim C, #ifdef _OPENMP).
- ``choose_threads``: the single place that decides how many threads a call uses (and
  puts scipy's BLAS back on one thread first: ``pin_blas``).
- ``minidl_set_flush_denormal``: FTZ/DAZ on the calling and the OpenMP threads.
- ``cpu_level``: the instruction-set level every kernel family picks its variant by.
- ``scratch_alloc``: every kernel's scratch memory (MemoryError on failure).
- ``gemm``: row-major BLAS GEMM from nogil code over the fused float type (scipy's
  cython_blas).
- ``out_len``: an output side from the input side, padding, window span and stride.
- ``im2col_plane`` / ``col2im_plane``: the one per-channel im2col / col2im routine used
  by the standalone im2col/col2im functions and by every convolution kernel.

Layout conventions (all row-major, C-contiguous):
  one input plane      x[h, w]                    (H, W)
  its im2col rows      rows[(i*kw + j)*ld + oh*Wo + ow]   (kh*kw rows of Ho*Wo, row
                       stride ld >= Ho*Wo so that several samples can sit side by side)
"""
from libc.string cimport memset, memcpy
from libc.stdlib cimport malloc, calloc
from libc.stdint cimport int64_t
from cython cimport floating
from cython.parallel cimport prange
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
    /* The thread count the last kernel call of this module planned (one per module:
       read by the tests through minidl._kernels.planned_threads). */
    static int minidl_planned_threads = 0;
    """
    int MINIDL_OPENMP
    const char* MINIDL_BUILD_FLAGS
    int minidl_planned_threads

# scipy's BLAS thread count, read and pinned to 1 at every kernel entry (choose_threads):
# a user's threadpool_limits(n) must not make each OpenMP thread's GEMM wake n threads.
# The library is the one scipy.linalg.cython_blas loads (found once per module through
# dladdr/dlsym); never numpy's, so minidl leaves numpy's state alone.
cdef extern from *:
    """
    #include <dlfcn.h>
    #include <string.h>
    typedef int (*minidl_blas_get_t)(void);
    typedef void (*minidl_blas_set_t)(int);
    static minidl_blas_get_t minidl_blas_get = NULL;
    static minidl_blas_set_t minidl_blas_set = NULL;
    static int minidl_blas_state = 0;  /* 0: not looked up, 1: found, -1: absent */

    static inline void minidl_blas_resolve(void* blas_routine) {
        static const char* names[][2] = {
            {"scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"},
            {"scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"},
            {"openblas_get_num_threads", "openblas_set_num_threads"},
            {"openblas_get_num_threads64_", "openblas_set_num_threads64_"},
        };
        Dl_info info, lib;
        void* handle;
        size_t i;
        minidl_blas_state = -1;
        if (!dladdr(blas_routine, &info) || info.dli_fname == NULL) return;
        handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (handle == NULL) return;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            void* get = dlsym(handle, names[i][0]);
            void* set = dlsym(handle, names[i][1]);
            if (get == NULL || set == NULL) continue;
            /* scipy's own copy only: a BLAS shared with numpy is numpy's state too */
            if (!dladdr(get, &lib) || lib.dli_fname == NULL
                || strstr(lib.dli_fname, "/numpy") != NULL
                || strstr(lib.dli_fname, "/scipy") == NULL) break;
            minidl_blas_get = (minidl_blas_get_t)get;
            minidl_blas_set = (minidl_blas_set_t)set;
            minidl_blas_state = 1;
            break;
        }
    }

    /* 1 if scipy's BLAS is found (and now on one thread), 0 if not. */
    static inline int minidl_pin_blas_to(void* blas_routine) {
        if (minidl_blas_state == 0) minidl_blas_resolve(blas_routine);
        if (minidl_blas_state < 0) return 0;
        if (minidl_blas_get() != 1) minidl_blas_set(1);
        return 1;
    }

    /* Flush-to-zero and denormals-are-zero (MXCSR bits 15 and 6) on x86. */
    #if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
    #include <xmmintrin.h>
    #define MINIDL_FTZ_BITS 0x8040u
    static inline int minidl_set_ftz_here(int on) {
        unsigned int csr = _mm_getcsr();
        _mm_setcsr(on ? (csr | MINIDL_FTZ_BITS) : (csr & ~MINIDL_FTZ_BITS));
        return 1;
    }
    static inline int minidl_get_ftz_here(void) {
        return (_mm_getcsr() & MINIDL_FTZ_BITS) == MINIDL_FTZ_BITS;
    }
    /* FTZ and DAZ on for the calling thread; returns what to give minidl_ftz_restore */
    static inline unsigned int minidl_ftz_enter(void) {
        unsigned int csr = _mm_getcsr();
        _mm_setcsr(csr | MINIDL_FTZ_BITS);
        return csr;
    }
    static inline void minidl_ftz_restore(unsigned int csr) {
        _mm_setcsr((_mm_getcsr() & ~MINIDL_FTZ_BITS) | (csr & MINIDL_FTZ_BITS));
    }
    #else
    static inline int minidl_set_ftz_here(int on) { (void)on; return 0; }
    static inline int minidl_get_ftz_here(void) { return 0; }
    static inline unsigned int minidl_ftz_enter(void) { return 0; }
    static inline void minidl_ftz_restore(unsigned int csr) { (void)csr; }
    #endif

    /* On the calling thread and on every thread of the OpenMP pool (up to nthreads; threads
       made later inherit the creating thread's MXCSR).  1 if supported. */
    static inline int minidl_set_flush_denormal(int on, int nthreads) {
        int ok = minidl_set_ftz_here(on);
    #ifdef _OPENMP
        if (ok && nthreads > 1) {
            #pragma omp parallel num_threads(nthreads)
            { minidl_set_ftz_here(on); }
        }
    #endif
        return ok;
    }
    """
    int minidl_pin_blas_to(void* blas_routine) noexcept nogil
    int minidl_set_flush_denormal(int on, int nthreads) noexcept nogil
    int minidl_get_ftz_here() noexcept nogil
    unsigned int minidl_ftz_enter() noexcept nogil
    void minidl_ftz_restore(unsigned int csr) noexcept nogil


cdef inline int pin_blas() noexcept nogil:
    """Put scipy's BLAS on one thread if something raised it (one plain C call when not)."""
    return minidl_pin_blas_to(<void*>sgemm)


cdef extern from "cpu_level.h":
    int minidl_cpu_level() noexcept nogil


cdef inline int cpu_level() except -1:
    """The instruction-set level of the vectorised variants (0 baseline, 1 AVX2 + FMA,
    2 AVX-512): the CPU's, capped by MINIDL_CPU_LEVEL (MINIDL_DIRECT_LEVEL, its former
    name, still counts).  Each kernel family passes it to its own ``*_select_level`` once,
    at import."""
    import os
    cdef int found = minidl_cpu_level()
    for name in ("MINIDL_CPU_LEVEL", "MINIDL_DIRECT_LEVEL"):
        cap = os.environ.get(name)
        if cap is not None:
            if cap.strip() not in ("0", "1", "2"):
                raise ValueError(f"{name} must be 0, 1 or 2, got {cap!r}")
            return min(found, int(cap))
    return found


cdef inline void* scratch_alloc(size_t count, size_t itemsize, bint zeroed=False) except NULL:
    """Scratch memory for count items of itemsize bytes (zero-filled if ``zeroed``), which
    the caller frees with free(); raises MemoryError instead of returning NULL.  Called
    with the GIL, before the nogil block, and freed in a ``finally``."""
    cdef void* p
    if count == 0:
        count = 1
    p = calloc(count, itemsize) if zeroed else malloc(count * itemsize)
    if p == NULL:
        raise MemoryError(f"minidl: cannot allocate {count * itemsize} bytes of kernel scratch")
    return p


cdef inline int out_len(int n, int pad, int span, int stride) noexcept nogil:
    """Output positions along a side of n inputs, padded by ``pad`` on both ends, for a
    window spanning ``span`` inputs moved by ``stride`` (0 when the window does not fit:
    the division only ever sees a non-negative numerator)."""
    cdef int room = n + 2 * pad - span
    return room // stride + 1 if room >= 0 else 0

# Below this many multiply-adds (or element moves) per thread, an extra thread costs
# more to wake and join than it saves: a thread that has gone to sleep takes a futex
# wake-up, tens of microseconds in a VM (benchmarks/RESULTS.md).
cdef enum:
    MIN_WORK_PER_THREAD = 1 << 18


cdef inline int choose_threads(int requested, double work, Py_ssize_t units) noexcept nogil:
    """Threads to use: at most ``requested``, at most one per independent unit of work,
    and few enough that each thread gets >= MIN_WORK_PER_THREAD of ``work``."""
    cdef double by_work = work / MIN_WORK_PER_THREAD
    cdef int nt = requested
    pin_blas()
    if not MINIDL_OPENMP:
        nt = 1
    if by_work < nt:
        nt = <int>by_work
    if units < nt:
        nt = <int>units
    if nt < 1:
        nt = 1
    global minidl_planned_threads
    minidl_planned_threads = nt
    return nt


# A call is split into at most MAX_SPLIT parts of >= MIN_SPLIT_WORK work each (the
# same unit as choose_threads).  Partial sums (the weight gradients) are split this way
# too, so their number depends on the problem only, never on the thread count: that is
# what makes the results bit-identical for any number of threads.
cdef enum:
    MIN_SPLIT_WORK = 1 << 18
    MAX_SPLIT = 8
    MAX_PARTIAL_ELEMENTS = 1 << 24   # cap on the memory of all partials together


cdef inline Py_ssize_t split_units(double work) noexcept nogil:
    """How many parts a call of ``work`` is worth splitting into (1..MAX_SPLIT)."""
    cdef double units = work / MIN_SPLIT_WORK
    if units >= MAX_SPLIT:
        return MAX_SPLIT
    return <Py_ssize_t>units if units >= 1 else 1


cdef inline Py_ssize_t partial_chunks(double work, Py_ssize_t partial_len,
                                      Py_ssize_t max_chunks) noexcept nogil:
    """Number of partial sums of ``partial_len`` elements for a reduction of ``work``
    over ``max_chunks`` independent pieces (a function of the problem only)."""
    cdef Py_ssize_t n = split_units(work)
    if n > MAX_PARTIAL_ELEMENTS // partial_len:
        n = MAX_PARTIAL_ELEMENTS // partial_len
    if n > max_chunks:
        n = max_chunks
    return n if n > 1 else 1


cdef inline void _add_partials_slice(floating* total, const floating* partials,
                                     Py_ssize_t count, Py_ssize_t length, Py_ssize_t lo,
                                     Py_ssize_t hi) noexcept nogil:
    """Elements lo..hi-1 of add_partials."""
    cdef Py_ssize_t c, e
    cdef const floating* part
    for c in range(count):
        part = partials + c * length
        for e in range(lo, hi):
            total[e] = total[e] + part[e]


cdef inline void add_partials(floating* total, const floating* partials, Py_ssize_t count,
                              Py_ssize_t length, int num_threads) noexcept nogil:
    """total += partials[0] + ... + partials[count - 1] (each ``length`` long), added in
    that order for every element, row-wise (contiguous, vectorises); from MIN_SPLIT_WORK
    additions on up to num_threads threads, each on its own slice of the elements (the
    same bits for any number): done on one, it capped a 2-thread weight gradient at 1.3x."""
    cdef Py_ssize_t t, piece
    cdef int nt = num_threads if <double>count * length >= MIN_SPLIT_WORK else 1
    if nt <= 1:
        _add_partials_slice(total, partials, count, length, 0, length)
        return
    piece = ((length + nt - 1) // nt + 15) // 16 * 16
    for t in prange(nt, num_threads=nt, schedule='static'):
        _add_partials_slice(total, partials, count, length, t * piece,
                            min(t * piece + piece, length))


cdef inline void sum_bias_partials(const double* partials, Py_ssize_t count, Py_ssize_t F,
                                   floating* db) noexcept nogil:
    """db[f] = Σ over the ``count`` chunks of partials[chunk * F + f], in chunk order."""
    cdef Py_ssize_t f, c
    cdef double s
    for f in range(F):
        s = 0
        for c in range(count):
            s = s + partials[c * F + f]
        db[f] = <floating>s


cdef inline void gemm(char trans_a, char trans_b, int M, int N, int K,
                      floating alpha, const floating* A, int lda,
                      const floating* B, int ldb,
                      floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C (M, N) = alpha * op(A) @ op(B) + beta * C, op(X) = X or Xᵀ as trans_x
    is c'N' or c'T'; A is (M, K) (or (K, M) transposed), B (K, N) (or (N, K)), each with
    its row stride ld*.  BLAS is column-major: the row-major product is the column-major
    Cᵀ = op(B)ᵀ op(A)ᵀ, so the operands are passed swapped (as scikit-learn's _gemm).
    Runs on the calling thread (BLAS threads are pinned to one)."""
    if floating is float:
        sgemm(&trans_b, &trans_a, &N, &M, &K, &alpha, <float*>B, &ldb,
              <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &N, &M, &K, &alpha, <double*>B, &ldb,
              <double*>A, &lda, &beta, C, &ldc)


cdef inline void _valid_columns(int W, int Wo, int sw, int offset,
                                int* lo, int* hi) noexcept nogil:
    """Output columns ow in [lo, hi) whose input column ow*sw + offset lies in [0, W)."""
    cdef int a = 0, b
    if offset < 0:  # in 64 bits: -offset + sw - 1 overflows an int for strides near 2**31
        a = <int>((<int64_t>(-offset) + sw - 1) // sw)
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


# How one plane is unfolded (the choice depends on the shape only, so results never
# depend on the thread count; col2im's "padded" method sums in (j, i, oh) order, the
# others in (i, j, oh)):
# - "shift" (stride 1 and Wo == W >= 8, e.g. every 'same' convolution): row (i, j) of the
#   unfolded plane is the plane itself shifted by a constant offset, i.e. one memcpy,
#   then the few entries that fall in the padding are zeroed.
# - small planes (Wo < SMALL_MAX_WO), where per-row libc calls would dominate:
#   - "padded" (column stride 1): the plane is copied once into a zero-padded scratch
#     plane, then every output row is a short copy without bounds checks;
#   - gather table (other strides): entry e of the (kh*kw, Ho*Wo) rows reads
#     plane[table[e]], where index H*W is a zero (padding).
# - row method otherwise: one short copy per output row.
cdef enum:
    SMALL_MAX_WO = 16
    SHIFT_MIN_W = 8     # below, the libc calls per row cost more than the padded copy


cdef inline bint use_shift(int W, int sh, int sw, int Wo) noexcept nogil:
    return sh == 1 and sw == 1 and Wo == W and W >= SHIFT_MIN_W


cdef inline bint use_padded(int W, int sh, int sw, int Wo) noexcept nogil:
    return Wo < SMALL_MAX_WO and sw == 1 and not use_shift(W, sh, sw, Wo)


cdef inline bint use_gather_table(int W, int sh, int sw, int Wo) noexcept nogil:
    return Wo < SMALL_MAX_WO and sw != 1


cdef inline bint needs_plane_scratch(int W, int sh, int sw, int Wo) noexcept nogil:
    return use_padded(W, sh, sw, Wo) or use_gather_table(W, sh, sw, Wo)


cdef inline Py_ssize_t plane_scratch_len(int H, int W, int ph, int pw) noexcept nogil:
    """Elements of the per-thread scratch im2col_plane/col2im_plane need: the padded
    plane, or the plane plus one zero for the gather table."""
    cdef Py_ssize_t padded = <Py_ssize_t>(H + 2 * ph) * (W + 2 * pw)
    return padded if padded > <Py_ssize_t>H * W + 1 else <Py_ssize_t>H * W + 1


cdef inline void _copy_short(floating* out, const floating* src, int n) noexcept nogil:
    """out[0:n] = src[0:n] for short rows; the common widths compile to a single move
    (a libc memcpy call costs more than the copy itself)."""
    cdef int k
    if n == 4:
        memcpy(out, src, 4 * sizeof(floating))
    elif n == 8:
        memcpy(out, src, 8 * sizeof(floating))
    else:
        for k in range(n):
            out[k] = src[k]


cdef inline void _add_short(floating* out, const floating* src, int n) noexcept nogil:
    """out[0:n] += src[0:n] for short rows (the common widths unrolled)."""
    cdef int k
    cdef floating a, b, c, d
    if n == 4:
        a = out[0] + src[0]
        b = out[1] + src[1]
        c = out[2] + src[2]
        d = out[3] + src[3]
        out[0] = a
        out[1] = b
        out[2] = c
        out[3] = d
    else:
        for k in range(n):
            out[k] += src[k]


cdef inline void pad_plane(const floating* xp, floating* padded, int H, int W,
                           int ph, int pw) noexcept nogil:
    """Copy the (H, W) plane into the middle of the zeroed (H + 2*ph, W + 2*pw) plane."""
    cdef int h, Wp = W + 2 * pw
    memset(padded, 0, <size_t>(H + 2 * ph) * Wp * sizeof(floating))
    for h in range(H):
        _copy_short(padded + (h + ph) * Wp + pw, xp + h * W, W)


cdef inline void unfold_padded(const floating* padded, int Wp, floating* rows,
                               Py_ssize_t ld, int kh, int kw, int sh, int dh, int dw,
                               int Ho, int Wo) noexcept nogil:
    """im2col_plane's rows from a plane already padded by pad_plane (column stride 1).

    Callers that can should pad many planes before unfolding any: reading a plane just
    written by pad_plane stalls on store forwarding (the unaligned loads straddle
    several pending stores)."""
    cdef int i, j, oh
    cdef floating* out
    for i in range(kh):
        for j in range(kw):
            out = rows + <Py_ssize_t>(i * kw + j) * ld
            for oh in range(Ho):
                _copy_short(out + oh * Wo, padded + (oh * sh + i * dh) * Wp + j * dw, Wo)


cdef inline void _col2im_padded(const floating* rows, Py_ssize_t ld, floating* xp,
                                int H, int W, int kh, int kw, int sh,
                                int ph, int pw, int dh, int dw, int Ho, int Wo,
                                floating* padded) noexcept nogil:
    """col2im_plane counterpart of pad_plane + unfold_padded (sums into the padded
    scratch plane, then keeps its interior)."""
    cdef int i, j, oh, h, Wp = W + 2 * pw
    cdef const floating* row
    memset(padded, 0, <size_t>(H + 2 * ph) * Wp * sizeof(floating))
    # j outside i: successive adds mostly hit columns just written at the same offset, so
    # a load matches an earlier store exactly and is forwarded (measured 1.1-1.4x faster
    # than i outside j, where each load overlaps a shifted store in flight and stalls)
    for j in range(kw):
        for i in range(kh):
            row = rows + <Py_ssize_t>(i * kw + j) * ld
            for oh in range(Ho):
                _add_short(padded + (oh * sh + i * dh) * Wp + j * dw, row + oh * Wo, Wo)
    for h in range(H):
        _copy_short(xp + h * W, padded + (h + ph) * Wp + pw, W)


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
                                  int Ho, int Wo) except? NULL:
    """scratch_alloc'ed table (caller frees), or NULL when another method is used."""
    cdef int* table
    if not use_gather_table(W, sh, sw, Wo):
        return NULL
    table = <int*>scratch_alloc(<size_t>kh * kw * Ho * Wo, sizeof(int))
    build_gather_table(table, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    return table


cdef inline void _im2col_shift(const floating* xp, floating* rows, Py_ssize_t ld,
                               int H, int W, int kh, int kw, int ph, int pw, int dh, int dw,
                               int Ho) noexcept nogil:
    """im2col_plane for stride 1 and Wo == W: out[k] = plane[k + off] on valid entries."""
    cdef int i, j, oh, ow, lo, hi, oh_lo, oh_hi
    cdef Py_ssize_t off, k0, k1, HW = <Py_ssize_t>H * W, HoWo = <Py_ssize_t>Ho * W
    cdef floating* out
    for i in range(kh):
        oh_lo = ph - i * dh
        if oh_lo < 0:
            oh_lo = 0
        if oh_lo > Ho:
            oh_lo = Ho
        oh_hi = H + ph - i * dh
        if oh_hi > Ho:
            oh_hi = Ho
        if oh_hi < oh_lo:
            oh_hi = oh_lo
        for j in range(kw):
            out = rows + <Py_ssize_t>(i * kw + j) * ld
            off = <Py_ssize_t>(i * dh - ph) * W + (j * dw - pw)
            _valid_columns(W, W, 1, j * dw - pw, &lo, &hi)
            # copy [k0, k1), clipped so that the source stays inside the plane
            k0 = <Py_ssize_t>oh_lo * W
            k1 = <Py_ssize_t>oh_hi * W
            if k0 < -off:
                k0 = -off
            if k1 > HW - off:
                k1 = HW - off
            if k0 > HoWo:
                k0 = HoWo
            if k1 < k0:
                k1 = k0
            memset(out, 0, k0 * sizeof(floating))
            memcpy(out + k0, xp + k0 + off, (k1 - k0) * sizeof(floating))
            memset(out + k1, 0, (HoWo - k1) * sizeof(floating))
            if lo > 0 or hi < W:
                # entries that wrapped around from the neighbouring input row
                for oh in range(oh_lo, oh_hi):
                    for ow in range(lo):
                        out[oh * W + ow] = 0
                    for ow in range(hi, W):
                        out[oh * W + ow] = 0


cdef inline void im2col_plane(const floating* xp, floating* rows, Py_ssize_t ld,
                              int H, int W, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw,
                              int Ho, int Wo, const int* table,
                              floating* scratch) noexcept nogil:
    """Unfold one (H, W) plane into its kh*kw rows of Ho*Wo elements, zero padding.

    Row r starts at rows + r*ld (ld >= Ho*Wo: rows of several samples may be
    interleaved side by side).  ``scratch`` (plane_scratch_len elements, or NULL: then
    the row method) serves the small-plane methods; ``table`` is new_gather_table's."""
    cdef int i, j, oh, ow, ih, lo, hi, offset, r
    cdef Py_ssize_t k, HW = <Py_ssize_t>H * W, HoWo = <Py_ssize_t>Ho * Wo
    cdef floating* out
    cdef const floating* src
    cdef const int* trow
    if use_shift(W, sh, sw, Wo):
        _im2col_shift(xp, rows, ld, H, W, kh, kw, ph, pw, dh, dw, Ho)
        return
    if use_padded(W, sh, sw, Wo) and scratch != NULL:
        pad_plane(xp, scratch, H, W, ph, pw)
        unfold_padded(scratch, W + 2 * pw, rows, ld, kh, kw, sh, dh, dw, Ho, Wo)
        return
    if table != NULL:
        memcpy(scratch, xp, HW * sizeof(floating))
        scratch[HW] = 0
        for r in range(kh * kw):
            out = rows + r * ld
            trow = table + r * HoWo
            for k in range(HoWo):
                out[k] = scratch[trow[k]]
        return
    for i in range(kh):
        for j in range(kw):
            offset = j * dw - pw
            _valid_columns(W, Wo, sw, offset, &lo, &hi)
            out = rows + <Py_ssize_t>(i * kw + j) * ld
            for oh in range(Ho):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= H:
                    memset(out, 0, Wo * sizeof(floating))
                else:
                    src = xp + <Py_ssize_t>ih * W + offset
                    for ow in range(lo):
                        out[ow] = 0
                    if sw == 1:
                        memcpy(out + lo, src + lo, (hi - lo) * sizeof(floating))
                    else:
                        for ow in range(lo, hi):
                            out[ow] = src[ow * sw]
                    for ow in range(hi, Wo):
                        out[ow] = 0
                out += Wo


cdef inline void col2im_plane(const floating* rows, Py_ssize_t ld, floating* xp,
                              int H, int W, int kh, int kw, int sh, int sw,
                              int ph, int pw, int dh, int dw,
                              int Ho, int Wo, const int* table,
                              floating* scratch) noexcept nogil:
    """Fold one plane's kh*kw rows (row r at rows + r*ld) into the (H, W) plane ``xp``
    (overwritten).

    Overlapping windows are summed in a fixed order (i, j, oh, ow), so the result does
    not depend on how planes are spread over threads, nor on the method."""
    cdef int i, j, oh, ow, ih, lo, hi, offset, r
    cdef Py_ssize_t k, HW = <Py_ssize_t>H * W, HoWo = <Py_ssize_t>Ho * Wo
    cdef const floating* row
    cdef const int* trow
    cdef floating* dst
    if use_padded(W, sh, sw, Wo) and scratch != NULL:
        _col2im_padded(rows, ld, xp, H, W, kh, kw, sh, ph, pw, dh, dw, Ho, Wo, scratch)
        return
    if table != NULL:
        memset(scratch, 0, (HW + 1) * sizeof(floating))
        for r in range(kh * kw):
            row = rows + r * ld
            trow = table + r * HoWo
            for k in range(HoWo):
                scratch[trow[k]] += row[k]
        memcpy(xp, scratch, HW * sizeof(floating))
        return
    memset(xp, 0, HW * sizeof(floating))
    for i in range(kh):
        for j in range(kw):
            offset = j * dw - pw
            _valid_columns(W, Wo, sw, offset, &lo, &hi)
            row = rows + <Py_ssize_t>(i * kw + j) * ld
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
