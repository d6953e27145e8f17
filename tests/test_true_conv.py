"""F.true_conv2d: the textbook convolution (filter rotated 180 degrees), checked against
scipy.signal.convolve2d (an independent implementation) and by finite differences."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d, correlate2d

import minidl
import minidl.nn.functional as F


@settings(max_examples=40)
@given(
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_true_conv2d_is_scipys_convolve2d_and_conv2d_is_its_correlate2d(h, w, kh, kw, seed):
    rng = np.random.default_rng(seed)
    image, kernel = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
    x = minidl.tensor(image[None, None])
    k = minidl.tensor(kernel[None, None])
    np.testing.assert_allclose(
        F.true_conv2d(x, k).data[0, 0],
        convolve2d(image, kernel, mode="valid"),
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        F.conv2d(x, k).data[0, 0], correlate2d(image, kernel, mode="valid"), rtol=1e-12, atol=1e-12
    )


def test_true_conv2d_gradcheck_with_stride_padding_groups():
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((2, 4, 6, 5)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((6, 2, 3, 2)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(6), requires_grad=True)
    assert minidl.gradcheck(
        lambda x, w, b: F.true_conv2d(x, w, b, stride=(2, 1), padding=1, groups=2), (x, w, b)
    )
