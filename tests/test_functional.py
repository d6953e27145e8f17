"""Every differentiable op: float64 gradcheck on random shapes, forward values checked
against numpy formulas (and against torch.nn.functional when torch is installed)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, tensor

FEW = settings(max_examples=15, deadline=None)
SOME = settings(max_examples=25, deadline=None)


def rand(rng, shape, requires_grad=True, low=None):
    data = rng.standard_normal(shape)
    if low is not None:
        data = np.abs(data) + low
    return tensor(data, dtype=np.float64, requires_grad=requires_grad)


seeds = st.integers(0, 2**31 - 1)
small_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (dims dropped or set to 1 on either side)."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    a, b = list(shape), list(shape)
    for i in range(len(shape)):
        choice = draw(st.integers(0, 2))
        if choice == 1:
            a[i] = 1
        elif choice == 2:
            b[i] = 1
    a = a[draw(st.integers(0, len(a))) :]
    b = b[draw(st.integers(0, len(b) - 1)) :]
    return tuple(a), tuple(b)


# ---- elementwise ---------------------------------------------------------------------
@SOME
@given(broadcast_pair(), seeds, st.sampled_from(["add", "sub", "mul", "div", "pow"]))
def test_binary_ops_gradcheck_with_broadcasting(shapes, seed, op):
    rng = np.random.default_rng(seed)
    positive = op in ("div", "pow")
    a = rand(rng, shapes[0], low=0.5 if positive else None)
    b = rand(rng, shapes[1], low=0.5 if positive else None)
    fn = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "pow": lambda x, y: x**y,
    }[op]
    expected = {
        "add": np.add,
        "sub": np.subtract,
        "mul": np.multiply,
        "div": np.divide,
        "pow": np.power,
    }[op](a.data, b.data)
    np.testing.assert_allclose(fn(a, b).data, expected)
    assert gradcheck(fn, [a, b])


@SOME
@given(small_shapes, seeds)
def test_unary_ops_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    p = rand(rng, shape, low=0.3)
    assert gradcheck(lambda t: -t, [x])
    assert gradcheck(lambda t: t.exp(), [x])
    assert gradcheck(lambda t: t.log(), [p])
    assert gradcheck(lambda t: t.sqrt(), [p])
    assert gradcheck(lambda t: t**3, [x])
    assert gradcheck(lambda t: t**-1.5, [p])
    assert gradcheck(lambda t: 2.0**t, [x])
    assert gradcheck(lambda t: 1 / t - 3 * t + (t - 1) * 0.5, [p])
    assert gradcheck(lambda t: t.tanh(), [x])
    assert gradcheck(lambda t: t.sigmoid(), [x])


def test_tensor_pow_tensor_at_zero_base_has_finite_gradient():
    a = tensor([0.0, 2.0], dtype=np.float64, requires_grad=True)
    b = tensor([2.0, 3.0], dtype=np.float64, requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(b.grad, [0.0, 8 * np.log(2)])
    np.testing.assert_allclose(a.grad, [0.0, 12.0])


def test_relu_forward_and_gradient():
    x = tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0])
    rng = np.random.default_rng(1)
    assert gradcheck(F.relu, [rand(rng, (3, 4))])  # random points avoid the kink


def test_sigmoid_is_accurate_in_both_tails():
    x = np.array([-80.0, -20.0, 0.0, 20.0, 80.0])
    y = F.sigmoid(tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-14)
    assert np.all(np.isfinite(F.sigmoid(tensor(np.array([-1e4, 1e4], np.float32))).data))


# ---- matmul ----------------------------------------------------------------------------
@SOME
@given(
    seeds,
    st.sampled_from(
        [
            ((3,), (3,)),
            ((3,), (3, 2)),
            ((2, 3), (3,)),
            ((2, 3), (3, 4)),
            ((5, 2, 3), (3, 4)),
            ((2, 3), (5, 3, 4)),
            ((1, 2, 3), (4, 3, 2)),
            ((4, 1, 2, 3), (5, 3, 2)),
            ((3,), (2, 3, 4)),
        ]
    ),
)
def test_matmul_gradcheck_all_numpy_cases(seed, shapes):
    rng = np.random.default_rng(seed)
    a, b = rand(rng, shapes[0]), rand(rng, shapes[1])
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    assert gradcheck(lambda x, y: x @ y, [a, b])


def test_matmul_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        tensor(np.ones((2, 3))) @ tensor(np.ones((4, 2)))


# ---- reductions --------------------------------------------------------------------------
@st.composite
def shape_and_dims(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    axes = draw(
        st.lists(
            st.integers(-len(shape), len(shape) - 1),
            max_size=len(shape),
            unique_by=lambda d: d % len(shape),
        )
    )
    dim = draw(st.sampled_from([None, tuple(axes), axes[0] if axes else None]))
    return shape, dim


@SOME
@given(shape_and_dims(), st.booleans(), seeds)
def test_sum_and_mean_gradcheck(shape_dim, keepdim, seed):
    shape, dim = shape_dim
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    axis = dim if dim != () else ()
    np.testing.assert_allclose(
        x.sum(dim, keepdim).data,
        np.sum(x.data, axis=axis if dim is not None else None, keepdims=keepdim),
    )
    np.testing.assert_allclose(
        x.mean(dim, keepdim).data,
        np.mean(x.data, axis=axis if dim is not None else None, keepdims=keepdim),
    )
    assert gradcheck(lambda t: t.sum(dim, keepdim), [x])
    assert gradcheck(lambda t: t.mean(dim, keepdim), [x])


@SOME
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), st.booleans(), seeds)
def test_max_values_indices_and_gradcheck(shape, keepdim, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    assert x.max().data == x.data.max()
    assert gradcheck(lambda t: t.max(), [x])
    for dim in range(-len(shape), len(shape)):
        values, indices = x.max(dim, keepdim)
        np.testing.assert_array_equal(values.data, x.data.max(axis=dim, keepdims=keepdim))
        np.testing.assert_array_equal(indices.data, x.data.argmax(axis=dim, keepdims=keepdim))
        assert gradcheck(lambda t, d=dim, k=keepdim: t.max(d, k).values, [x])


def test_max_gradient_goes_to_the_index_or_is_shared_between_ties():
    x = tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    x.max().backward()  # as PyTorch: the full reduction shares it between the ties
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])


# ---- shape ops and indexing ---------------------------------------------------------------
def test_shape_ops_gradcheck():
    rng = np.random.default_rng(2)
    x = rand(rng, (2, 3, 4))
    assert x.reshape(6, 4).shape == (6, 4) and x.view((4, -1)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert F.flatten(x, 0, 1).shape == (6, 4)
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(x.data, 0, 2))
    np.testing.assert_array_equal(x.T.data, x.data.T)
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, np.transpose(x.data, (2, 0, 1)))
    for fn in (
        lambda t: t.reshape(4, 6) * t.reshape(4, 6),
        lambda t: t.flatten(1, 2),
        lambda t: t.transpose(0, 2),
        lambda t: t.T,
        lambda t: t.permute(1, 2, 0),
    ):
        assert gradcheck(fn, [x])
    y = x.float()  # dtype casts pass the gradient back in the source dtype
    assert y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64 and np.all(x.grad == 2)


@FEW
@given(seeds)
def test_indexing_gradcheck_incl_repeated_indices(seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, (4, 5))
    rows = rng.integers(0, 4, 6)  # repeats accumulate
    cases = [
        lambda t: t[1],
        lambda t: t[1:3, ::2],
        lambda t: t[..., -1],
        lambda t: t[None, 2],
        lambda t: t[rows],
        lambda t: t[rows, rows % 5],
        lambda t: t[tensor(rows)],
        lambda t: t[x.data > 0],
        lambda t: t[:, [0, 0, 3]],
    ]
    for fn in cases:
        assert gradcheck(fn, [x])
    out = x[rows]
    np.testing.assert_array_equal(out.data, x.data[rows])


# ---- softmax family and losses -----------------------------------------------------------
@FEW
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seeds)
def test_softmax_log_softmax_gradcheck_and_values(shape, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, shape)
    for dim in range(-len(shape), len(shape)):
        e = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
        ref = e / e.sum(axis=dim, keepdims=True)
        np.testing.assert_allclose(F.softmax(x, dim).data, ref, rtol=1e-12)
        np.testing.assert_allclose(F.log_softmax(x, dim).data, np.log(ref), rtol=1e-10, atol=1e-12)
        assert gradcheck(lambda t, d=dim: F.softmax(t, d), [x])
        assert gradcheck(lambda t, d=dim: t.log_softmax(d), [x])


def test_log_softmax_is_stable_for_huge_logits():
    x = tensor([[1e4, 0.0, -1e4]], dtype=np.float32)
    out = F.log_softmax(x, 1).data
    assert np.all(np.isfinite(out[:, :2])) and out[0, 0] == 0.0 and out[0, 1] == -1e4


@SOME
@given(st.integers(1, 5), st.integers(1, 5), st.sampled_from(["mean", "sum", "none"]), seeds)
def test_cross_entropy_gradcheck_and_reference(n, c, reduction, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, c))
    target = rng.integers(0, c, n)
    logp = x.data - x.data.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    losses = -logp[np.arange(n), target]
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    np.testing.assert_allclose(
        F.cross_entropy(x, target, reduction=reduction).data, expected, rtol=1e-12
    )
    assert gradcheck(lambda t: F.cross_entropy(t, target, reduction=reduction), [x])
    assert gradcheck(lambda t: F.cross_entropy(t, tensor(target), reduction=reduction), [x])


def test_cross_entropy_spatial_and_unbatched():
    rng = np.random.default_rng(3)
    x = rand(rng, (2, 3, 4))
    target = rng.integers(0, 3, (2, 4))
    assert gradcheck(lambda t: F.cross_entropy(t, target), [x])
    single = rand(rng, (5,))
    assert gradcheck(lambda t: F.cross_entropy(t, np.array(2)), [single])


def test_cross_entropy_finite_and_correct_for_logits_of_magnitude_1e4():
    for dtype in (np.float32, np.float64):
        x = tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]]), dtype=dtype, requires_grad=True)
        target = np.array([1, 1])
        loss = F.cross_entropy(x, target, reduction="none")
        # sample 0: log-sum-exp is 1e4, picked logit -1e4 -> loss 2e4; sample 1: picked max -> 0
        np.testing.assert_allclose(loss.data, [2e4, 0.0], atol=1e-3)
        loss.sum().backward()
        assert np.all(np.isfinite(x.grad))
        np.testing.assert_allclose(x.grad, [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@FEW
@given(small_shapes, st.sampled_from(["mean", "sum", "none"]), seeds)
def test_mse_loss_gradcheck_both_arguments(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, y = rand(rng, shape), rand(rng, shape)
    sq = (x.data - y.data) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction).data, expected)
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction), [x, y])
    assert gradcheck(lambda a: F.mse_loss(a, y.data, reduction), [x])


@FEW
@given(
    st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    st.integers(1, 4),
    st.integers(1, 4),
    st.booleans(),
    seeds,
)
def test_linear_gradcheck(batch, n_in, n_out, with_bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, batch + (n_in,)), rand(rng, (n_out, n_in))
    b = rand(rng, (n_out,)) if with_bias else None
    expected = x.data @ w.data.T + (b.data if with_bias else 0)
    np.testing.assert_allclose(F.linear(x, w, b).data, expected)
    if with_bias:
        assert gradcheck(lambda p, q, r: F.linear(p, q, r), [x, w, b])
    else:
        assert gradcheck(lambda p, q: F.linear(p, q), [x, w])


# ---- dropout -------------------------------------------------------------------------------
def test_dropout_is_inverted_seeded_and_identity_when_off():
    x = tensor(np.ones((50, 40)), dtype=np.float64, requires_grad=True)
    minidl.manual_seed(5)
    a = F.dropout(x, 0.3)
    minidl.manual_seed(5)
    b = F.dropout(x, 0.3)
    np.testing.assert_array_equal(a.data, b.data)
    kept = a.data != 0
    np.testing.assert_allclose(a.data[kept], 1 / 0.7)
    assert 0.6 < kept.mean() < 0.8
    a.sum().backward()
    np.testing.assert_allclose(x.grad, a.data)  # d/dx of sum(x * mask) = mask
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert np.all(F.dropout(x, 1.0).data == 0)
    minidl.manual_seed(7)
    small = tensor(np.arange(1.0, 10.0).reshape(3, 3), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda t: (minidl.manual_seed(7), F.dropout(t, 0.5))[1], [small])


# ---- convolution and pooling ---------------------------------------------------------------
@st.composite
def conv_config(draw, transposed=False):
    groups = draw(st.integers(1, 2))
    c = groups * draw(st.integers(1, 2))
    f = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    n = draw(st.integers(1, 2))
    if transposed:
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        out_hw = [
            (sz - 1) * s - 2 * p + d * (k - 1) + op + 1
            for sz, s, p, d, k, op in zip((h, w), stride, padding, dilation, (kh, kw), out_pad)
        ]
        if min(out_hw) < 1:
            padding = (0, 0)
        weight = (c, f // groups, kh, kw)
    else:
        h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 7))
        w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 7))
        weight = (f, c // groups, kh, kw)
    config = dict(
        x=(n, c, h, w),
        w=weight,
        b=f,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    if transposed:
        config["output_padding"] = out_pad
    return config


@SOME
@given(conv_config(), st.booleans(), seeds)
def test_conv2d_gradcheck_random_configs(cfg, with_bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, cfg["x"]), rand(rng, cfg["w"])
    b = rand(rng, (cfg["b"],)) if with_bias else None
    kw = dict(
        stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"]
    )
    if with_bias:
        assert gradcheck(lambda p, q, r: F.conv2d(p, q, r, **kw), [x, w, b])
    else:
        assert gradcheck(lambda p, q: F.conv2d(p, q, None, **kw), [x, w])


@SOME
@given(conv_config(transposed=True), st.booleans(), seeds)
def test_conv_transpose2d_gradcheck_random_configs(cfg, with_bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, cfg["x"]), rand(rng, cfg["w"])
    b = rand(rng, (cfg["b"],)) if with_bias else None
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        output_padding=cfg["output_padding"],
    )
    assert (
        gradcheck(lambda p, q, r: F.conv_transpose2d(p, q, r, **kw), [x, w, b])
        if with_bias
        else gradcheck(lambda p, q: F.conv_transpose2d(p, q, **kw), [x, w])
    )


@FEW
@given(conv_config(), seeds)
def test_conv1d_gradcheck_random_configs(cfg, seed):
    rng = np.random.default_rng(seed)
    n, c, _, length = cfg["x"]
    f, cg, _, k = cfg["w"]
    x, w, b = rand(rng, (n, c, length)), rand(rng, (f, cg, k)), rand(rng, (f,))
    kw = dict(
        stride=cfg["stride"][1],
        padding=cfg["padding"][1],
        dilation=cfg["dilation"][1],
        groups=cfg["groups"],
    )
    assert gradcheck(lambda p, q, r: F.conv1d(p, q, r, **kw), [x, w, b])


@st.composite
def pool_config(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 7))
    return dict(
        x=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w),
        kernel_size=(kh, kw),
        stride=stride,
        padding=padding,
    )


@SOME
@given(pool_config(), st.booleans(), seeds)
def test_pooling_gradcheck_random_configs(cfg, include_pad, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, cfg["x"])  # continuous random values: no ties, max is differentiable
    kw = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"])
    assert gradcheck(lambda t: F.max_pool2d(t, **kw), [x])
    assert gradcheck(lambda t: F.avg_pool2d(t, count_include_pad=include_pad, **kw), [x])


def test_conv_ops_accept_non_contiguous_and_fortran_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    ref = F.conv2d(tensor(x), tensor(w), padding=1).data
    xf, wf = np.asfortranarray(x), np.asfortranarray(w)
    np.testing.assert_allclose(F.conv2d(tensor(xf), tensor(wf), padding=1).data, ref)
    big = np.zeros((2, 6, 6, 10))
    big[:, ::2, :, ::2] = x
    view = big[:, ::2, :, ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(F.conv2d(minidl.Tensor(view), tensor(w), padding=1).data, ref)
    xt = tensor(x, requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t.transpose(2, 3), 2), [xt])
    assert gradcheck(lambda t: F.conv2d(t.transpose(2, 3), tensor(w)), [xt])


def test_conv_ops_match_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    rng = np.random.default_rng(5)
    cases = [
        dict(stride=1, padding=0, dilation=1, groups=1),
        dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
        dict(stride=3, padding=1, dilation=2, groups=4),
    ]
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
        for kw in cases:
            w = rng.standard_normal((8, 4 // kw["groups"], 3, 2)).astype(dtype)
            b = rng.standard_normal(8).astype(dtype)
            ours = F.conv2d(tensor(x), tensor(w), tensor(b), **kw).data
            theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
            wt = rng.standard_normal((4, 8 // kw["groups"], 3, 2)).astype(dtype)
            op = (1, 0) if kw["stride"] != 1 else 0
            ours = F.conv_transpose2d(
                tensor(x), tensor(wt), tensor(b), output_padding=op, **kw
            ).data
            theirs = TF.conv_transpose2d(
                torch.tensor(x), torch.tensor(wt), torch.tensor(b), output_padding=op, **kw
            ).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
        x1 = rng.standard_normal((2, 4, 11)).astype(dtype)
        w1 = rng.standard_normal((6, 2, 3)).astype(dtype)
        np.testing.assert_allclose(
            F.conv1d(tensor(x1), tensor(w1), None, 2, 1, 2, 2).data,
            TF.conv1d(torch.tensor(x1), torch.tensor(w1), None, 2, 1, 2, 2).numpy(),
            rtol=1e-4,
            atol=1e-4,
        )
        for k, s, p in [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))]:
            np.testing.assert_allclose(
                F.max_pool2d(tensor(x), k, s, p).data,
                TF.max_pool2d(torch.tensor(x), k, s, p).numpy(),
            )
            for include in (True, False):
                np.testing.assert_allclose(
                    F.avg_pool2d(tensor(x), k, s, p, count_include_pad=include).data,
                    TF.avg_pool2d(torch.tensor(x), k, s, p, count_include_pad=include).numpy(),
                    rtol=1e-5,
                    atol=1e-6,
                )


def test_activations_and_losses_match_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5)).astype(np.float32) * 3
    t = rng.integers(0, 5, 4)
    tx = torch.tensor(x)
    close = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.relu(tensor(x)).data, TF.relu(tx).numpy())
    np.testing.assert_allclose(F.sigmoid(tensor(x)).data, torch.sigmoid(tx).numpy(), **close)
    np.testing.assert_allclose(F.tanh(tensor(x)).data, torch.tanh(tx).numpy(), **close)
    for dim in (0, 1, -1):
        np.testing.assert_allclose(
            F.softmax(tensor(x), dim).data, TF.softmax(tx, dim).numpy(), **close
        )
        np.testing.assert_allclose(
            F.log_softmax(tensor(x), dim).data, TF.log_softmax(tx, dim).numpy(), **close
        )
    for reduction in ("mean", "sum", "none"):
        np.testing.assert_allclose(
            F.cross_entropy(tensor(x), t, reduction=reduction).data,
            TF.cross_entropy(tx, torch.tensor(t), reduction=reduction).numpy(),
            **close,
        )
        y = rng.standard_normal((4, 5)).astype(np.float32)
        np.testing.assert_allclose(
            F.mse_loss(tensor(x), tensor(y), reduction).data,
            TF.mse_loss(tx, torch.tensor(y), reduction=reduction).numpy(),
            **close,
        )
    w = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_allclose(
        F.linear(tensor(x), tensor(w), tensor(b)).data,
        TF.linear(tx, torch.tensor(w), torch.tensor(b)).numpy(),
        **close,
    )
    huge = np.array([[1e4, -1e4, 0.0]], np.float32)
    np.testing.assert_allclose(
        F.cross_entropy(tensor(huge), np.array([1])).data,
        TF.cross_entropy(torch.tensor(huge), torch.tensor([1])).numpy(),
    )


# ---- end to end ----------------------------------------------------------------------------
def test_lenet_shaped_network_gradcheck_end_to_end():
    rng = np.random.default_rng(7)
    x = rand(rng, (2, 1, 8, 8))
    params = [
        rand(rng, (4, 1, 3, 3)),
        rand(rng, (4,)),  # conv1: 8x8 -> 8x8 (pad 1)
        rand(rng, (6, 4, 3, 3)),
        rand(rng, (6,)),  # conv2: 4x4 -> 4x4 (pad 1)
        rand(rng, (10, 6 * 2 * 2)),
        rand(rng, (10,)),  # fc1
        rand(rng, (3, 10)),
        rand(rng, (3,)),
    ]  # fc2
    target = np.array([2, 0])

    def net(x, c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b):
        h = F.max_pool2d(F.relu(F.conv2d(x, c1w, c1b, padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, c2w, c2b, padding=1)), 2)
        h = F.relu(F.linear(F.flatten(h, 1), f1w, f1b))
        return F.cross_entropy(F.linear(h, f2w, f2b), target)

    assert gradcheck(net, [x] + params)
