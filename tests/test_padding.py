"""F.pad: constant, reflect, replicate and circular against PyTorch, gradcheck, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_compare import compare

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, tensor

SOME = settings(max_examples=40, deadline=None)


@st.composite
def pad_case(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    if mode == "constant":
        ndim = draw(st.integers(1, 4))
        k = draw(st.integers(1, ndim))
    else:
        k = draw(st.integers(1, 3))
        ndim = draw(st.sampled_from([k + 1, k + 2]))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    pads = []
    for i in range(k):
        size = shape[ndim - 1 - i]
        if mode == "constant":
            lo, hi = -(size // 2), 3
        elif mode == "reflect":
            lo, hi = 0, size - 1
        elif mode == "circular":
            lo, hi = 0, size
        else:
            lo, hi = 0, 3
        pads += [draw(st.integers(lo, hi)), draw(st.integers(lo, hi))]
    value = draw(st.floats(-2, 2)) if mode == "constant" else None
    return shape, tuple(pads), mode, value


@SOME
@given(pad_case(), st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]))
def test_pad_matches_torch(case, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, pads, mode, value = case
    x = np.random.default_rng(seed).standard_normal(shape)
    kw = {} if value is None else {"value": value}
    compare(
        lambda t: F.pad(t, pads, mode, **kw),
        lambda t: torch.nn.functional.pad(t, pads, mode, **kw),
        [x],
        dtype,
        seed,
    )


@settings(max_examples=15, deadline=None)
@given(pad_case(), st.integers(0, 2**31 - 1))
def test_pad_gradcheck(case, seed):
    shape, pads, mode, value = case
    x = tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    kw = {} if value is None else {"value": value}
    gradcheck(lambda t: F.pad(t, pads, mode, **kw), [x])


def test_pad_known_values():
    x = tensor(np.arange(3.0))
    np.testing.assert_array_equal(F.pad(x, (2, 1), value=9).data, [9, 9, 0, 1, 2, 9])
    x2 = tensor(np.arange(3.0).reshape(1, 3))
    np.testing.assert_array_equal(F.pad(x2, (2, 2), "reflect").data[0], [2, 1, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(F.pad(x2, (2, 1), "replicate").data[0], [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(F.pad(x2, (2, 1), "circular").data[0], [1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(F.pad(x, (-1, 0)).data, [1, 2])


@pytest.mark.parametrize(
    "shape, pads, mode, error, match",
    [
        ((2, 3), (1,), "constant", ValueError, "even"),
        ((2, 3), (1, 1, 1, 1, 1, 1), "constant", ValueError, "only 2 dims"),
        ((3,), (1, 1), "reflect", ValueError, "2-D or 3-D input"),
        ((1, 2, 3, 3), (1, 1), "replicate", ValueError, "2-D or 3-D input"),
        ((1, 3), (3, 0), "reflect", ValueError, "smaller than the dim size"),
        ((1, 3), (4, 0), "circular", ValueError, "at most the dim size"),
        ((1, 3), (-1, 0), "reflect", ValueError, "non-negative"),
        ((1, 3), (1, 1), "wrap", ValueError, "mode must be one of"),
        ((1, 3), (1.5, 1), "constant", TypeError, "ints"),
        ((1, 3), 1, "constant", TypeError, "tuple"),
        ((1, 3), (-2, -2), "constant", ValueError, "negative"),
    ],
)
def test_pad_errors(shape, pads, mode, error, match):
    with pytest.raises(error, match=match):
        F.pad(tensor(np.zeros(shape)), pads, mode)


def test_pad_value_only_for_constant_and_tensor_input():
    with pytest.raises(ValueError, match="value"):
        F.pad(tensor(np.zeros((1, 3))), (1, 1), "reflect", value=1.0)
    with pytest.raises(TypeError, match="minidl.Tensor"):
        F.pad(np.zeros(3), (1, 1))
    assert F.pad(minidl.tensor(np.zeros((2, 3), np.float32)), (1, 1)).dtype == np.float32
