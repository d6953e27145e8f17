"""Tensor methods against PyTorch (forward and gradient, float32 and float64), float64
gradchecks, 0-d edge cases and the errors for bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import gradcheck, tensor

# (id, fn, input shapes): fn is written once and runs on minidl and torch tensors alike
DIFFERENTIABLE = [
    ("unsqueeze", lambda x: x.unsqueeze(1), [(2, 3)]),
    ("unsqueeze-neg", lambda x: x.unsqueeze(-1), [(2, 3)]),
    ("squeeze", lambda x: x.squeeze(), [(2, 1, 3, 1)]),
    ("squeeze-dim", lambda x: x.squeeze(1), [(2, 1, 3, 1)]),
    ("squeeze-dim-kept", lambda x: x.squeeze(0), [(2, 1, 3)]),
    ("squeeze-tuple", lambda x: x.squeeze((1, 3)), [(2, 1, 3, 1)]),
    ("expand", lambda x: x.expand(4, 2, 3), [(2, 1)]),
    ("expand-minus-one", lambda x: x.expand(-1, 5), [(3, 1)]),
    ("repeat", lambda x: x.repeat(2, 3), [(2, 3)]),
    ("repeat-new-dims", lambda x: x.repeat(2, 1, 2), [(2, 3)]),
    ("contiguous", lambda x: x.transpose(0, 1).contiguous(), [(2, 3)]),
    ("t", lambda x: x.t(), [(2, 3)]),
    ("t-1d", lambda x: x.t(), [(3,)]),
    ("mT", lambda x: x.mT, [(4, 2, 3)]),
    ("max", lambda x: x.max(), [(3, 4)]),
    ("max-dim", lambda x: x.max(1).values, [(3, 4)]),
    ("max-dim-keepdim", lambda x: x.max(0, keepdim=True)[0], [(3, 4)]),
    ("min", lambda x: x.min(), [(3, 4)]),
    ("min-dim", lambda x: x.min(dim=-1).values, [(3, 4)]),
    ("amax", lambda x: x.amax(), [(3, 4)]),
    ("amax-dims", lambda x: x.amax(dim=(0, 2), keepdim=True), [(3, 4, 2)]),
    ("amin-dim", lambda x: x.amin(1), [(3, 4)]),
    ("var", lambda x: x.var(), [(3, 4)]),
    ("var-dim-biased", lambda x: x.var(1, unbiased=False), [(3, 4)]),
    ("var-correction", lambda x: x.var(dim=0, correction=2, keepdim=True), [(5, 4)]),
    ("var-unbiased-only", lambda x: x.var(False), [(3, 4)]),
    ("std", lambda x: x.std(), [(3, 4)]),
    ("std-dims", lambda x: x.std(dim=(0, 1), keepdim=True), [(3, 4, 2)]),
    ("std-correction", lambda x: x.std(1, correction=0), [(3, 4)]),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), [(4, 5)]),
    ("clamp-min", lambda x: x.clamp(min=0.1), [(4, 5)]),
    ("clip-max", lambda x: x.clip(max=0.2), [(4, 5)]),
    ("clamp-tensor", lambda x, lo: x.clamp(min=lo), [(4, 5), (5,)]),
    ("abs", lambda x: x.abs(), [(3, 4)]),
    ("exp", lambda x: x.exp(), [(3, 4)]),
    ("log", lambda x: (x * x + 0.5).log(), [(3, 4)]),
    ("sqrt", lambda x: (x * x + 0.5).sqrt(), [(3, 4)]),
    ("pow", lambda x: x.pow(3), [(3, 4)]),
    ("pow-tensor", lambda x, y: (x * x + 0.5).pow(y), [(3, 4), (4,)]),
    ("norm", lambda x: x.norm(), [(3, 4)]),
    ("norm-dim", lambda x: x.norm(dim=1, keepdim=True), [(3, 4)]),
    ("norm-p1", lambda x: x.norm(p=1, dim=0), [(3, 4)]),
    ("norm-p3", lambda x: x.norm(3), [(3, 4)]),
    ("norm-inf", lambda x: x.norm(float("inf"), dim=1), [(3, 4)]),
    ("sum-dim", lambda x: x.sum(dim=1), [(3, 4)]),
    ("sum-dims-keepdim", lambda x: x.sum(dim=(0, 2), keepdim=True), [(3, 4, 2)]),
    ("mean-dim", lambda x: x.mean(-1, keepdim=True), [(3, 4)]),
    # 0-d tensors through every reduction
    ("0d-sum", lambda x: x.sum(0), [()]),
    ("0d-mean", lambda x: x.mean(dim=-1, keepdim=True), [()]),
    ("0d-max", lambda x: x.max(), [()]),
    ("0d-max-dim", lambda x: x.max(dim=0).values, [()]),
    ("0d-min-dim", lambda x: x.min(0, keepdim=True).values, [()]),
    ("0d-amax", lambda x: x.amax(0), [()]),
    ("0d-amin", lambda x: x.amin(), [()]),
    ("0d-min", lambda x: x.min(), [()]),
    ("0d-var", lambda x: x.var(0, correction=0), [()]),
    ("0d-std", lambda x: x.std(correction=0), [()]),
    ("0d-norm", lambda x: x.norm(dim=0), [()]),
    ("0d-squeeze", lambda x: x.squeeze(0), [()]),
    ("0d-unsqueeze", lambda x: x.unsqueeze(0), [()]),
]


def _inputs(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "fn, shapes", [c[1:] for c in DIFFERENTIABLE], ids=[c[0] for c in DIFFERENTIABLE]
)
def test_method_matches_torch(fn, shapes, dtype):
    torch = pytest.importorskip("torch")
    arrays = _inputs(shapes, dtype)
    mine = [tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = fn(*mine), fn(*theirs)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tol, atol=tol)
    w = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    out.backward(tensor(w))
    expected.backward(torch.tensor(w))
    for m, t in zip(mine, theirs):
        assert m.grad.dtype == dtype
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "fn, shapes", [c[1:] for c in DIFFERENTIABLE], ids=[c[0] for c in DIFFERENTIABLE]
)
def test_method_gradcheck(fn, shapes):
    inputs = [tensor(a, requires_grad=True) for a in _inputs(shapes, np.float64, seed=2)]
    assert gradcheck(fn, inputs)


# ---- reductions: values, indices, aliases -------------------------------------------
def test_max_and_min_with_dim_return_named_values_and_indices():
    torch = pytest.importorskip("torch")
    a = _inputs([(3, 4)], np.float32)[0]
    for name in ("max", "min"):
        for dim, keepdim in ((0, False), (1, True), (-1, False)):
            mine = getattr(tensor(a), name)(dim, keepdim)
            theirs = getattr(torch.tensor(a), name)(dim, keepdim)
            assert type(mine).__name__ == name
            np.testing.assert_array_equal(mine.values.data, theirs.values.numpy())
            np.testing.assert_array_equal(mine.indices.data, theirs.indices.numpy())
            assert mine.indices.dtype == np.int64
            values, indices = mine  # unpacks as a tuple
            assert values is mine.values and indices is mine.indices


def test_zero_dim_max_with_dim_is_the_value_and_index_zero():
    torch = pytest.importorskip("torch")
    for keepdim in (False, True):
        mine = tensor(2.5).max(dim=0, keepdim=keepdim)
        theirs = torch.tensor(2.5).max(dim=0, keepdim=keepdim)
        assert mine.values.shape == tuple(theirs.values.shape) == ()
        assert mine.values.item() == 2.5 and mine.indices.item() == theirs.indices.item() == 0
    assert tensor(2.5).argmin(0).item() == 0 and tensor(2.5).argmax().item() == 0
    assert tensor(2.5).sum(-1).item() == 2.5


def test_ties_share_the_gradient_of_full_min_max_and_amax_as_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])
    for fn in (lambda x: x.max(), lambda x: x.amax(1), lambda x: (-x).min(), lambda x: x.amin()):
        mine = tensor(a, requires_grad=True)
        theirs = torch.tensor(a, requires_grad=True)
        fn(mine).sum().backward()
        fn(theirs).sum().backward()
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy())


def test_argmin_and_argmax_match_torch():
    torch = pytest.importorskip("torch")
    a = _inputs([(3, 4)], np.float32)[0]
    for dim, keepdim in ((None, False), (0, False), (1, True)):
        for name in ("argmin", "argmax"):
            mine = getattr(tensor(a), name)(dim, keepdim)
            theirs = getattr(torch.tensor(a), name)(dim, keepdim)
            assert mine.dtype == np.int64 and not mine.requires_grad
            np.testing.assert_array_equal(mine.data, theirs.numpy())


def test_sum_and_mean_take_numpys_axis_and_keepdims():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = tensor(a)
    np.testing.assert_array_equal(x.sum(axis=1).data, a.sum(axis=1))
    np.testing.assert_array_equal(
        x.mean(axis=(0, 2), keepdims=True).data, a.mean((0, 2), keepdims=True)
    )
    np.testing.assert_array_equal(x.sum(1, keepdims=True).data, a.sum(1, keepdims=True))
    with pytest.raises(TypeError, match="dim or its alias axis"):
        x.sum(0, axis=1)


def test_std_of_a_constant_has_a_zero_gradient_as_torch():
    torch = pytest.importorskip("torch")
    mine = tensor(np.ones(4), requires_grad=True)
    theirs = torch.ones(4, dtype=torch.float64, requires_grad=True)
    mine.std().backward()
    theirs.std().backward()
    np.testing.assert_array_equal(mine.grad, theirs.grad.numpy())


def test_norm_of_zeros_has_a_zero_gradient_as_torch():
    torch = pytest.importorskip("torch")
    a = np.array([0.0, 1.0, -2.0])
    for p in (2, 0.5, 3):
        for arr in (a, np.zeros(3)):
            mine = tensor(arr, requires_grad=True)
            theirs = torch.tensor(arr, requires_grad=True)
            mine.norm(p).backward()
            theirs.norm(p).backward()
            np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), atol=1e-12)
    assert tensor([0.0, 2.0, 0.0, -1.0]).norm(0).item() == 2.0


# ---- conversions and Python protocols -------------------------------------------------
def test_long_int_bool_and_tolist_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[-1.5, 0.0], [2.7, 3.0]], np.float32)
    for name, dtype in (("long", np.int64), ("int", np.int32), ("bool", np.bool_)):
        out = getattr(tensor(a), name)()
        assert out.dtype == dtype and minidl.is_tensor(out)
        np.testing.assert_array_equal(out.data, getattr(torch.tensor(a), name)().numpy())
    assert tensor(a).tolist() == torch.tensor(a).tolist()
    assert tensor(3.5).tolist() == 3.5


def test_to_takes_minidl_dtypes_devices_and_tensors():
    x = tensor([1.0, 2.0], requires_grad=True)
    assert x.to(minidl.float64).dtype == np.float64
    assert x.to("cpu") is x
    assert x.to("cpu", minidl.float64).dtype == np.float64
    assert x.to(dtype=minidl.int64).dtype == np.int64
    assert x.to(tensor([1], dtype=minidl.int32)).dtype == np.int32
    assert x.to(minidl.float32, copy=True) is not x
    with pytest.raises(ValueError, match="CPU only"):
        x.to("cuda")
    with pytest.raises(TypeError, match="dtype must be"):
        x.to(np.complex64)


def test_size_numel_dim_len():
    x = tensor(np.zeros((2, 3, 4)))
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3 and len(x) == 2
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)
    with pytest.raises(TypeError, match="dim must be an int"):
        x.size(1.0)
    with pytest.raises(TypeError, match="0-d"):
        len(tensor(1.0))


def test_format_of_one_element_tensors():
    loss = tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235"
    assert f"{tensor([2.5]):.1f}" == "2.5"  # any one-element tensor (PyTorch: only 0-d)
    assert f"{tensor(3)}" == "3"  # a 0-d tensor formats as its value, as in PyTorch
    assert f"{tensor([1.0, 2.0])}" == repr(tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="one-element"):
        f"{tensor([1.0, 2.0]):.2f}"


# ---- in-place ops -----------------------------------------------------------------------
def test_setitem_and_inplace_ops_on_plain_tensors():
    x = minidl.zeros(2, 3)
    x[0, 1] = 5.0
    x[1] = tensor([1.0, 2.0, 3.0])
    x[tensor([0])] += 1
    assert x.add_(1) is x and x.mul_(2) is x
    np.testing.assert_array_equal(x.data, [[4, 14, 4], [4, 6, 8]])
    x.add_(tensor([1.0, 1.0, 1.0]), alpha=-2)
    np.testing.assert_array_equal(x.data, [[2, 12, 2], [2, 4, 6]])
    assert x.fill_(7.0) is x and x.data.tolist() == [[7.0] * 3] * 2
    assert x.zero_() is x and not x.data.any()


LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation."


@pytest.mark.parametrize(
    "op",
    [
        lambda w: w.zero_(),
        lambda w: w.fill_(1.0),
        lambda w: w.add_(1.0),
        lambda w: w.mul_(2.0),
        lambda w: w.copy_(w.detach() + 1),
        lambda w: w.__setitem__(0, 1.0),
    ],
)
def test_inplace_on_a_leaf_requiring_grad_is_pytorchs_error_except_under_no_grad(op):
    torch = pytest.importorskip("torch")
    w = tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="^" + LEAF_ERROR):
        op(w)
    with pytest.raises(RuntimeError, match=LEAF_ERROR):  # the same wording as PyTorch
        op(torch.tensor([1.0, 2.0, 3.0], requires_grad=True))
    np.testing.assert_array_equal(w.data, [1.0, 2.0, 3.0])
    with minidl.no_grad():
        op(w)
    assert w.requires_grad and w.is_leaf


def test_inplace_on_a_recorded_tensor_is_refused():
    y = tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="in-place operations on a tensor recorded"):
        y.add_(1.0)


def test_inplace_errors_name_the_problem():
    x = minidl.zeros(2, 3, dtype=minidl.int64)
    with pytest.raises(TypeError, match="can't be cast"):
        x.add_(0.5)
    with pytest.raises(ValueError, match="does not broadcast"):
        minidl.zeros(2, 3).add_(minidl.ones(4))
    with pytest.raises(TypeError, match="other must be"):
        minidl.zeros(2).mul_("a")


# ---- bad arguments ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda x: x.unsqueeze(3), IndexError, "out of range"),
        (lambda x: x.unsqueeze(1.0), TypeError, "dim must be an int"),
        (lambda x: x.squeeze(2), IndexError, "out of range"),
        (lambda x: x.expand(3), ValueError, "at least the number of dims"),
        (lambda x: x.expand(4, 3), ValueError, "non-singleton"),
        (lambda x: x.expand(-1, 2, 3), ValueError, "new leading dim"),
        (lambda x: x.expand(2, "a"), TypeError, "sizes must be ints"),
        (lambda x: x.repeat(2), ValueError, "can not be smaller"),
        (lambda x: x.repeat(2, -1), ValueError, "non-negative"),
        (lambda x: x.reshape(2, 3, 1).t(), ValueError, "<= 2 dims"),
        (lambda x: x[0].mT, ValueError, "matrices"),
        (lambda x: x.max(2), IndexError, "out of range"),
        (lambda x: x.max(dim=1.5), TypeError, "dim must be an int"),
        (lambda x: x.amin((0, 0)), ValueError, "repeats"),
        (lambda x: x.argmin(5), IndexError, "out of range"),
        (lambda x: x.var(0, unbiased=True, correction=1), TypeError, "not both"),
        (lambda x: x.std(correction="a"), TypeError, "correction must be a number"),
        (lambda x: x.long().var(), TypeError, "floating-point"),
        (lambda x: x.norm(p="nuc"), ValueError, "p must be"),
        (lambda x: x.long().norm(), TypeError, "floating-point"),
        (lambda x: x.clamp(), ValueError, "at least one of 'min' or 'max'"),
        (lambda x: x.clamp("a"), TypeError, "numbers or Tensors"),
        (lambda x: x.sum(dim=2), IndexError, "out of range"),
        (lambda x: x.mean(dim="a"), TypeError, "dim must be an int"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(tensor(np.ones((2, 3), np.float32)))


def test_empty_reductions_raise():
    with pytest.raises(ValueError, match="empty"):
        minidl.zeros(0).max()
    with pytest.raises(ValueError, match="size 0"):
        minidl.zeros(2, 0).max(1)
    with pytest.raises(ValueError, match="size 0"):
        minidl.zeros(2, 0).amax(1)
    with pytest.raises(ValueError, match="empty"):
        minidl.zeros(0).argmin()


# ---- reductions over random shapes and dims (hypothesis) --------------------------------
REDUCTIONS = {
    "sum": lambda x, d, k: x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean(d, keepdim=k),
    "amax": lambda x, d, k: x.amax(d, keepdim=k),
    "amin": lambda x, d, k: x.amin(d, keepdim=k),
    "var": lambda x, d, k: x.var(d, keepdim=k, correction=0),
    "std": lambda x, d, k: x.std(d, unbiased=True, keepdim=k),
    "norm": lambda x, d, k: x.norm(2, d, k),
    "norm-p1": lambda x, d, k: x.norm(1, d, k),
}


@st.composite
def _shape_and_dims(draw):
    shape = tuple(draw(st.lists(st.integers(2, 4), min_size=1, max_size=4)))
    axes = draw(
        st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True)
    )
    dims = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
    return shape, dims if len(dims) > 1 else dims[0]


@settings(max_examples=40)
@given(
    case=_shape_and_dims(),
    name=st.sampled_from(sorted(REDUCTIONS)),
    keepdim=st.booleans(),
    double=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reductions_match_torch_on_random_shapes_and_dims(case, name, keepdim, double, seed):
    torch = pytest.importorskip("torch")
    shape, dim = case
    dtype = np.float64 if double else np.float32
    fn = REDUCTIONS[name]
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    mine = tensor(a, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    out, expected = fn(mine, dim, keepdim), fn(theirs, dim, keepdim)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tol, atol=tol)
    w = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
    out.backward(w)
    expected.backward(torch.tensor(w))
    np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=tol, atol=tol)
