"""relu6, adaptive_avg_pool2d and interpolate (nearest, bilinear): against the naive loops
of minidl.reference (float32 and float64), float64 gradcheck, PyTorch's numbers, and the
errors for bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor
from minidl import reference as R

SOME = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=15, deadline=None)
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def randn(seed, shape, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def forward_backward(fn, x, seed):
    """(output, input gradient for a random output gradient, that output gradient)."""
    t = tensor(x, requires_grad=True)
    y = fn(t)
    g = randn(seed + 1, y.shape, x.dtype)
    y.backward(g)
    return y.data, t.grad, g


def close(a, b, dtype):
    np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype])


# ---- relu6 ---------------------------------------------------------------------------
def test_relu6_values_and_gradient_at_the_kinks():
    x = tensor(np.array([-2.0, 0.0, 0.5, 3.0, 6.0, 7.5]), requires_grad=True)
    y = F.relu6(x)
    y.backward(np.ones(6))
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 0.5, 3.0, 6.0, 6.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])


def test_relu6_gradcheck_and_module():
    x = np.random.default_rng(0).uniform(-3, 9, (4, 5))
    x[np.abs(x) < 0.05] += 0.1  # keep finite differences away from the kinks
    x[np.abs(x - 6) < 0.05] += 0.1
    assert gradcheck(F.relu6, [tensor(x, requires_grad=True)])
    np.testing.assert_array_equal(nn.ReLU6()(tensor(x)).data, np.clip(x, 0, 6))
    assert repr(nn.ReLU6()) == "ReLU6()"
    assert repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"


def test_relu6_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).uniform(-3, 9, (3, 40)).astype(np.float32)
    x[0, :4] = [0.0, 6.0, -0.0, 5.999]
    y, gx, g = forward_backward(F.relu6, x, 1)
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.relu6(t).backward(torch.tensor(g))
    np.testing.assert_array_equal(y, torch.nn.functional.relu6(t).detach().numpy())
    np.testing.assert_array_equal(gx, t.grad.numpy())


# ---- adaptive average pooling --------------------------------------------------------
@st.composite
def adaptive_case(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    out = tuple(draw(st.one_of(st.none(), st.integers(1, 11))) for _ in range(2))
    if draw(st.booleans()) and out[0] is not None:
        out = out[0]  # an int means (out, out)
    return (n, c, h, w), out


def resolved(out, hw):
    pair = out if isinstance(out, tuple) else (out, out)
    return tuple(s if o is None else o for o, s in zip(pair, hw))


@SOME
@given(adaptive_case(), dtypes, seeds)
def test_adaptive_avg_pool2d_matches_reference(case, dtype, seed):
    shape, out = case
    x = randn(seed, shape, dtype)
    y, gx, g = forward_backward(lambda t: F.adaptive_avg_pool2d(t, out), x, seed)
    size = resolved(out, shape[2:])
    assert y.shape == shape[:2] + size and y.dtype == dtype
    close(y, R.adaptive_avg_pool2d_forward(x, size), dtype)
    close(gx, R.adaptive_avg_pool2d_backward(g, shape), dtype)


@FEW
@given(adaptive_case(), seeds)
def test_adaptive_avg_pool2d_gradcheck(case, seed):
    shape, out = case
    x = tensor(randn(seed, shape), requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), [x])


def test_adaptive_avg_pool2d_output_1_is_global_average_and_3d_input_works():
    x = randn(3, (2, 3, 5, 7))
    y = F.adaptive_avg_pool2d(tensor(x), 1)
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    y3 = F.adaptive_avg_pool2d(tensor(x[0]), (2, None))
    np.testing.assert_allclose(y3.data, R.adaptive_avg_pool2d_forward(x[:1], (2, 7))[0])
    x3 = tensor(x[0], requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 4)), [x3])


def test_adaptive_windows_overlap_when_sizes_do_not_divide():
    # 5 -> 3: windows [0, 2), [1, 4), [3, 5) (PyTorch's floor/ceil formula)
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    y = F.adaptive_avg_pool2d(tensor(x), (1, 3)).data.ravel()
    np.testing.assert_allclose(y, [0.5, 2.0, 3.5])


@SOME
@given(adaptive_case(), dtypes, seeds)
def test_adaptive_avg_pool2d_matches_torch(case, dtype, seed):
    torch = pytest.importorskip("torch")
    shape, out = case
    x = randn(seed, shape, dtype)
    y, gx, g = forward_backward(lambda t: F.adaptive_avg_pool2d(t, out), x, seed)
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.adaptive_avg_pool2d(t, out)
    ref.backward(torch.tensor(g))
    close(y, ref.detach().numpy(), dtype)
    close(gx, t.grad.numpy(), dtype)


def test_adaptive_avg_pool2d_module():
    pool = nn.AdaptiveAvgPool2d((None, 3))
    assert repr(pool) == "AdaptiveAvgPool2d(output_size=(None, 3))"
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    assert pool.state_dict() == {}
    x = randn(4, (2, 2, 4, 6))
    np.testing.assert_array_equal(
        pool(tensor(x)).data, F.adaptive_avg_pool2d(tensor(x), (None, 3)).data
    )


@pytest.mark.parametrize(
    "output_size, error, match",
    [
        (-1, ValueError, "output_size must be >= 0"),
        ((2, 3, 4), ValueError, "2 entries"),
        (2.5, TypeError, "output_size"),
        (("a", 2), TypeError, "output_size"),
        (None, TypeError, "output_size"),
        (True, TypeError, "output_size"),
    ],
)
def test_adaptive_avg_pool2d_rejects_bad_sizes(output_size, error, match):
    x = tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(error, match=match):
        F.adaptive_avg_pool2d(x, output_size)
    with pytest.raises(error, match=match):
        nn.AdaptiveAvgPool2d(output_size)


def test_adaptive_avg_pool2d_rejects_bad_inputs():
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        F.adaptive_avg_pool2d(tensor(np.zeros((4, 4))), 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.adaptive_avg_pool2d(tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)
    with pytest.raises(TypeError, match="'input' must be a minidl.Tensor"):
        F.adaptive_avg_pool2d(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match="empty spatial size"):
        F.adaptive_avg_pool2d(tensor(np.zeros((1, 1, 0, 4))), 2)


# ---- interpolate ---------------------------------------------------------------------
@st.composite
def interp_case(draw, mode=None):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    mode = mode or draw(st.sampled_from(["nearest", "bilinear"]))
    align = None if mode == "nearest" else draw(st.sampled_from([None, False, True]))
    kw = {"mode": mode, "align_corners": align}
    if draw(st.booleans()):
        size = (draw(st.integers(1, 15)), draw(st.integers(1, 15)))
        kw["size"] = size if draw(st.booleans()) or size[0] != size[1] else size[0]
    else:
        factors = st.sampled_from([0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0, 1 / 3, 4.2])
        sh = draw(factors.filter(lambda s: int(np.floor(h * s)) >= 1))
        sw = draw(factors.filter(lambda s: int(np.floor(w * s)) >= 1))
        kw["scale_factor"] = (sh, sw) if sh != sw else sh
        kw["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    return (n, c, h, w), kw


def reference_interpolate(x, g, kw):
    """The naive loops' output and input gradient for F.interpolate's arguments."""
    h, w = x.shape[2:]
    if "size" in kw:
        size = kw["size"] if isinstance(kw["size"], tuple) else (kw["size"],) * 2
        scales = (None, None)
    else:
        sf = kw["scale_factor"]
        sf = sf if isinstance(sf, tuple) else (sf, sf)
        size = (int(np.floor(h * sf[0])), int(np.floor(w * sf[1])))
        scales = (None, None) if kw["recompute_scale_factor"] else sf
    if kw["mode"] == "nearest":
        return (
            R.interpolate_nearest_forward(x, size, scales),
            R.interpolate_nearest_backward(g, x.shape, scales),
        )
    align = bool(kw["align_corners"])
    return (
        R.interpolate_bilinear_forward(x, size, scales, align),
        R.interpolate_bilinear_backward(g, x.shape, scales, align),
    )


@settings(max_examples=80, deadline=None)
@given(interp_case(), dtypes, seeds)
def test_interpolate_matches_reference(case, dtype, seed):
    shape, kw = case
    x = randn(seed, shape, dtype)
    y, gx, g = forward_backward(lambda t: F.interpolate(t, **kw), x, seed)
    ry, rg = reference_interpolate(x, g, kw)
    assert y.shape == ry.shape and y.dtype == dtype
    if kw["mode"] == "nearest":
        np.testing.assert_array_equal(y, ry)  # a copy: bit for bit
    else:
        close(y, ry, dtype)
    close(gx, rg, dtype)


@FEW
@given(interp_case(), seeds)
def test_interpolate_gradcheck(case, seed):
    shape, kw = case
    x = tensor(randn(seed, shape), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, **kw), [x])


@settings(max_examples=120, deadline=None)
@given(interp_case(), dtypes, seeds)
def test_interpolate_matches_torch(case, dtype, seed):
    torch = pytest.importorskip("torch")
    shape, kw = case
    x = randn(seed, shape, dtype)
    y, gx, g = forward_backward(lambda t: F.interpolate(t, **kw), x, seed)
    t = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.interpolate(t, **kw)
    ref.backward(torch.tensor(g))
    if kw["mode"] == "nearest":
        np.testing.assert_array_equal(y, ref.detach().numpy())  # the same pixels picked
    else:
        close(y, ref.detach().numpy(), dtype)
    # float32 gradients sum many terms in a different order: relative to their size
    np.testing.assert_allclose(gx, t.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype] * 10)


def test_nearest_and_bilinear_by_hand():
    x = tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    near = F.interpolate(x, scale_factor=2).data[0, 0]
    np.testing.assert_array_equal(near, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    # align_corners=True: the corners stay, the middle row/column is the mean of the two
    corners = F.interpolate(x, size=3, mode="bilinear", align_corners=True).data[0, 0]
    np.testing.assert_allclose(corners, [[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]])
    # align_corners=False, 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25
    row = F.interpolate(x, size=(1, 4), mode="bilinear").data[0, 0, 0]
    np.testing.assert_allclose(row, [2.0, 2.25, 2.75, 3.0])


def test_upsample_module_and_repr():
    up = nn.Upsample(scale_factor=2)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.Upsample(size=3, mode="bilinear")) == "Upsample(size=3, mode='bilinear')"
    assert (
        repr(nn.Upsample(scale_factor=(2, 3)))
        == "Upsample(scale_factor=(2.0, 3.0), mode='nearest')"
    )
    assert up.state_dict() == {}
    x = randn(5, (2, 3, 4, 5), np.float32)
    expected = F.interpolate(tensor(x), scale_factor=2.0).data
    np.testing.assert_array_equal(up(tensor(x)).data, expected)
    bil = nn.Upsample(size=(6, 7), mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(
        bil(tensor(x)).data,
        F.interpolate(tensor(x), size=(6, 7), mode="bilinear", align_corners=True).data,
    )
    with pytest.raises(ValueError, match="scale_factor"):
        nn.Upsample(scale_factor="2")


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({}, ValueError, "either size or scale_factor"),
        ({"size": 3, "scale_factor": 2}, ValueError, "only one of size or scale_factor"),
        ({"size": 3, "align_corners": True}, ValueError, "align_corners can only be set"),
        ({"size": 3, "mode": "bicubic"}, ValueError, "mode must be 'nearest' or 'bilinear'"),
        ({"size": 3, "mode": "bilinear", "align_corners": 1}, TypeError, "align_corners"),
        ({"size": 0}, ValueError, "size must be >= 1"),
        ({"size": (2, 3, 4)}, ValueError, "size"),
        ({"size": 2.5}, TypeError, "size"),
        ({"scale_factor": 0.1}, ValueError, "output size"),
        ({"scale_factor": -1}, ValueError, "finite and > 0"),
        ({"scale_factor": float("nan")}, ValueError, "finite and > 0"),
        ({"scale_factor": float("inf")}, ValueError, "finite and > 0"),
        ({"scale_factor": (2, 2, 2)}, ValueError, "2 entries"),
        ({"scale_factor": "2"}, TypeError, "scale_factor"),
        ({"size": 4, "recompute_scale_factor": True}, ValueError, "recompute_scale_factor"),
        ({"size": 4, "antialias": True}, ValueError, "antialias"),
    ],
)
def test_interpolate_rejects_bad_arguments(kw, error, match):
    with pytest.raises(error, match=match):
        F.interpolate(tensor(np.zeros((1, 1, 5, 5))), **kw)


def test_interpolate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(tensor(np.zeros((1, 5, 5))), size=3)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.interpolate(tensor(np.zeros((1, 1, 5, 5), np.int32)), size=3)
    with pytest.raises(TypeError, match="minidl.Tensor"):
        F.interpolate(np.zeros((1, 1, 5, 5)), size=3)


def test_upsample_then_conv_trains_end_to_end():
    # the expanding side in a network: gradients reach the conv under the upsampling
    minidl.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Upsample(scale_factor=2, mode="bilinear"))
    x = tensor(randn(6, (2, 1, 4, 4), np.float32))
    net(x).sum().backward()
    assert net[0].weight.grad is not None and np.abs(net[0].weight.grad).sum() > 0
