"""Min pooling (issue 20): against the naive reference of minidl.reference, against the
identity min_pool2d(x) == -max_pool2d(-x) in value and gradient, float64 gradcheck,
MinPool2d, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import pool_case

import minidl.nn.functional as F
from minidl import gradcheck, nn, reference, tensor

MANY = settings(max_examples=60, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])


def _data(seed, shape, ties):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many ties, the first minimum must win
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


@MANY
@given(pool_case(), st.booleans(), st.integers(0, 2**31 - 1), DTYPES)
def test_min_pool_matches_reference(case, ties, seed, dtype):
    shape, k, s, p = case
    x = _data(seed, shape, ties).astype(dtype)
    want, want_idx = reference.min_pool2d_forward(x, k, s, p)
    t = tensor(x, requires_grad=True)
    out, idx = F.min_pool2d(t, k, s, p, return_indices=True)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, want)
    np.testing.assert_array_equal(idx.data, want_idx)
    g = np.random.default_rng(seed + 1).standard_normal(want.shape).astype(dtype)
    out.backward(g)
    np.testing.assert_array_equal(t.grad, reference.max_pool2d_backward(g, want_idx, x.shape))


@MANY
@given(pool_case(), st.booleans(), st.integers(0, 2**31 - 1), DTYPES, st.booleans())
def test_min_pool_is_negated_max_pool(case, ties, seed, dtype, recorded):
    shape, k, s, p = case
    x = _data(seed, shape, ties).astype(dtype)
    a = tensor(x, requires_grad=recorded)
    b = tensor(x, requires_grad=recorded)
    out = F.min_pool2d(a, k, s, p)
    other = -F.max_pool2d(-b, k, s, p)
    np.testing.assert_array_equal(out.data, other.data)
    if recorded:
        g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
        out.backward(g)
        other.backward(g)
        np.testing.assert_array_equal(a.grad, b.grad)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 6, 10)])
def test_min_pool_2x2_layer_path(shape):
    # 2x2 / stride 2 recorded: the window-code kernel of max pooling, ties included
    x = np.random.default_rng(0).integers(-2, 3, size=shape).astype(np.float32)
    t = tensor(x, requires_grad=True)
    out = nn.MinPool2d(2)(t)
    want, idx = reference.min_pool2d_forward(x, 2)
    np.testing.assert_array_equal(out.data, want)
    out.sum().backward()
    np.testing.assert_array_equal(
        t.grad, reference.max_pool2d_backward(np.ones_like(want), idx, x.shape)
    )


def test_min_pool_padding_never_wins_and_nan_wins():
    x = np.full((1, 1, 2, 2), 5.0)
    out = F.min_pool2d(tensor(x), 3, 1, 1)
    np.testing.assert_array_equal(out.data, np.full((1, 1, 2, 2), 5.0))  # not the pad
    x[0, 0, 1, 1] = np.nan
    out = F.min_pool2d(tensor(x), 2, 1, 0)
    assert np.isnan(out.data).all()


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_min_pool_gradcheck(k, s, p):
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 7))
    assert gradcheck(lambda t: F.min_pool2d(t, k, s, p), (tensor(x, requires_grad=True),))


def test_min_pool_unbatched_and_module():
    x = np.random.default_rng(2).standard_normal((3, 6, 6)).astype(np.float32)
    layer = nn.MinPool2d(3, stride=2, padding=1, return_indices=True)
    assert repr(layer) == "MinPool2d(kernel_size=3, stride=2, padding=1)"
    out, idx = layer(tensor(x))
    want, want_idx = reference.min_pool2d_forward(x[None], 3, 2, 1)
    np.testing.assert_array_equal(out.data, want[0])
    np.testing.assert_array_equal(idx.data, want_idx[0])
    assert list(layer.state_dict()) == []


def test_min_pool_validation():
    x = tensor(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="min_pool2d.*input"):
        F.min_pool2d(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match="min_pool2d.*padding"):
        F.min_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="min_pool2d.*kernel_size"):
        F.min_pool2d(x, 0)
    with pytest.raises(ValueError, match="min_pool2d.*4-D"):
        F.min_pool2d(tensor(np.zeros((4, 4), np.float32)), 2)
    with pytest.raises(TypeError, match="min_pool2d"):
        F.min_pool2d(tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)
