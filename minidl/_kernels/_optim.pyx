"""The optimisers' element-wise updates in one pass over a parameter (minidl.optim).

Each step of ``sgd_update`` rounds exactly where the numpy expressions of
minidl.optim.SGD round (one float operation at a time, in the parameter's dtype; the
baseline build has no FMA to contract them), so the two give identical bits.
"""
cimport numpy as cnp
from cython cimport floating

cnp.import_array()


cdef void _sgd(floating* p, const floating* g, floating* buf, Py_ssize_t n, floating lr,
               floating momentum, floating keep, floating weight_decay, bint decayed,
               bint dampened, bint nesterov, bint maximize, bint first) noexcept nogil:
    """p -= lr * d for SGD's d (torch.optim.SGD's algorithm); buf NULL without momentum.
    keep = 1 - dampening, used when ``dampened``; weight_decay, when ``decayed``."""
    cdef Py_ssize_t i
    cdef floating d, b
    # the common settings as branch-free loops (they vectorise), then the general one
    if not maximize and not decayed and not dampened and not first:
        if buf == NULL:
            for i in range(n):
                p[i] = p[i] - lr * g[i]
            return
        if not nesterov:
            for i in range(n):
                b = buf[i] * momentum
                b = b + g[i]
                buf[i] = b
                p[i] = p[i] - lr * b
            return
        for i in range(n):
            b = buf[i] * momentum
            b = b + g[i]
            buf[i] = b
            d = momentum * b
            d = g[i] + d
            p[i] = p[i] - lr * d
        return
    for i in range(n):
        d = -g[i] if maximize else g[i]
        if decayed:
            d = d + weight_decay * p[i]
        if buf != NULL:
            if first:
                b = d
            else:
                b = buf[i] * momentum
                b = b + (keep * d if dampened else d)
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


def sgd_update(cnp.ndarray param, grad, buf, double lr, double momentum, double dampening,
               double weight_decay, bint nesterov, bint maximize, bint first):
    """One SGD step on ``param`` in place (and on the momentum buffer ``buf``, or None;
    ``first``: the buffer's first step, which takes the gradient as it is). Returns False,
    changing nothing, unless param, grad and buf are writeable (but grad) C-contiguous
    float32 or float64 arrays of one dtype and shape: the caller then updates with numpy."""
    cdef int kind = cnp.PyArray_TYPE(param)
    if not (
        (kind == cnp.NPY_FLOAT32 or kind == cnp.NPY_FLOAT64)
        and cnp.PyArray_IS_C_CONTIGUOUS(param) and cnp.PyArray_ISWRITEABLE(param)
        and _matches(param, grad, kind) and (buf is None or _matches(param, buf, kind))
        and (buf is None or cnp.PyArray_ISWRITEABLE(<cnp.ndarray>buf))
    ):
        return False
    cdef Py_ssize_t n = param.size
    cdef void* pp = cnp.PyArray_DATA(param)
    cdef void* pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef void* pb = cnp.PyArray_DATA(<cnp.ndarray>buf) if buf is not None else NULL
    cdef bint dampened = dampening != 0, decayed = weight_decay != 0
    if kind == cnp.NPY_FLOAT32:
        with nogil:
            _sgd[float](<float*>pp, <float*>pg, <float*>pb, n, <float>lr, <float>momentum,
                        <float>(1 - dampening), <float>weight_decay, decayed, dampened,
                        nesterov, maximize, first)
    else:
        with nogil:
            _sgd[double](<double*>pp, <double*>pg, <double*>pb, n, lr, momentum,
                         1 - dampening, weight_decay, decayed, dampened, nesterov, maximize,
                         first)
    return True


cdef bint _matches(cnp.ndarray param, other, int kind):
    """other is a C-contiguous ndarray of param's dtype and shape."""
    if type(other) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>other
    return (cnp.PyArray_TYPE(a) == kind and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_SAMESHAPE(param, a))
