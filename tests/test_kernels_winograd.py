"""The Winograd F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5) kernels
(minidl._kernels._winograd) and their dispatch.

- each kernel against the naive reference (minidl.reference) on hypothesis-drawn shapes:
  3x3 and 5x5 kernels, 1x1, 2x2 and odd planes, padding 0..k-1 per axis independently,
  every tiling and the automatic choice, float32 and float64;
- 1, 2 and 3 threads give bit-identical results at a shape big enough to split;
- F.conv2d sends eligible big layers through these kernels (and only eligible ones), and
  a float64 gradcheck passes through them.

Tolerance.  Winograd's rounding error is normwise, not per element: each tile's
transforms mix all 16 input values (and the output transform's 16 products), which then
largely cancel, so an output whose own sum is small still carries rounding errors on the
scale of its neighbours'.  (Measured, float32: the per-element ratio
|got - want| / (|want| + magnitude) of tests/test_kernels.py reached 7e-5 for dW, at
a 1x1-tile dW entry whose single product is much smaller than the tile's other values.)
So the scale here is |want| + max(magnitude) over the whole result, magnitude = the same
sums over absolute values: |got - want| <= tol * (|want| + max magnitude), tol 1e-12 in
float64 and 1e-5 in float32, where the worst seen over 1500 random shapes (C, F up to
40) was 3e-7, i.e. ~5 unit roundoffs (2^-24 = 6e-8).  F(4x4, 3x3) is ~20x less
accurate (its transforms have entries up to 8 and 1/24): 1.8e-6 normwise at
N=32 64->64 8x8, still within the tolerance; elementwise its float32 error there is 3.5e-5
of the output's scale.  F(4x4, 5x5) (entries up to 21/4 and 1/90) rounds worse again:
3e-6 normwise at N=64 6->16 12x12 p0, up to 5.6e-6 over 300 random shapes of up to 5
channels, and 1.4e-5 at a 1x1-channel 5x5 plane with padding 0 (hypothesis found it:
one 8x8 patch of a nearly-zero dY, whose transform mixes values up to 21/4 x 21/4), so
its tolerance is SLACK[5] = 4 times the common one.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import (
    THREADS,
    assert_close,
    conv_arrays,
    count_kernel_calls,
    examples,
    f64,
    kernels,
    reference,
    run_conv,
)

import minidl
from minidl import reference as R
from minidl.nn import functional as F

TILES = {3: [0, 2, 4], 5: [0, 4]}  # per kernel side; 0: the kernels choose
SLACK = {3: 1.0, 5: 4.0}  # tolerance factor per kernel side (see the top)


@st.composite
def winograd_configs(draw):
    k = draw(st.sampled_from([3, 5]))
    padding = (draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1)))
    # output Ho = H + 2p - k + 1 >= 1: H >= k - 2p (1x1 and 2x2 planes with padding)
    size = [draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + 9)) for p in padding]
    return dict(
        N=draw(st.integers(1, 3)),
        C=draw(st.integers(1, 5)),
        F=draw(st.integers(1, 5)),
        H=size[0],
        W=size[1],
        padding=padding,
        k=k,
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        tile=draw(st.sampled_from(TILES[k])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def arrays(cfg):
    return conv_arrays(cfg, (cfg["k"], cfg["k"]), cfg["dtype"])


@settings(max_examples=examples(200), deadline=None)
@given(winograd_configs())
def test_winograd_forward_against_reference(cfg):
    K = kernels()
    x, w, b, _ = arrays(cfg)
    p = cfg["padding"]
    got = K.winograd_forward(x, w, b, p, THREADS, cfg["tile"])
    want, magnitude = reference(R.conv2d_forward, (x, w, b), 1, p)
    assert_close(
        got, want, magnitude, cfg["dtype"], "winograd_forward", normwise=True, slack=SLACK[cfg["k"]]
    )


@settings(max_examples=examples(200), deadline=None)
@given(winograd_configs())
def test_winograd_backward_against_reference(cfg):
    K = kernels()
    x, w, _, dy = arrays(cfg)
    p = cfg["padding"]
    dx = K.winograd_backward_input(dy, w, tuple(x.shape), p, THREADS, cfg["tile"])
    dw, db = K.winograd_backward_weight(x, dy, w.shape, p, cfg["bias"], THREADS, cfg["tile"])
    (want_dx, want_dw, want_db), (mag_dx, mag_dw, mag_db) = reference(
        R.conv2d_backward, (x, w, dy), 1, p
    )
    slack = SLACK[cfg["k"]]
    assert_close(
        dx, want_dx, mag_dx, cfg["dtype"], "winograd_backward_input", normwise=True, slack=slack
    )
    assert_close(
        dw, want_dw, mag_dw, cfg["dtype"], "winograd_backward_weight dW", normwise=True, slack=slack
    )
    if cfg["bias"]:
        assert_close(
            db, want_db, mag_db, cfg["dtype"], "winograd_backward_weight db", normwise=True
        )
    else:
        assert db is None, "need_bias=False must return None for the bias gradient"


# (N, C, F, H, W, padding, k, tile): big enough for several blocks, threads and
# weight-gradient chunks; odd outputs (clipped tiles) and unequal padding
SPLIT_SHAPES = [
    (16, 16, 32, 16, 16, (1, 1), 3, 2),
    (16, 16, 32, 16, 16, (1, 1), 3, 4),
    (32, 12, 20, 15, 13, (1, 2), 3, 2),
    (32, 12, 20, 15, 13, (1, 2), 3, 4),
    (16, 16, 24, 16, 16, (2, 2), 5, 4),
    (32, 12, 20, 15, 13, (0, 3), 5, 4),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SPLIT_SHAPES)
def test_winograd_bit_identical_for_1_2_3_threads(shape, dtype):
    K = kernels()
    N, C, Fo, H, W, p, k, tile = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Fo, C, k, k)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype)
    dy = rng.standard_normal((N, Fo, H + 2 * p[0] - k + 1, W + 2 * p[1] - k + 1)).astype(dtype)
    results, plans = [], []
    for nt in (1, 2, 3):
        y = K.winograd_forward(x, w, b, p, nt, tile)
        plan = [K.planned_threads(K.winograd_forward)]
        dx = K.winograd_backward_input(dy, w, x.shape, p, nt, tile)
        plan.append(K.planned_threads(K.winograd_backward_input))
        dw, db = K.winograd_backward_weight(x, dy, w.shape, p, True, nt, tile)
        plan.append(K.planned_threads(K.winograd_backward_weight))
        results.append((y, dx, dw, db))
        plans.append(plan)
    if kernels().openmp_enabled():
        assert all(n >= 2 for n in plans[1]), f"the shape was not split: {plans}"
    for nt, other in zip((2, 3), results[1:]):
        for name, a, c in zip(("y", "dx", "dw", "db"), results[0], other):
            assert np.array_equal(a, c), f"{name} differs between 1 and {nt} threads"
    # against the im2col kernels in float64 (themselves checked against the reference in
    # test_kernels*.py; the naive reference loops take 30 s at these shapes)
    one = (1, 1)

    def direct(x, w, b, dy):
        x, w, dy = f64(x), f64(w), f64(dy)
        y = K.conv2d_forward(x, w, f64(b), one, p, one, 1, 1)
        dx = K.conv2d_backward_input(dy, w, x.shape, one, p, one, 1, 1)
        dw, db = K.conv2d_backward_weight(x, dy, w.shape, one, p, one, 1, True, 1)
        return y, dx, dw, db

    wants = direct(x, w, b, dy)
    magnitudes = direct(np.abs(x), np.abs(w), np.abs(b), np.abs(dy))
    for name, got, want, mag in zip(("y", "dx", "dw", "db"), results[0], wants, magnitudes):
        assert_close(
            got, want, mag, dtype, f"{name} at a split shape", normwise=True, slack=SLACK[k]
        )


@pytest.mark.parametrize(
    "Ho, Wo, want",
    [
        (1, 1, 2),
        (2, 2, 2),
        (3, 3, 4),
        (4, 4, 4),
        (6, 6, 2),
        (8, 8, 4),
        (16, 16, 4),
        (5, 5, 2),
        (4, 2, 2),
        (12, 12, 4),
        (32, 32, 4),
    ],
)
def test_tile_size_picks_the_tiling_with_fewer_multiplications(Ho, Wo, want):
    """ceil(Ho/r) * ceil(Wo/r) * (r + 2)^2 multiplications per plane and channel pair,
    counted here independently; F(2x2, 3x3) on a tie."""
    import math

    two = math.ceil(Ho / 2) * math.ceil(Wo / 2) * 16
    four = math.ceil(Ho / 4) * math.ceil(Wo / 4) * 36
    assert want == (4 if four < two else 2)
    from minidl._kernels import _winograd

    assert _winograd.tile_size(Ho, Wo) == want


@pytest.mark.parametrize("k, tile", [(3, 3), (3, 1), (5, 2), (5, 3)])
def test_winograd_rejects_an_unknown_tile(k, tile):
    K = kernels()
    x = np.zeros((1, 1, 6, 6), np.float32)
    w = np.zeros((1, 1, k, k), np.float32)
    with pytest.raises(ValueError, match="tile"):
        K.winograd_forward(x, w, None, (1, 1), 1, tile)


@pytest.mark.parametrize("wshape", [(1, 1, 1, 1), (1, 1, 7, 7), (1, 1, 3, 5), (1, 1, 4, 4)])
def test_winograd_rejects_other_kernel_sizes(wshape):
    K = kernels()
    x = np.zeros((1, 1, 8, 8), np.float32)
    w = np.zeros(wshape, np.float32)
    dy = np.zeros((1, 1, 8 - wshape[2] + 1, 8 - wshape[3] + 1), np.float32)
    for call in (
        lambda: K.winograd_forward(x, w, None, (0, 0), 1),
        lambda: K.winograd_backward_input(dy, w, x.shape, (0, 0), 1),
        lambda: K.winograd_backward_weight(x, dy, w.shape, (0, 0), True, 1),
    ):
        with pytest.raises(ValueError, match="3x3 or 5x5"):
            call()


# --------------------------------------------------------------------------------------
# dispatch from F.conv2d
# --------------------------------------------------------------------------------------


def _ops():
    kernels()
    from minidl.ops import conv

    return conv


# How many times F.conv2d ran each Winograd pass: the kernels, wrapped for every test.
_CALLS = {"forward": 0, "input": 0, "weight": 0}
_KERNEL_OF_PASS = {
    "forward": "winograd_forward",
    "input": "winograd_backward_input",
    "weight": "winograd_backward_weight",
}


@pytest.fixture(autouse=True)
def _count_winograd_calls(monkeypatch):
    global _CALLS
    _CALLS = count_kernel_calls(monkeypatch, _KERNEL_OF_PASS)


def _calls():
    return dict(_CALLS)


def _send_everything_eligible(monkeypatch, ops, which):
    """Pass ``which`` of every eligible layer (3x3 or 5x5) goes through Winograd."""
    monkeypatch.setitem(ops.WINOGRAD_MIN_WORK, which, 0)
    monkeypatch.setitem(ops.WINOGRAD_MIN_CHANNEL_RATIO, which, 0)
    monkeypatch.setitem(ops.WINOGRAD5_MIN_CHANNEL_RATIO, which, 0)
    if which == "weight":
        monkeypatch.setattr(ops, "WINOGRAD5_THREADED_WEIGHT_RATIO", 0)


def test_conv2d_takes_the_winograd_path_for_a_big_eligible_layer():
    ops = _ops()
    rng = np.random.default_rng(0)
    # 64 -> 64 channels: r = 32, where Winograd pays for every pass
    x = rng.standard_normal((32, 64, 8, 8)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    assert ops._winograd_pays("forward", x.shape, w.shape, 8, 8), "not big enough for the rule"
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, padding=1)
    after = _calls()
    assert {k: after[k] - before[k] for k in after} == {"forward": 1, "input": 1, "weight": 1}
    K = kernels()
    one = (1, 1)

    def im2col(x, w, b, g):  # float64, checked against the reference in test_kernels*.py
        x, w, b, g = f64(x), f64(w), f64(b), f64(g)
        gw, gb = K.conv2d_backward_weight(x, g, w.shape, one, one, one, 1, True, 1)
        return (
            K.conv2d_forward(x, w, b, one, one, one, 1, 1),
            K.conv2d_backward_input(g, w, x.shape, one, one, one, 1, 1),
            gw,
            gb,
        )

    wants = im2col(x, w, b, g)
    magnitudes = im2col(np.abs(x), np.abs(w), np.abs(b), np.abs(g))
    for name, got, want, mag in zip(("y", "dx", "dw", "db"), (y, gx, gw, gb), wants, magnitudes):
        assert_close(got, want, mag, np.float32, f"F.conv2d {name} through Winograd", normwise=True)


@pytest.mark.parametrize(
    "kw, wshape",
    [
        (dict(padding=1, stride=2), (8, 4, 3, 3)),
        (dict(padding=1, dilation=2), (8, 4, 3, 3)),
        (dict(padding=3), (8, 4, 3, 3)),
        (dict(padding=1, groups=2), (8, 2, 3, 3)),
        (dict(padding=5), (8, 4, 5, 5)),
        (dict(padding=1), (8, 4, 7, 7)),
        (dict(padding=(1, 0)), (8, 4, 3, 1)),
    ],
)
def test_conv2d_keeps_im2col_for_ineligible_layers(monkeypatch, kw, wshape):
    ops = _ops()
    for which in ops.WINOGRAD_MIN_WORK:  # everything eligible would go through Winograd
        _send_everything_eligible(monkeypatch, ops, which)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, **kw)
    assert _calls() == before
    want_y = R.conv2d_forward(
        x, w, b, kw.get("stride", 1), kw["padding"], kw.get("dilation", 1), kw.get("groups", 1)
    )
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads, winograd_weight", [(1, 1), (2, 0)])
def test_conv2d_sends_the_mnist_like_5x5_weight_gradient_through_winograd(threads, winograd_weight):
    """N=64 6->16 12x12 k5 (r = 4.4): on 1 thread the weight gradient pays on F(4x4, 5x5),
    the forward and the input gradient do not (WINOGRAD5_MIN_CHANNEL_RATIO); on 2 the
    split direct kernel takes it (WINOGRAD5_THREADED_WEIGHT_RATIO)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 6, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    saved = minidl.get_num_threads()
    minidl.set_num_threads(threads)
    try:
        before = _calls()
        y, gx, gw, gb, g = run_conv(x, w, b, padding=0)
        after = _calls()
    finally:
        minidl.set_num_threads(saved)
    assert {k: after[k] - before[k] for k in after} == {
        "forward": 0,
        "input": 0,
        "weight": winograd_weight,
    }
    K = kernels()
    one, zero = (1, 1), (0, 0)

    def im2col(x, g):  # float64, checked against the reference in test_kernels*.py
        return K.conv2d_backward_weight(f64(x), f64(g), w.shape, one, zero, one, 1, True, 1)

    (want_w, want_b), (mag_w, mag_b) = im2col(x, g), im2col(np.abs(x), np.abs(g))
    assert_close(
        gw,
        want_w,
        mag_w,
        np.float32,
        "F.conv2d dW through F(4x4, 5x5)",
        normwise=True,
        slack=SLACK[5],
    )
    assert_close(gb, want_b, mag_b, np.float32, "F.conv2d db through F(4x4, 5x5)", normwise=True)


def test_conv2d_small_layers_stay_on_im2col():
    before = _calls()
    rng = np.random.default_rng(0)
    run_conv(
        rng.standard_normal((8, 1, 8, 8)).astype(np.float32),
        rng.standard_normal((6, 1, 3, 3)).astype(np.float32),
        rng.standard_normal(6).astype(np.float32),
        padding=1,
    )
    assert _calls() == before


@pytest.mark.parametrize(
    "k, padding", [(3, 1), (3, (0, 2)), (3, (2, 1)), (5, 0), (5, (1, 4)), (5, (3, 2))]
)
def test_conv2d_gradcheck_through_winograd(monkeypatch, k, padding):
    ops = _ops()
    for which in ops.WINOGRAD_MIN_WORK:
        _send_everything_eligible(monkeypatch, ops, which)
    rng = np.random.default_rng(3)
    x = minidl.Tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = minidl.Tensor(rng.standard_normal((3, 2, k, k)), requires_grad=True)
    b = minidl.Tensor(rng.standard_normal(3), requires_grad=True)
    before = _calls()
    assert minidl.gradcheck(lambda p, q, r: F.conv2d(p, q, r, padding=padding), [x, w, b])
    after = _calls()
    assert all(after[k] > before[k] for k in after), (before, after)


def test_weight_gradient_keeps_saved_cols_when_the_forward_stays_on_im2col(monkeypatch):
    """A forward on im2col keeps its cols for small layers: the weight gradient then uses
    them (keep_cols logic) rather than Winograd."""
    ops = _ops()
    monkeypatch.setitem(ops.WINOGRAD_MIN_CHANNEL_RATIO, "forward", float("inf"))
    for which in ("input", "weight"):
        _send_everything_eligible(monkeypatch, ops, which)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 5))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, padding=1)
    after = _calls()
    assert {k: after[k] - before[k] for k in after} == {"forward": 0, "input": 1, "weight": 0}
    want_dx, want_dw, want_db = R.conv2d_backward(x, w, g, 1, 1)
    np.testing.assert_allclose(gx, want_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, want_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, want_db, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------
# the forward's transformed input, kept for the weight gradient
# --------------------------------------------------------------------------------------

# (N, C, F, H, W, k, padding, tile): both 3x3 tilings and the automatic choice, 5x5,
# padded planes with no tile inside (4x4), LeNet()'s conv2 (2 threads split it)
KEPT_SHAPES = [
    (3, 5, 7, 9, 11, 3, (1, 1), 0),
    (2, 4, 3, 6, 6, 3, (0, 0), 2),
    (2, 4, 3, 13, 8, 3, (2, 1), 4),
    (40, 3, 4, 4, 4, 3, (1, 1), 0),
    (2, 6, 16, 12, 12, 5, (0, 0), 0),
    (3, 2, 3, 9, 7, 5, (4, 3), 0),
    (64, 32, 64, 4, 4, 3, (1, 1), 0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", KEPT_SHAPES)
def test_weight_gradient_from_the_kept_transformed_input_is_bit_identical(shape, dtype):
    """winograd_forward(keep_input=True) returns the same y and a V with which
    winograd_backward_weight gives the same dW and db, bit for bit, as transforming x
    again (the same arithmetic on the same values), on 1 and 2 threads."""
    K = kernels()
    n, c, f, h, w, k, padding, tile = shape
    rng = np.random.default_rng(sum(shape[:5]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    y, kept = K.winograd_forward(x, wt, b, padding, THREADS, tile, True)
    assert kept is not None and kept.dtype == dtype
    assert kept.size == K.winograd_kept_input_elements(x.shape, wt.shape, padding, tile)
    assert np.array_equal(y, K.winograd_forward(x, wt, b, padding, THREADS, tile))
    g = rng.standard_normal(y.shape).astype(dtype)
    for nt in (1, THREADS):
        want = K.winograd_backward_weight(x, g, wt.shape, padding, True, nt, tile)
        got = K.winograd_backward_weight(x, g, wt.shape, padding, True, nt, tile, kept)
        assert np.array_equal(got[0], want[0]), f"dW, {nt} thread(s)"
        assert np.array_equal(got[1], want[1]), f"db, {nt} thread(s)"


def test_weight_gradient_rejects_a_transformed_input_that_does_not_fit():
    K = kernels()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, kept = K.winograd_forward(x, wt, None, (1, 1), 1, 0, True)
    g = np.ones_like(y)
    other_tile = K.winograd_forward(x, wt, None, (1, 1), 1, 2, True)[1]
    for bad in (
        kept[:, 1:],
        np.zeros(kept.shape, np.float64),
        np.asfortranarray(kept),
        kept.tolist(),
        other_tile,
    ):
        if bad is other_tile and bad.shape == kept.shape:
            continue  # both tilings happen to need the same size here
        with pytest.raises(ValueError, match="transformed_input"):
            K.winograd_backward_weight(x, g, wt.shape, (1, 1), False, 1, 0, bad)


@pytest.mark.parametrize("budget, kept", [(None, True), (-1, False)])
def test_conv2d_hands_the_winograd_forward_input_to_the_weight_gradient(monkeypatch, budget, kept):
    """LeNet()'s conv2 (N=64 32->64 4x4 p1: every pass on Winograd, V 295 KB) keeps V
    under MAX_KEPT_WINOGRAD_BYTES, and not above it; the gradients are the same."""
    ops = _ops()
    if budget is not None:
        monkeypatch.setattr(ops, "MAX_KEPT_WINOGRAD_BYTES", budget)
    handed = []
    weight_kernel = ops.K.winograd_backward_weight

    def spy(*args):
        handed.append(args[7] if len(args) > 7 else None)
        return weight_kernel(*args)

    monkeypatch.setattr(ops.K, "winograd_backward_weight", spy)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 32, 4, 4)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    saved = minidl.get_num_threads()
    minidl.set_num_threads(1)
    try:
        y, gx, gw, gb, g = run_conv(x, w, b, padding=1)
    finally:
        minidl.set_num_threads(saved)
    assert len(handed) == 1 and (handed[0] is not None) == kept, handed
    want = kernels().winograd_backward_weight(x, g.astype(np.float32), w.shape, (1, 1), True, 1)
    assert np.array_equal(gw, want[0]) and np.array_equal(gb, want[1])
