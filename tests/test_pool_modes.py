"""Pooling options as PyTorch: ceil_mode, count_include_pad, divisor_override,
return_indices with MaxUnpool2d, unbatched (C, H, W) inputs, empty batches, dtypes."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_checks import pool_case
from torch_compare import compare

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor

MANY = settings(max_examples=60, deadline=None)


def _data(seed, shape):
    # distinct values: no ties for the max, so the gradient has one home
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 - 3


@MANY
@given(
    pool_case(), st.booleans(), st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64])
)
def test_max_pool_ceil_mode_and_indices_match_torch(case, ceil, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, k, s, p = case
    x = _data(seed, shape)
    compare(
        lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil),
        lambda t: torch.nn.functional.max_pool2d(t, k, s, p, ceil_mode=ceil),
        [x],
        dtype,
        seed,
    )
    out, idx = F.max_pool2d(tensor(x.astype(dtype)), k, s, p, ceil_mode=ceil, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(
        torch.tensor(x.astype(dtype)), k, s, p, ceil_mode=ceil, return_indices=True
    )
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
    np.testing.assert_array_equal(out.data, t_out.numpy())


@MANY
@given(
    pool_case(),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, 1, 2, 5]),
    st.integers(0, 2**31 - 1),
    st.sampled_from([np.float32, np.float64]),
)
def test_avg_pool_modes_match_torch(case, ceil, include, divisor, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, k, s, p = case
    x = np.random.default_rng(seed).standard_normal(shape)
    args = (k, s, p, ceil, include, divisor)
    compare(
        lambda t: F.avg_pool2d(t, *args),
        lambda t: torch.nn.functional.avg_pool2d(t, *args),
        [x],
        dtype,
        seed,
    )


@settings(max_examples=20, deadline=None)
@given(pool_case(), st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_ceil_mode_pooling_gradcheck(case, include, unbatched, seed):
    shape, k, s, p = case
    if unbatched:
        shape = shape[1:]
    x = tensor(_data(seed, shape), requires_grad=True)
    gradcheck(lambda t: F.max_pool2d(t, k, s, p, ceil_mode=True), [x])
    gradcheck(lambda t: F.avg_pool2d(t, k, s, p, True, include), [x])


def test_ceil_mode_known_sizes():
    x = tensor(np.arange(25.0).reshape(1, 1, 5, 5))
    assert F.max_pool2d(x, 2).shape == (1, 1, 2, 2)
    out = F.max_pool2d(x, 2, ceil_mode=True)
    assert out.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(out.data[0, 0, 2], [21, 23, 24])
    # the last window would start in the right padding: PyTorch drops it
    assert F.max_pool2d(tensor(np.zeros((1, 1, 4, 4))), 2, 2, 1, ceil_mode=True).shape == (
        1,
        1,
        3,
        3,
    )
    avg = F.avg_pool2d(x, 2, ceil_mode=True)
    assert avg.data[0, 0, 2, 2] == 24  # a 1x1 window past the edge divides by 1


@MANY
@given(
    pool_case(), st.booleans(), st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64])
)
def test_max_unpool_matches_torch(case, ceil, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, k, s, p = case
    assume(s[0] >= k[0] and s[1] >= k[1])  # no window overlap: every index distinct
    x = _data(seed, shape)
    _, idx = F.max_pool2d(tensor(x), k, s, p, ceil_mode=ceil, return_indices=True)
    values = np.random.default_rng(seed).standard_normal(idx.shape)
    out_hw = shape[2:]
    compare(
        lambda v, i: F.max_unpool2d(v, i, k, s, p, output_size=out_hw),
        lambda v, i: torch.nn.functional.max_unpool2d(v, i, k, s, p, output_size=out_hw),
        [values, idx.data],
        dtype,
        seed,
    )


def test_max_unpool_default_size_gradcheck_and_layer():
    pool = nn.MaxPool2d(2, return_indices=True)
    unpool = nn.MaxUnpool2d(2)
    assert repr(unpool) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    x = tensor(_data(1, (2, 3, 4, 6)))
    y, idx = pool(x)
    z = unpool(y, idx)
    assert z.shape == x.shape
    np.testing.assert_array_equal(z.data, np.where(z.data != 0, x.data, 0))
    assert np.count_nonzero(z.data) == y.data.size
    v = tensor(np.random.default_rng(0).standard_normal(y.shape), requires_grad=True)
    gradcheck(lambda t: F.max_unpool2d(t, idx, 2), [v])
    with pytest.raises(ValueError, match="out of range"):
        F.max_unpool2d(y, minidl.Tensor(idx.data + 100), 2)
    with pytest.raises(ValueError, match="does not match"):
        F.max_unpool2d(y, minidl.Tensor(idx.data[:1]), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool2d(y, idx, 2, output_size=(20, 20))


@pytest.mark.parametrize("layer", [nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.AvgPool2d(3, 2, 1)])
def test_pool_layers_take_unbatched_inputs(layer):
    x = np.random.default_rng(0).standard_normal((3, 7, 6))
    batched = layer(tensor(x[None]))
    single = layer(tensor(x))
    assert single.shape == batched.shape[1:]
    np.testing.assert_array_equal(single.data, batched.data[0])


def test_unbatched_indices_match_torch():
    torch = pytest.importorskip("torch")
    x = _data(3, (2, 5, 5))
    out, idx = F.max_pool2d(tensor(x), 2, ceil_mode=True, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(
        torch.tensor(x), 2, ceil_mode=True, return_indices=True
    )
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
    np.testing.assert_array_equal(out.data, t_out.numpy())


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: F.max_pool2d(t, 2),
        lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True, return_indices=True)[0],
        lambda t: F.avg_pool2d(t, 2, ceil_mode=True),
        lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False),
    ],
)
def test_empty_batch_pools_to_empty_output_with_zero_gradient(fn):
    x = tensor(np.zeros((0, 3, 5, 5), np.float32), requires_grad=True)
    out = fn(x)
    assert out.shape[0] == 0 and out.shape[1] == 3 and out.dtype == np.float32
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("fn", [F.max_pool2d, F.avg_pool2d])
def test_float16_pooling_is_a_type_error_naming_the_dtypes(fn):
    with pytest.raises(TypeError, match="float32 or float64.*float16"):
        fn(tensor(np.zeros((1, 1, 4, 4), np.float16)), 2)


def test_pool_argument_errors():
    x = tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(x, 2, padding=2, ceil_mode=True)
    with pytest.raises(ValueError, match="3-D or 4-D|4-D input"):
        F.max_pool2d(tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="empty input"):
        F.avg_pool2d(tensor(np.zeros((1, 0, 4, 4))), 2)


def test_pool_layer_reprs_match_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.AvgPool2d(2, ceil_mode=True), torch.nn.AvgPool2d(2, ceil_mode=True)),
        (nn.MaxUnpool2d(3, 2), torch.nn.MaxUnpool2d(3, 2)),
    ]:
        assert repr(ours) == repr(theirs)
