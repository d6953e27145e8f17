"""The optimisers' element-wise updates in one pass over a parameter (minidl.optim).

Each step of ``sgd_update`` and ``adam_update`` rounds exactly where the numpy expressions
of minidl.optim.SGD / Adam round (one float operation at a time, in the parameter's
dtype; the baseline build has no FMA to contract them, and sqrt is correctly rounded in
both), so the two give identical bits.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport sqrt, sqrtf

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


cdef void _adam(floating* p, const floating* g, floating* m, floating* v, floating* vmax,
                Py_ssize_t n, floating beta1, floating keep1, floating beta2, floating keep2,
                floating step_size, floating bias2, floating eps, floating weight_decay,
                bint coupled, bint maximize) noexcept nogil:
    """Adam's step (minidl.optim.Adam._update's order of operations); vmax NULL without
    amsgrad. keep1 = 1 - beta1, keep2 = 1 - beta2, bias2 = sqrt(1 - beta2^step),
    weight_decay applied here only when ``coupled`` (L2 in the gradient)."""
    cdef Py_ssize_t i
    cdef floating d, a, b, s, denom
    for i in range(n):
        d = -g[i] if maximize else g[i]
        if coupled:
            d = d + weight_decay * p[i]
        a = m[i] * beta1
        a = a + keep1 * d
        m[i] = a
        b = v[i] * beta2
        b = b + keep2 * (d * d)
        v[i] = b
        if vmax != NULL:
            if b > vmax[i] or b != b:
                vmax[i] = b
            b = vmax[i]
        if floating is float:
            denom = sqrtf(b)
        else:
            denom = sqrt(b)
        denom = denom / bias2
        denom = denom + eps
        s = a / denom
        p[i] = p[i] - step_size * s


def adam_update(cnp.ndarray param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, double beta1,
                double beta2, double step_size, double bias2, double eps,
                double weight_decay, bint maximize):
    """One Adam step on ``param`` and its moments in place (``max_exp_avg_sq``: amsgrad's,
    or None); ``weight_decay`` is the coupled (L2) one, 0 for none or for AdamW, whose
    decay the caller applies first. False, changing nothing, unless every array is a
    C-contiguous float32 or float64 array of param's dtype and shape."""
    cdef int kind = cnp.PyArray_TYPE(param)
    if not (
        (kind == cnp.NPY_FLOAT32 or kind == cnp.NPY_FLOAT64)
        and cnp.PyArray_IS_C_CONTIGUOUS(param) and cnp.PyArray_ISWRITEABLE(param)
        and _matches(param, grad, kind) and _matches(param, exp_avg, kind)
        and _matches(param, exp_avg_sq, kind)
        and (max_exp_avg_sq is None or _matches(param, max_exp_avg_sq, kind))
    ):
        return False
    cdef Py_ssize_t n = param.size
    cdef void* pp = cnp.PyArray_DATA(param)
    cdef void* pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef void* pm = cnp.PyArray_DATA(<cnp.ndarray>exp_avg)
    cdef void* pv = cnp.PyArray_DATA(<cnp.ndarray>exp_avg_sq)
    cdef void* px = (cnp.PyArray_DATA(<cnp.ndarray>max_exp_avg_sq)
                     if max_exp_avg_sq is not None else NULL)
    cdef bint coupled = weight_decay != 0
    if kind == cnp.NPY_FLOAT32:
        with nogil:
            _adam[float](<float*>pp, <float*>pg, <float*>pm, <float*>pv, <float*>px, n,
                         <float>beta1, <float>(1 - beta1), <float>beta2, <float>(1 - beta2),
                         <float>step_size, <float>bias2, <float>eps, <float>weight_decay,
                         coupled, maximize)
    else:
        with nogil:
            _adam[double](<double*>pp, <double*>pg, <double*>pm, <double*>pv, <double*>px,
                          n, beta1, 1 - beta1, beta2, 1 - beta2, step_size, bias2, eps,
                          weight_decay, coupled, maximize)
    return True

