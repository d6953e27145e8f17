"""The losses of minidl.nn.functional and their nn modules against PyTorch, gradcheck and
the errors for bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
REDUCTIONS = ["mean", "sum", "none"]
SOME = settings(max_examples=40)
seeds = st.integers(0, 2**32 - 1)


def compare(ours, theirs, arrays, grad_of, dtype, seed=0, tol=None):
    """Run ``ours(*tensors)`` and ``theirs(*torch tensors)`` on the same ``arrays`` and
    compare the outputs and the gradients of the inputs flagged in ``grad_of``."""
    mine = [
        tensor(a, requires_grad=g) if a.dtype.kind == "f" else a for a, g in zip(arrays, grad_of)
    ]
    ref = [
        torch.tensor(a, requires_grad=bool(g) and a.dtype.kind == "f")
        for a, g in zip(arrays, grad_of)
    ]
    tol = tol or TOL[dtype]
    out, expected = ours(*mine), theirs(*ref)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tol)
    assert out.dtype == dtype
    upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    if not any(grad_of):
        return
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for m, r, g in zip(mine, ref, grad_of):
        if g:
            assert m.grad is not None and m.grad.dtype == dtype
            np.testing.assert_allclose(m.grad, r.grad.numpy(), **tol)


def logits(rng, shape, dtype):
    return (rng.standard_normal(shape) * 3).astype(dtype)


# ---- cross_entropy and nll_loss ---------------------------------------------------------------
class_shapes = st.sampled_from([(5,), (0, 3), (1, 1), (4, 3), (7, 5), (2, 3, 4), (2, 4, 3, 2)])


@SOME
@given(
    class_shapes,
    st.sampled_from(REDUCTIONS),
    st.booleans(),
    st.sampled_from([-100, 0, 1]),
    st.sampled_from([0.0, 0.1, 1.0]),
    st.sampled_from(DTYPES),
    seeds,
)
def test_cross_entropy_class_indices_match_torch(
    shape, reduction, weighted, ignore_index, smoothing, dtype, seed
):
    rng = np.random.default_rng(seed)
    c = shape[0] if len(shape) == 1 else shape[1]
    x = logits(rng, shape, dtype)
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = rng.integers(0, c, tshape)
    if ignore_index < 0 and t.size:  # some targets hit the default ignore_index
        t[rng.random(tshape) < 0.3] = ignore_index
    w = rng.uniform(0.1, 2, c).astype(dtype) if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)

    def ours(x, t):
        return F.cross_entropy(x, t, None if w is None else tensor(w), **kw)

    def theirs(x, t):
        return TF.cross_entropy(x, t, None if w is None else torch.tensor(w), **kw)

    compare(ours, theirs, [x, t], [True, False], dtype, seed)


@SOME
@given(
    class_shapes,
    st.sampled_from(REDUCTIONS),
    st.booleans(),
    st.sampled_from([0.0, 0.25]),
    st.sampled_from(DTYPES),
    seeds,
)
def test_cross_entropy_class_probabilities_match_torch(
    shape, reduction, weighted, smoothing, dtype, seed
):
    rng = np.random.default_rng(seed)
    axis = 0 if len(shape) == 1 else 1
    x = logits(rng, shape, dtype)
    p = rng.random(shape).astype(dtype)
    p /= np.maximum(p.sum(axis, keepdims=True), 1e-3)
    w = rng.uniform(0.1, 2, shape[axis]).astype(dtype) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)

    def ours(x, p):
        return F.cross_entropy(x, p, None if w is None else tensor(w), **kw)

    def theirs(x, p):
        return TF.cross_entropy(x, p, None if w is None else torch.tensor(w), **kw)

    compare(ours, theirs, [x, p], [True, True], dtype, seed)


@SOME
@given(
    class_shapes,
    st.sampled_from(REDUCTIONS),
    st.booleans(),
    st.sampled_from([-100, 2]),
    st.sampled_from(DTYPES),
    seeds,
)
def test_nll_loss_matches_torch(shape, reduction, weighted, ignore_index, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[0] if len(shape) == 1 else shape[1]
    x = logits(rng, shape, dtype)
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = rng.integers(0, c, tshape)
    if ignore_index < 0 and t.size:
        t[rng.random(tshape) < 0.3] = ignore_index
    w = rng.uniform(0.1, 2, c).astype(dtype) if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction)

    def ours(x, t):
        return F.nll_loss(x, t, None if w is None else tensor(w), **kw)

    def theirs(x, t):
        return TF.nll_loss(x, t, None if w is None else torch.tensor(w), **kw)

    compare(ours, theirs, [x, t], [True, False], dtype, seed)


def test_cross_entropy_general_path_agrees_with_the_fast_path():
    rng = np.random.default_rng(1)
    x = tensor(logits(rng, (6, 4), np.float64))
    t = rng.integers(0, 4, 6)
    for reduction in REDUCTIONS:
        fast = F.cross_entropy(x, t, reduction=reduction).data
        # unit weights and an ignore_index that no target hits force the general path
        general = F.cross_entropy(x, t, tensor(np.ones(4)), reduction=reduction).data
        np.testing.assert_allclose(general, fast, rtol=1e-13)
        ignored = F.cross_entropy(x, t, ignore_index=int(t[0]), reduction=reduction).data
        kept = t != t[0]
        expected = F.cross_entropy(tensor(x.data[kept]), t[kept], reduction=reduction).data
        if reduction == "none":
            assert np.all(ignored[~kept] == 0)
            ignored = ignored[kept]
        np.testing.assert_allclose(ignored, expected, rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_rows_kernel_keeps_nan_inf_and_huge_logits_as_numpy_does(reduction, dtype):
    """The (N, C) kernel (minidl._kernels._loss) against the softmax formula in numpy, on
    rows with NaN, +-inf and huge logits; the target a strided view."""
    with np.errstate(all="ignore"):
        x = np.array(
            [
                [1.0, 2.0, 0.5, -3.0],
                [np.nan, 1.0, 0.0, 2.0],
                [np.inf, 1.0, 0.0, 2.0],
                [-np.inf, 1.0, 0.0, 2.0],
                [1e30, -1e30, 3e29, 0.0],
                [-80.0, 80.0, 0.0, -200.0],
            ],
            dtype=dtype,
        )
        t = np.array([[2, 9], [0, 9], [1, 9], [0, 9], [1, 9], [3, 9]])[:, 0]
        shifted = x - x.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = -logp[np.arange(6), t]
        softmax = np.exp(logp)
        softmax[np.arange(6), t] -= 1
        want = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / 6}[reduction]
        xt = tensor(x, requires_grad=True)
        out = F.cross_entropy(xt, t, reduction=reduction)
        out.backward(tensor(np.ones_like(out.data)))
    scale = 1 / 6 if reduction == "mean" else 1
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out.data, want.astype(dtype), rtol=rtol)
    np.testing.assert_allclose(xt.grad, (softmax * scale).astype(dtype), rtol=rtol, atol=1e-30)
    assert out.data.dtype == dtype and xt.grad.dtype == dtype


def test_cross_entropy_rows_kernel_checks_what_it_is_given():
    from minidl import _kernels as K

    x = np.zeros((3, 4), np.float32)
    assert K.cross_entropy_forward(x, np.array([0, 1, 4])) is None  # 4 is outside 0..3
    assert K.cross_entropy_forward(x, np.array([0, -1, 3])) is None
    t = np.array([0, 1, 3])
    loss, stats, total = K.cross_entropy_forward(x, t)
    np.testing.assert_allclose(loss, np.log(4), rtol=1e-6)  # uniform over 4 classes
    for bad_scale in (np.ones(2, np.float32), np.ones(4, np.float32)):
        with pytest.raises(ValueError, match="do not fit 3 rows"):
            K.cross_entropy_backward(x, t, stats, bad_scale)
    with pytest.raises(ValueError, match="do not fit 3 rows"):
        K.cross_entropy_backward(x, t[:2], stats, np.ones(1, np.float32))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_rows_kernel_gradcheck(reduction):
    rng = np.random.default_rng(3)
    x = tensor(logits(rng, (5, 4), np.float64), requires_grad=True)
    t = rng.integers(0, 4, 5)
    assert gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction), [x])


def test_cross_entropy_with_all_options_by_hand():
    # two samples, three classes, weight w, smoothing e, sample 1 ignored
    x = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
    w, e = np.array([0.5, 1.0, 2.0]), 0.3
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    loss0 = -(1 - e) * w[2] * logp[0, 2] - e / 3 * (w * logp[0]).sum()
    out = F.cross_entropy(tensor(x), np.array([2, 7]), tensor(w), ignore_index=7, label_smoothing=e)
    np.testing.assert_allclose(out.data, loss0 / w[2], rtol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", ["plain", "weight", "ignore", "smooth", "probs"])
def test_cross_entropy_and_nll_gradcheck(variant, reduction):
    rng = np.random.default_rng(2)
    x = tensor(logits(rng, (3, 4, 2), np.float64), requires_grad=True)
    t = rng.integers(0, 4, (3, 2))
    kw = {"reduction": reduction}
    w = None
    if variant == "weight":
        w = tensor(rng.uniform(0.5, 2, 4))
    elif variant == "ignore":
        kw["ignore_index"] = 1
    elif variant == "smooth":
        kw["label_smoothing"] = 0.2
        w = tensor(rng.uniform(0.5, 2, 4))
    if variant == "probs":
        p = tensor(rng.random((3, 4, 2)), requires_grad=True)
        assert gradcheck(lambda a, b: F.cross_entropy(a, b, **kw), [x, p])
        return
    assert gradcheck(lambda a: F.cross_entropy(a, t, w, **kw), [x])
    kw.pop("label_smoothing", None)
    assert gradcheck(lambda a: F.nll_loss(a, t, w, **kw), [x])


def test_cross_entropy_empty_batch_and_all_ignored_give_nan_and_zero_gradients():
    for target in (np.zeros(0, np.int64), np.array([-100, -100])):
        x = tensor(np.ones((len(target), 3)), requires_grad=True)
        for kw in ({}, {"label_smoothing": 0.1}, {"weight": tensor(np.ones(3))}):
            x.grad = None
            loss = F.cross_entropy(x, target, **kw)
            assert np.isnan(loss.item())
            loss.backward()
            assert x.grad.shape == x.shape and np.all(x.grad == 0)
        assert F.cross_entropy(x, target, reduction="sum").item() == 0
        assert F.cross_entropy(x, target, reduction="none").shape == target.shape
    probs = tensor(np.zeros((0, 3)))
    x = tensor(np.ones((0, 3)), requires_grad=True)
    loss = F.cross_entropy(x, probs)
    assert np.isnan(loss.item())
    loss.backward()
    assert x.grad.shape == (0, 3)


# ---- elementwise losses -----------------------------------------------------------------------
shapes = st.sampled_from([(), (0,), (0, 3), (1,), (4,), (3, 5), (2, 3, 4)])


def elementwise_cases():
    return {
        "l1": (F.l1_loss, TF.l1_loss, {}),
        "smooth_l1": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.7}),
        "smooth_l1_beta0": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}),
        "huber": (F.huber_loss, TF.huber_loss, {"delta": 1.3}),
        "mse": (F.mse_loss, TF.mse_loss, {}),
    }


@SOME
@given(
    shapes,
    st.sampled_from(sorted(elementwise_cases())),
    st.sampled_from(REDUCTIONS),
    st.sampled_from(DTYPES),
    seeds,
)
def test_regression_losses_match_torch(shape, name, reduction, dtype, seed):
    ours, theirs, kw = elementwise_cases()[name]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    y = (rng.standard_normal(shape) * 2).astype(dtype)
    compare(
        lambda a, b: ours(a, b, reduction=reduction, **kw),
        lambda a, b: theirs(a, b, reduction=reduction, **kw),
        [x, y],
        [True, True],
        dtype,
        seed,
    )


@SOME
@given(shapes, st.sampled_from(REDUCTIONS), st.booleans(), st.sampled_from(DTYPES), seeds)
def test_binary_cross_entropy_matches_torch(shape, reduction, weighted, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.02, 0.98, shape).astype(dtype)
    y = rng.random(shape).astype(dtype)
    w = rng.uniform(0.1, 2, shape[-1:]).astype(dtype) if weighted else None
    compare(
        lambda a, b: F.binary_cross_entropy(
            a, b, None if w is None else tensor(w), reduction=reduction
        ),
        lambda a, b: TF.binary_cross_entropy(
            a, b, None if w is None else torch.tensor(w), reduction=reduction
        ),
        [x, y],
        [True, True],
        dtype,
        seed,
    )


def test_binary_cross_entropy_at_0_and_1_matches_torch():
    x = np.array([0.0, 1.0, 0.0, 1.0, 1e-30, 0.5])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 0.5])
    compare(
        lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"),
        [x, y],
        [True, False],
        np.float64,
        tol=dict(rtol=1e-8),  # gradients of 1e11 where x * (1 - x) is clamped at 1e-12
    )


@SOME
@given(
    shapes,
    st.sampled_from(REDUCTIONS),
    st.booleans(),
    st.booleans(),
    st.sampled_from(DTYPES),
    seeds,
)
def test_binary_cross_entropy_with_logits_matches_torch(
    shape, reduction, weighted, pos_weighted, dtype, seed
):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    y = rng.random(shape).astype(dtype)
    w = rng.uniform(0.1, 2, shape).astype(dtype) if weighted else None
    pw = rng.uniform(0.1, 3, shape[-1:]).astype(dtype) if pos_weighted else None

    def opt(lib, a):
        return None if a is None else lib(a)

    compare(
        lambda a, b: F.binary_cross_entropy_with_logits(
            a, b, opt(tensor, w), reduction=reduction, pos_weight=opt(tensor, pw)
        ),
        lambda a, b: TF.binary_cross_entropy_with_logits(
            a, b, opt(torch.tensor, w), reduction=reduction, pos_weight=opt(torch.tensor, pw)
        ),
        [x, y],
        [True, True],
        dtype,
        seed,
    )


def test_binary_cross_entropy_with_logits_is_stable_for_huge_logits():
    x = tensor(np.array([1e4, -1e4, 50.0, -50.0], np.float32), requires_grad=True)
    y = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, 1e4, np.log1p(np.exp(-50)), 0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [1, -1, 0, 0], atol=1e-6)


@SOME
@given(
    shapes,
    st.sampled_from(REDUCTIONS + ["batchmean"]),
    st.booleans(),
    st.sampled_from(DTYPES),
    seeds,
)
def test_kl_div_matches_torch(shape, reduction, log_target, dtype, seed):
    rng = np.random.default_rng(seed)
    x = np.log(rng.uniform(0.05, 1, shape)).astype(dtype)
    y = rng.uniform(0.05, 1, shape).astype(dtype)
    if log_target:
        y = np.log(y)
    elif y.size:
        y.flat[0] = 0  # 0 * log 0 counts as 0 (the target's gradient is nan there)
    kw = dict(reduction=reduction, log_target=log_target)
    with pytest.warns(UserWarning) if reduction == "mean" else _nothing():
        compare(
            lambda a, b: F.kl_div(a, b, **kw),
            lambda a, b: TF.kl_div(a, b, **kw),
            [x, y],
            [True, log_target],
            dtype,
            seed,
        )


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_losses_gradcheck(reduction):
    rng = np.random.default_rng(4)
    x = tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    y = tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    p = tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    q = tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    w = tensor(rng.uniform(0.5, 2, (4,)))
    kw = {"reduction": reduction}
    for fn in (
        lambda a, b: F.l1_loss(a, b, **kw),
        lambda a, b: F.smooth_l1_loss(a, b, beta=0.5, **kw),
        lambda a, b: F.huber_loss(a, b, delta=0.8, **kw),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, pos_weight=w, **kw),
        lambda a, b: F.kl_div(a, b, log_target=True, **kw),
    ):
        assert gradcheck(fn, [x, y])
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, w, **kw), [p, q])
    assert gradcheck(lambda a, b: F.kl_div(a, b, **kw), [x, q])
    assert gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean"), [x, q])


def test_losses_accept_an_ndarray_target_and_give_no_target_gradient():
    x = tensor(np.array([0.2, 0.7]), requires_grad=True)
    y = np.array([0.0, 1.0])
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.mse_loss, F.kl_div):
        x.grad = None
        fn(x, y).backward()
        assert x.grad.shape == (2,)
    F.binary_cross_entropy(x, y).backward()
    F.binary_cross_entropy_with_logits(x, y).backward()


# ---- modules -----------------------------------------------------------------------------------
def test_loss_modules_match_their_functions_and_torch():
    rng = np.random.default_rng(5)
    x = logits(rng, (4, 3), np.float32)
    t = np.array([0, 2, -100, 1])
    w = rng.uniform(0.5, 2, 3).astype(np.float32)
    p = rng.random((4, 3)).astype(np.float32)
    pairs = [
        (
            nn.CrossEntropyLoss(tensor(w), reduction="sum", label_smoothing=0.1),
            torch.nn.CrossEntropyLoss(torch.tensor(w), reduction="sum", label_smoothing=0.1),
            x,
            t,
        ),
        (
            nn.NLLLoss(tensor(w), ignore_index=2),
            torch.nn.NLLLoss(torch.tensor(w), ignore_index=2),
            x,
            np.array([0, 2, 1, 1]),
        ),
        (nn.BCELoss(), torch.nn.BCELoss(), p, 1 - p),
        (
            nn.BCEWithLogitsLoss(pos_weight=tensor(w)),
            torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)),
            x,
            p,
        ),
        (nn.L1Loss(reduction="none"), torch.nn.L1Loss(reduction="none"), x, p),
        (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), x, p),
        (nn.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5), x, p),
        (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"), x, p),
        (nn.MSELoss(), torch.nn.MSELoss(), x, p),
    ]
    for ours, theirs, a, b in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        np.testing.assert_allclose(
            ours(tensor(a), b).data, theirs(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-5
        )


def test_loss_module_weights_are_buffers_that_follow_dtype():
    loss = nn.CrossEntropyLoss(weight=tensor(np.ones(3, np.float32)))
    loss.double()
    assert loss.weight.dtype == np.float64
    x = tensor(np.zeros((2, 3)), requires_grad=True)
    loss(x, np.array([0, 1])).backward()
    assert x.grad.dtype == np.float64
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.KLDivLoss(reduction="avg")


def test_cross_entropy_loss_in_a_training_step():
    minidl.manual_seed(0)
    model = nn.Linear(4, 3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-1)
    x = tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    loss_fn(model(x), np.array([0, 1, 2, -1, 1])).backward()
    assert model.weight.grad.shape == (3, 4) and np.all(np.isfinite(model.weight.grad))


# ---- errors ------------------------------------------------------------------------------------
def T(*shape, dtype=np.float32):
    return tensor(np.full(shape, 0.5, dtype))


I = np.array([0, 1, 2])  # noqa: E741

ERRORS = [
    (lambda: F.mse_loss(T(3), None), TypeError, r"mse_loss: argument 'target'.*NoneType"),
    (lambda: F.l1_loss(T(3), None), TypeError, r"l1_loss: argument 'target'"),
    (lambda: F.l1_loss(T(3), "x"), TypeError, r"argument 'target'.*str"),
    (lambda: F.l1_loss(T(3), T(4)), ValueError, r"\(3,\).*\(4,\)"),
    (lambda: F.l1_loss(T(3), T(3, dtype=np.float64)), TypeError, r"float32.*float64"),
    (lambda: F.l1_loss(T(3), T(3), reduction="avg"), ValueError, r"reduction"),
    (lambda: F.l1_loss(np.ones(3), T(3)), TypeError, r"l1_loss: argument 'input'"),
    (lambda: F.cross_entropy(T(3, 4), I, "mean"), TypeError, r"argument 'weight'.*str"),
    (lambda: F.cross_entropy(T(3, 4), I, T(5)), ValueError, r"weight shape \(5,\).*4 classes"),
    (
        lambda: F.cross_entropy(T(3, 4), I, T(4, dtype=np.float64)),
        TypeError,
        r"float32.*float64",
    ),
    (
        lambda: F.cross_entropy(T(3, 4), I, T(4).requires_grad_()),
        ValueError,
        r"no gradient flows to weight",
    ),
    (lambda: F.cross_entropy(T(3, 4), I, label_smoothing=1.5), ValueError, r"label_smoothing"),
    (lambda: F.cross_entropy(T(3, 4), I, label_smoothing="a"), TypeError, r"label_smoothing"),
    (lambda: F.cross_entropy(T(3, 4), I, ignore_index=1.0), TypeError, r"ignore_index"),
    (lambda: F.cross_entropy(T(3, 4), np.array([0, -5, 1])), ValueError, r"target -5"),
    (lambda: F.cross_entropy(T(3, 4), T(3, 5)), TypeError, r"class probabilities.*\(3, 5\)"),
    (lambda: F.cross_entropy(T(3, 4), T(3, 4), ignore_index=0), ValueError, r"ignore_index"),
    (lambda: F.nll_loss(T(3, 4), np.array([0, 4, 1])), ValueError, r"target 4 is out of range"),
    (lambda: F.nll_loss(T(3, 4), I, reduction="x"), ValueError, r"reduction"),
    (lambda: F.binary_cross_entropy(T(3) * 3, T(3)), ValueError, r"input must be between"),
    (lambda: F.binary_cross_entropy(T(3), T(3) * 3), ValueError, r"target must be between"),
    (lambda: F.binary_cross_entropy(T(3), T(3), T(2)), ValueError, r"weight shape \(2,\)"),
    (lambda: F.binary_cross_entropy(T(3), T(3), [1.0]), TypeError, r"argument 'weight'.*list"),
    (
        lambda: F.binary_cross_entropy_with_logits(T(2, 3), T(2, 3), pos_weight=T(2)),
        ValueError,
        r"pos_weight shape \(2,\).*\(2, 3\)",
    ),
    (lambda: F.smooth_l1_loss(T(3), T(3), beta=-1), ValueError, r"beta must be >= 0"),
    (lambda: F.smooth_l1_loss(T(3), T(3), beta="1"), TypeError, r"beta must be a number"),
    (lambda: F.huber_loss(T(3), T(3), delta=0), ValueError, r"delta must be > 0"),
    (lambda: F.kl_div(T(3), T(3), reduction="avg"), ValueError, r"batchmean"),
    (lambda: F.kl_div(T(3), T(3), log_target="yes"), TypeError, r"log_target"),
]


@pytest.mark.parametrize("call, exc, pattern", ERRORS, ids=[e[2] for e in ERRORS])
def test_bad_arguments_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
