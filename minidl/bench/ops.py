"""Callables for the per-op comparisons: minidl and each comparator on the same arrays.

Every builder returns a zero-argument callable that does one call of the op (forward, or
forward and backward) so that the timer can run it back to back. Builders of a comparator
that does not apply or is not installed are never called (see suite.plan_rows).
"""

import numpy as np

from minidl.bench.pure_python import conv2d_lists
from minidl.bench.shapes import gemm_flops

FWD, FWD_BWD = "fwd", "fwd+bwd"
MINIDL, NAIVE, PURE_PYTHON, NUMPY_GEMM, TORCH = (
    "minidl",
    "naive",
    "pure-python",
    "numpy-gemm",
    "torch",
)
ONE_THREAD = "minidl, 1 thread"  # minidl against itself: the thread-scaling rows


# ---- inputs ---------------------------------------------------------------------------
def conv_arrays(shape, rng, dtype=np.float32):
    """x (N, C, H, W), weight (F, C, k, k), bias (F,), grad_out (N, F, Ho, Wo) of ``dtype``."""
    x = rng.standard_normal((shape.n, shape.c, shape.h, shape.w), dtype=dtype)
    fan_in = shape.c * shape.k * shape.k
    w = rng.standard_normal((shape.f, shape.c, shape.k, shape.k), dtype=dtype)
    w /= w.dtype.type(np.sqrt(fan_in))
    b = rng.standard_normal(shape.f, dtype=dtype)
    g = rng.standard_normal(shape.out_shape, dtype=dtype)
    return x, w, b, g


def pool_arrays(shape, rng):
    """x (N, C, H, W) and grad_out (N, C, H//k, W//k), float32."""
    x = rng.standard_normal((shape.n, shape.c, shape.h, shape.w), dtype=np.float32)
    g = rng.standard_normal(
        (shape.n, shape.c, shape.h // shape.k, shape.w // shape.k), dtype=np.float32
    )
    return x, g


def linear_arrays(shape, rng):
    x = rng.standard_normal((shape.n, shape.in_features), dtype=np.float32)
    w = rng.standard_normal((shape.out_features, shape.in_features), dtype=np.float32)
    w /= np.float32(np.sqrt(shape.in_features))
    b = rng.standard_normal(shape.out_features, dtype=np.float32)
    g = rng.standard_normal((shape.n, shape.out_features), dtype=np.float32)
    return x, w, b, g


def loss_arrays(shape, rng):
    logits = rng.standard_normal((shape.n, shape.classes), dtype=np.float32)
    target = rng.integers(0, shape.classes, size=shape.n).astype(np.int64)
    return logits, target


def arrays_for(op, shape, rng):
    if op == "conv2d":
        return conv_arrays(shape, rng)
    if op in ("max_pool2d", "avg_pool2d"):
        return pool_arrays(shape, rng)
    if op == "linear":
        return linear_arrays(shape, rng)
    if op == "cross_entropy":
        return loss_arrays(shape, rng)
    raise ValueError(f"unknown op {op!r}")


# ---- one framework, one op: (forward function, differentiable inputs, grad_out) -------
def _problem(F, leaf, constant, op, shape, arrays):
    """F: the framework's functional module; leaf(ndarray) -> a tensor that requires grad;
    constant(ndarray) -> what the framework takes for grad_out and targets."""
    if op == "conv2d":
        x, w, b, g = arrays
        return (
            (lambda x, w, b: F.conv2d(x, w, b, stride=shape.stride, padding=shape.padding)),
            [leaf(a) for a in (x, w, b)],
            constant(g),
        )
    if op in ("max_pool2d", "avg_pool2d"):
        x, g = arrays
        pool = getattr(F, op)
        return (lambda x: pool(x, shape.k)), [leaf(x)], constant(g)
    if op == "linear":
        x, w, b, g = arrays
        return F.linear, [leaf(a) for a in (x, w, b)], constant(g)
    if op == "cross_entropy":
        logits, target = arrays
        target = constant(target)
        return (lambda z: F.cross_entropy(z, target)), [leaf(logits)], None
    raise ValueError(f"unknown op {op!r}")


def _call(no_grad, problem, pass_):
    """One call of the problem's op: under ``no_grad`` for fwd, with autograd for fwd+bwd."""
    forward, inputs, grad_out = problem
    if pass_ == FWD:

        def call():
            with no_grad():
                forward(*inputs)

        return call

    def call_backward():
        for t in inputs:
            t.grad = None
        out = forward(*inputs)
        if grad_out is None:
            out.backward()
        else:
            out.backward(grad_out)

    return call_backward


def minidl_call(op, shape, pass_, arrays):
    """One minidl call through the public ops (grad_out and targets stay ndarrays)."""
    import minidl
    import minidl.nn.functional as F

    def leaf(a):
        return minidl.tensor(a, requires_grad=True)

    return _call(minidl.no_grad, _problem(F, leaf, lambda a: a, op, shape, arrays), pass_)


def torch_call(torch, op, shape, pass_, arrays):
    """One PyTorch eager call of the same op on copies of the same arrays."""
    import torch.nn.functional as TF

    def leaf(a):
        return torch.tensor(a, requires_grad=True)

    return _call(torch.no_grad, _problem(TF, leaf, torch.tensor, op, shape, arrays), pass_)


# ---- naive reference loops (minidl.reference), on the first n_images of the batch ------
def naive_call(op, shape, pass_, arrays, n_images):
    from minidl import reference as ref

    def first(a):
        return np.ascontiguousarray(a[:n_images])

    if op == "conv2d":
        x, w, b, g = arrays
        x, g = first(x), first(g)
        kw = dict(stride=shape.stride, padding=shape.padding)
        if pass_ == FWD:
            return lambda: ref.conv2d_forward(x, w, b, **kw)

        # the loops over n, f, i, j of seed 002 (what benchmarks/bench_kernels.py times);
        # reference.conv2d_backward, the two-convolution form, is slower still
        backward = getattr(ref, "conv2d_backward_loops", ref.conv2d_backward)

        def conv_fwd_bwd():
            ref.conv2d_forward(x, w, b, **kw)
            backward(x, w, g, **kw)

        return conv_fwd_bwd
    if op in ("max_pool2d", "avg_pool2d"):
        x, g = (first(a) for a in arrays)
        forward = getattr(ref, f"{op}_forward")
        if pass_ == FWD:
            return lambda: forward(x, shape.k)
        if op == "max_pool2d":

            def pool_fwd_bwd():
                _, indices = forward(x, shape.k)
                ref.max_pool2d_backward(g, indices, x.shape)
        else:

            def pool_fwd_bwd():
                forward(x, shape.k)
                ref.avg_pool2d_backward(g, x.shape, shape.k)

        return pool_fwd_bwd
    raise ValueError(f"no naive reference for {op!r}")


# ---- numpy's matmul on the GEMM(s) of the same shape: the BLAS limit --------------------
def gemm_problem(op, shape, pass_, rng, dtype=np.float32):
    """(callable, flops): the GEMM a conv2d / linear performs (fwd: 1 GEMM; fwd+bwd: 3)."""
    if op not in ("conv2d", "linear"):
        raise ValueError(f"no GEMM for {op!r}")
    m, k, n = shape.gemm  # conv2d: weight (F, C*k*k) @ cols (C*k*k, N*Ho*Wo)
    a = rng.standard_normal((m, k), dtype=dtype)
    bmat = rng.standard_normal((k, n), dtype=dtype)
    c = np.empty((m, n), dtype=dtype)
    flops = gemm_flops(m, k, n)
    if pass_ == FWD:
        return (lambda: np.matmul(a, bmat, out=c)), flops
    da = np.empty_like(a)
    db = np.empty_like(bmat)

    def three_gemms():
        np.matmul(a, bmat, out=c)  # forward
        np.matmul(c, bmat.T, out=da)  # gradient w.r.t. the left factor
        np.matmul(a.T, c, out=db)  # gradient w.r.t. the right factor

    return three_gemms, 3 * flops


def op_flops(op, shape, pass_):
    if op == "conv2d" or op == "linear":
        return shape.flops * (1 if pass_ == FWD else 3)
    return None


# ---- pure Python lists -----------------------------------------------------------------
def pure_python_call(shape, arrays):
    """Forward conv2d of the whole (small) batch in plain Python lists (stride 1 only)."""
    x, w, b, _ = arrays
    x_lists, w_lists, b_list = x.tolist(), w.tolist(), b.tolist()
    return lambda: conv2d_lists(x_lists, w_lists, b_list, shape.padding)
