"""TransformConv2d: the transformed filters, the values against a loop over transforms
(minidl.reference and PyTorch), gradcheck, and the property it exists for: rotating or
flipping the input rotates / flips the maps and permutes each filter's transforms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor
from minidl import reference as R
from minidl.models import InvariantLeNet
from minidl.ops.transform_conv import TRANSFORM_SETS, TRANSFORMS, transform_filters
from minidl.summary import summary_text

SOME = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**31 - 1)
transform_choices = st.one_of(
    st.sampled_from(["rot4", "flip2", "dihedral8"]),
    st.lists(st.sampled_from(TRANSFORMS), min_size=1, max_size=8, unique=True).map(tuple),
)


def names_of(transforms):
    return TRANSFORM_SETS[transforms] if isinstance(transforms, str) else transforms


def randn(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def rot90(a, k=1):
    """Counter-clockwise quarter turns of the last two axes (np.rot90's convention)."""
    return np.rot90(a, k, axes=(-2, -1))


# ---- the transforms ------------------------------------------------------------------
def test_transforms_of_a_2x2_filter_by_hand():
    # printed row 0 on top; rot90 is counter-clockwise, flip mirrors left-right,
    # flip_rotK rotates first and then flips
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    expected = {
        "id": [[1, 2], [3, 4]],
        "rot90": [[2, 4], [1, 3]],
        "rot180": [[4, 3], [2, 1]],
        "rot270": [[3, 1], [4, 2]],
        "flip": [[2, 1], [4, 3]],
        "flip_rot90": [[4, 2], [3, 1]],
        "flip_rot180": [[3, 4], [1, 2]],
        "flip_rot270": [[1, 3], [2, 4]],
    }
    bank = transform_filters(tensor(w), "dihedral8").data
    assert bank.shape == (8, 1, 2, 2)
    for t, name in enumerate(TRANSFORMS):
        np.testing.assert_array_equal(bank[t, 0], expected[name], err_msg=name)


@SOME
@given(transform_choices, seeds)
def test_filter_bank_rows_are_filter_major(transforms, seed):
    rng = np.random.default_rng(seed)
    w = randn(rng, (3, 2, 3, 3))
    bank = transform_filters(tensor(w), transforms).data
    names = names_of(transforms)
    assert bank.shape == (3 * len(names), 2, 3, 3)
    for f in range(3):
        for t, name in enumerate(names):
            np.testing.assert_array_equal(bank[f * len(names) + t], R.transform_filter(w[f], name))


@FEW
@given(transform_choices, seeds)
def test_filter_bank_gradcheck(transforms, seed):
    w = tensor(randn(np.random.default_rng(seed), (2, 2, 3, 3)), requires_grad=True)
    assert gradcheck(lambda t: transform_filters(t, transforms), [w])


# ---- values against a loop over transforms ---------------------------------------------
@st.composite
def conv_case(draw):
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, k // 2 + 1))
    h = draw(st.integers(max(1, k - 2 * padding), 8))
    w = draw(st.integers(max(1, k - 2 * padding), 8))
    return (n, c, h, w), (f, c, k, k), stride, padding


@SOME
@given(
    conv_case(),
    transform_choices,
    st.sampled_from(["max", None]),
    st.booleans(),
    st.sampled_from([np.float32, np.float64]),
    seeds,
)
def test_matches_reference_loop_over_transforms(case, transforms, reduce, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    xs, ws, stride, padding = case
    x, w = randn(rng, xs, dtype), randn(rng, ws, dtype)
    b = randn(rng, (ws[0],), dtype) if bias else None
    y = F.transform_conv2d(
        tensor(x), tensor(w), None if b is None else tensor(b), transforms, stride, padding, reduce
    )
    expected = R.transform_conv2d(x, w, b, names_of(transforms), stride, padding, reduce)
    assert y.shape == expected.shape and y.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)


@FEW
@given(conv_case(), transform_choices, st.sampled_from(["max", None]), seeds)
def test_gradcheck_input_weight_bias(case, transforms, reduce, seed):
    rng = np.random.default_rng(seed)
    xs, ws, stride, padding = case
    x = tensor(randn(rng, xs), requires_grad=True)
    w = tensor(randn(rng, ws), requires_grad=True)
    b = tensor(randn(rng, (ws[0],)), requires_grad=True)
    assert gradcheck(
        lambda x, w, b: F.transform_conv2d(x, w, b, transforms, stride, padding, reduce), [x, w, b]
    )


_TORCH_TRANSFORM = {
    "id": lambda t, torch: t,
    "rot90": lambda t, torch: torch.rot90(t, 1, (-2, -1)),
    "rot180": lambda t, torch: torch.rot90(t, 2, (-2, -1)),
    "rot270": lambda t, torch: torch.rot90(t, 3, (-2, -1)),
}


def torch_transform(t, name, torch):
    if name.startswith("flip"):
        return torch.flip(_TORCH_TRANSFORM[name[5:] or "id"](t, torch), (-1,))
    return _TORCH_TRANSFORM[name](t, torch)


@SOME
@given(conv_case(), transform_choices, st.sampled_from(["max", None]), seeds)
def test_values_and_gradients_match_torch(case, transforms, reduce, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    xs, ws, stride, padding = case
    x, w, b = randn(rng, xs), randn(rng, ws), randn(rng, (ws[0],))
    mx, mw, mb = (tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.transform_conv2d(mx, mw, mb, transforms, stride, padding, reduce)
    g = randn(rng, y.shape)
    y.backward(g)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    maps = [
        torch.nn.functional.conv2d(tx, torch_transform(tw, name, torch), tb, stride, padding)
        for name in names_of(transforms)
    ]
    stacked = torch.stack(maps, 2)
    ref = stacked.amax(2) if reduce == "max" else stacked.flatten(1, 2)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_reduce_max_is_reduce_none_then_max_over_each_filter_group():
    rng = np.random.default_rng(0)
    x, w, b = tensor(randn(rng, (2, 3, 6, 6))), tensor(randn(rng, (4, 3, 3, 3))), None
    full = F.transform_conv2d(x, w, b, "dihedral8", padding=1, reduce=None).data
    maxed = F.transform_conv2d(x, w, b, "dihedral8", padding=1, reduce="max").data
    np.testing.assert_array_equal(maxed, full.reshape(2, 4, 8, 6, 6).max(axis=2))


# ---- the equivariance property ---------------------------------------------------------
# Filter t is g_t(w). Cross-correlating a transformed input g(x) with g_t(w) equals
# g(x correlated with g^-1 g_t (w)), so output map t of g(x) is g applied to map t' of x,
# where g_t' = g^-1 g_t. With R a counter-clockwise quarter turn and F the left-right flip
# (F R F = R^-1, so R^-1 F = F R):
#   R^-1 R^k = R^(k-1)                    rot_k      <- rot_(k-1)
#   R^-1 F R^k = F R^(k+1)                flip_rot_k <- flip_rot_(k+1)
#   F R^k = flip_rot_k, F F R^k = R^k     rot_k <-> flip_rot_k
ROTATE_SOURCE = {
    "rot4": [3, 0, 1, 2],
    "dihedral8": [3, 0, 1, 2, 5, 6, 7, 4],
}
FLIP_SOURCE = {
    "flip2": [1, 0],
    "dihedral8": [4, 5, 6, 7, 0, 1, 2, 3],
}


def permuted_channels(y, n_filters, source):
    """y (N, F*T, H, W) with each filter's T maps reordered: new map t = old map source[t]."""
    t = len(source)
    n, _, h, w = y.shape
    return y.reshape(n, n_filters, t, h, w)[:, :, source].reshape(n, n_filters * t, h, w)


@pytest.mark.parametrize("transforms", ["rot4", "dihedral8"])
@pytest.mark.parametrize("size, k, stride, padding", [(7, 3, 1, 1), (6, 2, 1, 0), (9, 3, 2, 1)])
def test_rotating_the_input_rotates_maps_and_cycles_transforms(
    transforms, size, k, stride, padding
):
    rng = np.random.default_rng(size + k)
    x, w, b = randn(rng, (2, 3, size, size)), randn(rng, (4, 3, k, k)), randn(rng, (4,))

    def conv(x):
        y = F.transform_conv2d(tensor(x), tensor(w), tensor(b), transforms, stride, padding, None)
        return y.data

    y, y_rot = conv(x), conv(rot90(x))
    expected = rot90(permuted_channels(y, 4, ROTATE_SOURCE[transforms]))
    np.testing.assert_allclose(y_rot, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transforms", ["flip2", "dihedral8"])
def test_flipping_the_input_flips_maps_and_swaps_reflected_transforms(transforms):
    rng = np.random.default_rng(1)
    x, w = randn(rng, (2, 2, 6, 6)), randn(rng, (3, 2, 3, 3))

    def conv(x):
        return F.transform_conv2d(tensor(x), tensor(w), None, transforms, 1, 1, None).data

    expected = permuted_channels(conv(x), 3, FLIP_SOURCE[transforms])[..., ::-1]
    np.testing.assert_allclose(conv(x[..., ::-1]), expected, rtol=1e-12, atol=1e-12)


def group_max(y, transforms):
    """Max over each filter's T transformed maps: (N, F*T, H, W) -> (N, F, H, W)."""
    t = len(names_of(transforms))
    n, ft, h, w = y.shape
    return y.reshape(n, ft // t, t, h, w).max(2).values


@pytest.mark.parametrize("transforms", ["rot4", "dihedral8"])
def test_network_of_transform_convs_has_rotation_invariant_logits(transforms):
    minidl.manual_seed(0)
    c1 = nn.TransformConv2d(1, 4, 3, transforms, padding=1, reduce=None).double()
    c2 = nn.TransformConv2d(4, 5, 3, transforms, padding=1, reduce=None).double()
    head = nn.Linear(5, 3).double()

    def net(x):
        h = F.relu(group_max(c1(x), transforms))
        h = F.relu(group_max(c2(h), transforms))
        return head(F.adaptive_avg_pool2d(h, 1).flatten(1))

    x = np.random.default_rng(2).random((4, 1, 8, 8))
    logits = net(tensor(x)).data
    for k in (1, 2, 3):
        np.testing.assert_allclose(net(tensor(rot90(x, k))).data, logits, rtol=1e-12, atol=1e-12)
    if transforms == "dihedral8":
        mirrored = net(tensor(np.ascontiguousarray(x[..., ::-1]))).data
        np.testing.assert_allclose(mirrored, logits, rtol=1e-12, atol=1e-12)
    # the same network without the group structure is not invariant: the test can fail
    plain = nn.Conv2d(1, 4, 3, padding=1).double()

    def pooled(x):
        return F.adaptive_avg_pool2d(F.relu(plain(tensor(x))), 1).data

    assert not np.allclose(pooled(rot90(x)), pooled(x), rtol=1e-6, atol=1e-9)


# ---- the module ----------------------------------------------------------------------
def test_module_shapes_repr_and_state_dict():
    conv = nn.TransformConv2d(2, 5, 3, padding=1)
    assert repr(conv) == (
        "TransformConv2d(2, 5, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
        "transforms='rot4', reduce='max')"
    )
    sd = conv.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert sd["weight"].shape == (5, 2, 3, 3) and sd["bias"].shape == (5,)
    assert conv.weight.dtype == np.float32 and conv.num_transforms == 4
    x = tensor(np.random.default_rng(0).random((3, 2, 8, 8)).astype(np.float32))
    assert conv(x).shape == (3, 5, 8, 8)
    wide = nn.TransformConv2d(2, 5, 3, ("id", "flip"), stride=2, bias=False, reduce=None)
    assert wide(x).shape == (3, 10, 3, 3)
    assert "bias=False, transforms=('id', 'flip'), reduce=None" in repr(wide)
    assert list(wide.state_dict()) == ["weight"]


def test_module_gradient_reaches_the_one_shared_weight():
    conv = nn.TransformConv2d(1, 2, 3, "dihedral8", padding=1).double()
    x = tensor(np.random.default_rng(3).random((2, 1, 5, 5)))
    conv(x).sum().backward()
    assert conv.weight.grad.shape == (2, 1, 3, 3)
    # the same gradient from the naive construction: a sum over transforms of conv grads
    torch = pytest.importorskip("torch")
    tw = torch.tensor(conv.weight.data, requires_grad=True)
    tb = torch.tensor(conv.bias.data, requires_grad=True)
    tx = torch.tensor(x.data)
    maps = [
        torch.nn.functional.conv2d(tx, torch_transform(tw, n, torch), tb, 1, 1) for n in TRANSFORMS
    ]
    torch.stack(maps, 2).amax(2).sum().backward()
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, tb.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"transforms": "rot8"}, ValueError, "transforms must be one of"),
        ({"transforms": ("id", "spin")}, ValueError, "unknown transform 'spin'"),
        ({"transforms": ("id", "id")}, ValueError, "repeats"),
        ({"transforms": ()}, TypeError, "non-empty"),
        ({"transforms": 4}, TypeError, "transforms"),
        ({"reduce": "mean"}, ValueError, "reduce must be 'max' or None"),
        ({"kernel_size": (3, 2)}, ValueError, "square"),
    ],
)
def test_module_rejects_bad_arguments(kwargs, error, match):
    args = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        nn.TransformConv2d(**args)


def test_functional_rejects_bad_inputs():
    x = tensor(np.zeros((1, 2, 5, 5)))
    w = tensor(np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="channels"):
        F.transform_conv2d(tensor(np.zeros((1, 4, 5, 5))), w)
    with pytest.raises(ValueError, match="square kernel"):
        F.transform_conv2d(x, tensor(np.zeros((3, 2, 3, 2))))
    with pytest.raises(TypeError, match="mixed dtypes"):
        F.transform_conv2d(x, tensor(np.zeros((3, 2, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="bias shape"):
        F.transform_conv2d(x, w, tensor(np.zeros(4)))
    with pytest.raises(ValueError, match="4-D input"):
        F.transform_conv2d(tensor(np.zeros((2, 5, 5))), w)
    with pytest.raises(TypeError, match="'weight' must be a minidl.Tensor"):
        F.transform_conv2d(x, np.zeros((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="reduce"):
        F.transform_conv2d(x, w, reduce="sum")


# ---- InvariantLeNet --------------------------------------------------------------------
@pytest.mark.parametrize("transforms", ["rot4", "dihedral8"])
def test_invariant_lenet_logits_are_rotation_invariant(transforms):
    minidl.manual_seed(1)
    model = InvariantLeNet(widths=(4, 6, 8), transforms=transforms).double()
    x = np.random.default_rng(4).random((5, 1, 8, 8))
    logits = model(tensor(x)).data
    assert logits.shape == (5, 10)
    for k in (1, 2, 3):
        rotated = model(tensor(np.ascontiguousarray(rot90(x, k)))).data
        np.testing.assert_allclose(rotated, logits, rtol=1e-12, atol=1e-12)
    mirrored = model(tensor(np.ascontiguousarray(x[..., ::-1]))).data
    # reflections are in dihedral8 only: rot4 tells a digit from its mirror image
    assert np.allclose(mirrored, logits, rtol=1e-12, atol=1e-12) == (transforms == "dihedral8")


def test_invariant_lenet_trains_and_has_conv_like_keys():
    model = InvariantLeNet()
    assert list(model.state_dict()) == [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "classifier.0.weight",
        "classifier.0.bias",
        "classifier.2.weight",
        "classifier.2.bias",
    ]
    x = tensor(np.random.default_rng(5).random((3, 1, 8, 8)).astype(np.float32))
    F.cross_entropy(model(x), np.array([0, 1, 2])).backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in model.parameters())
    table = summary_text(model, (1, 8, 8))
    assert "TransformConv2d-1" in table and "Total params: 7,562" in table
    with pytest.raises(ValueError, match="transforms"):
        InvariantLeNet(transforms=("id", "rot90"))
