"""The PyTorch layers and functionals of issue 24 against PyTorch (forward and gradient,
float32 and float64, random shapes), float64 gradchecks, reprs, state_dict keys, errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch_compare import compare

import minidl
import minidl.nn.functional as F
from minidl import gradcheck, nn, tensor

SOME = settings(max_examples=30, deadline=None)
FEW = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from([np.float32, np.float64])
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


def rand(seed, shape, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ---- activations -----------------------------------------------------------------------
ACTIVATIONS = {
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.2), lambda tt, T: T.leaky_relu(tt, 0.2)),
    "leaky_relu_default": (F.leaky_relu, lambda tt, T: T.leaky_relu(tt)),
    "elu": (lambda t: F.elu(t, 0.7), lambda tt, T: T.elu(tt, 0.7)),
    "gelu": (F.gelu, lambda tt, T: T.gelu(tt)),
    "gelu_tanh": (
        lambda t: F.gelu(t, approximate="tanh"),
        lambda tt, T: T.gelu(tt, approximate="tanh"),
    ),
    "silu": (F.silu, lambda tt, T: T.silu(tt)),
    "hardtanh": (lambda t: F.hardtanh(t, -0.5, 1.5), lambda tt, T: T.hardtanh(tt, -0.5, 1.5)),
    "softmax": (lambda t: F.softmax(t, -1), lambda tt, T: T.softmax(tt, -1)),
    "log_softmax": (lambda t: F.log_softmax(t, 0), lambda tt, T: T.log_softmax(tt, 0)),
}


@SOME
@given(st.sampled_from(sorted(ACTIVATIONS)), shapes, seeds, dtypes)
def test_activations_match_torch(name, shape, seed, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = ACTIVATIONS[name]
    compare(ours, lambda t: theirs(t, torch.nn.functional), [rand(seed, shape)], dtype, seed)


@FEW
@given(st.sampled_from(sorted(ACTIVATIONS)), shapes, seeds)
def test_activations_gradcheck(name, shape, seed):
    x = rand(seed, shape)
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks
    x[np.abs(x - 1.5) < 1e-3] = 0.5
    x[np.abs(x + 0.5) < 1e-3] = 0.5
    gradcheck(ACTIVATIONS[name][0], [tensor(x, requires_grad=True)])


def test_activation_layers_match_torch_repr_and_values():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        (nn.LeakyReLU(0.1, inplace=True), torch.nn.LeakyReLU(0.1, inplace=True)),
        (nn.ELU(), torch.nn.ELU()),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.SiLU(), torch.nn.SiLU()),
        (nn.Hardtanh(), torch.nn.Hardtanh()),
        (nn.Hardtanh(-2.0, 3.0), torch.nn.Hardtanh(-2.0, 3.0)),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
        (nn.ReLU6(), torch.nn.ReLU6()),
        (nn.Identity(), torch.nn.Identity()),
    ]
    x = rand(0, (3, 4))
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(
            ours(tensor(x)).data, theirs(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12
        )


def test_softmax_without_dim_warns_and_picks_torchs_dim():
    torch = pytest.importorskip("torch")
    for shape in [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        x = rand(1, shape)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            ours = nn.Softmax()(tensor(x)).data
        with pytest.warns(UserWarning):
            theirs = torch.nn.Softmax()(torch.tensor(x)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_activation_argument_errors():
    x = tensor(np.zeros(3))
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(x, 1.0, -1.0)
    with pytest.raises(TypeError, match="negative_slope"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match="floating-point"):
        F.silu(tensor(np.zeros(3, np.int64)))


# ---- dropout2d ---------------------------------------------------------------------------
def test_dropout2d_zeros_whole_channels_and_scales_the_rest():
    minidl.manual_seed(0)
    x = tensor(np.ones((8, 16, 3, 3)), requires_grad=True)
    y = F.dropout2d(x, 0.5)
    per_channel = y.data.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.8
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)
    assert F.dropout2d(x, 0.5, training=False) is x
    layer = nn.Dropout2d(0.3)
    assert repr(layer) == "Dropout2d(p=0.3, inplace=False)"
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="3-D"):
        F.dropout2d(tensor(np.ones((2, 3))), 0.5)
    with pytest.raises(ValueError, match="p must be"):
        F.dropout2d(x, 1.5)


# ---- layer norm and group norm ------------------------------------------------------------
@SOME
@given(shapes, st.integers(1, 3), st.booleans(), seeds, dtypes)
def test_layer_norm_matches_torch(shape, k, affine, seed, dtype):
    torch = pytest.importorskip("torch")
    k = min(k, len(shape))
    norm_shape = shape[len(shape) - k :]
    arrays = [rand(seed, shape)]
    if affine:
        arrays += [rand(seed + 1, norm_shape), rand(seed + 2, norm_shape)]
    compare(
        lambda *t: F.layer_norm(t[0], norm_shape, *t[1:], eps=1e-3),
        lambda *t: torch.nn.functional.layer_norm(t[0], norm_shape, *t[1:], eps=1e-3),
        arrays,
        dtype,
        seed,
        tol=None if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4),
    )


@SOME
@given(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), shapes, st.booleans(), seeds, dtypes
)
def test_group_norm_matches_torch(n, groups, per_group, spatial, affine, seed, dtype):
    torch = pytest.importorskip("torch")
    c = groups * per_group
    shape = (n, c) + spatial[:2]
    assume(n * per_group * np.prod(shape[2:]) > 1)  # PyTorch's rule (test_norm_errors)
    arrays = [rand(seed, shape)]
    if affine:
        arrays += [rand(seed + 1, (c,)), rand(seed + 2, (c,))]
    compare(
        lambda *t: F.group_norm(t[0], groups, *t[1:], eps=1e-3),
        lambda *t: torch.nn.functional.group_norm(t[0], groups, *t[1:], eps=1e-3),
        arrays,
        dtype,
        seed,
        tol=None if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4),
    )


@FEW
@given(st.integers(1, 3), st.integers(2, 4), seeds)
def test_norm_gradcheck(n, c, seed):
    x = tensor(rand(seed, (n, c, 3)), requires_grad=True)
    w = tensor(rand(seed + 1, (3,)), requires_grad=True)
    b = tensor(rand(seed + 2, (3,)), requires_grad=True)
    gradcheck(lambda a, ww, bb: F.layer_norm(a, 3, ww, bb), [x, w, b])
    gw = tensor(rand(seed + 1, (c,)), requires_grad=True)
    gb = tensor(rand(seed + 2, (c,)), requires_grad=True)
    gradcheck(lambda a, ww, bb: F.group_norm(a, 1, ww, bb), [x, gw, gb])
    gradcheck(lambda a: F.group_norm(a, c), [x])


def test_norm_layers_match_torch_repr_and_state_dict():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.LayerNorm(4), torch.nn.LayerNorm(4)),
        (
            nn.LayerNorm((3, 4), elementwise_affine=False),
            torch.nn.LayerNorm((3, 4), elementwise_affine=False),
        ),
        (nn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False)),
        (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
        (nn.GroupNorm(2, 4, bias=False), torch.nn.GroupNorm(2, 4, bias=False)),
        (
            nn.GroupNorm(1, 3, eps=1e-3, affine=False),
            torch.nn.GroupNorm(1, 3, eps=1e-3, affine=False),
        ),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
    x = rand(0, (2, 4, 3, 4))
    ln, tln = nn.LayerNorm(4), torch.nn.LayerNorm(4)
    np.testing.assert_allclose(
        ln(tensor(x, dtype=np.float32)).data,
        tln(torch.tensor(x, dtype=torch.float32)).detach().numpy(),
        rtol=1e-4,
        atol=1e-5,
    )


def test_norm_errors():
    x = tensor(np.zeros((2, 6, 3)))
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (4,))
    with pytest.raises(ValueError, match="weight shape"):
        F.layer_norm(x, 3, tensor(np.ones(4)))
    with pytest.raises(ValueError, match="divide the 6 channels"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.group_norm(tensor(np.zeros((1, 2, 1))), 2)
    with pytest.raises(TypeError, match="mixed dtypes"):
        F.layer_norm(x, 3, tensor(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.layer_norm(tensor(np.zeros((2, 3), np.float16)), 3)


# ---- embedding, one_hot, normalize ----------------------------------------------------------
@SOME
@given(st.integers(1, 6), st.integers(1, 4), shapes, st.sampled_from([None, 0, -1]), seeds, dtypes)
def test_embedding_matches_torch(num, dim, shape, padding_idx, seed, dtype):
    torch = pytest.importorskip("torch")
    idx = np.random.default_rng(seed).integers(0, num, shape)
    compare(
        lambda w, i: F.embedding(i, w, padding_idx),
        lambda w, i: torch.nn.functional.embedding(i, w, padding_idx),
        [rand(seed, (num, dim)), idx],
        dtype,
        seed,
    )


def test_embedding_layer_matches_torch_and_gradcheck():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Embedding(10, 3, padding_idx=2), torch.nn.Embedding(10, 3, padding_idx=2)
    assert repr(ours) == repr(theirs) == "Embedding(10, 3, padding_idx=2)"
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_array_equal(ours.weight.data[2], 0)
    ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
    idx = np.array([[1, 2, 9], [2, 2, 0]])
    np.testing.assert_allclose(ours(tensor(idx)).data, theirs(torch.tensor(idx)).detach().numpy())
    w = tensor(rand(0, (5, 2)), requires_grad=True)
    gradcheck(lambda t: F.embedding(tensor(np.array([0, 3, 3, 4])), t), [w])
    frozen = nn.Embedding.from_pretrained(np.eye(3))
    assert not frozen.weight.requires_grad and frozen.weight.dtype == np.float64


def test_embedding_scale_grad_by_freq_matches_torch():
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 2, 2], [5, 2, 0]])
    compare(
        lambda w, i: F.embedding(i, w, scale_grad_by_freq=True),
        lambda w, i: torch.nn.functional.embedding(i, w, scale_grad_by_freq=True),
        [rand(0, (6, 3)), idx],
    )


def test_embedding_max_norm_renormalises_looked_up_rows_as_torch():
    torch = pytest.importorskip("torch")
    w = rand(3, (6, 4), scale=3)
    idx = np.array([0, 2, 2, 5])
    ours = F.embedding(tensor(idx), tensor(w), max_norm=1.0)
    tw = torch.tensor(w)
    theirs = torch.nn.functional.embedding(torch.tensor(idx), tw, max_norm=1.0)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)


def test_embedding_errors():
    w = tensor(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="out of range"):
        F.embedding(tensor(np.array([4])), w)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(tensor(np.array([1.0])), w)
    with pytest.raises(ValueError, match="Padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(ValueError, match="num_embeddings"):
        nn.Embedding(0, 2)


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    for idx, n in [(np.array([0, 2, 1]), -1), (np.array([[1], [3]]), 5), (np.zeros(0, int), 3)]:
        ours = F.one_hot(tensor(idx), n)
        theirs = torch.nn.functional.one_hot(torch.tensor(idx), n)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
        assert ours.dtype == np.int64
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(tensor(np.array([-1])))
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(tensor(np.array([3])), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(tensor(np.array([1.0])))
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(tensor(np.zeros(0, int)))


@SOME
@given(shapes, st.sampled_from([1.0, 1.5, 2.0, 3.0]), seeds, dtypes)
def test_normalize_matches_torch(shape, p, seed, dtype):
    torch = pytest.importorskip("torch")
    dim = seed % len(shape)
    x = rand(seed, shape)
    x.flat[0] = 0.0  # a zero vector somewhere is allowed when its dim has size 1
    compare(
        lambda t: F.normalize(t, p, dim),
        lambda t: torch.nn.functional.normalize(t, p, dim),
        [x],
        dtype,
        seed,
        tol=None if dtype == np.float64 else dict(rtol=1e-3, atol=1e-5),
    )


def test_normalize_gradcheck_and_errors():
    x = tensor(rand(0, (3, 4)), requires_grad=True)
    gradcheck(lambda t: F.normalize(t), [x])
    gradcheck(lambda t: F.normalize(t, 3.0, 0), [x])
    with pytest.raises(ValueError, match="positive"):
        F.normalize(x, p=0)
    with pytest.raises(IndexError, match="dim"):
        F.normalize(x, dim=2)


# ---- fold / unfold ----------------------------------------------------------------------------
@st.composite
def fold_case(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 7))
    w = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 7))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), k, d, p, s


@SOME
@given(fold_case(), st.booleans(), seeds, dtypes)
def test_unfold_and_fold_match_torch(case, unbatched, seed, dtype):
    torch = pytest.importorskip("torch")
    shape, k, d, p, s = case
    x = rand(seed, shape[1:] if unbatched else shape)
    cols = compare(
        lambda t: F.unfold(t, k, d, p, s),
        lambda t: torch.nn.functional.unfold(t, k, d, p, s),
        [x],
        dtype,
        seed,
    )
    compare(
        lambda t: F.fold(t, shape[2:], k, d, p, s),
        lambda t: torch.nn.functional.fold(t, shape[2:], k, d, p, s),
        [rand(seed + 1, cols.shape)],
        dtype,
        seed,
    )


@FEW
@given(fold_case(), seeds)
def test_fold_unfold_gradcheck(case, seed):
    shape, k, d, p, s = case
    x = tensor(rand(seed, shape), requires_grad=True)
    gradcheck(lambda t: F.unfold(t, k, d, p, s), [x])
    cols = F.unfold(x, k, d, p, s)
    c = tensor(rand(seed, cols.shape), requires_grad=True)
    gradcheck(lambda t: F.fold(t, shape[2:], k, d, p, s), [c])


def test_unfold_is_im2col_the_lecture_way():
    # conv2d as unfold + matmul (seed 002's im2col) gives conv2d's numbers
    rng = np.random.default_rng(0)
    x, w = tensor(rng.standard_normal((2, 3, 6, 5))), tensor(rng.standard_normal((4, 3, 3, 3)))
    cols = F.unfold(x, 3, padding=1)
    out = (w.reshape(4, -1) @ cols).reshape(2, 4, 6, 5)
    np.testing.assert_allclose(out.data, F.conv2d(x, w, padding=1).data, rtol=1e-10)


def test_fold_errors():
    with pytest.raises(ValueError, match="multiple of kh\\*kw"):
        F.fold(tensor(np.zeros((1, 5, 4))), (3, 3), 2)
    with pytest.raises(ValueError, match="blocks"):
        F.fold(tensor(np.zeros((1, 4, 5))), (3, 3), 2)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.unfold(tensor(np.zeros((3, 3))), 2)
    with pytest.raises(ValueError, match="too small"):
        F.unfold(tensor(np.zeros((1, 1, 3, 3))), 4)


# ---- Unflatten, containers ---------------------------------------------------------------------
def test_unflatten_matches_torch():
    torch = pytest.importorskip("torch")
    x = rand(0, (2, 12, 3))
    for dim, size in [(1, (3, 4)), (-2, (2, -1, 3)), (2, (3,))]:
        ours, theirs = nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
        assert repr(ours) == repr(theirs)
        np.testing.assert_array_equal(ours(tensor(x)).data, theirs(torch.tensor(x)).numpy())
    with pytest.raises(ValueError, match="does not multiply"):
        nn.Unflatten(1, (5, 2))(tensor(x))
    t = tensor(x, requires_grad=True)
    nn.Unflatten(1, (3, 4))(t).sum().backward()
    np.testing.assert_array_equal(t.grad, np.ones_like(x))


def test_module_list_and_dict_register_children_as_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)])
    theirs = torch.nn.ModuleList(
        [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 3)]
    )
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours) == 4 and isinstance(ours[-1], nn.Linear) and len(ours[1:]) == 3
    ours.append(nn.Tanh())
    ours.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ours][:2] == ["Identity", "Linear"]
    del ours[0]
    assert list(ours.state_dict())[0] == "0.weight"
    d = nn.ModuleDict({"conv": nn.Conv2d(1, 2, 3), "act": nn.ReLU()})
    td = torch.nn.ModuleDict({"conv": torch.nn.Conv2d(1, 2, 3), "act": torch.nn.ReLU()})
    assert repr(d) == repr(td)
    assert list(d.state_dict()) == list(td.state_dict())
    assert list(d.keys()) == ["conv", "act"] and "act" in d and len(d) == 2
    d["fc"] = nn.Linear(1, 1)
    assert d.pop("fc").out_features == 1
    with pytest.raises(TypeError, match="iterable"):
        nn.ModuleList(nn.ReLU())
    with pytest.raises(ValueError, match="pair"):
        nn.ModuleDict([("a", nn.ReLU(), 3)])
