"""Every kernel of minidl._kernels against the naive reference (minidl.reference).

Hypothesis draws configurations that are always valid (kernel, padding and dilation
first, then an input at least as large as the dilated kernel minus the padding, so every
output dim is >= 1): 1x1 images, kernels as large as the padded input, non-square
kernels, stride 1-3, padding 0-2 (pooling: <= kernel // 2), dilation 1-2, groups 1, 2 or C
(depth-wise), batch 1-3, channels 1-4, in float32 and float64.

The reference always runs in float64 on the same values, so it is the "exact" answer for
both dtypes.  Tolerance per element: |got - want| <= tol * (|want| + magnitude), where
magnitude is the same sum taken over absolute values (the scale that rounding errors are
proportional to): tol = 1e-5 in float32 and 1e-12 in float64.

If minidl._kernels cannot be imported, every test here FAILS (it never skips).

For a deeper hunt, scale every test's number of examples:
    MINIDL_HYPOTHESIS_SCALE=10 pytest tests/test_kernels.py
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import THREADS, absf64, assert_close, examples, f64, kernels, reference

from minidl import reference as R

DTYPES = st.sampled_from([np.float32, np.float64])


# --------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------


@st.composite
def conv_configs(draw):
    kind = draw(st.sampled_from(["plain", "two groups", "depthwise"]))
    if kind == "plain":
        groups, C, F = 1, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif kind == "two groups":
        groups, C, F = 2, 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    else:
        C = draw(st.integers(1, 4))
        groups, F = C, C * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the kernel fills the padded input
        size.append(draw(st.integers(smallest, smallest + 5)))
    return dict(
        N=draw(st.integers(1, 3)),
        C=C,
        F=F,
        H=size[0],
        W=size[1],
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        dtype=draw(DTYPES),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    size = [
        draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + 6)) for k, p in zip(kernel, padding)
    ]
    return dict(
        N=draw(st.integers(1, 3)),
        C=draw(st.integers(1, 4)),
        H=size[0],
        W=size[1],
        kernel=kernel,
        stride=stride,
        padding=padding,
        # small integers make ties common, which tests the tie rule
        values=draw(st.sampled_from(["normal", "small integers"])),
        dtype=draw(DTYPES),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def conv_inputs(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dtype = cfg["dtype"]
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["F"], cfg["C"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    b = rng.standard_normal(cfg["F"]).astype(dtype) if cfg["bias"] else None
    return rng, x, w, b


def pool_input(cfg):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    if cfg["values"] == "normal":
        x = rng.standard_normal(shape)
    else:
        x = rng.integers(-2, 3, shape).astype(np.float64)
    return rng, x.astype(cfg["dtype"])


def geometry(cfg):
    return cfg["stride"], cfg["padding"], cfg["dilation"]


# --------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------


@settings(max_examples=examples(200), deadline=None)
@given(conv_configs())
def test_conv2d_forward(cfg):
    K = kernels()
    _, x, w, b = conv_inputs(cfg)
    s, p, d = geometry(cfg)
    got = K.conv2d_forward(
        x, w, b, stride=s, padding=p, dilation=d, groups=cfg["groups"], num_threads=THREADS
    )
    want, magnitude = reference(R.conv2d_forward, (x, w, b), s, p, d, cfg["groups"])
    assert_close(got, want, magnitude, cfg["dtype"], "conv2d_forward")


@settings(max_examples=examples(200), deadline=None)
@given(conv_configs())
def test_conv2d_backward_input_and_weight(cfg):
    K = kernels()
    rng, x, w, _ = conv_inputs(cfg)
    s, p, d = geometry(cfg)
    G = cfg["groups"]
    out_shape = (cfg["N"], cfg["F"]) + tuple(
        R.output_size(n, k, st_, pd, dl)
        for n, k, st_, pd, dl in zip((cfg["H"], cfg["W"]), cfg["kernel"], s, p, d)
    )
    dy = rng.standard_normal(out_shape).astype(cfg["dtype"])

    hyper = dict(stride=s, padding=p, dilation=d, groups=G, num_threads=THREADS)
    dx = K.conv2d_backward_input(dy, w, tuple(x.shape), **hyper)
    dw, db = K.conv2d_backward_weight(x, dy, tuple(w.shape), **hyper, need_bias=cfg["bias"])

    (want_dx, want_dw, want_db), (mag_dx, mag_dw, mag_db) = reference(
        R.conv2d_backward, (x, w, dy), s, p, d, G
    )
    assert_close(dx, want_dx, mag_dx, cfg["dtype"], "conv2d_backward_input")
    assert_close(dw, want_dw, mag_dw, cfg["dtype"], "conv2d_backward_weight dW")
    if cfg["bias"]:
        assert_close(db, want_db, mag_db, cfg["dtype"], "conv2d_backward_weight db")
    else:
        assert db is None, "need_bias=False must return None for the bias gradient"


@settings(max_examples=examples(150), deadline=None)
@given(conv_configs())
def test_im2col_and_col2im(cfg):
    K = kernels()
    rng, x, _, _ = conv_inputs(cfg)
    s, p, d = geometry(cfg)
    k = cfg["kernel"]
    cols = K.im2col(x, k, s, p, d, THREADS)
    want = R.im2col(f64(x), k, s, p, d)
    # im2col only copies: exact in both dtypes
    assert cols.dtype == cfg["dtype"] and cols.shape == want.shape
    np.testing.assert_array_equal(cols, want.astype(cfg["dtype"]))

    c = rng.standard_normal(want.shape).astype(cfg["dtype"])
    got = K.col2im(c, tuple(x.shape), k, s, p, d, THREADS)
    want_x = R.col2im(f64(c), x.shape, k, s, p, d)
    magnitude = R.col2im(absf64(c), x.shape, k, s, p, d)
    assert_close(got, want_x, magnitude, cfg["dtype"], "col2im")


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------


@settings(max_examples=examples(150), deadline=None)
@given(pool_configs())
def test_max_pool2d_forward_and_backward(cfg):
    K = kernels()
    rng, x = pool_input(cfg)
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    y, indices = K.max_pool2d_forward(x, k, s, p, THREADS)
    want_y, want_indices = R.max_pool2d_forward(x, k, s, p)
    assert indices.dtype == np.int64, f"indices dtype {indices.dtype}, expected int64"
    assert y.dtype == cfg["dtype"]
    np.testing.assert_array_equal(y, want_y)  # max is exact
    np.testing.assert_array_equal(indices, want_indices)

    dy = rng.standard_normal(y.shape).astype(cfg["dtype"])
    got = K.max_pool2d_backward(dy, indices, tuple(x.shape), THREADS)
    want = R.max_pool2d_backward(f64(dy), want_indices, x.shape)
    magnitude = R.max_pool2d_backward(absf64(dy), want_indices, x.shape)
    assert_close(got, want, magnitude, cfg["dtype"], "max_pool2d_backward")


@settings(max_examples=examples(150), deadline=None)
@given(pool_configs(), st.booleans())
def test_avg_pool2d_forward_and_backward(cfg, count_include_pad):
    K = kernels()
    rng, x = pool_input(cfg)
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    y = K.avg_pool2d_forward(x, k, s, p, count_include_pad, THREADS)
    want = R.avg_pool2d_forward(f64(x), k, s, p, count_include_pad)
    magnitude = R.avg_pool2d_forward(absf64(x), k, s, p, count_include_pad)
    assert_close(y, want, magnitude, cfg["dtype"], "avg_pool2d_forward")

    dy = rng.standard_normal(y.shape).astype(cfg["dtype"])
    got = K.avg_pool2d_backward(dy, tuple(x.shape), k, s, p, count_include_pad, THREADS)
    want = R.avg_pool2d_backward(f64(dy), x.shape, k, s, p, count_include_pad)
    magnitude = R.avg_pool2d_backward(absf64(dy), x.shape, k, s, p, count_include_pad)
    assert_close(got, want, magnitude, cfg["dtype"], "avg_pool2d_backward")


# --------------------------------------------------------------------------------------
# max pooling: ties, NaN, infinities
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_ties_go_to_first_maximum_in_row_major_order(dtype):
    K = kernels()
    x = np.zeros((1, 1, 4, 4), dtype=dtype)
    x[0, 0, 1, 1] = 5  # window (0, 0) has two 5s: (0, 1) comes first in row-major order
    x[0, 0, 0, 1] = 5
    y, indices = K.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), THREADS)
    np.testing.assert_array_equal(y[0, 0], [[5, 0], [0, 0]])
    # all-zero windows tie everywhere: the first element of each window wins
    np.testing.assert_array_equal(indices[0, 0], [[0 * 4 + 1, 0 * 4 + 2], [2 * 4 + 0, 2 * 4 + 2]])
    # overlapping windows (stride 1) with one shared maximum
    y, indices = K.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), THREADS)
    np.testing.assert_array_equal(indices, R.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1))[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_padding_never_wins_even_against_minus_infinity(dtype):
    K = kernels()
    x = np.full((1, 2, 3, 3), -np.inf, dtype=dtype)
    x[0, 1] = -1e30
    y, indices = K.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), THREADS)
    want_y, want_indices = R.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1))
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(indices, want_indices)
    assert (indices >= 0).all() and (indices < 9).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_nan_wins(dtype):
    K = kernels()
    x = np.array(
        [
            [
                [
                    [1.0, np.nan, 5.0, 0.0],
                    [np.nan, 2.0, 7.0, np.inf],
                    [3.0, 4.0, -1.0, 0.0],
                    [0.0, 0.0, np.nan, -np.inf],
                ]
            ]
        ],
        dtype=dtype,
    )
    for k, s, p in [((2, 2), (2, 2), (0, 0)), ((2, 2), (1, 1), (1, 1)), ((3, 3), (1, 1), (1, 1))]:
        y, indices = K.max_pool2d_forward(x, k, s, p, THREADS)
        want_y, want_indices = R.max_pool2d_forward(x, k, s, p)
        np.testing.assert_array_equal(y, want_y)  # NaN where the window holds a NaN
        # the index must point at a NaN whenever the output is NaN ...
        flat = x[0, 0].reshape(-1)
        assert np.array_equal(np.isnan(flat[indices[0, 0]]), np.isnan(y[0, 0]))
        # ... and at the same one PyTorch picks (the reference follows PyTorch's rule)
        np.testing.assert_array_equal(indices, want_indices)


def test_max_pool_backward_accumulates_overlapping_windows():
    K = kernels()
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre wins all four 2x2 windows of a stride-1 pool
    y, indices = K.max_pool2d_forward(x, (2, 2), (1, 1), (0, 0), THREADS)
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = K.max_pool2d_backward(dy, indices, (1, 1, 3, 3), THREADS)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expected)


# --------------------------------------------------------------------------------------
# output types and edge shapes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_are_fresh_c_contiguous_arrays_of_the_input_dtype(dtype):
    K = kernels()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    one = (1, 1)
    hyper = dict(stride=one, padding=one, dilation=one, groups=1, num_threads=THREADS)
    outputs = {
        "im2col": K.im2col(x, (3, 3), one, one, one, THREADS),
        "conv2d_forward": K.conv2d_forward(x, w, b, **hyper),
    }
    dy = np.ones_like(outputs["conv2d_forward"])
    outputs["col2im"] = K.col2im(outputs["im2col"], x.shape, (3, 3), one, one, one, THREADS)
    outputs["conv2d_backward_input"] = K.conv2d_backward_input(dy, w, x.shape, **hyper)
    dw, db = K.conv2d_backward_weight(x, dy, w.shape, **hyper, need_bias=True)
    outputs["conv2d_backward_weight dW"], outputs["conv2d_backward_weight db"] = dw, db
    y, idx = K.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), THREADS)
    outputs["max_pool2d_forward"] = y
    outputs["max_pool2d_backward"] = K.max_pool2d_backward(np.ones_like(y), idx, x.shape, THREADS)
    outputs["avg_pool2d_forward"] = K.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), True, THREADS)
    outputs["avg_pool2d_backward"] = K.avg_pool2d_backward(
        np.ones_like(y), x.shape, (2, 2), (2, 2), (0, 0), True, THREADS
    )
    for name, out in outputs.items():
        assert isinstance(out, np.ndarray), name
        assert out.dtype == dtype, f"{name}: {out.dtype}"
        assert out.flags["C_CONTIGUOUS"], name
        assert not np.shares_memory(out, x), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pixel_images(dtype):
    K = kernels()
    x = np.array([[[[2.0]], [[-3.0]]]], dtype=dtype)  # (1, 2, 1, 1)
    w = np.array([[[[0.5]], [[4.0]]]], dtype=dtype)  # (1, 2, 1, 1)
    one = (1, 1)
    y = K.conv2d_forward(
        x, w, None, stride=one, padding=(0, 0), dilation=one, groups=1, num_threads=THREADS
    )
    np.testing.assert_array_equal(y, [[[[2.0 * 0.5 - 3.0 * 4.0]]]])
    y, idx = K.max_pool2d_forward(x, (1, 1), (1, 1), (0, 0), THREADS)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(idx, np.zeros((1, 2, 1, 1)))
    # a 3x3 kernel with padding 1 on a 1x1 image sees only the centre tap
    w3 = np.arange(18, dtype=dtype).reshape(1, 2, 3, 3)
    y = K.conv2d_forward(
        x, w3, None, stride=one, padding=one, dilation=one, groups=1, num_threads=THREADS
    )
    np.testing.assert_array_equal(y, [[[[2.0 * w3[0, 0, 1, 1] - 3.0 * w3[0, 1, 1, 1]]]]])


def test_openmp_enabled_reports_a_bool():
    assert isinstance(kernels().openmp_enabled(), bool)
