"""Batch normalisation: the fused kernel against the naive reference (hypothesis), thread
counts, gradcheck, PyTorch's numbers (op and modules over several steps), the modules'
state_dict / repr / train-eval behaviour and validation errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from kernel_checks import examples, kernels

import minidl
import minidl.nn.functional as F
from minidl import nn
from minidl import reference as R

TOL = {np.float32: 2e-5, np.float64: 1e-11}


def assert_near(got, want, dtype, what, scale=None):
    """got (dtype) against the float64 reference, to tol relative to the array's scale
    (or to ``scale``, the size of the terms that cancel into ``want``)."""
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    tol = TOL[dtype]
    np.testing.assert_allclose(
        got.astype(np.float64),
        want,
        rtol=tol,
        atol=tol * max(1.0, np.abs(want).max(), scale or 0.0),
        err_msg=what,
    )


def random_case(seed, shape, dtype, affine, shift, scale):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * scale + shift).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 2, c).astype(dtype) * rng.choice([-1, 1], c).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    return x, dy, (w if affine else None), (b if affine else None), rm, rv


# ---- kernel against the reference ------------------------------------------------------
@hsettings(max_examples=examples(60))
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 5),
    spatial=st.sampled_from([(), (1,), (7,), (1, 1), (3, 4), (6, 5)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    training=st.booleans(),
    affine=st.booleans(),
    shift=st.floats(-5, 5),
    scale=st.floats(0.1, 10),
    seed=st.integers(0, 2**31),
)
def test_kernel_matches_reference(n, c, spatial, dtype, training, affine, shift, scale, seed):
    K = kernels()
    shape = (n, c) + spatial
    if training and n * int(np.prod(spatial)) < 2:
        n, shape = 2, (2, c) + spatial
    x, dy, w, b, rm, rv = random_case(seed, shape, dtype, affine, shift, scale)
    eps = 1e-5
    x3, dy3 = x.reshape(n, c, -1), dy.reshape(n, c, -1)
    mean = np.empty(c) if training else rm.astype(np.float64)
    var = np.empty(c) if training else rv.astype(np.float64)
    y, invstd = K.batch_norm_forward(x3, w, b, mean, var, training, eps, 2)
    want_y, _, _ = R.batch_norm_forward(x, rm, rv, w, b, training, 0.1, eps)
    # y = x * a + (b - mean * a), a = w * invstd (PyTorch's form too): the two terms cancel
    # when the mean is far from 0 and the variance small, so the error scales with them
    a = np.abs(invstd) * (1.0 if w is None else np.abs(w.astype(np.float64)))
    y_terms = float(np.max(a)) * float(np.abs(x).max(initial=0.0))
    assert_near(y.reshape(shape), want_y, dtype, "y", scale=y_terms)
    if training:
        x64 = x.astype(np.float64)
        axes = (0,) + tuple(range(2, x.ndim))
        np.testing.assert_allclose(mean, x64.mean(axis=axes), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(var, x64.var(axis=axes), rtol=1e-10, atol=1e-12)
    dx, dweight, dbias = K.batch_norm_backward(dy3, x3, w, mean, invstd, training, True, True, 2)
    want_dx, want_dw, want_db = R.batch_norm_backward(x, dy, rm, rv, w, training, eps)
    # training: dx = invstd * w * (dy - mean(dy) - xhat * mean(dy * xhat)), whose terms
    # cancel; float32 rounds each term, so the error scales with them, not with dx
    terms = float(np.max(np.abs(invstd) * (1.0 if w is None else np.abs(w)))) * float(
        np.abs(dy).max(initial=0.0)
    )
    assert_near(dx.reshape(shape), want_dx, dtype, "dx", scale=terms if training else None)
    np.testing.assert_allclose(dweight, want_dw, rtol=1e-9, atol=1e-9, err_msg="dweight")
    np.testing.assert_allclose(dbias, want_db, rtol=1e-9, atol=1e-9, err_msg="dbias")


def test_kernel_skips_what_is_not_needed():
    K = kernels()
    x, dy, w, b, rm, rv = random_case(0, (3, 2, 4), np.float64, True, 0, 1)
    mean, var = rm.astype(np.float64), rv.astype(np.float64)
    _, invstd = K.batch_norm_forward(x, w, b, mean, var, False, 1e-5, 1)
    dx, dw, db = K.batch_norm_backward(dy, x, w, mean, invstd, False, True, False, 1)
    assert dw is None and db is None
    np.testing.assert_allclose(dx, dy * (w * invstd)[None, :, None], rtol=1e-15)
    dx, dw, db = K.batch_norm_backward(dy, x, w, mean, invstd, False, False, True, 1)
    assert dx is None and dw.shape == db.shape == (2,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_kernel_threads_bit_identical(dtype, training):
    K = kernels()
    shape = (16, 8, 72, 72)  # enough work for 2 threads (eval: one pass)
    x, dy, w, b, rm, rv = random_case(1, shape, dtype, True, 0.5, 2)
    x3, dy3 = x.reshape(16, 8, -1), dy.reshape(16, 8, -1)
    results = []
    for threads in (1, 2):
        mean = np.empty(8) if training else rm.astype(np.float64)
        var = np.empty(8) if training else rv.astype(np.float64)
        y, invstd = K.batch_norm_forward(x3, w, b, mean, var, training, 1e-5, threads)
        assert K.planned_threads(K.batch_norm_forward) == threads
        grads = K.batch_norm_backward(dy3, x3, w, mean, invstd, training, True, True, threads)
        assert K.planned_threads(K.batch_norm_backward) == threads
        results.append((y, mean, var, invstd) + grads)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_small_jobs_run_on_one_thread():
    K = kernels()
    x, _, w, b, _, _ = random_case(0, (4, 3, 5), np.float32, True, 0, 1)
    K.batch_norm_forward(x, w, b, np.empty(3), np.empty(3), True, 1e-5, 2)
    assert K.planned_threads(K.batch_norm_forward) == 1


# ---- the op: gradients -----------------------------------------------------------------
def _t(a, grad=True):
    return minidl.tensor(a, requires_grad=grad, dtype=np.float64)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(shape, training):
    x, _, w, b, rm, rv = random_case(3, shape, np.float64, True, 1.0, 2.0)
    if training:
        rm = rv = None  # the running statistics would change between evaluations
    fn = lambda a, g, h: F.batch_norm(a, rm, rv, g, h, training=training)  # noqa: E731
    assert minidl.gradcheck(fn, [_t(x), _t(w), _t(b)])
    assert minidl.gradcheck(lambda a: F.batch_norm(a, rm, rv, None, None, training), [_t(x)])


def test_one_gradient_per_input_and_only_those_needed():
    x, dy, w, b, rm, rv = random_case(4, (3, 2, 4, 4), np.float64, True, 0, 1)
    xt, wt, bt = _t(x, False), _t(w), _t(b, False)
    F.batch_norm(xt, rm, rv, wt, bt, training=True).backward(minidl.tensor(dy))
    assert xt.grad is None and bt.grad is None and wt.grad.shape == (2,)
    xt = _t(x)
    F.batch_norm(xt, None, None, None, None, training=True).backward(minidl.tensor(dy))
    assert xt.grad.shape == x.shape


# ---- PyTorch ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_functional_matches_torch(dtype, training):
    torch = pytest.importorskip("torch")
    x, dy, w, b, rm, rv = random_case(5, (6, 4, 5, 3), dtype, True, 2.0, 3.0)
    xt, wt, bt = (minidl.tensor(a, requires_grad=True, dtype=dtype) for a in (x, w, b))
    rm_m, rv_m = rm.copy(), rv.copy()
    y = F.batch_norm(xt, rm_m, rv_m, wt, bt, training, 0.3, 1e-3)
    y.backward(minidl.tensor(dy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.3, 1e-3)
    ty.backward(torch.tensor(dy))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(wt.grad, tw.grad.numpy(), **tol)
    np.testing.assert_allclose(bt.grad, tb.grad.numpy(), **tol)
    np.testing.assert_allclose(rm_m, trm.numpy(), **tol)
    np.testing.assert_allclose(rv_m, trv.numpy(), **tol)
    if not training:
        np.testing.assert_array_equal(rm_m, rm)


MODULE_CASES = [
    ("BatchNorm2d", (8, 3, 5, 4), {}),
    ("BatchNorm2d", (4, 2, 3, 3), {"momentum": None}),
    ("BatchNorm2d", (4, 2, 3, 3), {"affine": False, "eps": 1e-3}),
    ("BatchNorm2d", (4, 2, 3, 3), {"track_running_stats": False}),
    ("BatchNorm2d", (4, 2, 3, 3), {"bias": False}),
    ("BatchNorm1d", (10, 3), {}),
    ("BatchNorm1d", (5, 3, 7), {"momentum": None}),
    ("BatchNorm1d", (6, 4), {"momentum": 0.5, "track_running_stats": False}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,shape,kwargs", MODULE_CASES)
def test_module_matches_torch_over_steps(name, shape, kwargs, dtype):
    torch = pytest.importorskip("torch")
    c = shape[1]
    ours = getattr(nn, name)(c, **kwargs).to(dtype)
    theirs = getattr(torch.nn, name)(
        c, dtype=torch.float64 if dtype == np.float64 else None, **kwargs
    )
    rng = np.random.default_rng(6)
    if ours.weight is not None:  # non-default affine parameters
        w = rng.uniform(0.5, 2, c).astype(dtype)
        ours.weight.data[...] = w
        theirs.weight.data[...] = torch.tensor(w)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for step in range(5):
        training = step != 3  # one eval step in the middle
        ours.train(training)
        theirs.train(training)
        x = (rng.standard_normal(shape) * 2 + step).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        xm = minidl.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        ours.zero_grad()
        theirs.zero_grad()
        y = ours(xm)
        ty = theirs(xt)
        y.backward(minidl.tensor(dy))
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
        np.testing.assert_allclose(xm.grad, xt.grad.numpy(), **tol)
        for pname, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, getattr(theirs, pname).grad.numpy(), **tol)
        mine, ref = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(ref)
        for key in mine:
            assert mine[key].dtype == ref[key].numpy().dtype, key
            np.testing.assert_allclose(mine[key], ref[key].numpy(), **tol, err_msg=key)


@pytest.mark.parametrize("name,shape,kwargs", MODULE_CASES)
def test_module_repr_matches_torch(name, shape, kwargs):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(shape[1], **kwargs)) == repr(
        getattr(torch.nn, name)(shape[1], **kwargs)
    )


# ---- modules ---------------------------------------------------------------------------
def test_module_state_and_defaults():
    bn = nn.BatchNorm2d(3)
    assert repr(bn) == (
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    )
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(sd["weight"], np.ones(3, np.float32))
    np.testing.assert_array_equal(sd["bias"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(sd["running_mean"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(sd["running_var"], np.ones(3, np.float32))
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn.double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    assert list(nn.BatchNorm1d(2, affine=False).state_dict()) == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert list(nn.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_module_train_eval_and_state_dict_round_trip():
    rng = np.random.default_rng(7)
    bn = nn.BatchNorm2d(2)
    x = minidl.tensor((rng.standard_normal((4, 2, 3, 3)) * 3 + 1).astype(np.float32))
    before = bn(x).data
    # training: the batch statistics normalise, running statistics move, one batch counted
    np.testing.assert_allclose(before.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(before.var(axis=(0, 2, 3)), 1, atol=1e-3)
    assert int(bn.num_batches_tracked) == 1
    assert not np.allclose(bn.running_mean, 0)
    bn.eval()
    running = bn.state_dict()
    y_eval = bn(x).data
    assert int(bn.num_batches_tracked) == 1  # eval counts nothing, moves nothing
    np.testing.assert_array_equal(bn.running_mean, running["running_mean"])
    want = (x.data - running["running_mean"][:, None, None]) / np.sqrt(
        running["running_var"][:, None, None] + 1e-5
    )
    np.testing.assert_allclose(y_eval, want, rtol=1e-5, atol=1e-6)
    other = nn.BatchNorm2d(2).eval()
    other.load_state_dict(running)
    np.testing.assert_array_equal(other(x).data, y_eval)
    assert other.num_batches_tracked.dtype == np.int64 and int(other.num_batches_tracked) == 1
    bn.reset_parameters()
    assert int(bn.num_batches_tracked) == 0 and np.all(bn.running_var == 1)


def test_cumulative_average_with_momentum_none():
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm1d(3, momentum=None).double()
    batches = [rng.standard_normal((5, 3)) + i for i in range(4)]
    for b in batches:
        bn(minidl.tensor(b))
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(0) for b in batches], axis=0))
    np.testing.assert_allclose(bn.running_var, np.mean([b.var(0, ddof=1) for b in batches], 0))


def test_untracked_module_uses_batch_statistics_in_eval():
    rng = np.random.default_rng(9)
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    x = rng.standard_normal((6, 3)).astype(np.float32) * 4
    np.testing.assert_allclose(
        bn(minidl.tensor(x)).data, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), atol=1e-5
    )


# ---- validation ------------------------------------------------------------------------
def _x(shape=(4, 3, 2, 2), dtype=np.float32):
    return minidl.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: F.batch_norm(np.ones((2, 3)), None, None, training=True), TypeError, "input"),
        (lambda: F.batch_norm(_x((4,)), None, None, training=True), ValueError, r"\(N, C"),
        (lambda: F.batch_norm(_x((0, 3)), None, None, training=True), ValueError, "empty"),
        (
            lambda: F.batch_norm(minidl.tensor(np.ones((2, 3), np.int64)), None, None),
            TypeError,
            "float",
        ),
        (lambda: F.batch_norm(_x(), None, None), ValueError, "required when not training"),
        (lambda: F.batch_norm(_x(), np.zeros(3, np.float32), None), ValueError, "both"),
        (
            lambda: F.batch_norm(_x(), np.zeros(4, np.float32), np.ones(4, np.float32)),
            ValueError,
            "running_mean shape",
        ),
        (
            lambda: F.batch_norm(_x(), np.zeros(3), np.ones(3)),
            TypeError,
            "running_mean is float64",
        ),
        (lambda: F.batch_norm(_x(), [0, 0, 0], [1, 1, 1]), TypeError, "running_mean"),
        (
            lambda: F.batch_norm(_x(), None, None, _x((2,)), None, True),
            ValueError,
            "weight shape",
        ),
        (
            lambda: F.batch_norm(_x(), None, None, None, _x((3,), np.float64), True),
            TypeError,
            "bias",
        ),
        (lambda: F.batch_norm(_x((1, 3)), None, None, training=True), ValueError, "more than 1"),
        (lambda: F.batch_norm(_x(), None, None, None, None, True, 0.1, 0.0), ValueError, "eps"),
        (lambda: F.batch_norm(_x(), None, None, None, None, True, "0.1"), TypeError, "momentum"),
        (lambda: F.batch_norm(_x(), None, None, None, None, True, None), TypeError, "momentum"),
        (lambda: nn.BatchNorm2d(3)(_x((4, 3))), ValueError, "expected 4D input"),
        (lambda: nn.BatchNorm1d(3)(_x()), ValueError, "expected 2D or 3D input"),
        (lambda: nn.BatchNorm2d(4)(_x()), ValueError, "channels"),
        (lambda: nn.BatchNorm2d(0), ValueError, "num_features"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_read_only_running_statistics_are_rejected_in_training():
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        F.batch_norm(_x(), rm, rv, training=True)
    F.batch_norm(_x(), rm, rv, training=False)  # eval only reads them


def test_running_statistics_may_be_tensors_and_are_updated_in_place():
    x = np.random.default_rng(10).standard_normal((5, 2, 3)).astype(np.float32)
    rm, rv = minidl.tensor(np.zeros(2, np.float32)), minidl.tensor(np.ones(2, np.float32))
    arrays = rm.data, rv.data
    F.batch_norm(minidl.tensor(x), rm, rv, training=True, momentum=0.5)
    assert rm.data is arrays[0] and rv.data is arrays[1]
    np.testing.assert_allclose(rm.data, 0.5 * x.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(rv.data, 0.5 + 0.5 * x.var(axis=(0, 2), ddof=1), rtol=1e-5)
