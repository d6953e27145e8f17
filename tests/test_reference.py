"""Checks of the naive reference itself, independently of the kernels.

(a) the lecture notes' worked examples live in tests/test_seed_examples.py;
(b) PyTorch (torch.nn.functional) on random configurations, when torch is importable;
(c) float64 central finite differences for every backward;
plus algebraic identities (im2col/col2im are adjoint; conv = im2col + matmul).
"""

import numpy as np
import pytest

from minidl import reference as R


def random_conv_config(rng, max_groups_split=True):
    """A valid conv configuration: every output dim >= 1."""
    groups = int(rng.choice([1, 2, 3])) if max_groups_split else 1
    C = groups * int(rng.integers(1, 3))
    F = groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = (int(v) for v in rng.integers(0, 3, 2))
    dh, dw = (int(v) for v in rng.integers(1, 3, 2))
    # smallest input with at least one output, plus some slack
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + int(rng.integers(0, 5))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + int(rng.integers(0, 5))
    N = int(rng.integers(1, 3))
    return dict(
        N=N,
        C=C,
        F=F,
        H=H,
        W=W,
        kernel=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        groups=groups,
    )


def random_pool_config(rng):
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    H = max(1, kh - 2 * ph) + int(rng.integers(0, 5))
    W = max(1, kw - 2 * pw) + int(rng.integers(0, 5))
    return dict(
        N=int(rng.integers(1, 3)),
        C=int(rng.integers(1, 3)),
        H=H,
        W=W,
        kernel=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
    )


def conv_arrays(rng, cfg, dtype=np.float64):
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["F"], cfg["C"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    b = rng.standard_normal(cfg["F"]).astype(dtype)
    return x, w, b


def conv_kwargs(cfg):
    return dict(
        stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"]
    )


CONFIG_SEEDS = range(40)


# --------------------------------------------------------------------------------------
# (b) PyTorch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", CONFIG_SEEDS)
def test_conv2d_forward_and_backward_match_torch(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    cfg = random_conv_config(rng)
    x, w, b = conv_arrays(rng, cfg)
    y = R.conv2d_forward(x, w, b, **conv_kwargs(cfg))
    dy = rng.standard_normal(y.shape)
    dx, dw, db = R.conv2d_backward(x, w, dy, **conv_kwargs(cfg))

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **conv_kwargs(cfg))
    yt.backward(torch.tensor(dy))
    for ours, theirs in ((y, yt.detach()), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", CONFIG_SEEDS)
def test_im2col_col2im_match_torch_unfold_fold(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    cfg = random_conv_config(rng)
    x, _, _ = conv_arrays(rng, cfg)
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    cols = R.im2col(x, *args)
    kw = dict(
        kernel_size=cfg["kernel"],
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
    )
    np.testing.assert_array_equal(cols, torch.nn.functional.unfold(torch.tensor(x), **kw))
    folded = torch.nn.functional.fold(torch.tensor(cols), (cfg["H"], cfg["W"]), **kw)
    np.testing.assert_allclose(
        R.col2im(cols, x.shape, *args), folded.numpy(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("seed", CONFIG_SEEDS)
def test_pooling_matches_torch(seed):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    rng = np.random.default_rng(seed)
    cfg = random_pool_config(rng)
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    # small integers: plenty of ties, to check the tie rule too
    x = rng.integers(-3, 4, (cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(np.float64)
    y, indices = R.max_pool2d_forward(x, k, s, p)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TF.max_pool2d(xt, k, s, p, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    assert indices.dtype == np.int64
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(
        R.max_pool2d_backward(dy, indices, x.shape), xt.grad.numpy(), rtol=1e-12, atol=1e-12
    )

    for count_include_pad in (True, False):
        y = R.avg_pool2d_forward(x, k, s, p, count_include_pad)
        xt = torch.tensor(x, requires_grad=True)
        yt = TF.avg_pool2d(xt, k, s, p, count_include_pad=count_include_pad)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        yt.backward(torch.tensor(dy))
        dx = R.avg_pool2d_backward(dy, x.shape, k, s, p, count_include_pad)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_nan_rule_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[[[1.0, np.nan, 5.0], [np.nan, 2.0, 7.0], [3.0, 4.0, -1.0]]]])
    y, indices = R.max_pool2d_forward(x, (2, 2), (1, 1))
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(indices, it.numpy())


def test_conv1d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 11))
    w = rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6)
    ours = R.conv1d_forward(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    theirs = torch.nn.functional.conv1d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1, dilation=2, groups=2
    )
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# (c) finite differences (float64, central, step 1e-6)
# --------------------------------------------------------------------------------------


def numerical_gradient(f, a, eps=1e-6):
    """d f() / d a by central differences; f reads a, which is perturbed in place."""
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        up = f()
        flat[k] = saved - eps
        down = f()
        flat[k] = saved
        gflat[k] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("seed", range(15))
def test_conv2d_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(100 + seed)
    cfg = random_conv_config(rng)
    x, w, b = conv_arrays(rng, cfg)
    kwargs = conv_kwargs(cfg)
    dy = rng.standard_normal(R.conv2d_forward(x, w, b, **kwargs).shape)

    def loss():
        return np.sum(R.conv2d_forward(x, w, b, **kwargs) * dy)

    dx, dw, db = R.conv2d_backward(x, w, dy, **kwargs)
    # the loss is linear in each argument, so central differences are exact up to rounding
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numerical_gradient(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed", range(15))
def test_pool_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(200 + seed)
    cfg = random_pool_config(rng)
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    # distinct values at least 0.01 apart: no ties, so max is differentiable at x
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + rng.uniform(0, 1e-3, shape)

    y, indices = R.max_pool2d_forward(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    numeric = numerical_gradient(lambda: np.sum(R.max_pool2d_forward(x, k, s, p)[0] * dy), x)
    np.testing.assert_allclose(
        R.max_pool2d_backward(dy, indices, shape), numeric, rtol=1e-6, atol=1e-7
    )

    for count_include_pad in (True, False):
        dy = rng.standard_normal(R.avg_pool2d_forward(x, k, s, p, count_include_pad).shape)

        def loss(include=count_include_pad, dy=dy):
            return np.sum(R.avg_pool2d_forward(x, k, s, p, include) * dy)

        np.testing.assert_allclose(
            R.avg_pool2d_backward(dy, shape, k, s, p, count_include_pad),
            numerical_gradient(loss, x),
            rtol=1e-6,
            atol=1e-7,
        )


# --------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_col2im_is_the_adjoint_of_im2col(seed):
    # <im2col(x), c> == <x, col2im(c)> for every x, c
    rng = np.random.default_rng(300 + seed)
    cfg = random_conv_config(rng)
    x, _, _ = conv_arrays(rng, cfg)
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    cols = R.im2col(x, *args)
    c = rng.standard_normal(cols.shape)
    assert np.sum(cols * c) == pytest.approx(
        np.sum(x * R.col2im(c, x.shape, *args)), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("seed", range(20))
def test_conv2d_forward_is_im2col_times_weight_matrix(seed):
    rng = np.random.default_rng(400 + seed)
    cfg = random_conv_config(rng)
    x, w, b = conv_arrays(rng, cfg)
    y = R.conv2d_forward(x, w, b, **conv_kwargs(cfg))
    cols = R.im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
    G, F = cfg["groups"], cfg["F"]
    rows_per_group = cols.shape[1] // G
    for g in range(G):
        wg = w[g * F // G : (g + 1) * F // G].reshape(F // G, -1)
        part = np.einsum("fk,nkp->nfp", wg, cols[:, g * rows_per_group : (g + 1) * rows_per_group])
        part += b[g * F // G : (g + 1) * F // G, None]
        np.testing.assert_allclose(
            y[:, g * F // G : (g + 1) * F // G].reshape(part.shape), part, rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize("seed", range(20))
def test_backward_as_two_convolutions_equals_backward_as_loops(seed):
    # two independent derivations of the same gradients: seed 001's convolutions and
    # seed 002's loops over n, f, i, j
    rng = np.random.default_rng(500 + seed)
    cfg = random_conv_config(rng)
    x, w, b = conv_arrays(rng, cfg)
    dy = rng.standard_normal(R.conv2d_forward(x, w, b, **conv_kwargs(cfg)).shape)
    for ours, loops in zip(
        R.conv2d_backward(x, w, dy, **conv_kwargs(cfg)),
        R.conv2d_backward_loops(x, w, dy, **conv_kwargs(cfg)),
    ):
        np.testing.assert_allclose(ours, loops, rtol=1e-12, atol=1e-12)


def test_reference_keeps_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = R.conv2d_forward(x, w, np.zeros(3, np.float32), padding=1)
    assert y.dtype == np.float32
    dx, dw, db = R.conv2d_backward(x, w, np.ones_like(y), padding=1)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    assert R.max_pool2d_forward(x, 2)[0].dtype == np.float32
    assert R.avg_pool2d_forward(x, 2).dtype == np.float32
