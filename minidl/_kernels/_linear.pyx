# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The fully connected layer's three GEMMs on scipy's BLAS at one thread, split over
OpenMP threads by FIXED blocks of output rows.

  forward      out (M, N) = x (M, K) @ W (N, K)ᵀ + b (N,)
  input grad   gx (M, K) = g (M, N) @ W (N, K)
  weight grad  gW (N, K) = g (M, N)ᵀ @ x (M, K)

Each output block of ROW_BLOCK rows is one GEMM with the whole reduction dimension (never
split), and the blocks depend on the shape only: every result is bit-identical for any
thread count, and numpy's BLAS thread pool is never touched.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from cython cimport floating

from minidl._kernels._helpers cimport (
    choose_threads,
    gemm,
    minidl_get_ftz_here,
    minidl_planned_threads,
    minidl_set_flush_denormal,
    pin_blas,
)

cnp.import_array()

# Rows of the output per GEMM: big enough for BLAS to reach the speed of one whole GEMM
# (32-row blocks cost up to 1.7x on a 64x4096 -> 256 layer), so threads split only from
# 256 rows on.
cdef enum:
    ROW_BLOCK = 128


cdef void _forward(const floating* x, const floating* w, const floating* b, floating* out,
                   int M, int N, int K, int num_threads) noexcept nogil:
    cdef Py_ssize_t blocks = (M + ROW_BLOCK - 1) // ROW_BLOCK
    cdef int nt = choose_threads(num_threads, <double>M * N * K, blocks)
    cdef Py_ssize_t blk, i, j, r0
    cdef int rows
    cdef floating beta = 1 if b != NULL else 0
    for blk in prange(blocks, num_threads=nt, schedule='static'):
        r0 = blk * ROW_BLOCK
        rows = ROW_BLOCK if r0 + ROW_BLOCK <= M else M - r0
        if b != NULL:
            for i in range(r0, r0 + rows):
                for j in range(N):
                    out[i * N + j] = b[j]
        gemm(c'N', c'T', rows, N, K, 1, x + r0 * K, K, w, K, beta, out + r0 * N, N)


cdef void _grad_input(const floating* g, const floating* w, floating* gx,
                      int M, int N, int K, int num_threads) noexcept nogil:
    cdef Py_ssize_t blocks = (M + ROW_BLOCK - 1) // ROW_BLOCK
    cdef int nt = choose_threads(num_threads, <double>M * N * K, blocks)
    cdef Py_ssize_t blk, r0
    cdef int rows
    for blk in prange(blocks, num_threads=nt, schedule='static'):
        r0 = blk * ROW_BLOCK
        rows = ROW_BLOCK if r0 + ROW_BLOCK <= M else M - r0
        gemm(c'N', c'N', rows, K, N, 1, g + r0 * N, N, w, K, 0, gx + r0 * K, K)


cdef void _grad_weight(const floating* g, const floating* x, floating* gw,
                       int M, int N, int K, int num_threads) noexcept nogil:
    cdef Py_ssize_t blocks = (N + ROW_BLOCK - 1) // ROW_BLOCK
    cdef int nt = choose_threads(num_threads, <double>M * N * K, blocks)
    cdef Py_ssize_t blk, r0
    cdef int rows
    for blk in prange(blocks, num_threads=nt, schedule='static'):
        r0 = blk * ROW_BLOCK
        rows = ROW_BLOCK if r0 + ROW_BLOCK <= N else N - r0
        # rows r0.. of gᵀ @ x: op(A) = (g[:, r0:r0+rows])ᵀ, A read with row stride N
        gemm(c'T', c'N', rows, K, M, 1, g + r0, N, x, K, 0, gw + r0 * K, K)


def linear_forward(x, weight, bias, int num_threads):
    """out (M, N) = x (M, K) @ weight (N, K)ᵀ + bias (N,) or None; M, N, K >= 1."""
    cdef int M = x.shape[0], K = x.shape[1], N = weight.shape[0]
    out = np.empty((M, N), dtype=x.dtype)
    cdef float[:, ::1] xf, wf, of
    cdef double[:, ::1] xd, wd, od
    cdef float[::1] bf
    cdef double[::1] bd
    if x.dtype == np.float32:
        xf, wf, of = x, weight, out
        bf = bias if bias is not None else None
        with nogil:
            _forward[float](&xf[0, 0], &wf[0, 0], &bf[0] if bf is not None else NULL,
                            &of[0, 0], M, N, K, num_threads)
    else:
        xd, wd, od = x, weight, out
        bd = bias if bias is not None else None
        with nogil:
            _forward[double](&xd[0, 0], &wd[0, 0], &bd[0] if bd is not None else NULL,
                             &od[0, 0], M, N, K, num_threads)
    return out


def linear_backward_input(grad_out, weight, int num_threads):
    """grad_input (M, K) = grad_out (M, N) @ weight (N, K)."""
    cdef int M = grad_out.shape[0], N = grad_out.shape[1], K = weight.shape[1]
    gx = np.empty((M, K), dtype=grad_out.dtype)
    cdef float[:, ::1] gf, wf, of
    cdef double[:, ::1] gd, wd, od
    if grad_out.dtype == np.float32:
        gf, wf, of = grad_out, weight, gx
        with nogil:
            _grad_input[float](&gf[0, 0], &wf[0, 0], &of[0, 0], M, N, K, num_threads)
    else:
        gd, wd, od = grad_out, weight, gx
        with nogil:
            _grad_input[double](&gd[0, 0], &wd[0, 0], &od[0, 0], M, N, K, num_threads)
    return gx


def linear_backward_weight(grad_out, x, int num_threads):
    """grad_weight (N, K) = grad_out (M, N)ᵀ @ x (M, K)."""
    cdef int M = grad_out.shape[0], N = grad_out.shape[1], K = x.shape[1]
    gw = np.empty((N, K), dtype=grad_out.dtype)
    cdef float[:, ::1] gf, xf, of
    cdef double[:, ::1] gd, xd, od
    if grad_out.dtype == np.float32:
        gf, xf, of = grad_out, x, gw
        with nogil:
            _grad_weight[float](&gf[0, 0], &xf[0, 0], &of[0, 0], M, N, K, num_threads)
    else:
        gd, xd, od = grad_out, x, gw
        with nogil:
            _grad_weight[double](&gd[0, 0], &xd[0, 0], &od[0, 0], M, N, K, num_threads)
    return gw


def set_flush_denormal(bint mode, int num_threads):
    """FTZ/DAZ on (``mode``) or off for the calling thread and up to ``num_threads``
    OpenMP threads; False where unsupported (not x86)."""
    return bool(minidl_set_flush_denormal(mode, num_threads))


def flush_denormal():
    """Whether FTZ and DAZ are both on for the calling thread."""
    return bool(minidl_get_ftz_here())


def pin_scipy_blas():
    """Put scipy's BLAS on one thread now (what every kernel entry does); False when its
    thread functions are not found (e.g. a BLAS shared with numpy)."""
    return bool(pin_blas())


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
