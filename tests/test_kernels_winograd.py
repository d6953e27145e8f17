"""The Winograd F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5) kernels
(minidl._kernels._winograd), and F.conv2d forced through them.

- each kernel against the naive reference (minidl.reference) on hypothesis-drawn shapes:
  3x3 and 5x5 kernels, 1x1, 2x2 and odd planes, padding 0..k-1 per axis independently,
  every tiling, float32 and float64;
- 1, 2 and 3 threads give bit-identical results at a shape big enough to split;
- F.conv2d with a plan forcing Winograd (minidl.ops.conv_plan.forced) gives the right
  results, a float64 gradcheck passes through it, and layers Winograd cannot run
  (stride, dilation, groups, padding > k - 1, other kernels) are never planned on it.

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

import os

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
    im2col_f64,
    kernels,
    python_child,
    reference,
    run_conv,
)

import minidl
from minidl import reference as R
from minidl.nn import functional as F
from minidl.ops import conv_plan
from minidl.ops.conv_plan import IM2COL, ConvPlan, PassPlan

TILES = {3: [2, 4], 5: [4]}  # per kernel side
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
    check_forward(cfg)


def check_forward(cfg):
    K = kernels()
    x, w, b, _ = arrays(cfg)
    p = cfg["padding"]
    major = cfg.get("channel_major", False)
    got = K.winograd_forward(
        x, w, b, padding=p, tile=cfg["tile"], num_threads=THREADS, channel_major=major
    )
    want, magnitude = reference(R.conv2d_forward, (x, w, b), 1, p)
    assert_close(
        got, want, magnitude, cfg["dtype"], "winograd_forward", normwise=True, slack=SLACK[cfg["k"]]
    )


@settings(max_examples=examples(200), deadline=None)
@given(winograd_configs())
def test_winograd_backward_against_reference(cfg):
    check_backward(cfg)


def check_backward(cfg):
    K = kernels()
    x, w, _, dy = arrays(cfg)
    geometry = dict(padding=cfg["padding"], tile=cfg["tile"], num_threads=THREADS)
    geometry["channel_major"] = cfg.get("channel_major", False)
    p = cfg["padding"]
    dx = K.winograd_backward_input(dy, w, tuple(x.shape), **geometry)
    dw, db = K.winograd_backward_weight(x, dy, w.shape, need_bias=cfg["bias"], **geometry)
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


# (N, C, F, H, W, padding, k, tile) where every sample's plane is one tile whose patch is
# the whole zero-padded plane (the kernels copy such planes transposed, or on 4x4 planes
# with padding 1 transform them channel-major where asked, 8 or 16 channels a vector):
# several blocks of samples, planes smaller than the patch's interior, unequal padding,
# channel counts that leave a vector part-filled
WHOLE_PLANE_SHAPES = [
    (300, 4, 5, 4, 4, (1, 1), 3, 4),
    (40, 17, 20, 4, 4, (1, 1), 3, 4),
    (300, 3, 4, 2, 2, (1, 1), 3, 2),
    (200, 3, 4, 4, 4, (2, 2), 5, 4),
    (270, 2, 3, 3, 4, (1, 0), 3, 4),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", WHOLE_PLANE_SHAPES)
def test_winograd_whole_plane_tiles_against_reference(shape, dtype):
    N, C, F, H, W, padding, k, tile = shape
    cfg = dict(N=N, C=C, F=F, H=H, W=W, padding=padding, k=k, bias=True, dtype=dtype)
    cfg.update(tile=tile, seed=7)
    for major in layouts_here((N, C, H, W), (F, C, k, k), padding, tile, dtype):
        cfg["channel_major"] = major
        check_forward(cfg)
        check_backward(cfg)


def layouts_here(ishape, wshape, padding, tile, dtype):
    """[False] (plane-major), then True where the channel-major plan fits on this CPU."""
    fits = kernels().winograd_channel_major_fits(
        ishape, wshape, padding=padding, tile=tile, dtype=dtype
    )
    return [False, True] if fits else [False]


@st.composite
def channel_major_configs(draw):
    """Layers the channel-major plan fits (4x4 planes, padding 1, 3x3, float32) with any
    channel counts: vectors part-filled on either side, one channel or filter."""
    return dict(
        N=draw(st.integers(1, 4)),
        C=draw(st.integers(1, 20)),
        F=draw(st.integers(1, 20)),
        H=4,
        W=4,
        padding=(1, 1),
        k=3,
        bias=draw(st.booleans()),
        dtype=np.float32,
        tile=4,
        seed=draw(st.integers(0, 2**32 - 1)),
        channel_major=True,
    )


@settings(max_examples=examples(100), deadline=None)
@given(channel_major_configs())
def test_channel_major_against_reference(cfg):
    if not kernels().winograd_channel_major_lanes():
        pytest.skip("no channel-major Winograd on this CPU (it needs AVX2 + FMA or AVX-512)")
    check_forward(cfg)
    check_backward(cfg)


@pytest.mark.parametrize(
    "ishape, wshape, padding, tile, dtype",
    [
        ((4, 8, 4, 4), (8, 8, 3, 3), (1, 1), 4, np.float64),  # float64
        ((4, 8, 5, 5), (8, 8, 3, 3), (1, 1), 4, np.float32),  # 5x5 planes
        ((4, 8, 4, 4), (8, 8, 3, 3), (0, 0), 4, np.float32),  # padding 0
        ((4, 8, 4, 4), (8, 8, 3, 3), (1, 1), 2, np.float32),  # F(2x2, 3x3)
        ((4, 8, 4, 4), (8, 8, 5, 5), (2, 2), 4, np.float32),  # 5x5 kernel
    ],
)
def test_channel_major_is_refused_where_it_does_not_fit(ishape, wshape, padding, tile, dtype):
    K = kernels()
    fits = K.winograd_channel_major_fits(ishape, wshape, padding=padding, tile=tile, dtype=dtype)
    assert not fits
    rng = np.random.default_rng(3)
    x = rng.standard_normal(ishape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    geometry = dict(padding=padding, tile=tile, num_threads=1, channel_major=True)
    y = K.winograd_forward(x, w, None, padding=padding, tile=tile, num_threads=1)
    for call in each_pass(x, w, y, **geometry):
        with pytest.raises(ValueError, match="channel-major plan needs float32"):
            call()


def each_pass(x, w, dy, **kw):
    """The layer's three Winograd kernels as calls without arguments."""
    K = kernels()
    return (
        lambda: K.winograd_forward(x, w, None, **kw),
        lambda: K.winograd_backward_input(dy, w, x.shape, **kw),
        lambda: K.winograd_backward_weight(x, dy, w.shape, need_bias=True, **kw),
    )


# (N, C, F): channel-major layers (4x4 planes, padding 1) with several blocks of tiles
# per pass, blocks that are not a whole number of wg_cm_gemm's row blocks (8 on
# AVX-512, 4 on AVX2), channel counts that leave a vector part-filled, and (2000 tiles)
# weight gradients summed over several blocks a chunk; against the float64 im2col
# kernels, since the naive loops take minutes at these sizes
CHANNEL_MAJOR_BLOCK_SHAPES = [
    (300, 24, 20),
    (230, 16, 40),
    (97, 40, 17),
    (2000, 16, 16),
    (300, 6, 16),  # the built-in rule's smallest on AVX2 (6 channels: 3/4 of its 8 lanes)
    (130, 16, 7),
]


@pytest.mark.parametrize("shape", CHANNEL_MAJOR_BLOCK_SHAPES)
def test_channel_major_blocks_against_im2col(shape):
    K = kernels()
    if not K.winograd_channel_major_lanes():
        pytest.skip("no channel-major Winograd on this CPU (it needs AVX2 + FMA or AVX-512)")
    N, C, Fo = shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, 4, 4)).astype(np.float32)
    w = rng.standard_normal((Fo, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(Fo).astype(np.float32)
    dy = rng.standard_normal((N, Fo, 4, 4)).astype(np.float32)
    p = dict(padding=(1, 1), tile=4, num_threads=THREADS, channel_major=True)
    got = [K.winograd_forward(x, w, b, **p), K.winograd_backward_input(dy, w, x.shape, **p)]
    got += K.winograd_backward_weight(x, dy, w.shape, need_bias=True, **p)
    want = im2col_f64(x, w, b, dy, (1, 1))
    magnitude = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(dy), (1, 1))
    for name, g, e, m in zip(("y", "dx", "dW", "db"), got, want, magnitude):
        assert_close(g, e, m, np.float32, f"channel-major {name}", normwise=True, slack=SLACK[3])


_AVX2_CHECK = """
import sys
import pytest
from minidl import _kernels as K
assert K.direct_level() == 1, K.direct_level()
assert K.winograd_channel_major_lanes() == 8, K.winograd_channel_major_lanes()
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_channel_major_avx2_build_with_the_level_capped():
    """MINIDL_CPU_LEVEL=1 runs the AVX2 build of the channel-major transforms and GEMMs
    (8 channels a vector) on an AVX-512 machine: this file's checks of them, and the
    fused conv-pool run's bits against the separate modules', pass there too."""
    if kernels().direct_level() < 2:
        pytest.skip("this CPU runs the AVX2 build already (the tests above)")
    here = os.path.dirname(os.path.abspath(__file__))
    selected = [
        os.path.join(here, "test_kernels_winograd.py"),
        "-k",
        "(channel_major or whole_plane or bit_identical or kept_transformed or winograd_conv_pool)"
        " and not level_capped",
        os.path.join(here, "test_fusion.py"),
    ]
    done = python_child(_AVX2_CHECK, *selected, env={"MINIDL_CPU_LEVEL": "1"}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout[-3000:]


# (N, C, F, H, W, padding, k, tile): big enough for several blocks, threads and
# weight-gradient chunks; odd outputs (clipped tiles) and unequal padding
SPLIT_SHAPES = [
    (16, 16, 32, 16, 16, (1, 1), 3, 2),
    (16, 16, 32, 16, 16, (1, 1), 3, 4),
    (32, 12, 20, 15, 13, (1, 2), 3, 2),
    (32, 12, 20, 15, 13, (1, 2), 3, 4),
    (16, 16, 24, 16, 16, (2, 2), 5, 4),
    (32, 12, 20, 15, 13, (0, 3), 5, 4),
    (256, 32, 48, 4, 4, (1, 1), 3, 4),
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
    wants = im2col_f64(x, w, b, dy, p)  # the naive reference loops take 30 s here
    magnitudes = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(dy), p)
    for major in layouts_here(x.shape, w.shape, p, tile, dtype):
        geometry = dict(padding=p, tile=tile, channel_major=major)
        results, plans = [], []
        for nt in (1, 2, 3):
            y = K.winograd_forward(x, w, b, **geometry, num_threads=nt)
            plan = [K.planned_threads(K.winograd_forward)]
            dx = K.winograd_backward_input(dy, w, x.shape, **geometry, num_threads=nt)
            plan.append(K.planned_threads(K.winograd_backward_input))
            dw, db = K.winograd_backward_weight(
                x, dy, w.shape, **geometry, need_bias=True, num_threads=nt
            )
            plan.append(K.planned_threads(K.winograd_backward_weight))
            results.append((y, dx, dw, db))
            plans.append(plan)
        if kernels().openmp_enabled():
            assert all(n >= 2 for n in plans[1]), f"the shape was not split: {plans}"
        for nt, other in zip((2, 3), results[1:]):
            for name, a, c in zip(("y", "dx", "dw", "db"), results[0], other):
                assert np.array_equal(a, c), f"{name} differs between 1 and {nt} threads"
        for name, got, want, mag in zip(("y", "dx", "dw", "db"), results[0], wants, magnitudes):
            what = f"{name} at a split shape, channel_major={major}"
            assert_close(got, want, mag, dtype, what, normwise=True, slack=SLACK[k])


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
def test_winograd_tile_is_the_tiling_with_fewer_multiplications(Ho, Wo, want):
    """ceil(Ho/r) * ceil(Wo/r) * (r + 2)^2 multiplications per plane and channel pair,
    counted here independently; F(2x2, 3x3) on a tie."""
    import math

    two = math.ceil(Ho / 2) * math.ceil(Wo / 2) * 16
    four = math.ceil(Ho / 4) * math.ceil(Wo / 4) * 36
    assert want == (4 if four < two else 2)
    assert conv_plan.winograd_tile(Ho, Wo) == want


@pytest.mark.parametrize("k, tile", [(3, 0), (3, 3), (3, 1), (5, 0), (5, 2), (5, 3)])
def test_winograd_rejects_an_unknown_tile(k, tile):
    K = kernels()
    x = np.zeros((1, 1, 6, 6), np.float32)
    w = np.zeros((1, 1, k, k), np.float32)
    dy = np.zeros((1, 1, 8 - k, 8 - k), np.float32)
    for call in (
        lambda: K.winograd_forward(x, w, None, padding=(1, 1), tile=tile, num_threads=1),
        lambda: K.winograd_backward_input(dy, w, x.shape, padding=(1, 1), tile=tile, num_threads=1),
        lambda: K.winograd_backward_weight(
            x, dy, w.shape, padding=(1, 1), tile=tile, need_bias=True, num_threads=1
        ),
    ):
        with pytest.raises(ValueError, match="tile"):
            call()


@pytest.mark.parametrize("wshape", [(1, 1, 1, 1), (1, 1, 7, 7), (1, 1, 3, 5), (1, 1, 4, 4)])
def test_winograd_rejects_other_kernel_sizes(wshape):
    x = np.zeros((1, 1, 8, 8), np.float32)
    w = np.zeros(wshape, np.float32)
    dy = np.zeros((1, 1, 8 - wshape[2] + 1, 8 - wshape[3] + 1), np.float32)
    for call in each_pass(x, w, dy, padding=(0, 0), tile=4, num_threads=1):
        with pytest.raises(ValueError, match="3x3 or 5x5"):
            call()


# --------------------------------------------------------------------------------------
# F.conv2d forced through Winograd
# --------------------------------------------------------------------------------------

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


def _all_winograd(tile, keep_input=False):
    """Every pass on Winograd with ``tile``."""
    wino = PassPlan("winograd", tile)
    return ConvPlan(wino, wino, wino, keep_input)


@pytest.mark.parametrize("tile", [2, 4])
def test_conv2d_forced_through_winograd_at_a_big_layer(tile):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 8, 8)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, plan=_all_winograd(tile), padding=1)
    after = _calls()
    assert {k: after[k] - before[k] for k in after} == {"forward": 1, "input": 1, "weight": 1}
    wants = im2col_f64(x, w, b, g, (1, 1))
    magnitudes = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(g), (1, 1))
    for name, got, want, mag in zip(("y", "dx", "dw", "db"), (y, gx, gw, gb), wants, magnitudes):
        assert_close(got, want, mag, np.float32, f"F.conv2d {name} through Winograd", normwise=True)


def _conv_with_upstream(x, w, b, g, plan):
    """(y, dx, dW, db) of F.conv2d (padding 1) under ``plan`` with the upstream gradient g."""
    xt, wt, bt = (minidl.tensor(a, requires_grad=True) for a in (x, w, b))
    with conv_plan.forced(plan):
        y = F.conv2d(xt, wt, bt, padding=1)
    y.backward(minidl.tensor(g))
    return y.data, xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("keep_input", [False, True])
@pytest.mark.parametrize("where", ["x", "dy"])
@pytest.mark.parametrize("shape", [(16, 4, 8, 8, 8), (16, 32, 4, 4, 32)])
def test_conv2d_passes_whose_operands_do_not_fit_winograd_run_on_im2col(shape, where, keep_input):
    """An inf (or a value past fits_winograd's bound) in x or in dY sends every pass that
    reads it from Winograd to im2col: the same bits as an all-im2col plan (one inf would
    make a whole Winograd tile NaN), the weight gradient included."""
    n, c, h, w_, f = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    g = rng.standard_normal((n, f, h, w_)).astype(np.float32)
    (x if where == "x" else g)[1, 2, 1, 1] = np.inf
    got = _conv_with_upstream(x, w, b, g, _all_winograd(4, keep_input))
    want = _conv_with_upstream(x, w, b, g, ConvPlan(IM2COL, IM2COL, IM2COL, False))
    reads = {"y": "x", "dx": "dy", "dW": "x and dy", "db": "x and dy"}
    for (name, operands), a, e in zip(reads.items(), got, want):
        if where in operands:
            np.testing.assert_array_equal(a, e, err_msg=f"{name} with an inf in {where}")
        else:  # the pass does not read the inf: it stays on Winograd
            assert np.all(np.isfinite(a)), name
            np.testing.assert_allclose(a, e, rtol=1e-3, atol=1e-3, err_msg=name)


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
def test_conv2d_never_plans_winograd_for_ineligible_layers(kw, wshape):
    """Hard eligibility (not tuning): no plan, built-in or forced, runs these layers on
    Winograd; forcing it is a ValueError naming the pass; the built-in plan is right."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    stride, padding, dilation = (
        (v, v) if isinstance(v, int) else v
        for v in (kw.get("stride", 1), kw["padding"], kw.get("dilation", 1))
    )
    groups = kw.get("groups", 1)
    layer = (x.shape, w.shape, x.dtype, stride, padding, dilation, groups)
    assert all(
        p.path != "winograd" for plans in conv_plan.candidates(*layer).values() for p in plans
    )
    for threads in (1, 2):
        plan = conv_plan.plan_conv2d(*layer, num_threads=threads)
        assert "winograd" not in (plan.forward.path, plan.input.path, plan.weight.path)
    with pytest.raises(ValueError, match="forward pass cannot run"):
        run_conv(x, w, b, plan=ConvPlan(PassPlan("winograd", 4), IM2COL, IM2COL), **kw)
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, **kw)
    assert _calls() == before
    want_y = R.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-10)


def test_conv2d_forced_through_f4x4_5x5_at_the_mnist_like_layer():
    """N=64 6->16 12x12 k5: each pass forced through F(4x4, 5x5), against float64 im2col."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 6, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, plan=_all_winograd(4))
    after = _calls()
    assert {k: after[k] - before[k] for k in after} == {"forward": 1, "input": 1, "weight": 1}
    wants = im2col_f64(x, w, b, g, (0, 0))
    magnitudes = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(g), (0, 0))
    for name, got, want, mag in zip(("y", "dx", "dw", "db"), (y, gx, gw, gb), wants, magnitudes):
        slack = 1.0 if name == "db" else SLACK[5]
        assert_close(
            got, want, mag, np.float32, f"F.conv2d {name} through F(4x4, 5x5)", True, slack
        )


@pytest.mark.parametrize(
    "k, padding, tile",
    [
        (3, 1, 2),
        (3, 1, 4),
        (3, (0, 2), 2),
        (3, (2, 1), 4),
        (5, 0, 4),
        (5, (1, 4), 4),
        (5, (3, 2), 4),
    ],
)
@pytest.mark.parametrize("keep_input", [False, True])
def test_conv2d_gradcheck_through_winograd(k, padding, tile, keep_input):
    rng = np.random.default_rng(3)
    x = minidl.Tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = minidl.Tensor(rng.standard_normal((3, 2, k, k)), requires_grad=True)
    b = minidl.Tensor(rng.standard_normal(3), requires_grad=True)
    before = _calls()
    with conv_plan.forced(_all_winograd(tile, keep_input)):
        assert minidl.gradcheck(lambda p, q, r: F.conv2d(p, q, r, padding=padding), [x, w, b])
    after = _calls()
    assert all(after[k] > before[k] for k in after), (before, after)


def test_weight_gradient_reads_the_saved_cols_with_the_input_gradient_on_winograd():
    """The forward on im2col keeping its cols for an im2col weight gradient, the input
    gradient on Winograd: all three results right."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 5))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    plan = ConvPlan(IM2COL, PassPlan("winograd", 2), IM2COL, keep_input=True)
    before = _calls()
    y, gx, gw, gb, g = run_conv(x, w, b, plan=plan, padding=1)
    after = _calls()
    assert {k: after[k] - before[k] for k in after} == {"forward": 0, "input": 1, "weight": 0}
    want_dx, want_dw, want_db = R.conv2d_backward(x, w, g, 1, 1)
    np.testing.assert_allclose(gx, want_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, want_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, want_db, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------
# the forward's transformed input, kept for the weight gradient
# --------------------------------------------------------------------------------------

# (N, C, F, H, W, k, padding, tile): both 3x3 tilings and the built-in choice (None), 5x5,
# padded planes with no tile inside (4x4), LeNet()'s conv2 (2 threads split it)
KEPT_SHAPES = [
    (3, 5, 7, 9, 11, 3, (1, 1), None),
    (2, 4, 3, 6, 6, 3, (0, 0), 2),
    (2, 4, 3, 13, 8, 3, (2, 1), 4),
    (40, 3, 4, 4, 4, 3, (1, 1), None),
    (2, 6, 16, 12, 12, 5, (0, 0), 4),
    (3, 2, 3, 9, 7, 5, (4, 3), 4),
    (64, 32, 64, 4, 4, 3, (1, 1), None),
    (70, 17, 20, 4, 4, 3, (1, 1), None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", KEPT_SHAPES)
def test_weight_gradient_from_the_kept_transformed_input_is_bit_identical(shape, dtype):
    """winograd_forward(keep_input=True) returns the same y and a V with which
    winograd_backward_weight gives the same dW and db, bit for bit, as transforming x
    again (the same arithmetic on the same values), on 1 and 2 threads."""
    K = kernels()
    n, c, f, h, w, k, padding, tile = shape
    if tile is None:
        tile = conv_plan.winograd_tile(h + 2 * padding[0] - k + 1, w + 2 * padding[1] - k + 1)
    rng = np.random.default_rng(sum(shape[:5]))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    for major in layouts_here(x.shape, wt.shape, padding, tile, dtype):
        geometry = dict(padding=padding, tile=tile)
        layout = dict(geometry, channel_major=major)
        y, kept = K.winograd_forward(x, wt, b, **layout, keep_input=True, num_threads=THREADS)
        assert kept is not None and kept.dtype == dtype
        assert kept.size == K.winograd_kept_input_elements(x.shape, wt.shape, **geometry)
        assert np.array_equal(y, K.winograd_forward(x, wt, b, **layout, num_threads=THREADS))
        g = rng.standard_normal(y.shape).astype(dtype)
        for nt in (1, THREADS):
            want = K.winograd_backward_weight(
                x, g, wt.shape, **layout, need_bias=True, num_threads=nt
            )
            got = K.winograd_backward_weight(
                x, g, wt.shape, **layout, need_bias=True, kept_input=kept, num_threads=nt
            )
            assert np.array_equal(got[0], want[0]), f"dW, {nt} thread(s), channel_major={major}"
            assert np.array_equal(got[1], want[1]), f"db, {nt} thread(s), channel_major={major}"


def test_weight_gradient_rejects_a_kept_input_that_does_not_fit():
    K = kernels()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    forward = dict(padding=(1, 1), keep_input=True, num_threads=1)
    y, kept = K.winograd_forward(x, wt, None, **forward, tile=4)
    g = np.ones_like(y)
    other_tile = K.winograd_forward(x, wt, None, **forward, tile=2)[1]
    for bad in (
        kept[:, 1:],
        np.zeros(kept.shape, np.float64),
        np.asfortranarray(kept),
        kept.tolist(),
        other_tile,
    ):
        if bad is other_tile and bad.shape == kept.shape:
            continue  # both tilings happen to need the same size here
        with pytest.raises(ValueError, match="kept_input"):
            K.winograd_backward_weight(
                x,
                g,
                wt.shape,
                padding=(1, 1),
                tile=4,
                need_bias=False,
                kept_input=bad,
                num_threads=1,
            )


@pytest.mark.parametrize("keep_input", [True, False])
def test_conv2d_hands_the_winograd_forward_input_to_the_weight_gradient(monkeypatch, keep_input):
    """LeNet()'s conv2 (N=64 32->64 4x4 p1) with every pass on Winograd: the weight
    gradient gets the forward's V when the plan keeps it, and not otherwise; the
    gradients are the same bit for bit."""
    handed = []
    weight_kernel = conv_plan.K.winograd_backward_weight

    def spy(*args, **kwargs):
        handed.append(kwargs.get("kept_input"))
        return weight_kernel(*args, **kwargs)

    monkeypatch.setattr(conv_plan.K, "winograd_backward_weight", spy)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 32, 4, 4)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    y, gx, gw, gb, g = run_conv(x, w, b, plan=_all_winograd(4, keep_input), padding=1)
    assert len(handed) == 1 and (handed[0] is not None) == keep_input, handed
    want = weight_kernel(
        x, g.astype(np.float32), w.shape, padding=(1, 1), tile=4, need_bias=True, num_threads=1
    )
    assert np.array_equal(gw, want[0]) and np.array_equal(gb, want[1])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 70),
    st.lists(st.sampled_from(["inf", "-inf", "nan", "big", "-big", "edge", "below"]), max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_fits_winograd_reads_the_exponent_bits_right(dtype, n, specials, seed):
    from minidl import _kernels as K

    limit = 2.0**64 if dtype == np.float32 else 2.0**512
    values = {
        "inf": np.inf,
        "-inf": -np.inf,
        "nan": np.nan,
        "big": 1e30 if dtype == np.float32 else 1e300,
        "-big": -(1e30 if dtype == np.float32 else 1e300),
        "edge": limit,
        "below": np.nextafter(dtype(limit), dtype(0)),
    }
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(dtype)
    for name in specials if n else ():
        a[rng.integers(0, n)] = values[name]
    want = bool(np.all(np.isfinite(a)) and np.all(np.abs(a.astype(np.float64)) < limit))
    assert K.fits_winograd(a) is want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [None, 0, 65535, 65536, 200_000, 299_999])
def test_fits_winograd_scans_every_chunk_on_any_thread_count(dtype, where):
    """A big array is scanned in 2^16-element chunks over the threads: an inf anywhere,
    the first or last element of a chunk included, is found at 1, 2 and 3 threads."""
    from minidl import _kernels as K

    a = np.random.default_rng(0).standard_normal(300_000).astype(dtype)
    if where is not None:
        a[where] = np.inf
    for threads in (1, 2, 3):
        assert K.fits_winograd(a, threads) is (where is None), threads


def test_pooled_gradients_need_the_channel_major_plan_and_matching_codes():
    K = kernels()
    x = np.zeros((4, 16, 4, 4), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    g = np.zeros((4, 16, 2, 2), np.float32)
    codes = np.zeros((4, 16, 2, 2), np.uint8)
    kw = dict(padding=(1, 1), tile=4, num_threads=1)
    with pytest.raises(ValueError, match="channel-major plan"):  # the plane-major plan
        K.winograd_backward_input(g, w, x.shape, pool_codes=codes, **kw)
    if not K.winograd_channel_major_fits(x.shape, w.shape, padding=(1, 1), tile=4, dtype=x.dtype):
        return
    kw["channel_major"] = True
    assert K.winograd_backward_input(g, w, x.shape, pool_codes=codes, **kw).shape == x.shape
    with pytest.raises(ValueError, match="uint8 codes of shape"):
        K.winograd_backward_input(g, w, x.shape, pool_codes=codes[:2], **kw)
    with pytest.raises(ValueError, match="uint8 codes of shape"):
        K.winograd_backward_weight(
            x, g, w.shape, need_bias=False, pool_codes=codes.astype(np.int64), **kw
        )
    with pytest.raises(ValueError, match="channel-major plan"):  # 5x5 planes: not cm
        K.winograd_backward_weight(
            np.zeros((4, 16, 5, 5), np.float32), g, w.shape, need_bias=False, pool_codes=codes, **kw
        )
