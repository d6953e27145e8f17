"""The worked examples of the lecture notes (../shared/seeds), as named tests.

Each example runs against both the naive reference (minidl.reference) and the Cython
kernels (minidl._kernels).  Inputs are transcribed from the notes.  Expected values are
either written out here as the notes' element-by-element formulas, computed by scipy, or
copied from a printed result of the notes where that result checks out (the notes are
OCR'd and contain mistakes: see test_seed003_two_channel_example_slide_typo).
"""

import zlib

import numpy as np
import pytest
from scipy import signal

from minidl import reference

try:
    from minidl import _kernels

    _KERNEL_IMPORT_ERROR = None
except ImportError as exc:  # the kernel half of every test then FAILS, never skips
    _kernels = None
    _KERNEL_IMPORT_ERROR = exc


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


class Kernels:
    """minidl._kernels behind the reference's signatures (2 threads, C-contiguous)."""

    threads = 2

    def __init__(self):
        if _kernels is None:
            pytest.fail(f"minidl._kernels cannot be imported: {_KERNEL_IMPORT_ERROR}")

    def conv2d_forward(self, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        return _kernels.conv2d_forward(
            np.ascontiguousarray(x),
            np.ascontiguousarray(w),
            None if b is None else np.ascontiguousarray(b),
            stride=_pair(stride),
            padding=_pair(padding),
            dilation=_pair(dilation),
            groups=groups,
            num_threads=self.threads,
        )

    def conv2d_backward(self, x, w, dy, stride=1, padding=0, dilation=1, groups=1):
        x, w, dy = (np.ascontiguousarray(a) for a in (x, w, dy))
        s, p, d = _pair(stride), _pair(padding), _pair(dilation)
        geometry = dict(stride=s, padding=p, dilation=d, groups=groups, num_threads=self.threads)
        dx = _kernels.conv2d_backward_input(dy, w, tuple(x.shape), **geometry)
        dw, db = _kernels.conv2d_backward_weight(x, dy, tuple(w.shape), **geometry, need_bias=True)
        return dx, dw, db

    def max_pool2d_forward(self, x, kernel_size, stride=None, padding=0):
        stride = kernel_size if stride is None else stride
        return _kernels.max_pool2d_forward(
            np.ascontiguousarray(x), _pair(kernel_size), _pair(stride), _pair(padding), self.threads
        )

    def max_pool2d_backward(self, dy, indices, input_shape):
        return _kernels.max_pool2d_backward(
            np.ascontiguousarray(dy), indices, tuple(input_shape), self.threads
        )

    def avg_pool2d_forward(self, x, kernel_size, stride=None, padding=0, count_include_pad=True):
        stride = kernel_size if stride is None else stride
        return _kernels.avg_pool2d_forward(
            np.ascontiguousarray(x),
            _pair(kernel_size),
            _pair(stride),
            _pair(padding),
            count_include_pad,
            self.threads,
        )

    def avg_pool2d_backward(
        self, dy, input_shape, kernel_size, stride=None, padding=0, count_include_pad=True
    ):
        stride = kernel_size if stride is None else stride
        return _kernels.avg_pool2d_backward(
            np.ascontiguousarray(dy),
            tuple(input_shape),
            _pair(kernel_size),
            _pair(stride),
            _pair(padding),
            count_include_pad,
            self.threads,
        )


@pytest.fixture(params=["reference", "kernels"])
def impl(request):
    return reference if request.param == "reference" else Kernels()


def as4d(plane):
    """A single (H, W) plane as a (1, 1, H, W) float64 batch."""
    return np.asarray(plane, dtype=np.float64)[None, None]


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


# --------------------------------------------------------------------------------------
# Seed 000: conv layer parts, output size, stride, padding, pooling, backprop
# --------------------------------------------------------------------------------------


def test_seed000_output_size_formula_counts_window_placements(impl):
    # floor((W_in - W_k + 2P) / S) + 1 must equal the number of places the window fits.
    rng = np.random.default_rng(0)
    for w_in in range(1, 8):
        for w_k in range(1, w_in + 3):
            for p in range(0, 3):
                for s in range(1, 4):
                    if w_in + 2 * p < w_k:
                        continue
                    placements = len(range(0, w_in + 2 * p - w_k + 1, s))
                    assert reference.output_size(w_in, w_k, s, p) == placements
                    assert (w_in - w_k + 2 * p) // s + 1 == placements
    x = rng.standard_normal((1, 1, 4, 4))
    w = rng.standard_normal((1, 1, 2, 2))
    assert impl.conv2d_forward(x, w).shape == (1, 1, 3, 3)  # the slides' 4x4 -> 3x3
    assert impl.conv2d_forward(x, w, padding=1).shape == (1, 1, 5, 5)


def test_seed000_z_entries_are_the_written_sums(impl):
    # Z_{1,1} = A11 W11 + A12 W12 + A21 W21 + A22 W22 + B, and so on for all nine entries.
    rng = rng_for("seed000 Z")
    A = rng.standard_normal((4, 4))
    Wk = rng.standard_normal((2, 2))
    B = rng.standard_normal()
    Z = impl.conv2d_forward(as4d(A), as4d(Wk), np.array([B]))[0, 0]
    for i in range(3):
        for j in range(3):
            expected = (
                A[i, j] * Wk[0, 0]
                + A[i, j + 1] * Wk[0, 1]
                + A[i + 1, j] * Wk[1, 0]
                + A[i + 1, j + 1] * Wk[1, 1]
                + B
            )
            assert Z[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_seed000_stride_2_drops_intermediate_outputs(impl):
    # "Stride 1 output -> drop intermediates -> stride 2 output".
    rng = rng_for("seed000 stride")
    x = rng.standard_normal((1, 1, 4, 4))
    w = rng.standard_normal((1, 1, 2, 2))
    stride1 = impl.conv2d_forward(x, w, stride=1)
    stride2 = impl.conv2d_forward(x, w, stride=2)
    np.testing.assert_allclose(stride2, stride1[:, :, ::2, ::2], rtol=1e-12, atol=1e-12)


def test_seed000_zero_padding_is_a_border_of_zeros(impl):
    rng = rng_for("seed000 padding")
    A = rng.standard_normal((4, 4))
    Wk = rng.standard_normal((2, 2))
    padded_by_hand = np.zeros((6, 6))
    padded_by_hand[1:5, 1:5] = A
    expected = signal.correlate2d(padded_by_hand, Wk, mode="valid")
    got = impl.conv2d_forward(as4d(A), as4d(Wk), padding=1)[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_seed000_multichannel_one_filter_per_output_channel(impl):
    # "2 filters with 3-channel input": output channel f = sum over c of x[c] (*) w[f, c].
    rng = rng_for("seed000 multichannel")
    x = rng.standard_normal((1, 3, 5, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    y = impl.conv2d_forward(x, w)
    for f in range(2):
        expected = sum(signal.correlate2d(x[0, c], w[f, c], mode="valid") for c in range(3))
        np.testing.assert_allclose(y[0, f], expected, rtol=1e-12, atol=1e-12)


SEED000_POOL_INPUT = [[4, 8, 3, 9], [16, 10, 0, 7], [6, 12, 13, 8], [67, 18, 3, 7]]


def test_seed000_max_and_mean_pooling_2x2(impl):
    x = as4d(SEED000_POOL_INPUT)
    blocks = x[0, 0].reshape(2, 2, 2, 2)  # (block row, row in block, block col, col in block)
    y, _ = impl.max_pool2d_forward(x, (2, 2))
    np.testing.assert_array_equal(y[0, 0], blocks.max(axis=(1, 3)))
    np.testing.assert_array_equal(y[0, 0], [[16, 9], [67, 13]])  # by eye from the slide
    mean = impl.avg_pool2d_forward(x, (2, 2))
    np.testing.assert_allclose(mean[0, 0], blocks.mean(axis=(1, 3)), rtol=1e-12)
    # min pooling is max pooling of the negated map
    y_min, _ = impl.max_pool2d_forward(-x, (2, 2))
    np.testing.assert_array_equal(-y_min[0, 0], blocks.min(axis=(1, 3)))


def _seed001_written_gradients(X, Fk, dO):
    """dL/dF and dL/dX for a 3x3 input and a 2x2 filter, written out entry by entry as
    on the slides of seeds 000 and 001 (0-based indices here)."""
    dF = np.array(
        [
            [
                dO[0, 0] * X[0, 0] + dO[0, 1] * X[0, 1] + dO[1, 0] * X[1, 0] + dO[1, 1] * X[1, 1],
                dO[0, 0] * X[0, 1] + dO[0, 1] * X[0, 2] + dO[1, 0] * X[1, 1] + dO[1, 1] * X[1, 2],
            ],
            [
                dO[0, 0] * X[1, 0] + dO[0, 1] * X[1, 1] + dO[1, 0] * X[2, 0] + dO[1, 1] * X[2, 1],
                dO[0, 0] * X[1, 1] + dO[0, 1] * X[1, 2] + dO[1, 0] * X[2, 1] + dO[1, 1] * X[2, 2],
            ],
        ]
    )
    dX = np.array(
        [
            [dO[0, 0] * Fk[0, 0], dO[0, 0] * Fk[0, 1] + dO[0, 1] * Fk[0, 0], dO[0, 1] * Fk[0, 1]],
            [
                dO[0, 0] * Fk[1, 0] + dO[1, 0] * Fk[0, 0],
                dO[0, 0] * Fk[1, 1]
                + dO[0, 1] * Fk[1, 0]
                + dO[1, 0] * Fk[0, 1]
                + dO[1, 1] * Fk[0, 0],
                dO[0, 1] * Fk[1, 1] + dO[1, 1] * Fk[0, 1],
            ],
            [dO[1, 0] * Fk[1, 0], dO[1, 0] * Fk[1, 1] + dO[1, 1] * Fk[1, 0], dO[1, 1] * Fk[1, 1]],
        ]
    )
    return dF, dX


# --------------------------------------------------------------------------------------
# Seed 001: conv backprop on a 3x3 input and 2x2 filter; pooling backprop
# --------------------------------------------------------------------------------------


def test_seed001_conv_backprop_3x3_input_2x2_filter(impl):
    rng = rng_for("seed001 backprop")
    X = rng.standard_normal((3, 3))
    Fk = rng.standard_normal((2, 2))
    dO = rng.standard_normal((2, 2))
    # forward: O11 = X11 F11 + X12 F12 + X21 F21 + X22 F22, ...
    O = impl.conv2d_forward(as4d(X), as4d(Fk))[0, 0]
    for i in range(2):
        for j in range(2):
            assert O[i, j] == pytest.approx(np.sum(X[i : i + 2, j : j + 2] * Fk), rel=1e-12)

    dX, dF, db = impl.conv2d_backward(as4d(X), as4d(Fk), as4d(dO))
    dF_written, dX_written = _seed001_written_gradients(X, Fk, dO)
    np.testing.assert_allclose(dF[0, 0], dF_written, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX[0, 0], dX_written, rtol=1e-12, atol=1e-12)
    assert db[0] == pytest.approx(dO.sum(), rel=1e-12)
    # the takeaway slide: dF = Convolution(X, dO); dX = Full Convolution(rot180(F), dO)
    np.testing.assert_allclose(
        dF[0, 0], signal.correlate2d(X, dO, mode="valid"), rtol=1e-12, atol=1e-12
    )
    rot180 = Fk[::-1, ::-1]
    np.testing.assert_allclose(
        dX[0, 0], signal.correlate2d(np.pad(dO, 1), rot180, mode="valid"), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        dX[0, 0], signal.convolve2d(dO, Fk, mode="full"), rtol=1e-12, atol=1e-12
    )


def test_seed001_max_pool_backprop_routes_to_argmax(impl):
    # "the error is just assigned to where it comes from"
    x = as4d(SEED000_POOL_INPUT)
    dy = as4d([[1.0, 2.0], [3.0, 4.0]])
    y, indices = impl.max_pool2d_forward(x, (2, 2))
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices[0, 0], [[1 * 4 + 0, 0 * 4 + 3], [3 * 4 + 0, 2 * 4 + 2]])
    dx = impl.max_pool2d_backward(dy, indices, x.shape)
    expected = np.zeros((4, 4))
    expected[1, 0], expected[0, 3], expected[3, 0], expected[2, 2] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_seed001_average_pool_backprop_spreads_over_block(impl):
    # "The error is multiplied by 1/(N x N) and assigned to the whole pooling block"
    dy = as4d([[1.0, 2.0], [3.0, 4.0]])
    dx = impl.avg_pool2d_backward(dy, (1, 1, 4, 4), (2, 2))
    expected = np.kron(dy[0, 0], np.ones((2, 2))) / (2 * 2)
    np.testing.assert_allclose(dx[0, 0], expected, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Seed 002: naive loops, the 1-D and 2-D backward
# --------------------------------------------------------------------------------------


def test_seed002_1d_backward(impl):
    # y1 = w1 x1 + w2 x2 + b, y2 = w1 x2 + w2 x3 + b, y3 = w1 x3 + w2 x4 + b
    rng = rng_for("seed002 1d")
    x = rng.standard_normal(4)
    w = rng.standard_normal(2)
    b = rng.standard_normal()
    dy = rng.standard_normal(3)
    x4, w4, dy4 = x[None, None, None, :], w[None, None, None, :], dy[None, None, None, :]
    y = impl.conv2d_forward(x4, w4, np.array([b]))[0, 0, 0]
    np.testing.assert_allclose(
        y,
        [
            w[0] * x[0] + w[1] * x[1] + b,
            w[0] * x[1] + w[1] * x[2] + b,
            w[0] * x[2] + w[1] * x[3] + b,
        ],
        rtol=1e-12,
    )
    dx, dw, db = impl.conv2d_backward(x4, w4, dy4)
    assert db[0] == pytest.approx(dy.sum(), rel=1e-12)
    # dw = [[x1 x2], [x2 x3], [x3 x4]]^T dy
    dydw = np.array([[x[0], x[1]], [x[1], x[2]], [x[2], x[3]]])
    np.testing.assert_allclose(dw[0, 0, 0], dydw.T @ dy, rtol=1e-12)
    # dx = (dy/dx)^T dy with the banded matrix of the notes (their dx3/dx4 print "w3",
    # a typo: the filter has two taps)
    dydx = np.array([[w[0], w[1], 0, 0], [0, w[0], w[1], 0], [0, 0, w[0], w[1]]])
    np.testing.assert_allclose(dx[0, 0, 0], dydx.T @ dy, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        dx[0, 0, 0],
        [w[0] * dy[0], w[1] * dy[0] + w[0] * dy[1], w[1] * dy[1] + w[0] * dy[2], w[1] * dy[2]],
        rtol=1e-12,
    )


def test_seed002_2d_backward_dw_is_x_correlated_with_dy(impl):
    rng = rng_for("seed002 2d")
    x = rng.standard_normal((4, 4))
    w = rng.standard_normal((2, 2))
    dy = rng.standard_normal((3, 3))
    dx, dw, db = impl.conv2d_backward(as4d(x), as4d(w), as4d(dy))
    # dw12 = x12 dy11 + x13 dy12 + x14 dy13 + x22 dy21 + ... + x34 dy33 (1-based on the slide)
    dw12 = sum(x[i, j + 1] * dy[i, j] for i in range(3) for j in range(3))
    assert dw[0, 0, 0, 1] == pytest.approx(dw12, rel=1e-12)
    np.testing.assert_allclose(dw[0, 0], signal.correlate2d(x, dy, mode="valid"), rtol=1e-12)
    # dx_mn = sum_ij W_{m-i+1, n-j+1} dy_ij, i.e. zero-padded dy (*) [[w22 w21], [w12 w11]]
    expected_dx = np.zeros((4, 4))
    for m in range(4):
        for n in range(4):
            for i in range(3):
                for j in range(3):
                    k, l = m - i, n - j
                    if 0 <= k < 2 and 0 <= l < 2:
                        expected_dx[m, n] += w[k, l] * dy[i, j]
    np.testing.assert_allclose(dx[0, 0], expected_dx, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        dx[0, 0], signal.correlate2d(np.pad(dy, 1), w[::-1, ::-1], mode="valid"), rtol=1e-12
    )


# --------------------------------------------------------------------------------------
# Seed 003: correlation vs convolution, the 2-channel example, TF printouts
# --------------------------------------------------------------------------------------

SEED003_I = [
    [[1, -2, 2, 2], [2, 1, 3, -2], [-2, 3, -3, 1], [-1, 2, -4, 2]],
    [[3, 0, 0, 0], [-2, -2, 1, -1], [2, -1, 3, 1], [5, -2, 0, 1]],
]
# W[out, in, kh, kw]: W[1,1] W[1,2] / W[2,1] W[2,2] in the slide's 1-based names
SEED003_W = [[[[1, -2], [-2, 1]], [[1, 0], [0, 1]]], [[[3, 1], [2, 2]], [[0, 0], [0, 4]]]]
SEED003_B = [0.1, 0.2]
# O as printed on the slide, except O[1][0][0], printed -3.1 (see the test below)
SEED003_O_PRINTED = [
    [[-3.1, -3.9, -10.9], [4.1, -12.9, 16.1], [-3.9, 0.1, 9.1]],
    [[-0.8, 8.2, 6.2], [5.2, 18.2, 7.2], [-8.8, 2.2, -7.8]],
]


def test_seed003_two_channel_example_slide_typo():
    # The slide's first entry: channel 1 of I times W[1,1] plus channel 2 times W[1,2],
    # plus b1 = (1 - 4 - 4 + 1) + (3 - 2) + 0.1 = +3.1 (the slide prints -3.1).
    I, W = np.array(SEED003_I, float), np.array(SEED003_W, float)
    first = np.sum(I[:, 0:2, 0:2] * W[0]) + SEED003_B[0]
    assert first == pytest.approx(3.1, abs=1e-12)


def test_seed003_two_channel_example(impl):
    I, W = np.array(SEED003_I, float)[None], np.array(SEED003_W, float)
    O = impl.conv2d_forward(I, W, np.array(SEED003_B))
    expected = np.array(SEED003_O_PRINTED)
    expected[0, 0, 0] = 3.1  # the slide's typo, see test_seed003_two_channel_example_slide_typo
    np.testing.assert_allclose(O[0], expected, rtol=1e-12, atol=1e-12)


def test_seed003_1d_correlation_true_convolution_padding_stride(impl):
    I = np.array([1.0, 2, 3, 4])
    W = np.array([1.0, 2, 3])
    I4, W4 = I[None, None, None, :], W[None, None, None, :]

    def conv1d(**kw):
        return impl.conv2d_forward(I4, W4, **kw)[0, 0, 0]

    # Correlation O_i = sum_j I_{j+i-1} W_j; Dim = Dim(I) - Dim(W) + 1
    correlation = [sum(I[j + i] * W[j] for j in range(3)) for i in range(2)]
    np.testing.assert_allclose(conv1d(), correlation, rtol=1e-12)
    # True convolution O_i = sum_j I_{j+i-1} W_{Dim(W)-j+1}: correlation with W flipped
    true_conv = [sum(I[j + i] * W[2 - j] for j in range(3)) for i in range(2)]
    np.testing.assert_allclose(
        impl.conv2d_forward(I4, W4[..., ::-1].copy())[0, 0, 0], true_conv, rtol=1e-12
    )
    np.testing.assert_allclose(np.convolve(I, W, mode="valid"), true_conv, rtol=1e-12)
    # Half padding [0 1 2 3 4 0]: same-size output; stride 2 keeps every other one
    padded = np.pad(I, 1)
    half = [sum(padded[j + i] * W[j] for j in range(3)) for i in range(4)]
    np.testing.assert_allclose(conv1d(padding=(0, 1)), half, rtol=1e-12)
    np.testing.assert_allclose(conv1d(padding=(0, 1), stride=(1, 2)), half[::2], rtol=1e-12)


def test_seed003_true_conv2d_is_correlation_with_flipped_filter():
    rng = rng_for("seed003 true conv")
    x = rng.standard_normal((1, 1, 5, 6))
    w = rng.standard_normal((1, 1, 3, 2))
    np.testing.assert_allclose(
        reference.true_conv2d(x, w)[0, 0],
        signal.convolve2d(x[0, 0], w[0, 0], mode="valid"),
        rtol=1e-12,
    )


def test_seed003_1d_backward_as_correlations(impl):
    I = np.array([1.0, 2, 3, 4])
    W = np.array([1.0, 2, 3])
    LO = np.array([1.0, 2])
    dI, dW, _ = impl.conv2d_backward(
        I[None, None, None, :], W[None, None, None, :], LO[None, None, None, :]
    )
    # dL/dW = Correlation(I, LO)
    np.testing.assert_allclose(
        dW[0, 0, 0],
        [LO[0] * I[0] + LO[1] * I[1], LO[0] * I[1] + LO[1] * I[2], LO[0] * I[2] + LO[1] * I[3]],
        rtol=1e-12,
    )
    # dL/dI = Correlation(W_pad, LO_flip), W_pad = [0 1 2 3 0], LO_flip = [2 1]
    W_pad, LO_flip = np.pad(W, 1), LO[::-1]
    np.testing.assert_allclose(dI[0, 0, 0], np.correlate(W_pad, LO_flip, mode="valid"), rtol=1e-12)
    np.testing.assert_allclose(
        dI[0, 0, 0],
        [LO[0] * W[0], LO[0] * W[1] + LO[1] * W[0], LO[0] * W[2] + LO[1] * W[1], LO[1] * W[2]],
        rtol=1e-12,
    )


def test_seed003_tensorflow_conv1d_weight_gradient(impl):
    # The notes' TensorFlow printout: gradWeight of a 3-tap Conv1D on n with gradOutput
    # nextgrad (float32 values, printed to ~7 digits).
    n = np.array([0.20350695, -0.31481498, -0.85656077, 0.5981919])
    nextgrad = np.array([-0.47567356, -2.3547919])
    printed_grad_weight = [0.6445209, 2.1667714, -1.0011742]
    w = np.zeros(3)  # the weight's value does not enter its own gradient
    _, dw, _ = impl.conv2d_backward(
        n[None, None, None, :], w[None, None, None, :], nextgrad[None, None, None, :]
    )
    np.testing.assert_allclose(dw[0, 0, 0], printed_grad_weight, rtol=1e-6)


def test_seed003_tensorflow_strided_conv_input_gradient(impl):
    # The notes' TensorFlow printout: a 3x3 filter, stride 2, on a 5x5 image; the input
    # gradient for gradOutput r (and, identically, the transposed convolution of r).
    w = np.array(
        [
            [0.13429713, 1.9649408, 0.74939513],
            [0.6982393, 1.2397809, 1.4247327],
            [1.5534406, 0.1190145, 1.3256309],
        ]
    )
    r = np.array([[25.535583, 28.583742], [23.470192, 20.622599]])
    # printed as interleaved columns; rows de-interleaved here
    printed_grad_input = np.array(
        [
            [3.4293556, 50.17591, 22.974957, 56.16536, 21.420517],
            [17.829948, 31.65853, 56.339676, 35.437576, 40.724194],
            [42.819992, 49.156643, 98.61191, 43.924065, 53.345966],
            [16.387812, 29.097897, 47.83826, 25.567505, 29.381691],
            [36.45955, 2.7932932, 63.148792, 2.4543884, 27.337954],
        ]
    )
    x = np.zeros((1, 1, 5, 5))  # the input's value does not enter its own gradient
    dx, _, _ = impl.conv2d_backward(x, as4d(w), as4d(r), stride=2)
    np.testing.assert_allclose(dx[0, 0], printed_grad_input, rtol=2e-6)


def test_seed003_tensorflow_max_pool_routing(impl):
    # The notes' TensorFlow printout: 2x2/2 max pooling of a 4x4 map, gradOutput of ones.
    n = np.array(
        [
            [0.58009243, 1.1895669, 2.6777048, 0.15597591],
            [-0.94100916, -0.7437242, -1.0578039, -0.30651447],
            [0.53753567, 0.10521288, -0.43827865, -0.7727399],
            [-0.42974523, -1.669584, -0.92768306, -0.19861951],
        ]
    )
    printed_m = [[1.1895669, 2.6777048], [0.53753567, -0.19861951]]
    printed_grad_input = [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    m, indices = impl.max_pool2d_forward(as4d(n), (2, 2), (2, 2))
    np.testing.assert_array_equal(m[0, 0], printed_m)
    dx = impl.max_pool2d_backward(np.ones((1, 1, 2, 2)), indices, (1, 1, 4, 4))
    np.testing.assert_array_equal(dx[0, 0], printed_grad_input)


# --------------------------------------------------------------------------------------
# Seed 004: depth-wise convolution, derivative through max pooling
# --------------------------------------------------------------------------------------


def test_seed004_depthwise_convolution_keeps_channels_apart(impl):
    # MobileNet's depth-wise convolution: groups = C, one filter per channel.
    rng = rng_for("seed004 depthwise")
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((3, 1, 3, 3))
    y = impl.conv2d_forward(x, w, groups=3, padding=1)
    for n in range(2):
        for c in range(3):
            expected = signal.correlate2d(np.pad(x[n, c], 1), w[c, 0], mode="valid")
            np.testing.assert_allclose(y[n, c], expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = impl.conv2d_backward(x, w, dy, groups=3, padding=1)
    for n in range(2):
        for c in range(3):
            # flipped filter, full convolution, then crop the padding
            full = signal.convolve2d(dy[n, c], w[c, 0], mode="full")[1:-1, 1:-1]
            np.testing.assert_allclose(dx[n, c], full, rtol=1e-12, atol=1e-12)
    expected_dw = np.stack(
        [
            sum(signal.correlate2d(np.pad(x[n, c], 1), dy[n, c], mode="valid") for n in range(2))
            for c in range(3)
        ]
    )[:, None]
    np.testing.assert_allclose(dw, expected_dw, rtol=1e-12, atol=1e-12)


def test_seed004_max_pool_derivative_is_one_at_the_max_position_only(impl):
    # maxidx: the derivative of a window's output w.r.t. its inputs is 1 at the max, else 0
    rng = rng_for("seed004 maxpool")
    x = rng.standard_normal((1, 1, 6, 6))
    y, indices = impl.max_pool2d_forward(x, (3, 3), (3, 3))
    for i in range(2):
        for j in range(2):
            dy = np.zeros((1, 1, 2, 2))
            dy[0, 0, i, j] = 1.0
            dx = impl.max_pool2d_backward(dy, indices, x.shape)
            window = x[0, 0, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3]
            u, v = np.unravel_index(np.argmax(window), (3, 3))
            expected = np.zeros((6, 6))
            expected[3 * i + u, 3 * j + v] = 1.0
            np.testing.assert_array_equal(dx[0, 0], expected)
            assert y[0, 0, i, j] == window.max()
