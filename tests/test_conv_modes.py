"""Conv2d / Conv1d as PyTorch: padding="same" | "valid", padding_mode, unbatched
inputs, empty batches, float16 rejected, errors in the user's shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_compare import compare

import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor

SOME = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([np.float32, np.float64])
TOL32 = dict(rtol=1e-3, atol=1e-4)


@st.composite
def conv_case(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(d[0] * (k[0] - 1) + 1, 8))
    w = draw(st.integers(d[1] * (k[1] - 1) + 1, 8))
    return (draw(st.integers(1, 2)), c, h, w), (f, c) + k, d


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's own performance note
@SOME
@given(conv_case(), st.sampled_from(["same", "valid"]), st.booleans(), seeds, dtypes)
def test_string_padding_matches_torch(case, padding, unbatched, seed, dtype):
    torch = pytest.importorskip("torch")
    xs, ws, d = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs[1:] if unbatched else xs)
    arrays = [x, rng.standard_normal(ws), rng.standard_normal(ws[0])]
    out = compare(
        lambda a, b, c: F.conv2d(a, b, c, padding=padding, dilation=d),
        lambda a, b, c: torch.nn.functional.conv2d(a, b, c, padding=padding, dilation=d),
        arrays,
        dtype,
        seed,
        tol=TOL32 if dtype == np.float32 else None,
    )
    if padding == "same":
        assert out.shape[-2:] == x.shape[-2:]


@SOME
@given(
    conv_case(),
    st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    st.sampled_from([0, 1, "same", "valid"]),
    st.booleans(),
    seeds,
    dtypes,
)
def test_padding_modes_match_torch(case, mode, padding, unbatched, seed, dtype):
    torch = pytest.importorskip("torch")
    xs, ws, d = case
    if padding == 1 and mode == "reflect" and min(xs[2:]) < 2:
        padding = 0
    f, c, kh, kw = ws
    ours = nn.Conv2d(c, f, (kh, kw), padding=padding, dilation=d, padding_mode=mode, dtype=dtype)
    theirs = torch.nn.Conv2d(c, f, (kh, kw), padding=padding, dilation=d, padding_mode=mode)
    if mode == "reflect" and padding == "same":
        total = [dd * (k - 1) for dd, k in zip(d, (kh, kw))]
        if any(t - t // 2 >= s for t, s in zip(total, xs[2:])):
            return  # reflect needs the padding smaller than the input: both refuse
    assert repr(ours) == repr(theirs)
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(seed).standard_normal(xs[1:] if unbatched else xs)
    xm = tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    out, tout = ours(xm), theirs(xt)
    tol = TOL32 if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    g = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tol)


def test_padding_mode_gradcheck():
    for mode in ("reflect", "replicate", "circular"):
        conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, dtype=np.float64)
        x = tensor(np.random.default_rng(0).standard_normal((2, 2, 4, 5)), requires_grad=True)
        gradcheck(
            lambda t, w, b, m=mode: F.conv2d(F.pad(t, (1, 1, 1, 1), m), w, b),
            [x, conv.weight, conv.bias],
        )


def test_conv1d_string_padding_and_modes_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 9))
    for padding, mode in [
        ("same", "zeros"),
        ("valid", "zeros"),
        (2, "reflect"),
        ("same", "circular"),
    ]:
        ours = nn.Conv1d(3, 4, 4, padding=padding, padding_mode=mode, dtype=np.float64)
        theirs = torch.nn.Conv1d(3, 4, 4, padding=padding, padding_mode=mode).double()
        assert repr(ours) == repr(theirs)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        for xx in (x, x[0]):
            np.testing.assert_allclose(
                ours(tensor(xx)).data, theirs(torch.tensor(xx)).detach().numpy(), rtol=1e-10
            )


@pytest.mark.parametrize(
    "fn, wshape",
    [
        (lambda x, w, b: F.conv2d(x, w, b, padding=1), (4, 3, 3, 3)),
        (lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=2), (4, 3, 2, 2)),
        (lambda x, w, b: F.conv1d(x[:, :, 0], w[:, :, 0], b), (4, 3, 3, 3)),
    ],
)
def test_empty_batch_gives_empty_output_and_zero_gradients(fn, wshape):
    rng = np.random.default_rng(0)
    arrays = [np.zeros((0, 3, 5, 5)), rng.standard_normal(wshape), rng.standard_normal(4)]
    inputs = [tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    assert out.shape[:2] == (0, 4)
    out.sum().backward()
    for t in inputs:
        assert t.grad.shape == t.shape
        np.testing.assert_array_equal(t.grad, np.zeros(t.shape))


def test_empty_batch_shapes_match_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((0, 3, 7, 6), np.float32)
    w = np.ones((5, 3, 3, 2), np.float32)
    for kw in [dict(), dict(stride=2, padding=1), dict(padding="same")]:
        ours = F.conv2d(tensor(x), tensor(w), **kw)
        theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **kw)
        assert ours.shape == tuple(theirs.shape)
    layer = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 2 * 2, 2)
    )
    out = layer(tensor(np.zeros((0, 3, 6, 6), np.float32)))
    assert out.shape == (0, 2)


def test_unbatched_conv_layers_match_batched():
    rng = np.random.default_rng(0)
    for layer, shape in [
        (nn.Conv2d(3, 4, 3, padding=1), (3, 6, 5)),
        (nn.Conv2d(3, 4, 2, padding="same", padding_mode="replicate"), (3, 6, 5)),
        (nn.Conv1d(3, 4, 3), (3, 7)),
    ]:
        x = rng.standard_normal(shape).astype(np.float32)
        single = layer(tensor(x))
        batched = layer(tensor(x[None]))
        assert single.shape == batched.shape[1:]
        np.testing.assert_allclose(single.data, batched.data[0], rtol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.conv2d(
            tensor(np.zeros((1, 1, 4, 4), np.float16)), tensor(np.zeros((1, 1, 3, 3), np.float16))
        ),
        lambda: nn.Conv2d(1, 1, 3)(tensor(np.zeros((1, 1, 4, 4), np.float16))),
        lambda: F.conv1d(
            tensor(np.zeros((1, 1, 4), np.float16)), tensor(np.zeros((1, 1, 3), np.float16))
        ),
    ],
)
def test_float16_conv_is_a_type_error_naming_the_supported_dtypes(call):
    with pytest.raises(TypeError, match="float32 or float64.*float16"):
        call()


def test_conv_argument_errors():
    x = tensor(np.zeros((1, 3, 5, 5), np.float32))
    w = tensor(np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'valid', 'same'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="'valid', 'same'"):
        nn.Conv2d(3, 2, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(3, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="CPU only"):
        nn.Conv2d(3, 2, 3, device="cuda")
    with pytest.raises(ValueError, match=r"input shape \(3, 5\) has 3 channels"):
        F.conv1d(tensor(np.zeros((3, 5))), tensor(np.zeros((2, 4, 3))))
    with pytest.raises(ValueError, match=r"\(3, 2\) is too short"):
        F.conv1d(tensor(np.zeros((3, 2))), tensor(np.zeros((2, 3, 3))))
    with pytest.raises(ValueError, match=r"input shape \(2, 5, 5\) has 2 channels"):
        F.conv2d(tensor(np.zeros((2, 5, 5))), tensor(np.zeros((2, 3, 3, 3))))


def test_conv_transpose_unbatched_and_empty_batch_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1, dtype=np.float64)
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    np.testing.assert_allclose(
        ours(tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10
    )
    empty = tensor(np.zeros((0, 3, 4, 5)), requires_grad=True)
    out = ours(empty)
    assert out.shape == tuple(theirs(torch.zeros(0, 3, 4, 5, dtype=torch.float64)).shape)
    out.sum().backward()
    assert empty.grad.shape == empty.shape
    np.testing.assert_array_equal(ours.weight.grad, 0)
    with pytest.raises(ValueError, match=r"input shape \(2, 4, 5\) has 2 channels"):
        ours(tensor(np.zeros((2, 4, 5))))
