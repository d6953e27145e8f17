"""The depth-wise convolution kernel (groups = C, weight (C*m, 1, kh, kw)) and its op:
against the naive grouped-conv reference on random configurations (hypothesis), 1 and 2
threads bit-identical, gradcheck, PyTorch's conv2d(groups=C), validation errors."""

import contextlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kernel_checks import assert_close, examples, kernels, reference

import minidl
from minidl import reference as R
from minidl.ops.depthwise import depthwise_conv2d

TOP_LEVEL = kernels()._depthwise.level()  # the CPU's: 0 baseline, 1 AVX2 + FMA, 2 AVX-512


@contextlib.contextmanager
def at_level(level):
    """The kernels' C loops compiled for ``level`` (if the CPU has it) inside the block."""
    K = kernels()
    got = K._depthwise._use_level(level)
    try:
        yield got
    finally:
        K._depthwise._use_level(TOP_LEVEL)


def arrays(seed, N, C, m, H, W, k, s, p, d, dtype):
    rng = np.random.default_rng(seed)
    Ho, Wo = R.output_size(H, k[0], s[0], p[0], d[0]), R.output_size(W, k[1], s[1], p[1], d[1])
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C * m, 1) + k).astype(dtype)
    b = rng.standard_normal(C * m).astype(dtype)
    dy = rng.standard_normal((N, C * m, Ho, Wo)).astype(dtype)
    return x, w, b, dy


def run(K, x, w, b, dy, s, p, d, threads, need_bias=True):
    y = K.depthwise_conv2d_forward(x, w, b, s, p, d, threads)
    dx = K.depthwise_conv2d_backward_input(dy, w, x.shape, s, p, d, threads)
    dw, db = K.depthwise_conv2d_backward_weight(x, dy, w.shape, s, p, d, need_bias, threads)
    return y, dx, dw, db


pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@hsettings(max_examples=examples(80))
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 4),
    m=st.integers(1, 3),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    k=st.just((3, 3)) | st.tuples(st.integers(1, 4), st.integers(1, 4)),  # 3x3: own path
    s=pairs,
    p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    level=st.integers(0, 2),
    seed=st.integers(0, 2**31),
)
def test_kernel_matches_reference(N, C, m, H, W, k, s, p, d, bias, dtype, level, seed):
    assume(H + 2 * p[0] >= d[0] * (k[0] - 1) + 1 and W + 2 * p[1] >= d[1] * (k[1] - 1) + 1)
    K = kernels()
    x, w, b, dy = arrays(seed, N, C, m, H, W, k, s, p, d, dtype)
    b = b if bias else None
    with at_level(level):
        y, dx, dw, db = run(K, x, w, b, dy, s, p, d, 2, bias)
    want, mag = reference(R.conv2d_forward, (x, w, b), s, p, d, C)
    assert_close(y, want, mag, dtype, "forward")
    (wx, ww, wb), (mx, mw, mb) = reference(R.conv2d_backward, (x, w, dy), s, p, d, C)
    assert_close(dx, wx, mx, dtype, "input gradient")
    assert_close(dw, ww, mw, dtype, "weight gradient")
    if bias:
        assert_close(db, wb, mb, dtype, "bias gradient")
    else:
        assert db is None


MEDIUM = [
    # (N, C, m, H, W, k, s, p, d): enough work for 2 threads and several weight chunks
    # (the small-plane kernels need ~4M multiply-adds for 2 threads)
    (128, 16, 1, 16, 16, (3, 3), (1, 1), (1, 1), (1, 1)),  # small planes: masked loads
    (160, 8, 2, 29, 27, (3, 3), (2, 2), (1, 1), (1, 1)),  # weight: loads on phase planes
    (16, 12, 1, 24, 24, (5, 3), (1, 2), (2, 0), (1, 2)),
    (512, 32, 1, 8, 8, (3, 3), (1, 1), (0, 0), (1, 1)),  # small planes: permutations
    (128, 64, 1, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1)),  # small planes: masked loads
    (128, 128, 2, 8, 8, (3, 3), (2, 2), (1, 1), (1, 1)),  # small planes: split halves
    (8, 2, 1, 90, 90, (3, 3), (1, 1), (1, 1), (1, 1)),  # weight grad: several batches
    (224, 8, 1, 40, 40, (3, 3), (3, 2), (1, 1), (1, 1)),  # weight grad: phase planes
]


@pytest.mark.parametrize("level", sorted({0, TOP_LEVEL}))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", MEDIUM, ids=lambda c: "N{}C{}m{}H{}W{}k{}s{}p{}d{}".format(*c))
def test_threads_bit_identical_and_match_torch(cfg, dtype, level):
    K = kernels()
    N, C, m, H, W, k, s, p, d = cfg
    x, w, b, dy = arrays(1, *cfg, dtype)
    with at_level(level) as got:
        assert got == level
        one = run(K, x, w, b, dy, s, p, d, 1)
        two = run(K, x, w, b, dy, s, p, d, 2)
    for fn in ("forward", "backward_input", "backward_weight"):
        assert K.planned_threads(getattr(K, "depthwise_conv2d_" + fn)) == 2
    for a, b2, what in zip(one, two, ("y", "dx", "dw", "db")):
        np.testing.assert_array_equal(a, b2, err_msg=what)
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, C)
    ty.backward(torch.tensor(dy.astype(np.float64)))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(one[0], ty.detach().numpy(), **tol)
    np.testing.assert_allclose(one[1], tx.grad.numpy(), **tol)
    np.testing.assert_allclose(one[2], tw.grad.numpy(), **tol)
    np.testing.assert_allclose(one[3], tb.grad.numpy(), **tol)


@contextlib.contextmanager
def small_planes(limit, weight_limit=None):
    """Float32 planes of up to ``limit`` elements take the small-plane kernels (AVX-512)
    inside the block (0: none)."""
    K = kernels()
    old = K._depthwise._use_small_planes(limit, limit if weight_limit is None else weight_limit)
    try:
        yield
    finally:
        K._depthwise._use_small_planes(*old)


@hsettings(max_examples=examples(120))
@given(
    N=st.integers(1, 3),
    C=st.integers(1, 5),
    m=st.integers(1, 2),
    H=st.integers(1, 10) | st.just(16),
    W=st.integers(1, 10) | st.just(16),
    k=st.just((3, 3)) | st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1), (3, 3)]),
    p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_small_planes_match_reference(N, C, m, H, W, k, s, p, d, bias, dtype, seed):
    """Planes of up to 16x16 (every stride, padding, dilation, m) on the small-plane
    kernels (float32, AVX-512: masked loads, permutations, phase planes; float64 and
    other CPUs: the row loops), and on the row loops for comparison."""
    assume(H + 2 * p[0] >= d[0] * (k[0] - 1) + 1 and W + 2 * p[1] >= d[1] * (k[1] - 1) + 1)
    K = kernels()
    x, w, b, dy = arrays(seed, N, C, m, H, W, k, s, p, d, dtype)
    b = b if bias else None
    with small_planes(4096):
        got = run(K, x, w, b, dy, s, p, d, 2, bias)
    with small_planes(0):
        rows = run(K, x, w, b, dy, s, p, d, 1, bias)
    want, mag = reference(R.conv2d_forward, (x, w, b), s, p, d, C)
    (wx, ww, wb), (mx, mw, mb) = reference(R.conv2d_backward, (x, w, dy), s, p, d, C)
    for y, dx, dw, db in (got, rows):
        assert_close(y, want, mag, dtype, "forward")
        assert_close(dx, wx, mx, dtype, "input gradient")
        assert_close(dw, ww, mw, dtype, "weight gradient")
        if bias:
            assert_close(db, wb, mb, dtype, "bias gradient")


@hsettings(max_examples=examples(25), deadline=None)
@given(
    C=st.integers(24, 40),
    m=st.integers(1, 2),
    H=st.sampled_from([4, 7, 8]),
    s=st.sampled_from([(1, 1), (2, 2)]),
    p=st.integers(0, 1),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_small_planes_bit_identical_for_any_thread_count(C, m, H, s, p, dtype, seed):
    """Many 8x8-or-smaller planes (2 threads where the work is enough, the MEDIUM cases
    check that they are used): the same bits on 1 and 2 threads."""
    K = kernels()
    x, w, b, dy = arrays(seed, 160, C, m, H, H, (3, 3), s, (p, p), (1, 1), dtype)
    one = run(K, x, w, b, dy, s, (p, p), (1, 1), 1)
    two = run(K, x, w, b, dy, s, (p, p), (1, 1), 2)
    for a, b2, what in zip(one, two, ("y", "dx", "dw", "db")):
        np.testing.assert_array_equal(a, b2, err_msg=what)


def test_small_jobs_run_on_one_thread():
    K = kernels()
    x, w, b, dy = arrays(0, 2, 3, 1, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), np.float32)
    K.depthwise_conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 2)
    assert K.planned_threads(K.depthwise_conv2d_forward) == 1


# ---- the op ----------------------------------------------------------------------------
def _t(a, grad=True):
    return minidl.tensor(a, requires_grad=grad, dtype=np.float64)


@pytest.mark.parametrize(
    "cfg",
    [
        (2, 3, 1, 6, 5, (3, 3), 1, 1, 1),
        (2, 2, 2, 7, 7, (3, 2), (2, 1), (1, 0), (1, 2)),
        (1, 3, 3, 5, 6, (2, 3), 2, 0, 1),
    ],
)
def test_gradcheck(cfg):
    N, C, m, H, W, k, s, p, d = cfg
    sp = [(v, v) if isinstance(v, int) else v for v in (s, p, d)]
    x, w, b, _ = arrays(2, N, C, m, H, W, k, *sp, np.float64)
    fn = lambda a, g, h: depthwise_conv2d(a, g, h, s, p, d)  # noqa: E731
    assert minidl.gradcheck(fn, [_t(x), _t(w), _t(b)])
    assert minidl.gradcheck(lambda a, g: depthwise_conv2d(a, g, None, s, p, d), [_t(x), _t(w)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_op_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    x, w, b, dy = arrays(3, 4, 6, 2, 9, 8, (3, 3), (2, 1), (1, 1), (1, 1), dtype)
    xt, wt, bt = (minidl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = depthwise_conv2d(xt, wt, bt, (2, 1), 1)
    y.backward(minidl.tensor(dy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, (2, 1), 1, 1, 6)
    ty.backward(torch.tensor(dy))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    assert y.dtype == dtype
    for got, want in ((y.data, ty), (xt.grad, tx.grad), (wt.grad, tw.grad), (bt.grad, tb.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), **tol)


def test_op_gradients_only_where_needed():
    x, w, b, dy = arrays(4, 2, 3, 1, 5, 5, (3, 3), (1, 1), (0, 0), (1, 1), np.float64)
    xt, wt, bt = _t(x, False), _t(w, False), _t(b)
    depthwise_conv2d(xt, wt, bt).backward(minidl.tensor(dy))
    assert xt.grad is None and wt.grad is None
    np.testing.assert_allclose(bt.grad, dy.sum(axis=(0, 2, 3)))
    xt = _t(x)
    depthwise_conv2d(xt, _t(w, False)).backward(minidl.tensor(dy))
    np.testing.assert_allclose(xt.grad, R.conv2d_backward(x, w, dy, 1, 0, 1, 3)[0])


def _f32(shape):
    return minidl.tensor(np.ones(shape, np.float32))


@pytest.mark.parametrize(
    "args,error,match",
    [
        ((np.ones((1, 2, 4, 4)), _f32((2, 1, 3, 3))), TypeError, "input"),
        ((_f32((2, 4, 4)), _f32((2, 1, 3, 3))), ValueError, "4-D input"),
        ((_f32((1, 2, 4, 4)), _f32((2, 2, 3, 3))), ValueError, r"\(C\*multiplier, 1"),
        ((_f32((1, 2, 4, 4)), _f32((3, 1, 3, 3))), ValueError, "does not divide"),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 5, 5))), ValueError, "too small"),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 3, 3)), _f32((3,))), ValueError, "bias shape"),
        (
            (_f32((1, 2, 4, 4)), minidl.tensor(np.ones((2, 1, 3, 3)), dtype=np.float64)),
            TypeError,
            "mixed dtypes",
        ),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 3, 3)), None, 0), ValueError, "stride"),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 3, 3)), None, 1, -1), ValueError, "padding"),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 3, 3)), None, 1, 0, (1, 0)), ValueError, "dilation"),
        ((_f32((1, 2, 4, 4)), _f32((2, 1, 3, 3)), None, 1.5), TypeError, "stride"),
        ((_f32((0, 2, 4, 4)), _f32((2, 1, 3, 3))), ValueError, "empty"),
    ],
)
def test_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        depthwise_conv2d(*args)
