"""The fully connected layer's three GEMMs on scipy's BLAS at one thread, split over
OpenMP threads by FIXED blocks of output rows.

  forward      out (M, N) = x (M, K) @ W (N, K)ᵀ + b (N,), ReLU'd on request
  input grad   gx (M, K) = g (M, N) @ W (N, K)
  weight grad  gW (N, K) = g (M, N)ᵀ @ x (M, K)

Each output block (at most MAX_ROW_BLOCK rows, evened out) is one GEMM with the whole
reduction dimension (never split), and the blocks depend on the shape only: every result
is bit-identical for any thread count, and numpy's BLAS thread pool is never touched.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from cython cimport floating

from minidl._kernels._helpers cimport (
    choose_threads,
    gemm,
    minidl_ftz_enter,
    minidl_ftz_restore,
    minidl_get_ftz_here,
    minidl_planned_threads,
    minidl_set_flush_denormal,
    pin_blas,
)

cnp.import_array()

# Rows of the output per GEMM: big enough for BLAS to reach the speed of one whole GEMM
# (32-row blocks cost up to 1.7x on a 64x4096 -> 256 layer; 360 rows ran 1.2x slower as
# 128 + 128 + 104 than as 2 x 180), so threads split only past 256 rows.
cdef enum:
    MAX_ROW_BLOCK = 256


cdef inline Py_ssize_t _block_rows(Py_ssize_t rows) noexcept nogil:
    """Rows a block for ``rows`` output rows: at most MAX_ROW_BLOCK, evened out over the
    blocks (a function of the shape only)."""
    cdef Py_ssize_t blocks = (rows + MAX_ROW_BLOCK - 1) // MAX_ROW_BLOCK
    return (rows + blocks - 1) // blocks if blocks > 0 else 1


cdef inline void _forward_block(const floating* x, const floating* w, const floating* b,
                                floating* out, int M, int N, int K, Py_ssize_t blk,
                                Py_ssize_t R, bint relu) noexcept nogil:
    cdef Py_ssize_t r0 = blk * R, i, j
    cdef int rows = R if r0 + R <= M else M - r0
    cdef floating beta = 1 if b != NULL else 0
    cdef floating v
    if b != NULL:
        for i in range(r0, r0 + rows):
            for j in range(N):
                out[i * N + j] = b[j]
    gemm(c'N', c'T', rows, N, K, 1, x + r0 * K, K, w, K, beta, out + r0 * N, N)
    if relu:   # while the block is in cache; as the ReLU kernel: NaN stays NaN
        for i in range(r0 * N, (r0 + rows) * N):
            v = out[i]
            out[i] = v if v > 0 or v != v else 0


cdef inline void _grad_input_block(const floating* g, const floating* w, floating* gx,
                                   int M, int N, int K, Py_ssize_t blk,
                                   Py_ssize_t R) noexcept nogil:
    cdef Py_ssize_t r0 = blk * R
    cdef int rows = R if r0 + R <= M else M - r0
    gemm(c'N', c'N', rows, K, N, 1, g + r0 * N, N, w, K, 0, gx + r0 * K, K)


cdef inline void _grad_weight_block(const floating* g, const floating* x, floating* gw,
                                    int M, int N, int K, Py_ssize_t blk,
                                    Py_ssize_t R) noexcept nogil:
    cdef Py_ssize_t r0 = blk * R
    cdef int rows = R if r0 + R <= N else N - r0
    # rows r0.. of gᵀ @ x: op(A) = (g[:, r0:r0+rows])ᵀ, A read with row stride N
    gemm(c'T', c'N', rows, K, M, 1, g + r0, N, x, K, 0, gw + r0 * K, K)


# One pass: which GEMM (0 forward, 1 input grad, 2 weight grad) over which output blocks.
# A single thread runs the blocks in a plain loop: an OpenMP team of one costs more than a
# small layer's GEMM saves.
cdef void _run(int which, const floating* a, const floating* c, const floating* b,
               floating* out, int M, int N, int K, int num_threads,
               bint relu=False) noexcept nogil:
    cdef Py_ssize_t R = _block_rows(N if which == 2 else M)
    cdef Py_ssize_t blocks = ((N if which == 2 else M) + R - 1) // R
    # choose_threads' unit is an element moved: BLAS does ~16 multiply-adds in its time
    cdef int nt = choose_threads(num_threads, <double>M * N * K / 16, blocks)
    cdef Py_ssize_t blk
    if nt <= 1:
        for blk in range(blocks):
            _block(which, a, c, b, out, M, N, K, blk, R, relu)
    else:
        for blk in prange(blocks, num_threads=nt, schedule='static'):
            _block(which, a, c, b, out, M, N, K, blk, R, relu)


cdef inline void _block(int which, const floating* a, const floating* c, const floating* b,
                        floating* out, int M, int N, int K, Py_ssize_t blk,
                        Py_ssize_t R, bint relu) noexcept nogil:
    if which == 0:
        _forward_block(a, c, b, out, M, N, K, blk, R, relu)
    elif which == 1:
        _grad_input_block(a, c, out, M, N, K, blk, R)
    else:
        _grad_weight_block(a, c, out, M, N, K, blk, R)


cdef object _call(int which, cnp.ndarray a, cnp.ndarray c, b, cnp.ndarray out, int M, int N,
                  int K, int num_threads, bint relu=False):
    """Run pass ``which`` on C-contiguous arrays of one float dtype (the op layer checks)."""
    cdef void* pa = cnp.PyArray_DATA(a)
    cdef void* pc = cnp.PyArray_DATA(c)
    cdef void* pb = cnp.PyArray_DATA(<cnp.ndarray>b) if b is not None else NULL
    cdef void* po = cnp.PyArray_DATA(out)
    if out.dtype == np.float32:
        with nogil:
            _run[float](which, <float*>pa, <float*>pc, <float*>pb, <float*>po, M, N, K,
                        num_threads, relu)
    else:
        with nogil:
            _run[double](which, <double*>pa, <double*>pc, <double*>pb, <double*>po, M, N, K,
                         num_threads, relu)
    return out


def linear_forward(cnp.ndarray x, cnp.ndarray weight, bias, int num_threads, *,
                   bint relu=False):
    """out (M, N) = x (M, K) @ weight (N, K)ᵀ + bias (N,) or None, then max(out, 0)
    (NaN kept) with ``relu``; M, N, K >= 1; all C-contiguous, of one dtype (float32 or
    float64)."""
    cdef int M = x.shape[0], K = x.shape[1], N = weight.shape[0]
    return _call(0, x, weight, bias, np.empty((M, N), dtype=x.dtype), M, N, K, num_threads,
                 relu)


def linear_backward_input(cnp.ndarray grad_out, cnp.ndarray weight, int num_threads):
    """grad_input (M, K) = grad_out (M, N) @ weight (N, K)."""
    cdef int M = grad_out.shape[0], N = grad_out.shape[1], K = weight.shape[1]
    return _call(1, grad_out, weight, None, np.empty((M, K), dtype=grad_out.dtype),
                 M, N, K, num_threads)


def linear_backward_weight(cnp.ndarray grad_out, cnp.ndarray x, int num_threads):
    """grad_weight (N, K) = grad_out (M, N)ᵀ @ x (M, K)."""
    cdef int M = grad_out.shape[0], N = grad_out.shape[1], K = x.shape[1]
    return _call(2, grad_out, x, None, np.empty((N, K), dtype=grad_out.dtype),
                 M, N, K, num_threads)


def set_flush_denormal(bint mode, int num_threads):
    """FTZ/DAZ on (``mode``) or off for the calling thread and up to ``num_threads``
    OpenMP threads; False where unsupported (not x86)."""
    return bool(minidl_set_flush_denormal(mode, num_threads))


def flush_denormal():
    """Whether FTZ and DAZ are both on for the calling thread."""
    return bool(minidl_get_ftz_here())


def flush_denormal_enter():
    """FTZ and DAZ on for the calling thread; returns the state flush_denormal_restore
    puts back (0 where unsupported)."""
    return minidl_ftz_enter()


def flush_denormal_restore(unsigned int state):
    """The calling thread's FTZ and DAZ bits as flush_denormal_enter found them."""
    minidl_ftz_restore(state)


def pin_scipy_blas():
    """Put scipy's BLAS on one thread now (what every kernel entry does); False when its
    thread functions are not found (e.g. a BLAS shared with numpy)."""
    return bool(pin_blas())


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
