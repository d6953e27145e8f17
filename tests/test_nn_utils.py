"""nn.utils against torch.nn.utils: gradient clipping and parameters as one vector."""

import math

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)

torch = pytest.importorskip("torch")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-7)}


def _pairs(dtype, scale=1.0, seed=0, with_none=True):
    """Parameters with gradients, minidl's and torch's, the same numbers; one without."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 1, 3)]
    ours, theirs = [], []
    for i, shape in enumerate(shapes + ([(5,)] if with_none else [])):
        data = rng.standard_normal(shape).astype(dtype)
        p, q = nn.Parameter(data.copy()), torch.tensor(data, requires_grad=True)
        if i < len(shapes):
            g = (scale * rng.standard_normal(shape)).astype(dtype)
            p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def _same_grads(ours, theirs, dtype):
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, q.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "max_norm, norm_type, scale",
    [
        (1.0, 2.0, 1.0),  # clipped
        (100.0, 2.0, 1.0),  # not clipped: the grads still get multiplied by 1
        (0.5, 1, 3.0),
        (2.0, math.inf, 1.0),
        (2.0, "inf", 5.0),
        (0.3, 3.0, 1.0),
        (1.0, 0.5, 1.0),
        (0.0, 2.0, 1.0),
    ],
)
def test_clip_grad_norm_matches_torch(dtype, max_norm, norm_type, scale):
    ours, theirs = _pairs(dtype, scale)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, minidl.Tensor) and total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(total.data, expected.numpy(), **TOL[dtype])
    _same_grads(ours, theirs, dtype)


def test_clip_grad_norm_on_one_tensor_a_generator_and_nothing():
    ours, theirs = _pairs(np.float64)
    t = clip_grad_norm_(ours[0], 0.1)
    e = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    np.testing.assert_allclose(t.data, e.numpy(), rtol=1e-12)
    _same_grads(ours[:1], theirs[:1], np.float64)
    model = nn.Linear(3, 2)
    for p in model.parameters():
        p.grad = np.ones(p.shape, np.float32)
    clip_grad_norm_(model.parameters(), 1.0)
    np.testing.assert_allclose(
        math.sqrt(sum((p.grad**2).sum() for p in model.parameters())), 1.0, rtol=1e-5
    )
    assert clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_non_finite(bad):
    ours, theirs = _pairs(np.float64)
    ours[0].grad[0, 0] = bad
    theirs[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):
        total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(total.data, expected.numpy())
    for p, q in zip(ours, theirs):
        if q.grad is not None:
            np.testing.assert_array_equal(p.grad, q.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip_value", [0.0, 0.25, 1.0, 10])
def test_clip_grad_value_matches_torch(dtype, clip_value):
    ours, theirs = _pairs(dtype, scale=2.0)
    grads = [p.grad for p in ours if p.grad is not None]
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _same_grads(ours, theirs, dtype)
    assert all(p.grad is g for p, g in zip(ours, grads))  # in place, as torch's


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parameters_to_vector_and_back_match_torch(dtype):
    ours, theirs = _pairs(dtype)
    vec = parameters_to_vector(ours)
    expected = torch.nn.utils.parameters_to_vector(theirs)
    assert isinstance(vec, minidl.Tensor) and vec.dtype == dtype
    np.testing.assert_array_equal(vec.data, expected.detach().numpy())
    vec.data[0] = 123.0  # a copy: the parameters do not change
    assert ours[0].data[0, 0] != 123.0
    new = np.arange(vec.shape[0], dtype=dtype) / 7
    arrays = [p.data for p in ours]
    vector_to_parameters(minidl.tensor(new), ours)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.from_numpy(new), theirs)
    for p, q, a in zip(ours, theirs, arrays):
        assert p.data is a  # copied into the parameter's own array
        np.testing.assert_array_equal(p.data, q.detach().numpy())
    np.testing.assert_array_equal(parameters_to_vector(ours).data, new)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm"),
        (lambda ps: clip_grad_norm_(ps, "1"), TypeError, "max_norm"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=None), TypeError, "norm_type"),
        (lambda ps: clip_grad_norm_(ps, float("nan")), ValueError, "max_norm"),
        (lambda ps: clip_grad_norm_(5, 1.0), TypeError, "parameters"),
        (lambda ps: clip_grad_norm_([np.zeros(2)], 1.0), TypeError, "Tensors"),
        (lambda ps: clip_grad_value_(ps, -0.5), ValueError, "clip_value"),
        (lambda ps: clip_grad_value_(ps, None), TypeError, "clip_value"),
        (lambda ps: parameters_to_vector([]), ValueError, "empty"),
        (lambda ps: vector_to_parameters(np.zeros(27), ps), TypeError, "Tensor"),
        (lambda ps: vector_to_parameters(minidl.tensor(np.zeros(30)), ps), ValueError, "have 27"),
        (lambda ps: vector_to_parameters(minidl.tensor(np.zeros((27, 1))), ps), ValueError, "1-D"),
    ],
)
def test_errors(call, error, message):
    ours, _ = _pairs(np.float64)
    with pytest.raises(error, match=message):
        call(ours)
