"""The conv plan (minidl.ops.conv_plan): every path F.conv2d can run, forced, gives the
naive reference's results; the plan's hard eligibility rules hold; plans are checked.

- every plan conv_plan.candidates allows at a shape (drawn at random: each pass's path,
  tile or layout, and whether the forward keeps its cols / V), forced, against the naive
  reference (minidl.reference): the output and both gradients, float32 and float64
  (the direct kernels are float32 only), at 1 and 2 threads;
- each candidate of each pass, forced alone, at fixed shapes (so that every path runs
  here whatever hypothesis draws);
- whatever the thresholds, stride 2 / dilation / groups never run on Winograd or the
  direct kernels, float64 never on the direct kernels, and the built-in plan is always
  one the layer can run;
- ConvPlan / PassPlan refuse inconsistent plans, ``forced`` refuses a plan the layer
  cannot run, plans are remembered per shape, ``minidl info --conv-plan`` prints one.

Tolerances: kernel_checks.assert_close, normwise with the Winograd tests' slack
(test_kernels_winograd.py) for a pass on Winograd, per element otherwise.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import assert_close, examples, kernels, reference, run_conv

import minidl
from minidl import reference as R
from minidl.ops import conv_plan
from minidl.ops.conv_plan import DEPTHWISE, DIRECT, IM2COL, ConvPlan, PassPlan

WINO4 = PassPlan("winograd", 4)
CHANNEL_MAJOR = PassPlan("winograd", 4, "channels")

SLACK = {3: 1.0, 5: 4.0}  # Winograd tolerance factor per kernel side


def _check_results(got, x, w, b, g, hyper, plan, dtype, what):
    """y, dx, dW, db of F.conv2d (``got``) against the naive reference."""
    y, gx, gw, gb = got
    k = w.shape[2]
    want_y, mag_y = reference(R.conv2d_forward, (x, w, b), *hyper)
    (want_dx, want_dw, want_db), (mag_dx, mag_dw, mag_db) = reference(
        R.conv2d_backward, (x, w, g), *hyper
    )
    for name, path, got_, want, mag in (
        ("output", plan.forward, y, want_y, mag_y),
        ("input grad", plan.input, gx, want_dx, mag_dx),
        ("weight grad", plan.weight, gw, want_dw, mag_dw),
        ("bias grad", plan.weight, gb, want_db, mag_db),
    ):
        winograd = path.path == "winograd"
        slack = SLACK[k] if winograd and name != "bias grad" else 1.0
        assert_close(got_, want, mag, dtype, f"{what} {name} on {path}", winograd, slack)


@st.composite
def layers(draw):
    k = draw(st.sampled_from([1, 2, 3, 3, 5, 5]))
    stride = draw(st.sampled_from([1, 1, 1, 2]))
    dilation = draw(st.sampled_from([1, 1, 1, 2]))
    padding = (draw(st.integers(0, k)), draw(st.integers(0, k)))
    reach = dilation * (k - 1) + 1
    size = [draw(st.integers(max(1, reach - 2 * p), max(1, reach - 2 * p) + 8)) for p in padding]
    groups = draw(st.sampled_from([1, 1, 1, 2]))
    return dict(
        N=draw(st.integers(1, 3)),
        C=groups * draw(st.integers(1, 4)),
        F=groups * draw(st.integers(1, 5)),
        H=size[0],
        W=size[1],
        k=k,
        stride=(stride, stride),
        padding=padding,
        dilation=(dilation, dilation),
        groups=groups,
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        threads=draw(st.sampled_from([1, 2])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(cfg["dtype"])
    w = rng.standard_normal((cfg["F"], cfg["C"] // cfg["groups"], cfg["k"], cfg["k"]))
    b = rng.standard_normal(cfg["F"]).astype(cfg["dtype"])
    return x, w.astype(cfg["dtype"]), b


def _layer(cfg, x, w):
    return (
        x.shape,
        w.shape,
        x.dtype,
        cfg["stride"],
        cfg["padding"],
        cfg["dilation"],
        cfg["groups"],
    )


def _run_forced(x, w, b, plan, cfg):
    saved = minidl.get_num_threads()
    minidl.set_num_threads(cfg["threads"])
    try:
        return run_conv(
            x,
            w,
            b,
            plan=plan,
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            groups=cfg["groups"],
        )
    finally:
        minidl.set_num_threads(saved)


@settings(max_examples=examples(150), deadline=None)
@given(layers(), st.data())
def test_every_forced_plan_gives_the_reference_results(cfg, data):
    kernels()
    x, w, b = _arrays(cfg)
    can = conv_plan.candidates(*_layer(cfg, x, w))
    forward, input_, weight = (data.draw(st.sampled_from(can[p])) for p in conv_plan.PASSES)
    keep = forward == weight and forward.path in ("im2col", "winograd") and data.draw(st.booleans())
    plan = ConvPlan(forward, input_, weight, keep)
    y, gx, gw, gb, g = _run_forced(x, w, b, plan, cfg)
    hyper = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    _check_results((y, gx, gw, gb), x, w, b, g, hyper, plan, cfg["dtype"], f"{plan} {cfg}")


# (N, C, F, H, W, k, padding): 3x3 with both tilings, a 4-wide output plane (half rows
# on AVX2 and AVX-512), 5x5 with unequal padding, a 2x4 kernel
FIXED_LAYERS = [
    (3, 5, 7, 8, 8, 3, (1, 1)),
    (2, 6, 4, 4, 4, 3, (1, 1)),
    (2, 3, 5, 7, 9, 5, (2, 1)),
    (2, 4, 3, 6, 7, 2, (0, 1)),
]


def _each_forced_alone(shape, dtype):
    """(plan id, plan): each candidate of each pass with im2col elsewhere, and the two
    kept-input pairs."""
    n, c, f, h, w, k, p = shape
    can = conv_plan.candidates((n, c, h, w), (f, c, k, k), dtype, padding=p)
    plans = []
    for which in conv_plan.PASSES:
        for chosen in can[which][1:]:
            passes = dict.fromkeys(conv_plan.PASSES, IM2COL) | {which: chosen}
            plans.append(ConvPlan(**passes))
    for chosen in can["forward"]:
        if chosen.path != "direct":
            plans.append(ConvPlan(chosen, IM2COL, chosen, keep_input=True))
    return plans


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", FIXED_LAYERS)
def test_each_path_of_each_pass_forced_alone(shape, dtype):
    kernels()
    n, c, f, h, wd, k, p = shape
    cfg = dict(N=n, C=c, F=f, H=h, W=wd, k=k, groups=1, dtype=dtype, seed=sum(shape[:5]))
    cfg.update(stride=(1, 1), padding=p, dilation=(1, 1), threads=2)
    x, w, b = _arrays(cfg)
    plans = _each_forced_alone(shape, dtype)
    paths = {(which, getattr(plan, which).path) for plan in plans for which in conv_plan.PASSES}
    assert {("forward", "winograd"), ("input", "winograd"), ("weight", "winograd")} <= paths or (
        k not in (3, 5)
    )
    for plan in plans:
        y, gx, gw, gb, g = _run_forced(x, w, b, plan, cfg)
        hyper = ((1, 1), p, (1, 1), 1)
        _check_results((y, gx, gw, gb), x, w, b, g, hyper, plan, dtype, f"{plan} at {shape}")


def test_fixed_layers_reach_every_path_here():
    """FIXED_LAYERS cover Winograd's tilings and, where the CPU has them, the direct
    kernels with each input-gradient layout."""
    kernels()
    seen = set()
    for shape in FIXED_LAYERS:
        for plan in _each_forced_alone(shape, np.float32):
            seen.update(getattr(plan, which) for which in conv_plan.PASSES)
    want = {IM2COL, PassPlan("winograd", 2), PassPlan("winograd", 4)}
    if kernels().winograd_channel_major_lanes():
        want.add(PassPlan("winograd", 4, "channels"))
    if kernels().direct_level():
        want |= {DIRECT} | {PassPlan("direct", layout=layout) for layout in conv_plan.LAYOUTS}
    assert want <= seen, want - seen


# (N, C, multiplier, H, W, kh, kw, stride, padding, dilation): depth-wise layers
DEPTHWISE_LAYERS = [
    (2, 3, 1, 7, 8, 3, 3, (1, 1), (1, 1), (1, 1)),
    (3, 4, 2, 9, 6, 3, 3, (2, 2), (1, 0), (1, 1)),
    (2, 2, 3, 8, 9, 2, 3, (1, 2), (0, 2), (2, 1)),
    (1, 5, 1, 6, 6, 5, 5, (1, 1), (2, 2), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", DEPTHWISE_LAYERS)
def test_depthwise_forced_on_each_pass_and_chosen_by_default(layer, dtype):
    """groups == C_in: the depth-wise path on each pass alone, on all three, and as the
    built-in choice, against the naive reference."""
    kernels()
    n, c, m, h, wd, kh, kw, stride, padding, dilation = layer
    rng = np.random.default_rng(sum(layer[:7]))
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((c * m, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(c * m).astype(dtype)
    cfg = dict(stride=stride, padding=padding, dilation=dilation, groups=c, threads=2)
    can = conv_plan.candidates(x.shape, w.shape, dtype, stride, padding, dilation, c)
    assert all(DEPTHWISE in plans for plans in can.values()), can
    plans = [ConvPlan(**(dict.fromkeys(conv_plan.PASSES, IM2COL) | {p: DEPTHWISE})) for p in can]
    plans.append(ConvPlan(DEPTHWISE, DEPTHWISE, DEPTHWISE))
    built_in = conv_plan.plan_conv2d(x.shape, w.shape, dtype, stride, padding, dilation, c)
    assert built_in == ConvPlan(DEPTHWISE, DEPTHWISE, DEPTHWISE), built_in
    hyper = (stride, padding, dilation, c)
    for plan in plans + [None]:
        got = _run_forced(x, w, b, plan, cfg)
        _check_results(got[:4], x, w, b, got[4], hyper, plan or built_in, dtype, f"{plan}")


def test_depthwise_is_refused_where_filters_read_several_channels():
    with pytest.raises(ValueError, match="forward pass cannot run"):
        run_conv(
            np.ones((1, 4, 5, 5)),
            np.ones((4, 2, 3, 3)),
            np.ones(4),
            plan=ConvPlan(DEPTHWISE, IM2COL, IM2COL),
            groups=2,
        )


# --------------------------------------------------------------------------------------
# hard eligibility, whatever the thresholds
# --------------------------------------------------------------------------------------


@settings(max_examples=examples(200), deadline=None)
@given(layers(), st.booleans())
def test_the_built_in_plan_is_always_one_the_layer_can_run(cfg, weight_grad):
    kernels()
    x, w, _ = _arrays(cfg)
    layer = _layer(cfg, x, w)
    plan = conv_plan.plan_conv2d(*layer, weight_grad=weight_grad, num_threads=cfg["threads"])
    conv_plan.check_plan(plan, *layer)
    can = conv_plan.candidates(*layer)
    special = cfg["stride"] != (1, 1) or cfg["dilation"] != (1, 1) or cfg["groups"] != 1
    depthwise = cfg["groups"] == cfg["C"]
    if special:
        assert all(p in (IM2COL, DEPTHWISE) for plans in can.values() for p in plans), can
    assert all((DEPTHWISE in plans) == depthwise for plans in can.values()), can
    if depthwise and cfg["groups"] > 1:
        assert plan == ConvPlan(DEPTHWISE, DEPTHWISE, DEPTHWISE), plan
    if cfg["dtype"] == np.float64 or not kernels().direct_level():
        assert all(p.path != "direct" for plans in can.values() for p in plans), can
    if cfg["k"] not in (3, 5) or max(cfg["padding"]) > cfg["k"] - 1:
        assert all(p.path != "winograd" for plans in can.values() for p in plans), can


@pytest.mark.parametrize(
    "ishape, wshape, padding, winograd",
    [
        ((64, 6, 4, 4), (16, 6, 3, 3), 1, 4),  # LeNet-digits conv2: one 6x6 tile per plane
        ((64, 6, 4, 4), (16, 6, 5, 5), 2, 4),  # the same with a 5x5 kernel
        ((64, 2, 2, 2), (4, 2, 3, 3), 1, 2),  # 2x2 planes: one F(2x2, 3x3) tile
        ((8, 6, 4, 4), (16, 6, 3, 3), 1, 0),  # too few samples for the weight transform
        ((64, 1, 4, 4), (32, 1, 3, 3), 1, 0),  # one input channel: too few GEMM savings
        ((64, 6, 8, 8), (16, 6, 3, 3), 1, 0),  # 8x8 planes are four tiles: the usual rule
    ],
)
def test_planes_that_are_one_tile_go_to_winograd_from_a_low_channel_ratio(
    ishape, wshape, padding, winograd
):
    plan = conv_plan.plan_conv2d(ishape, wshape, np.float32, 1, padding, num_threads=1)
    for which in conv_plan.PASSES:
        got = getattr(plan, which)
        if winograd:
            assert (got.path, got.tile) == ("winograd", winograd), (which, plan)
        else:
            assert got.path != "winograd", (which, plan)


# per channel-major vector width: (C, F) -> whether the built-in rule runs the layer
# (N 64, 4x4 planes, padding 1, 3x3) channel-major
CHANNEL_MAJOR_CHOICES = {
    16: {(6, 16): False, (16, 6): False, (16, 16): True, (32, 64): True, (12, 40): False},
    8: {(6, 16): True, (16, 6): True, (16, 16): True, (5, 16): False, (8, 12): False},
}


def test_the_built_in_rule_goes_channel_major_where_the_channels_fill_its_vectors():
    lanes = kernels().winograd_channel_major_lanes()
    if not lanes:
        pytest.skip("no channel-major Winograd on this CPU (it needs AVX2 + FMA or AVX-512)")
    for (c, f), want in CHANNEL_MAJOR_CHOICES[lanes].items():
        for dtype in (np.float32, np.float64):
            plan = conv_plan.plan_conv2d((64, c, 4, 4), (f, c, 3, 3), dtype, 1, 1, num_threads=1)
            passes = [getattr(plan, which) for which in conv_plan.PASSES]
            assert all(p.path == "winograd" for p in passes), plan
            major = want and dtype == np.float32
            assert all(p == (CHANNEL_MAJOR if major else WINO4) for p in passes), (c, f, plan)
    # not on 8x8 planes, whatever the channels
    plan = conv_plan.plan_conv2d((64, 32, 8, 8), (64, 32, 3, 3), np.float32, 1, 1)
    assert not any(getattr(plan, which).channel_major for which in conv_plan.PASSES), plan


def test_channel_major_is_a_candidate_where_it_fits():
    fits = bool(kernels().winograd_channel_major_lanes())
    for dtype, padding, size, want in (
        (np.float32, (1, 1), 4, fits),
        (np.float64, (1, 1), 4, False),
        (np.float32, (0, 0), 4, False),
        (np.float32, (1, 1), 5, False),
    ):
        can = conv_plan.candidates((2, 3, size, size), (5, 3, 3, 3), dtype, padding=padding)
        for which in conv_plan.PASSES:
            assert (CHANNEL_MAJOR in can[which]) == want, (dtype, padding, size, can)


def test_stride_2_and_float64_stay_off_the_fast_paths_even_with_zero_thresholds(monkeypatch):
    """With every threshold at its most permissive, stride 2 still runs on im2col only
    and float64 never on the direct kernels."""
    for name in ("WINOGRAD_MIN_CHANNEL_RATIO", "WINOGRAD_MIN_WORK", "WINOGRAD5_MIN_CHANNEL_RATIO"):
        monkeypatch.setattr(conv_plan, name, dict.fromkeys(conv_plan.PASSES, 0))
    monkeypatch.setattr(conv_plan, "DIRECT_MIN_EFFICIENCY", dict.fromkeys(conv_plan.PASSES, 0))
    monkeypatch.setattr(conv_plan, "DIRECT_MIN_WORK", dict.fromkeys(conv_plan.PASSES, 0))
    monkeypatch.setattr(conv_plan, "WINOGRAD5_THREADED_RATIO", 0)
    monkeypatch.setattr(conv_plan, "WINOGRAD5_AVX512_FORWARD_RATIO", 0)
    monkeypatch.setattr(conv_plan, "DIRECT_MIN_OUTPUTS", 0)
    for k in (3, 5):
        stride2 = conv_plan.plan_conv2d((64, 32, 16, 16), (64, 32, k, k), np.float32, 2, 1)
        assert stride2 == ConvPlan(IM2COL, IM2COL, IM2COL, stride2.keep_input), stride2
        double = conv_plan.plan_conv2d((64, 32, 16, 16), (64, 32, k, k), np.float64, 1, 1)
        assert "direct" not in (double.forward.path, double.input.path, double.weight.path)
        assert double.forward.path == "winograd", double  # the thresholds did open up


# --------------------------------------------------------------------------------------
# plans: checks, forcing, caching, the command line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: PassPlan("gemm"),
        lambda: PassPlan("winograd"),
        lambda: PassPlan("winograd", 3),
        lambda: PassPlan("im2col", 2),
        lambda: PassPlan("im2col", layout="rows"),
        lambda: PassPlan("direct", layout="columns"),
        lambda: PassPlan("direct", layout="channels"),
        lambda: PassPlan("winograd", 2, "channels"),
        lambda: PassPlan("winograd", 4, "rows"),
        lambda: ConvPlan(CHANNEL_MAJOR, IM2COL, WINO4, keep_input=True),  # V's layouts differ
        lambda: ConvPlan(IM2COL, DIRECT, IM2COL),  # a direct input gradient needs a layout
        lambda: ConvPlan(PassPlan("direct", layout="rows"), IM2COL, IM2COL),
        lambda: ConvPlan(IM2COL, IM2COL, WINO4, keep_input=True),
        lambda: ConvPlan(WINO4, IM2COL, PassPlan("winograd", 2), keep_input=True),
        lambda: ConvPlan(DIRECT, IM2COL, DIRECT, keep_input=True),
        lambda: ConvPlan("im2col", IM2COL, IM2COL),
    ],
)
def test_inconsistent_plans_are_refused(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_plans_are_frozen():
    plan = ConvPlan(IM2COL, IM2COL, IM2COL)
    with pytest.raises(AttributeError):
        plan.forward = WINO4


def test_forcing_a_plan_the_layer_cannot_run_names_the_pass():
    x = np.ones((2, 3, 6, 6))
    w = np.ones((4, 3, 5, 5))
    with pytest.raises(ValueError, match="input pass cannot run"):
        run_conv(x, w, np.ones(4), plan=ConvPlan(IM2COL, PassPlan("winograd", 2), IM2COL))
    with pytest.raises(TypeError, match="ConvPlan"), conv_plan.forced("im2col"):
        pass


def test_forced_blocks_nest_and_restore():
    x = minidl.tensor(np.ones((1, 2, 5, 5)))
    w = minidl.tensor(np.ones((3, 2, 3, 3)))
    outer = ConvPlan(WINO4, IM2COL, IM2COL)
    inner = ConvPlan(PassPlan("winograd", 2), IM2COL, IM2COL)
    layer = ((1, 2, 5, 5), (3, 2, 3, 3), np.dtype(np.float64), (1, 1), (1, 1), (1, 1), 1)
    with conv_plan.forced(outer):
        with conv_plan.forced(inner):
            assert conv_plan.cached_plan(*layer, False, 1) is inner
            minidl.nn.functional.conv2d(x, w, padding=1)
        assert conv_plan.cached_plan(*layer, False, 1) is outer
    assert conv_plan.cached_plan(*layer, False, 1) == conv_plan.plan_conv2d(
        *layer[:4], 1, weight_grad=False, num_threads=1
    )


def test_plans_are_remembered_per_shape():
    layer = ((8, 16, 4, 4), (16, 16, 1, 1), np.dtype(np.float32), (1, 1), (0, 0), (1, 1), 1)
    first = conv_plan.cached_plan(*layer, True, 1)
    assert conv_plan.cached_plan(*layer, True, 1) is first
    conv_plan.clear_cache()
    assert conv_plan.cached_plan(*layer, True, 1) == first


@pytest.mark.parametrize(
    "args, error",
    [
        (((2, 3, 8, 8), (4, 3, 3, 3), np.int32), TypeError),
        (((2, 3, 8, 8), (4, 2, 3, 3)), ValueError),
        (((2, 3, 2, 2), (4, 3, 5, 5)), ValueError),
        (((2, 3, 8), (4, 3, 3, 3)), ValueError),
        (((0, 3, 8, 8), (4, 3, 3, 3)), ValueError),
    ],
)
def test_plan_conv2d_rejects_a_bad_layer(args, error):
    with pytest.raises(error):
        conv_plan.plan_conv2d(*args)


def test_info_prints_the_conv_plan_of_a_layer(capsys):
    from minidl import cli

    assert cli.main(["info", "--conv-plan", "64,32,4,4,64,3,1,1"]) == 0
    out = capsys.readouterr().out
    assert "(64, 32, 4, 4)" in out and "(64, 32, 3, 3)" in out
    for which in conv_plan.PASSES:
        assert out.count(f"  {which} ") == 2, out  # training and no_grad
    plan = conv_plan.plan_conv2d((64, 32, 4, 4), (64, 32, 3, 3), padding=1)
    assert plan.describe(3) in out


@pytest.mark.parametrize("spec", ["1,2,3", "64,32,4,4,64,3,1,x", "2,3,2,2,4,5,1,0"])
def test_info_rejects_a_bad_conv_plan_layer(spec, capsys):
    from minidl import cli

    assert cli.main(["info", "--conv-plan", spec]) == 2
    assert "--conv-plan" in capsys.readouterr().err
