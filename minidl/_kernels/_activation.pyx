"""ReLU's forward and backward in one pass each, split over threads (minidl.ops.activation).

Each gives the bits of the numpy expressions it replaces: the forward np.maximum(x, 0)
(NaN stays NaN), the backward (x > 0) * g, a float mask times the gradient (so where
x <= 0, or x is NaN, the result is 0 * g: -0.0 for a negative g, NaN for an infinite or
NaN one).  Elements are split into fixed chunks, one write per element: the result is
the same for any number of threads.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange

from minidl._kernels._helpers cimport choose_threads, minidl_planned_threads

cnp.import_array()

cdef enum:
    CHUNK = 1 << 14   # elements per parallel chunk


cdef void _relu(const floating* x, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        out[i] = v if v > 0 or v != v else 0


cdef void _relu_grad(const floating* x, const floating* g, floating* out,
                     Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):   # numpy's float mask times g, branch-free (it vectorises)
        out[i] = <floating>(x[i] > 0) * g[i]


cdef bint _same(cnp.ndarray a, b) except -1:
    """b is a C-contiguous ndarray of a's dtype and shape."""
    if type(b) is not cnp.ndarray:
        return False
    cdef cnp.ndarray c = <cnp.ndarray>b
    return (cnp.PyArray_TYPE(c) == cnp.PyArray_TYPE(a) and cnp.PyArray_IS_C_CONTIGUOUS(c)
            and cnp.PyArray_SAMESHAPE(a, c))


cdef bint _eligible(cnp.ndarray x) except -1:
    cdef int kind = cnp.PyArray_TYPE(x)
    return (kind == cnp.NPY_FLOAT32 or kind == cnp.NPY_FLOAT64) and cnp.PyArray_IS_C_CONTIGUOUS(x)


cdef void _chunks(const floating* x, const floating* g, floating* out, Py_ssize_t n,
                  int num_threads) noexcept nogil:
    """ReLU (g NULL) or its input gradient over n elements, in fixed CHUNK pieces."""
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK, c, lo
    cdef int nt = choose_threads(num_threads, <double>n, chunks)
    for c in prange(chunks, num_threads=nt, schedule='static'):
        lo = c * CHUNK
        if g == NULL:
            _relu(x + lo, out + lo, min(CHUNK, n - lo))
        else:
            _relu_grad(x + lo, g + lo, out + lo, min(CHUNK, n - lo))


cdef cnp.ndarray _run(cnp.ndarray x, cnp.ndarray grad, int num_threads):
    """A new array of x's shape from _chunks (grad None: the forward)."""
    cdef cnp.ndarray out = np.empty_like(x, order="C")
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* pg = NULL if grad is None else cnp.PyArray_DATA(grad)
    cdef void* po = cnp.PyArray_DATA(out)
    cdef Py_ssize_t n = x.size
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _chunks[float](<float*>px, <float*>pg, <float*>po, n, num_threads)
    else:
        with nogil:
            _chunks[double](<double*>px, <double*>pg, <double*>po, n, num_threads)
    return out


def relu_forward(x, int num_threads):
    """max(x, 0) as a new array, or None (computing nothing) unless x is a C-contiguous
    float32 or float64 ndarray: the caller then uses numpy."""
    if type(x) is not cnp.ndarray or not _eligible(<cnp.ndarray>x):
        return None
    return _run(<cnp.ndarray>x, None, num_threads)


def relu_backward(x, grad, int num_threads):
    """(x > 0) * grad as a new array (ReLU's input gradient), or None unless x and grad
    are C-contiguous ndarrays of one float dtype and shape."""
    if (type(x) is not cnp.ndarray or not _eligible(<cnp.ndarray>x)
            or not _same(<cnp.ndarray>x, grad)):
        return None
    return _run(<cnp.ndarray>x, <cnp.ndarray>grad, num_threads)


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
