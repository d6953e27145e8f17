"""The direct float32 convolution kernels (minidl._kernels._direct), and F.conv2d forced
through them.

- each of the three kernels (forward, input gradient, weight gradient + bias gradient)
  against the naive reference (minidl.reference, on float64 copies) on hypothesis-drawn
  configs: N 1-3, C 1-10 and F 1-18 (so usually not multiples of the register blocks,
  8 / 4 channels or filters), H and W 1-13 independently, kh and kw 1-6 independently,
  padding 0..k+1 per axis with the plane drawn so that Ho, Wo >= 1 (1x1 outputs, planes
  smaller than the kernel), bias or None, 1 or 2 threads, every input-gradient layout
  that can run at the shape;
- 1, 2 and 3 threads give bit-identical results at shapes big enough to be split (and
  those results are right: checked against the float64 im2col kernels, since the naive
  reference takes seconds there);
- F.conv2d forced through all three direct kernels at the MNIST-like layer (N 64, 6->16,
  12x12, k5) matches the im2col path (output, input, weight and bias gradients), and so
  does its forward under no_grad; float64 and stride 2 are never planned on them (hard
  eligibility);
- the AVX2 build (MINIDL_DIRECT_LEVEL=1, in a subprocess) against the reference, and a
  bad MINIDL_DIRECT_LEVEL is refused.

The module is skipped only where the kernels are unavailable (direct_level() == 0: no
AVX2 + FMA); an import failure of minidl._kernels is a failure (kernel_checks.kernels).

Tolerance (kernel_checks.assert_close, per element, normwise=False):
|got - want| <= 1e-5 * (|want| + magnitude), want the float64 reference and magnitude the
same computation on absolute values.  Unlike Winograd, the direct kernels only ever add
products x*w of the output's own sum (no transforms mixing neighbours), so each output's
rounding error is bounded by (number of additions) * 2^-24 * its own magnitude: at most
C*kh*kw = 360 terms for the forward, F + kh*kw <= 54 for the input gradient, and for the
weight gradient per-lane float32 sums over N*Ho*Wo / vector width positions plus the
horizontal and block sums; random rounding grows like the square root of that.  Measured
(a throwaway sweep of 2000 configs, these and with N, C, F up to 39, against the float64
im2col kernels): the worst ratio |got - want| / (|want| + magnitude) was 3.1e-7 for the
forward, 1.6e-7 for dx, 1.8e-7 for dW (~5 unit roundoffs, 2^-24 = 6e-8), 3e-8 for db
(summed in double); so 1e-5 leaves a 30x margin and needs no normwise scale.  Where the
magnitude is 0 (a tap that only ever reads padding) the result must be exactly 0.
"""

import ast

import kernel_checks
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import (
    THREADS,
    absf64,
    assert_close,
    conv_arrays,
    count_kernel_calls,
    examples,
    f64,
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
from minidl.ops.conv_plan import DIRECT, IM2COL, ConvPlan, PassPlan

if kernel_checks._kernels is not None and kernel_checks._kernels.direct_level() == 0:
    pytest.skip(
        "the direct convolution kernels are unavailable on this CPU/compiler "
        "(direct_level() == 0: no AVX2 + FMA); minidl uses im2col + GEMM there",
        allow_module_level=True,
    )

F32 = np.float32
LAYOUTS = set(conv_plan.LAYOUTS)


# --------------------------------------------------------------------------------------
# each kernel against the naive reference
# --------------------------------------------------------------------------------------


@st.composite
def direct_configs(draw):
    kernel = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    # padding up to k + 1: outputs whose window lies wholly in the padding are the bias
    padding = tuple(draw(st.integers(0, k + 1)) for k in kernel)
    # Ho = H + 2p - k + 1 >= 1: H >= k - 2p (draw the plane in range, filter nothing)
    size = [draw(st.integers(max(1, k - 2 * p), 13)) for k, p in zip(kernel, padding)]
    return dict(
        N=draw(st.integers(1, 3)),
        C=draw(st.integers(1, 10)),
        F=draw(st.integers(1, 18)),
        H=size[0],
        W=size[1],
        kernel=kernel,
        padding=padding,
        bias=draw(st.booleans()),
        threads=draw(st.sampled_from([1, THREADS])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def arrays(cfg):
    return conv_arrays(cfg, cfg["kernel"], F32)


def _layouts(x_shape, w_shape, padding):
    """The input-gradient layouts that can run at this shape (conv_plan.candidates)."""
    return [
        p.layout
        for p in conv_plan.candidates(x_shape, w_shape, F32, padding=tuple(padding))["input"]
        if p.path == "direct"
    ]


@settings(max_examples=examples(200), deadline=None)
@given(direct_configs())
def test_direct_forward_against_reference(cfg):
    K = kernels()
    x, w, b, _ = arrays(cfg)
    p = cfg["padding"]
    got = K.direct_conv2d_forward(x, w, b, padding=p, num_threads=cfg["threads"])
    want, magnitude = reference(R.conv2d_forward, (x, w, b), 1, p)
    assert_close(got, want, magnitude, F32, f"direct_conv2d_forward {cfg}")
    for layout in _layouts(x.shape, w.shape, p):
        useful = K.direct_efficiency(x.shape, w.shape, padding=p, layout=layout)
        assert set(useful) == {"forward", "input", "weight"}, useful
        assert all(0 < e <= 1 for e in useful.values()), (layout, useful)


@settings(max_examples=examples(150), deadline=None)
@given(direct_configs(), st.sampled_from(sorted(LAYOUTS)))
def test_direct_backward_against_reference(cfg, layout):
    """Both backward kernels on the same config: one reference call gives dx, dW and db;
    the input gradient in ``layout`` where it can run (else the first that can)."""
    K = kernels()
    x, w, _, dy = arrays(cfg)
    p, nt = cfg["padding"], cfg["threads"]
    layouts = _layouts(x.shape, w.shape, p)
    layout = layout if layout in layouts else layouts[0]
    dx = K.direct_conv2d_backward_input(dy, w, x.shape, padding=p, layout=layout, num_threads=nt)
    dw, db = K.direct_conv2d_backward_weight(
        x, dy, w.shape, padding=p, need_bias=cfg["bias"], num_threads=nt
    )
    (want_dx, want_dw, want_db), (mag_dx, mag_dw, mag_db) = reference(
        R.conv2d_backward, (x, w, dy), 1, p
    )
    assert_close(dx, want_dx, mag_dx, F32, f"direct_conv2d_backward_input {layout} {cfg}")
    assert_close(dw, want_dw, mag_dw, F32, f"direct_conv2d_backward_weight dW {cfg}")
    if cfg["bias"]:
        assert db is not None, "need_bias=True must return the bias gradient"
        assert_close(db, want_db, mag_db, F32, f"direct_conv2d_backward_weight db {cfg}")
    else:
        assert db is None, "need_bias=False must return None for the bias gradient"


# (N, C, F, H, W, kernel, padding): fixed shapes for the input gradient's dY' layouts
# (each run in every layout that can run it) and channel blocks, the geometry of each
# layout at the edges the random configs need not hit on every CPU.
LAYOUT_SHAPES = [
    (3, 6, 16, 12, 12, (5, 5), (0, 0)),  # MNIST-like conv2: rows on AVX2 (Wo = 8)
    (2, 5, 7, 13, 13, (5, 5), (2, 2)),  # Wo = 13
    (2, 6, 9, 21, 19, (3, 3), (1, 1)),  # Wo = 19, Wp = 21
    (2, 3, 5, 6, 16, (3, 7), (1, 3)),  # Wo = 16, Wp = 22: rows on AVX2 and AVX-512
    (2, 7, 4, 6, 30, (2, 6), (0, 3)),  # Wo = 31, a short plane
    (2, 12, 3, 5, 4, (3, 3), (2, 2)),  # Wp = 8
    (2, 18, 5, 9, 9, (4, 4), (0, 0)),  # 6-channel blocks x 3
    (2, 5, 6, 4, 4, (3, 3), (1, 1)),  # Wo = 4 (LeNet-digits conv2): half rows on both
    (3, 12, 5, 6, 5, (2, 2), (1, 0)),  # Ho = 7: the last vector's upper half is no row
    (3, 9, 5, 6, 7, (2, 2), (1, 0)),  # Ho = 7, Wo = 6: half rows, 8 channels (AVX-512)
]


def test_direct_input_layouts_are_all_exercised():
    """LAYOUT_SHAPES run the three layouts and the 6-channel block at this CPU's vector
    width, so that test_direct_input_gradient_layouts checks each of them here (and
    test_avx2_kernels_against_reference_with_the_level_capped on AVX2 too)."""
    from minidl._kernels import _direct

    seen = set()
    for n, c, f, h, w, k, p in LAYOUT_SHAPES:
        seen.update(_layouts((n, c, h, w), (f, c) + k, p))
    assert seen == LAYOUTS, seen
    blocks = {
        _direct.input_channel_block((n, c, h, w), (f, c) + k, p)
        for n, c, f, h, w, k, p in LAYOUT_SHAPES
    }
    assert 6 in blocks, blocks


@pytest.mark.parametrize("shape", LAYOUT_SHAPES)
@pytest.mark.parametrize("threads", [1, THREADS])
def test_direct_input_gradient_layouts(shape, threads):
    K = kernels()
    n, c, f, h, w, k, p = shape
    cfg = dict(
        N=n,
        C=c,
        F=f,
        H=h,
        W=w,
        kernel=k,
        padding=p,
        bias=False,
        threads=threads,
        seed=sum(shape[:5]),
    )
    x, wt, _, dy = arrays(cfg)
    (want_dx, _, _), (mag_dx, _, _) = reference(R.conv2d_backward, (x, wt, dy), 1, p)
    for layout in _layouts(x.shape, wt.shape, p):
        dx = K.direct_conv2d_backward_input(
            dy, wt, x.shape, padding=p, layout=layout, num_threads=threads
        )
        assert_close(dx, want_dx, mag_dx, F32, f"direct_conv2d_backward_input {layout} {cfg}")


# --------------------------------------------------------------------------------------
# threads: bit-identical results at shapes that are split
# --------------------------------------------------------------------------------------

# (N, C, F, H, W, kernel, padding).  Each does >= 3 * 2**18 of choose_threads' work, so
# 2 and 3 threads are really used and the weight gradient sums >= 3 partials; N is not a
# multiple of 3 (uneven runs of samples), C and F not multiples of the register blocks.
SPLIT_SHAPES = [
    (256, 6, 16, 12, 12, (5, 5), (0, 0)),  # MNIST-like conv2
    (80, 8, 24, 16, 16, (3, 3), (1, 1)),  # padded 3x3
    (200, 7, 13, 11, 14, (2, 4), (1, 2)),  # non-square kernel, unequal padding
]


def _run_all(K, x, w, b, dy, p, nt, layout):
    y = K.direct_conv2d_forward(x, w, b, padding=p, num_threads=nt)
    plan = [K.planned_threads(K.direct_conv2d_forward)]
    dx = K.direct_conv2d_backward_input(dy, w, x.shape, padding=p, layout=layout, num_threads=nt)
    plan.append(K.planned_threads(K.direct_conv2d_backward_input))
    dw, db = K.direct_conv2d_backward_weight(
        x, dy, w.shape, padding=p, need_bias=True, num_threads=nt
    )
    plan.append(K.planned_threads(K.direct_conv2d_backward_weight))
    return (y, dx, dw, db), plan


@pytest.mark.parametrize("layout", ["pitch", "rows"])
@pytest.mark.parametrize("shape", SPLIT_SHAPES, ids=lambda s: "x".join(map(str, s[:5])))
def test_direct_bit_identical_for_1_2_3_threads(shape, layout):
    K = kernels()
    N, C, Fo, H, W, k, p = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W)).astype(F32)
    w = rng.standard_normal((Fo, C) + k).astype(F32)
    b = rng.standard_normal(Fo).astype(F32)
    ho, wo = H + 2 * p[0] - k[0] + 1, W + 2 * p[1] - k[1] + 1
    dy = rng.standard_normal((N, Fo, ho, wo)).astype(F32)
    results, plans = [], []
    for nt in (1, 2, 3):
        result, plan = _run_all(K, x, w, b, dy, p, nt, layout)
        results.append(result)
        plans.append(plan)
    if K.openmp_enabled():
        assert plans == [[1, 1, 1], [2, 2, 2], [3, 3, 3]], f"the shape was not split: {plans}"
    for nt, other in zip((2, 3), results[1:]):
        for name, a, c in zip(("y", "dx", "dw", "db"), results[0], other):
            assert np.array_equal(a, c), f"{name} differs between 1 and {nt} threads"
    # and the (common) result is right
    wants = im2col_f64(x, w, b, dy, p)
    magnitudes = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(dy), p)
    for name, got, want, mag in zip(("y", "dx", "dw", "db"), results[0], wants, magnitudes):
        assert_close(got, want, mag, F32, f"{name} at split shape {shape}")


# --------------------------------------------------------------------------------------
# F.conv2d forced through the direct kernels
# --------------------------------------------------------------------------------------

_KERNEL_OF_PASS = {
    "forward": "direct_conv2d_forward",
    "input": "direct_conv2d_backward_input",
    "weight": "direct_conv2d_backward_weight",
}


@pytest.fixture
def direct_calls(monkeypatch):
    """How many times each direct kernel ran in this test."""
    return count_kernel_calls(monkeypatch, _KERNEL_OF_PASS)


def _layer(dtype, N, C, Fo, H, W, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((Fo, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = rng.standard_normal(Fo).astype(dtype)
    return x, w, b


MNIST_LAYER = dict(N=64, C=6, Fo=16, H=12, W=12, k=5)
ALL_IM2COL = ConvPlan(IM2COL, IM2COL, IM2COL)


def test_conv2d_forced_through_the_direct_kernels_at_the_mnist_layer(direct_calls):
    """Each input-gradient layout that can run here (all three on AVX-512)."""
    x, w, b = _layer(F32, **MNIST_LAYER)
    want = run_conv(x, w, b, plan=ALL_IM2COL)
    mags = im2col_f64(np.abs(x), np.abs(w), np.abs(b), np.abs(want[4]), (0, 0))
    layouts = _layouts(x.shape, w.shape, (0, 0))
    for layout in layouts:
        plan = ConvPlan(DIRECT, PassPlan("direct", layout=layout), DIRECT)
        got = run_conv(x, w, b, plan=plan)
        assert np.array_equal(got[4], want[4])  # the same upstream gradient
        for name, a, c, mag in zip(
            ("output", "input grad", "weight grad", "bias grad"), got[:4], want[:4], mags
        ):
            assert_close(a, f64(c), mag, F32, f"F.conv2d {name}: direct ({layout}) vs im2col")
    assert direct_calls == dict.fromkeys(direct_calls, len(layouts)), direct_calls


@pytest.mark.parametrize(
    "dtype, kw", [(np.float64, {}), (F32, dict(stride=2))], ids=["float64", "stride2"]
)
def test_conv2d_never_plans_the_direct_kernels_for_ineligible_layers(direct_calls, dtype, kw):
    """Hard eligibility (not tuning): float32 and stride 1 only; forcing them otherwise
    is a ValueError; the built-in plan's results have the right shapes."""
    x, w, b = _layer(dtype, **MNIST_LAYER)
    stride = (kw.get("stride", 1),) * 2
    layer = (x.shape, w.shape, dtype, stride, (0, 0))
    assert all(p.path != "direct" for ps in conv_plan.candidates(*layer).values() for p in ps)
    for threads in (1, 2):
        for weight_grad in (True, False):
            plan = conv_plan.plan_conv2d(*layer, weight_grad=weight_grad, num_threads=threads)
            assert "direct" not in (plan.forward.path, plan.input.path, plan.weight.path)
    with pytest.raises(ValueError, match="weight pass cannot run"):
        run_conv(x, w, b, plan=ConvPlan(IM2COL, IM2COL, DIRECT), **kw)
    y, gx, gw, gb, _ = run_conv(x, w, b, **kw)
    assert tuple(direct_calls.values()) == (0, 0, 0), direct_calls
    assert y.dtype == dtype and gx.shape == x.shape and gw.shape == w.shape


def test_conv2d_forced_direct_forward_under_no_grad(direct_calls):
    """LeNet-digits conv1 under no_grad, the forward forced onto the direct kernel."""
    x, w, b = _layer(F32, N=64, C=1, Fo=6, H=8, W=8, k=3)
    with minidl.no_grad(), conv_plan.forced(ConvPlan(DIRECT, IM2COL, IM2COL)):
        y = F.conv2d(minidl.tensor(x), minidl.tensor(w), minidl.tensor(b), padding=1)
    assert direct_calls == {"forward": 1, "input": 0, "weight": 0}, direct_calls
    want = im2col_f64(x, w, b, np.zeros((64, 6, 8, 8)), (1, 1))[0]
    mag = im2col_f64(absf64(x), absf64(w), absf64(b), np.zeros((64, 6, 8, 8)), (1, 1))[0]
    assert_close(y.data, want, mag, F32, "no_grad F.conv2d, direct forward")


# --------------------------------------------------------------------------------------
# the AVX2 build of the kernels (what a CPU without AVX-512 runs), and the level cap
# --------------------------------------------------------------------------------------

_AVX2_CHECK = r"""
import ast, sys
import numpy as np
from minidl import _kernels as K
from minidl import reference as R
from minidl.ops import conv_plan
assert K.direct_level() == 1, K.direct_level()
rng = np.random.default_rng(5)
worst = 0.0
layouts = set()
for n, c, f, h, w, kh, kw, ph, pw in [(2, 6, 16, 12, 12, 5, 5, 0, 0), (3, 5, 7, 9, 11, 3, 3, 1, 1),
                                      (1, 9, 18, 13, 8, 4, 2, 3, 1), (2, 1, 3, 6, 6, 1, 1, 0, 0)
                                      ] + ast.literal_eval(sys.argv[1]):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c, kh, kw)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
    dy = rng.standard_normal((n, f, ho, wo)).astype(np.float32)
    want = [R.conv2d_forward(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64),
                             padding=(ph, pw))]
    want += list(R.conv2d_backward(x.astype(np.float64), wt.astype(np.float64),
                                   dy.astype(np.float64), padding=(ph, pw)))
    got = [K.direct_conv2d_forward(x, wt, b, padding=(ph, pw), num_threads=2), None]
    got += list(K.direct_conv2d_backward_weight(x, dy, wt.shape, padding=(ph, pw),
                                                need_bias=True, num_threads=2))
    for plan in conv_plan.candidates(x.shape, wt.shape, np.float32, padding=(ph, pw))["input"]:
        if plan.path == "direct":
            layouts.add(plan.layout)
            got[1] = K.direct_conv2d_backward_input(dy, wt, x.shape, padding=(ph, pw),
                                                    layout=plan.layout, num_threads=2)
            worst = max(worst, float(np.abs(got[1] - want[1]).max()
                                     / (np.abs(want[1]).max() + 1e-30)))
    for g, v in zip(got, want):
        worst = max(worst, float(np.abs(g - v).max() / (np.abs(v).max() + 1e-30)))
print(sorted(layouts))
print(worst)
"""


def test_avx2_kernels_against_reference_with_the_level_capped():
    """MINIDL_DIRECT_LEVEL=1 runs the AVX2 + FMA build (8-float vectors, other register
    blocks) on an AVX-512 machine: it must agree with the reference too."""
    if kernels().direct_level() < 2:
        pytest.skip("this CPU runs the AVX2 build already (tested above)")
    shapes = [(n, c, f, h, w) + k + p for n, c, f, h, w, k, p in LAYOUT_SHAPES]
    done = python_child(_AVX2_CHECK, repr(shapes), env={"MINIDL_DIRECT_LEVEL": "1"})
    assert done.returncode == 0, done.stderr
    layouts, worst = done.stdout.splitlines()
    assert set(ast.literal_eval(layouts)) == LAYOUTS, layouts
    assert float(worst) < 1e-5, done.stdout


def test_level_cap_rejects_a_bad_value():
    # MINIDL_CPU_LEVEL, its newer name, would be read first
    done = python_child(
        "import minidl._kernels", env={"MINIDL_DIRECT_LEVEL": "fast"}, drop=["MINIDL_CPU_LEVEL"]
    )
    assert done.returncode != 0
    assert "MINIDL_DIRECT_LEVEL must be 0, 1 or 2" in done.stderr


def test_weight_gradient_from_a_pooled_gradient_checks_its_shapes():
    K = kernels()
    if not K.direct_level():
        pytest.skip("no direct kernels on this CPU")
    x = np.zeros((2, 3, 6, 6), np.float32)
    g = np.zeros((2, 4, 3, 3), np.float32)
    codes = np.zeros((2, 4, 3, 3), np.uint8)
    kw = dict(padding=(1, 1), need_bias=True, num_threads=1)
    dw, db = K.direct_conv2d_backward_weight(x, g, (4, 3, 3, 3), pool_codes=codes, **kw)
    assert dw.shape == (4, 3, 3, 3) and db.shape == (4,)
    with pytest.raises(ValueError, match="pooled gradient and codes of shape"):
        K.direct_conv2d_backward_weight(x, g, (4, 3, 3, 3), pool_codes=codes[:, :, :2], **kw)
    with pytest.raises(ValueError, match="grad_out of shape"):
        K.direct_conv2d_backward_weight(x, g, (4, 3, 3, 3), **kw)
