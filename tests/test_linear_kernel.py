"""F.linear on minidl's linear kernel (minidl._kernels._linear): against numpy in float64
and PyTorch, bit-identical for any thread count, through a float64 gradcheck, and
``minidl train`` bit-identical at 1 and 2 threads."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import examples, kernels

import minidl
from minidl.nn import functional as F

# sizes around the kernel's row blocks (at most 256, evened out): one block, two, three
SIZES = st.sampled_from([1, 2, 5, 31, 32, 33, 64, 70, 100, 129, 256, 257, 300, 513])


def _run(x, w, b, g, threads):
    saved = minidl.get_num_threads()
    minidl.set_num_threads(threads)
    try:
        xt = minidl.tensor(x, requires_grad=True)
        wt = minidl.tensor(w, requires_grad=True)
        bt = None if b is None else minidl.tensor(b, requires_grad=True)
        y = F.linear(xt, wt, bt)
        y.backward(g.reshape(y.shape))
        return y.data, xt.grad, wt.grad, None if bt is None else bt.grad
    finally:
        minidl.set_num_threads(saved)


@settings(max_examples=examples(60), deadline=None)
@given(
    SIZES,
    SIZES,
    SIZES,
    st.booleans(),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 2**32 - 1),
)
def test_linear_matches_numpy_float64_and_is_the_same_at_any_thread_count(
    m, k, n, bias, dtype, seed
):
    kernels()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype) if bias else None
    g = rng.standard_normal((m, n)).astype(dtype)
    got = _run(x, w, b, g, 1)
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    want = (
        x64 @ w64.T + (0 if b is None else b.astype(np.float64)),
        g64 @ w64,
        g64.T @ x64,
        None if b is None else g64.sum(axis=0),
    )
    mags = (
        np.abs(x64) @ np.abs(w64).T + (0 if b is None else np.abs(b)),
        np.abs(g64) @ np.abs(w64),
    )
    mags += (np.abs(g64).T @ np.abs(x64), None if b is None else np.abs(g64).sum(axis=0))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, a, e, mag in zip(("out", "grad x", "grad W", "grad b"), got, want, mags):
        if e is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == e.shape, name
        assert np.all(np.abs(a - e) <= tol * (np.abs(e) + mag)), name
    for threads in (2, 3):
        again = _run(x, w, b, g, threads)
        for a, e in zip(got, again):
            assert (a is None and e is None) or np.array_equal(a, e)


def test_linear_takes_any_leading_dims():
    kernels()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 7))
    w = rng.standard_normal((4, 7))
    b = rng.standard_normal(4)
    g = rng.standard_normal((2, 3, 5, 4))
    y, gx, gw, gb = _run(x, w, b, g, 2)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, g @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, g.reshape(-1, 4).T @ x.reshape(-1, 7), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, g.reshape(-1, 4).sum(0), rtol=1e-12, atol=1e-12)
    y1, gx1, gw1, _ = _run(x[0, 0, 0], w, b, g[0, 0, 0], 1)  # 1-D input
    np.testing.assert_allclose(y1, x[0, 0, 0] @ w.T + b, rtol=1e-12, atol=1e-12)
    assert gx1.shape == (7,) and gw1.shape == w.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_against_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((70, 33)).astype(dtype)
    w = rng.standard_normal((10, 33)).astype(dtype)
    b = rng.standard_normal(10).astype(dtype)
    g = rng.standard_normal((70, 10)).astype(dtype)
    got = _run(x, w, b, g, 2)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(torch.tensor(g))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, t in zip(got, (yt, xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(a, t.detach().numpy(), **tol)


def test_linear_gradcheck():
    rng = np.random.default_rng(1)
    x = minidl.tensor(rng.standard_normal((40, 6)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((35, 6)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(35), requires_grad=True)
    assert minidl.gradcheck(F.linear, (x, w, b))


def test_set_num_threads_leaves_numpy_blas_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    kernels()

    def numpy_blas():
        return [
            lib["num_threads"]
            for lib in threadpoolctl.threadpool_info()
            if lib.get("user_api") == "blas" and "/numpy" in lib["filepath"]
        ]

    before = numpy_blas()
    saved = minidl.get_num_threads()
    try:
        for n in (1, 3):
            minidl.set_num_threads(n)
            assert numpy_blas() == before
    finally:
        minidl.set_num_threads(saved)


def test_train_at_1_and_2_threads_gives_identical_weights(tmp_path):
    from minidl import cli

    weights = []
    for threads in (1, 2):
        path = str(tmp_path / f"w{threads}.npz")
        argv = ["train", "--epochs", "1", "--threads", str(threads), "--save", path, "--quiet"]
        assert cli.main(argv) == 0
        weights.append(minidl.load(path))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert np.array_equal(np.asarray(weights[0][key]), np.asarray(weights[1][key])), key
