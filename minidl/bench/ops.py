"""Callables for the per-op comparisons: minidl and each comparator on the same arrays.

Every builder returns a zero-argument callable that does one call of the op (forward, or
forward and backward) so that the timer can run it back to back. Builders of a comparator
that does not apply or is not installed are never called (see suite.plan_rows).
"""
import numpy as np

from minidl.bench.pure_python import conv2d_lists

FWD, FWD_BWD = "fwd", "fwd+bwd"
MINIDL, NAIVE, PURE_PYTHON, NUMPY_GEMM, TORCH = (
    "minidl", "naive", "pure-python", "numpy-gemm", "torch")


# ---- inputs ---------------------------------------------------------------------------
def conv_arrays(shape, rng):
    """x (N, C, H, W), weight (F, C, k, k), bias (F,), grad_out (N, F, Ho, Wo), float32."""
    x = rng.standard_normal((shape.n, shape.c, shape.h, shape.w), dtype=np.float32)
    fan_in = shape.c * shape.k * shape.k
    w = rng.standard_normal((shape.f, shape.c, shape.k, shape.k), dtype=np.float32)
    w /= np.float32(np.sqrt(fan_in))
    b = rng.standard_normal(shape.f, dtype=np.float32)
    g = rng.standard_normal(shape.out_shape, dtype=np.float32)
    return x, w, b, g


def pool_arrays(shape, rng):
    """x (N, C, H, W) and grad_out (N, C, H//k, W//k), float32."""
    x = rng.standard_normal((shape.n, shape.c, shape.h, shape.w), dtype=np.float32)
    g = rng.standard_normal((shape.n, shape.c, shape.h // shape.k, shape.w // shape.k),
                            dtype=np.float32)
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
def _minidl_problem(op, shape, arrays):
    import minidl
    import minidl.nn.functional as F

    if op == "conv2d":
        x, w, b, g = arrays
        ins = [minidl.tensor(a, requires_grad=True) for a in (x, w, b)]
        return (lambda x, w, b: F.conv2d(x, w, b, stride=shape.stride, padding=shape.padding)), ins, g
    if op == "max_pool2d":
        x, g = arrays
        return (lambda x: F.max_pool2d(x, shape.k)), [minidl.tensor(x, requires_grad=True)], g
    if op == "avg_pool2d":
        x, g = arrays
        return (lambda x: F.avg_pool2d(x, shape.k)), [minidl.tensor(x, requires_grad=True)], g
    if op == "linear":
        x, w, b, g = arrays
        return F.linear, [minidl.tensor(a, requires_grad=True) for a in (x, w, b)], g
    if op == "cross_entropy":
        logits, target = arrays
        return ((lambda z: F.cross_entropy(z, target)),
                [minidl.tensor(logits, requires_grad=True)], None)
    raise ValueError(f"unknown op {op!r}")


def _torch_problem(torch, op, shape, arrays):
    import torch.nn.functional as TF

    def leaf(a):
        return torch.tensor(a, requires_grad=True)

    if op == "conv2d":
        x, w, b, g = arrays
        return ((lambda x, w, b: TF.conv2d(x, w, b, stride=shape.stride, padding=shape.padding)),
                [leaf(a) for a in (x, w, b)], torch.tensor(g))
    if op == "max_pool2d":
        x, g = arrays
        return (lambda x: TF.max_pool2d(x, shape.k)), [leaf(x)], torch.tensor(g)
    if op == "avg_pool2d":
        x, g = arrays
        return (lambda x: TF.avg_pool2d(x, shape.k)), [leaf(x)], torch.tensor(g)
    if op == "linear":
        x, w, b, g = arrays
        return TF.linear, [leaf(a) for a in (x, w, b)], torch.tensor(g)
    if op == "cross_entropy":
        logits, target = arrays
        target_t = torch.tensor(target)
        return (lambda z: TF.cross_entropy(z, target_t)), [leaf(logits)], None
    raise ValueError(f"unknown op {op!r}")


def minidl_call(op, shape, pass_, arrays):
    """One minidl call through the public ops (autograd recording for fwd+bwd only)."""
    import minidl

    forward, inputs, grad_out = _minidl_problem(op, shape, arrays)
    if pass_ == FWD:
        def call():
            with minidl.no_grad():
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


def torch_call(torch, op, shape, pass_, arrays):
    """One PyTorch eager call: under no_grad for fwd, with autograd for fwd+bwd."""
    forward, inputs, grad_out = _torch_problem(torch, op, shape, arrays)
    if pass_ == FWD:
        def call():
            with torch.no_grad():
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


# ---- naive reference loops (minidl.reference), on the first n_images of the batch ------
def naive_call(op, shape, pass_, arrays, n_images):
    from minidl import reference as ref

    if op == "conv2d":
        x, w, b, g = arrays
        x, g = np.ascontiguousarray(x[:n_images]), np.ascontiguousarray(g[:n_images])
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
    if op == "max_pool2d":
        x, g = arrays
        x, g = np.ascontiguousarray(x[:n_images]), np.ascontiguousarray(g[:n_images])
        if pass_ == FWD:
            return lambda: ref.max_pool2d_forward(x, shape.k)

        def max_fwd_bwd():
            _, indices = ref.max_pool2d_forward(x, shape.k)
            ref.max_pool2d_backward(g, indices, x.shape)
        return max_fwd_bwd
    if op == "avg_pool2d":
        x, g = arrays
        x, g = np.ascontiguousarray(x[:n_images]), np.ascontiguousarray(g[:n_images])
        if pass_ == FWD:
            return lambda: ref.avg_pool2d_forward(x, shape.k)

        def avg_fwd_bwd():
            ref.avg_pool2d_forward(x, shape.k)
            ref.avg_pool2d_backward(g, x.shape, shape.k)
        return avg_fwd_bwd
    raise ValueError(f"no naive reference for {op!r}")


# ---- numpy's matmul on the GEMM(s) of the same shape: the BLAS limit --------------------
def gemm_problem(op, shape, pass_, rng):
    """(callable, flops): the GEMM a conv2d / linear performs (fwd: 1 GEMM; fwd+bwd: 3)."""
    if op == "conv2d":
        m, k, n = shape.gemm  # weight (F, C*k*k) @ cols (C*k*k, N*Ho*Wo)
    elif op == "linear":
        m, k, n = shape.n, shape.in_features, shape.out_features
    else:
        raise ValueError(f"no GEMM for {op!r}")
    a = rng.standard_normal((m, k), dtype=np.float32)
    bmat = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    flops = 2.0 * m * k * n
    if pass_ == FWD:
        return (lambda: np.matmul(a, bmat, out=c)), flops
    da = np.empty_like(a)
    db = np.empty_like(bmat)

    def three_gemms():
        np.matmul(a, bmat, out=c)       # forward
        np.matmul(c, bmat.T, out=da)    # gradient w.r.t. the left factor
        np.matmul(a.T, c, out=db)       # gradient w.r.t. the right factor
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
