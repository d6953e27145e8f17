"""ReLU's kernels (minidl._kernels._activation) against the numpy expressions they
replace, bit for bit: the forward np.maximum(x, 0), the backward (x > 0) * g as a float
mask times the gradient, including signed zeros, infinities and NaNs, on 1 and 2
threads; and F.relu through them and through its numpy fallback."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import examples, kernels

import minidl
import minidl.nn.functional as F

SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3.0, -3.0]


def _arrays(dtype, n, seed):
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(SPECIALS) + 1, size=(2, n))
    x, g = rng.standard_normal((2, n))
    specials = np.array(SPECIALS)
    x = np.where(pick[0] < len(SPECIALS), specials[pick[0] % len(SPECIALS)], x)
    g = np.where(pick[1] < len(SPECIALS), specials[pick[1] % len(SPECIALS)], g)
    return x.astype(dtype), g.astype(dtype)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 70_000),  # past one 16384-element chunk, and past a thread's share
    st.integers(1, 2),
    st.integers(0, 2**32 - 1),
)
def test_relu_kernels_give_numpys_bits(dtype, n, threads, seed):
    K = kernels()
    x, g = _arrays(dtype, n, seed)
    with np.errstate(invalid="ignore"):
        want_y = np.maximum(x, 0)
        want_gx = np.greater(x, 0).astype(dtype) * g
    y = K.relu_forward(x, threads)
    gx = K.relu_backward(x, g, threads)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert y.tobytes() == want_y.tobytes()
    assert gx.tobytes() == want_gx.tobytes()


def test_relu_kernels_split_over_threads_and_agree():
    K = kernels()
    x, g = _arrays(np.float32, 1 << 20, 5)
    one = K.relu_forward(x, 1), K.relu_backward(x, g, 1)
    two = K.relu_forward(x, 2), K.relu_backward(x, g, 2)
    if K.openmp_enabled():  # 1M elements: enough work for two threads
        assert K.planned_threads(K.relu_backward) == 2
    assert one[0].tobytes() == two[0].tobytes() and one[1].tobytes() == two[1].tobytes()


@pytest.mark.parametrize(
    "x, g",
    [
        (np.ones((4, 4), np.float32)[:, ::2], np.ones((4, 2), np.float32)),  # strided x
        (np.ones(5, np.float32), np.ones(5, np.float64)),  # dtypes differ
        (np.ones(5, np.float32), np.ones(6, np.float32)),  # shapes differ
        (np.ones(5, np.float16), np.ones(5, np.float16)),  # not float32 / float64
        ([1.0, 2.0], np.ones(2)),  # not an ndarray
    ],
)
def test_relu_kernels_decline_what_they_do_not_take(x, g):
    K = kernels()
    assert K.relu_backward(x, g, 1) is None
    if not (isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)) or not (
        x.flags.c_contiguous
    ):
        assert K.relu_forward(x, 1) is None


@pytest.mark.parametrize("contiguous", [True, False])
def test_functional_relu_matches_numpy_on_both_paths(contiguous):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    data = base if contiguous else base[:, ::2]
    x = minidl.tensor(np.array(data, copy=True) if contiguous else data, requires_grad=True)
    y = F.relu(x)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    assert np.asarray(y.data).tobytes() == np.maximum(data, 0).tobytes()
    assert x.grad.tobytes() == (np.greater(data, 0).astype(np.float32) * g).tobytes()
