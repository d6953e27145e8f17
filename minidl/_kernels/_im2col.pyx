"""Standalone im2col / col2im for (N, C, H, W) batches, parallel over (n, c) planes.

Each (n, c) plane is handled by one thread from start to end, so col2im sums the
overlapping windows of a plane in one fixed order: results are bit-identical for any
thread count.  The per-plane routines live in _helpers.pxd and are shared with _conv.pyx.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free
from cython cimport floating

from minidl._kernels._helpers cimport (
    MINIDL_OPENMP, MINIDL_BUILD_FLAGS, minidl_planned_threads, choose_threads, im2col_plane, col2im_plane,
    new_gather_table, needs_plane_scratch, plane_scratch_len, scratch_alloc, out_len,
)

cnp.import_array()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (else they run on one thread)."""
    return bool(MINIDL_OPENMP)


def build_flags():
    """Extra compiler flags the kernels were built with (informational)."""
    return MINIDL_BUILD_FLAGS.decode()


cdef class _PlaneWork:
    """The per-thread plane scratch (threads * scratch_len items) and the gather table
    that im2col_plane/col2im_plane use for small planes (both NULL when the plane method
    needs neither); freed with the object."""
    cdef void* scratch
    cdef int* table
    cdef Py_ssize_t scratch_len

    def __cinit__(self, int threads, size_t itemsize, int H, int W, int kh, int kw, int sh,
                  int sw, int ph, int pw, int dh, int dw, int Ho, int Wo):
        self.scratch_len = plane_scratch_len(H, W, ph, pw)
        if needs_plane_scratch(W, sh, sw, Wo):
            self.scratch = scratch_alloc(<size_t>threads * self.scratch_len, itemsize)
            self.table = new_gather_table(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)

    def __dealloc__(self):
        free(self.table)
        free(self.scratch)


cdef _im2col(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
             int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
             int Ho, int Wo, int num_threads):
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t p, n, c, planes = <Py_ssize_t>N * C
    cdef int nt = choose_threads(num_threads, <double>planes * kh * kw * Ho * Wo, planes)
    cdef _PlaneWork work = _PlaneWork(nt, sizeof(floating), H, W, kh, kw, sh, sw, ph, pw,
                                      dh, dw, Ho, Wo)
    cdef floating* scratch = <floating*>work.scratch
    cdef floating* mine = NULL
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // C
            c = p % C
            if scratch != NULL:
                mine = scratch + threadid() * work.scratch_len
            im2col_plane(&x[n, c, 0, 0], &cols[n, c * kh * kw, 0], <Py_ssize_t>Ho * Wo,
                         H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, work.table, mine)


cdef _col2im(const floating[:, :, ::1] cols, floating[:, :, :, ::1] x,
             int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
             int Ho, int Wo, int num_threads):
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t p, n, c, planes = <Py_ssize_t>N * C
    cdef int nt = choose_threads(num_threads, <double>planes * (kh * kw * Ho * Wo + H * W), planes)
    cdef _PlaneWork work = _PlaneWork(nt, sizeof(floating), H, W, kh, kw, sh, sw, ph, pw,
                                      dh, dw, Ho, Wo)
    cdef floating* scratch = <floating*>work.scratch
    cdef floating* mine = NULL
    with nogil:
        for p in prange(planes, num_threads=nt, schedule='static'):
            n = p // C
            c = p % C
            if scratch != NULL:
                mine = scratch + threadid() * work.scratch_len
            col2im_plane(&cols[n, c * kh * kw, 0], <Py_ssize_t>Ho * Wo, &x[n, c, 0, 0],
                         H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, work.table, mine)


def im2col(x, kernel_size, stride, padding, dilation, int num_threads):
    """Unfold x (N, C, H, W) into cols (N, C*kh*kw, Ho*Wo), zero padding.

    Row index c*kh*kw + i*kw + j, column index oh*Wo + ow."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int kh = kernel_size[0], kw = kernel_size[1], sh = stride[0], sw = stride[1]
    cdef int ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1]
    cdef int Ho = out_len(H, ph, dh * (kh - 1) + 1, sh)
    cdef int Wo = out_len(W, pw, dw * (kw - 1) + 1, sw)
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    if cols.size == 0:
        return cols
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _im2col[float](x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, num_threads)
    else:
        _im2col[double](x, cols, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, num_threads)
    return cols


def col2im(cols, input_shape, kernel_size, stride, padding, dilation, int num_threads):
    """Fold cols (N, C*kh*kw, Ho*Wo) back into x (N, C, H, W), summing overlaps."""
    cdef int N = input_shape[0], C = input_shape[1], H = input_shape[2], W = input_shape[3]
    cdef int kh = kernel_size[0], kw = kernel_size[1], sh = stride[0], sw = stride[1]
    cdef int ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1]
    cdef int Ho = out_len(H, ph, dh * (kh - 1) + 1, sh)
    cdef int Wo = out_len(W, pw, dw * (kw - 1) + 1, sw)
    x = np.empty((N, C, H, W), dtype=cols.dtype)
    if x.size == 0:
        return x
    if cnp.PyArray_TYPE(cols) == cnp.NPY_FLOAT:
        _col2im[float](cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, num_threads)
    else:
        _col2im[double](cols, x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, num_threads)
    return x


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
