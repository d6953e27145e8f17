"""minidl.zeros ... where: values and dtypes against PyTorch, seeded draws, memory
sharing, the differentiable joins (torch and gradcheck) and the argument errors."""

import numpy as np
import pytest

import minidl
from minidl import gradcheck, tensor


def test_dtype_objects_are_numpy_dtypes():
    assert minidl.float32 == np.float32 and minidl.float64 == np.float64
    assert minidl.int64 == np.int64 and minidl.int32 == np.int32 and minidl.bool == np.bool_
    assert minidl.double is minidl.float64 and minidl.long is minidl.int64
    for dt in (minidl.float32, minidl.float64, minidl.int64, minidl.int32, minidl.bool):
        assert minidl.tensor([1], dtype=dt).dtype == dt
        assert minidl.zeros(2, dtype=dt).dtype == dt
        assert minidl.tensor([1.0]).to(dt).dtype == dt
    with pytest.raises(TypeError, match="dtype must be"):
        minidl.tensor([1.0], dtype="cuda")


# each creator with the same arguments in both libraries: (id, call(lib), kwargs per lib)
CONSTANT = [
    ("zeros", lambda m: m.zeros(2, 3)),
    ("zeros-tuple", lambda m: m.zeros((2, 3))),
    ("zeros-list-0d", lambda m: m.zeros([])),
    ("ones", lambda m: m.ones(4)),
    ("ones-f64", lambda m: m.ones(2, 2, dtype=m.float64)),
    ("empty-shape", lambda m: m.empty(3, 0).shape),
    ("full-float", lambda m: m.full((2, 2), 1.5)),
    ("full-int", lambda m: m.full((3,), 7)),
    ("full-bool", lambda m: m.full((2,), True)),
    ("full-dtype", lambda m: m.full((2,), 7, dtype=m.float64)),
    ("eye", lambda m: m.eye(3)),
    ("eye-rect", lambda m: m.eye(2, 4, dtype=m.int64)),
    ("arange-int", lambda m: m.arange(5)),
    ("arange-start-end", lambda m: m.arange(2, 9, 3)),
    ("arange-float", lambda m: m.arange(0, 1, 0.1)),
    ("arange-neg-step", lambda m: m.arange(5.0, 1.0, -1.5)),
    ("arange-dtype", lambda m: m.arange(4, dtype=m.float64)),
    ("linspace", lambda m: m.linspace(-1, 1, 7)),
    ("linspace-one", lambda m: m.linspace(2, 3, 1)),
    ("linspace-f64", lambda m: m.linspace(0, 1, 11, dtype=m.float64)),
    ("zeros_like", lambda m: m.zeros_like(m.ones(2, 3, dtype=m.float64))),
    ("ones_like-dtype", lambda m: m.ones_like(m.zeros(2), dtype=m.int32)),
    ("full_like", lambda m: m.full_like(m.zeros(2), 3.0)),
]


def _np_dtype(t):
    import torch

    return torch.empty(0, dtype=t).numpy().dtype


@pytest.mark.parametrize("call", [c[1] for c in CONSTANT], ids=[c[0] for c in CONSTANT])
def test_constant_creators_match_torch(call):
    torch = pytest.importorskip("torch")
    mine, theirs = call(minidl), call(torch)
    if isinstance(mine, tuple):
        assert mine == tuple(theirs)
        return
    assert mine.dtype == _np_dtype(theirs.dtype)
    np.testing.assert_allclose(mine.data, theirs.numpy(), rtol=1e-6, atol=1e-7)
    assert mine.is_leaf and not mine.requires_grad


def test_creators_take_requires_grad():
    for t in (
        minidl.zeros(2, requires_grad=True),
        minidl.rand(2, requires_grad=True),
        minidl.full((2,), 1.0, requires_grad=True),
        minidl.linspace(0, 1, 3, requires_grad=True),
    ):
        assert t.requires_grad and t.is_leaf
    with pytest.raises(TypeError, match="floating-point"):
        minidl.arange(3, requires_grad=True)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: minidl.rand(3, 4),
        lambda: minidl.randn(2, 5, dtype=minidl.float64),
        lambda: minidl.randint(10, (4, 4)),
        lambda: minidl.randint(-3, 3, size=(20,)),
    ],
)
def test_random_draws_repeat_after_manual_seed(draw):
    minidl.manual_seed(7)
    first = draw().data.copy()
    second = draw().data
    minidl.manual_seed(7)
    again = draw().data
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)


def test_random_draws_have_pytorchs_dtypes_and_ranges():
    minidl.manual_seed(0)
    u = minidl.rand(1000)
    assert u.dtype == np.float32 and u.shape == (1000,) and u.data.min() >= 0 and u.data.max() < 1
    n = minidl.randn(20000, dtype=minidl.float64)
    assert n.dtype == np.float64 and abs(n.data.mean()) < 0.05 and abs(n.data.std() - 1) < 0.05
    i = minidl.randint(2, 5, (1000,))
    assert i.dtype == np.int64 and set(np.unique(i.data)) == {2, 3, 4}
    assert minidl.randint(3, (2,), dtype=minidl.int32).dtype == np.int32
    g = np.random.default_rng(3)
    np.testing.assert_array_equal(
        minidl.rand(3, generator=g).data, np.random.default_rng(3).random(3, dtype=np.float32)
    )


def test_from_numpy_shares_memory():
    a = np.zeros(3, np.float64)
    t = minidl.from_numpy(a)
    assert t.dtype == np.float64
    a[0] = 5
    t.data[1] = 7
    assert t.data[0] == 5 and a[1] == 7
    with pytest.raises(TypeError, match="np.ndarray"):
        minidl.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype"):
        minidl.from_numpy(np.array(["a"]))


# ---- cat, stack, where ----------------------------------------------------------------------
JOINS = [
    ("cat0", lambda m, a, b, c: m.cat([a, b, c]), [(2, 3), (1, 3), (4, 3)]),
    ("cat1", lambda m, a, b: m.cat((a, b), dim=1), [(2, 3), (2, 1)]),
    ("cat-neg", lambda m, a, b: m.cat([a, b], -1), [(2, 2, 3), (2, 2, 2)]),
    ("stack0", lambda m, a, b: m.stack([a, b]), [(2, 3), (2, 3)]),
    ("stack-last", lambda m, a, b, c: m.stack([a, b, c], dim=-1), [(2, 3), (2, 3), (2, 3)]),
    ("stack-0d", lambda m, a, b: m.stack([a, b]), [(), ()]),
    ("where", lambda m, a, b: m.where(a > 0, a, b), [(3, 4), (3, 4)]),
    ("where-broadcast", lambda m, a, b: m.where(a > 0, a, b), [(3, 4), (4,)]),
    ("where-scalar", lambda m, a: m.where(a > 0, a, 0.0), [(3, 4)]),
    ("where-cond-bigger", lambda m, a, b: m.where(b > 0, a, 1.0), [(4,), (3, 4)]),
    ("method-mix", lambda m, a, b: m.cat([a.unsqueeze(0), b.expand(1, 3)]).sum(0), [(3,), (1, 3)]),
]


def _arrays(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn, shapes", [j[1:] for j in JOINS], ids=[j[0] for j in JOINS])
def test_joins_match_torch(fn, shapes, dtype):
    torch = pytest.importorskip("torch")
    arrays = _arrays(shapes, dtype)
    mine = [tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = fn(minidl, *mine), fn(torch, *theirs)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, expected.detach().numpy())
    w = _arrays([out.shape], dtype, seed=1)[0]
    out.backward(tensor(w))
    expected.backward(torch.tensor(w))
    for m, t in zip(mine, theirs):
        if t.grad is None:
            assert m.grad is None
        else:
            np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn, shapes", [j[1:] for j in JOINS], ids=[j[0] for j in JOINS])
def test_joins_gradcheck(fn, shapes):
    inputs = [tensor(a, requires_grad=True) for a in _arrays(shapes, np.float64, seed=2)]
    assert gradcheck(lambda *ts: fn(minidl, *ts), inputs)


def test_joins_pass_gradients_only_to_inputs_that_need_them():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0])
    minidl.cat([a, b]).sum().backward()
    minidl.stack([b, a]).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    assert b.grad is None


def test_joins_promote_ints_and_refuse_mixed_floats():
    out = minidl.cat([tensor([1.0]), tensor([2])])
    assert out.dtype == np.float32 and out.data.tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="float32.*float64"):
        minidl.stack([tensor([1.0]), tensor([1.0], dtype=minidl.float64)])


def test_where_with_only_a_condition_gives_indices_as_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 1.0], [2.0, 0.0]])
    mine = minidl.where(tensor(a) > 0)
    theirs = torch.where(torch.tensor(a) > 0)
    assert len(mine) == len(theirs) == 2
    for m, t in zip(mine, theirs):
        np.testing.assert_array_equal(m.data, t.numpy())
        assert m.dtype == np.int64


# ---- bad arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: minidl.zeros(2, -1), ValueError, "negative dimension"),
        (lambda: minidl.ones(2.5), TypeError, "size must be ints"),
        (lambda: minidl.zeros(2, dtype="cuda"), TypeError, "dtype must be"),
        (lambda: minidl.zeros(2, dtype=np.float16), TypeError, "dtype must be"),
        (lambda: minidl.full((2,), "a"), TypeError, "fill_value must be a number"),
        (lambda: minidl.zeros_like(np.zeros(2)), TypeError, "must be a minidl.Tensor"),
        (lambda: minidl.eye(-2), ValueError, "negative"),
        (lambda: minidl.rand(2, dtype=minidl.int64), TypeError, "floating-point"),
        (lambda: minidl.rand(2, generator=3), TypeError, "numpy.random.Generator"),
        (lambda: minidl.randint(5, 5, (2,)), ValueError, "smaller than high"),
        (lambda: minidl.randint(2.5, (2,)), TypeError, "high must be an int"),
        (lambda: minidl.randint(1, 2, 3, (2,)), TypeError, "randint\\(high, size\\)"),
        (lambda: minidl.randint(), TypeError, "missing the size"),
        (lambda: minidl.arange(0, 5, 0), ValueError, "step must be nonzero"),
        (lambda: minidl.arange(5, 0, 1), ValueError, "inconsistent with step sign"),
        (lambda: minidl.arange("a"), TypeError, "must be a number"),
        (lambda: minidl.linspace(0, 1, -1), ValueError, "non-negative"),
        (lambda: minidl.linspace(0, 1, 2.0), TypeError, "steps must be an int"),
        (lambda: minidl.cat([]), ValueError, "non-empty"),
        (lambda: minidl.cat(tensor([1.0])), TypeError, "list or tuple"),
        (lambda: minidl.cat([tensor([1.0]), np.ones(1)]), TypeError, r"tensors\[1\]"),
        (lambda: minidl.cat([tensor(1.0), tensor(2.0)]), ValueError, "zero-dimensional"),
        (lambda: minidl.cat([minidl.zeros(2, 3), minidl.zeros(2, 4)]), ValueError, "must match"),
        (lambda: minidl.cat([minidl.zeros(2, 3)], dim=2), IndexError, "out of range"),
        (lambda: minidl.stack([minidl.zeros(2), minidl.zeros(3)]), ValueError, "equal size"),
        (lambda: minidl.stack([minidl.zeros(2)], dim=2), IndexError, "out of range"),
        (lambda: minidl.where(minidl.ones(2), minidl.ones(2), 0.0), TypeError, "bool"),
        (lambda: minidl.where(minidl.ones(2) > 0, minidl.ones(3), 0.0), ValueError, "broadcast"),
        (lambda: minidl.where(minidl.ones(2) > 0, minidl.ones(2)), TypeError, "both"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
