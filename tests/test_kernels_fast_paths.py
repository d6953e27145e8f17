"""The kernels' special cases that random configurations rarely reach, and the
per-call thread decision.

* 2x2 / stride 2 / no padding pooling has its own vectorised path (every pool in LeNet and
  CIFAR-style nets): checked against the reference with ties, +-0, +-inf, NaN, odd sizes
  and many planes, at 1 and 2 threads.
* max_pool2d_forward(..., need_indices=False) (used under no_grad) returns the same y bit
  for bit as the indices path, on the 2x2 values-only path and on other configurations.
* max_pool2d_2x2_forward / _backward (what autograd records for an even plane) store a
  window code per output: the same y bit for bit, the same argmax as the reference's
  indices, the same gradient bit for bit, at 1, 2 and 3 threads, on the portable C and
  (where the CPU has it) the AVX-512 path: stacked rows (widths 1, 2, 4, 8), full and
  masked row steps (widths above 8), rows left over for the portable code.
* each 2x2 kernel (flat indices, window codes, values only) gives the general kernel's
  results bit for bit (_pooling._use_2x2_kernels(False) forces the general kernel).
* MINIDL_CPU_LEVEL caps the instruction set of every kernel family (0: the portable 2x2
  max pool, no direct kernels); a bad value is refused, naming the variable.
* ``minidl._kernels.planned_threads(kernel)`` reports how many threads the last call
  planned: a batch of one 8x8 image must stay on one thread, and no call may plan more
  than it was given.
"""

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import pool_path, python_child, tricky_planes

import minidl
import minidl.nn.functional as F
from minidl import _kernels as K
from minidl import reference as R
from minidl._kernels import _pooling

DTYPES = [np.float32, np.float64]


@settings(max_examples=60)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 40),
    h=st.integers(2, 11),
    w=st.integers(2, 11),
    dtype=st.sampled_from(DTYPES),
    specials=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_max_pool_2x2_fast_path_matches_reference(n, c, h, w, dtype, specials, threads, seed):
    x = tricky_planes(np.random.default_rng(seed), (n, c, h, w), dtype, specials)
    y, idx = K.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), threads)
    y_ref, idx_ref = R.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN == NaN here
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    dx = K.max_pool2d_backward(g, idx, x.shape, threads)
    np.testing.assert_array_equal(dx, R.max_pool2d_backward(g, idx_ref, x.shape).astype(dtype))


def _codes_of(indices, width):
    """Reference flat indices ih*W + iw of 2x2 windows -> window positions 0..3."""
    _, _, ho, wo = indices.shape
    oh = np.arange(ho)[:, None]
    ow = np.arange(wo)[None, :]
    return 2 * (indices // width - 2 * oh) + (indices % width - 2 * ow)


def test_the_avx512_pool_paths_can_be_turned_off():
    with pool_path(False) as level:
        assert level == "portable" == _pooling.simd_level()
    assert _pooling.simd_level() in ("avx512", "portable")


def _import_kernels_with(**env):
    return python_child(
        "from minidl._kernels import _direct, _pooling;"
        "print(_pooling.simd_level(), _direct.level())",
        env=env,
    )


def test_cpu_level_zero_turns_every_vector_variant_off():
    done = _import_kernels_with(MINIDL_CPU_LEVEL="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["portable", "0"]


def test_cpu_level_rejects_a_bad_value():
    done = _import_kernels_with(MINIDL_CPU_LEVEL="avx")
    assert done.returncode != 0
    assert "MINIDL_CPU_LEVEL must be 0, 1 or 2" in done.stderr


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 40),
    half_h=st.integers(1, 6),
    half_w=st.sampled_from([1, 2, 3, 4, 5, 6, 8, 9, 12, 16, 17, 32]),
    dtype=st.sampled_from(DTYPES),
    specials=st.booleans(),
    threads=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 2**31 - 1),
)
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "portable"])
def test_max_pool_2x2_window_codes_match_reference(
    simd, n, c, half_h, half_w, dtype, specials, threads, seed
):
    with pool_path(simd):
        _check_window_codes((n, c, 2 * half_h, 2 * half_w), dtype, specials, threads, seed)


@pytest.mark.parametrize("half_w", range(1, 41))
def test_max_pool_2x2_avx512_path_equals_the_portable_one_at_every_width(half_w):
    """Every output width 1..40 (row stacking, full and masked steps, rows left over),
    float32, bit for bit the portable C's values, codes and gradient."""
    if _pooling.simd_level() != "avx512":
        pytest.skip("this CPU has no AVX-512: only the portable path runs")
    rng = np.random.default_rng(half_w)
    for n, c, half_h, specials in [(3, 5, 3, False), (1, 7, 2, True), (2, 1, 5, False)]:
        x = tricky_planes(rng, (n, c, 2 * half_h, 2 * half_w), np.float32, specials)
        g = rng.standard_normal((n, c, half_h, half_w)).astype(np.float32)
        g.flat[::5] = -0.0
        results = []
        for simd in (True, False):
            with pool_path(simd):
                y, codes = K.max_pool2d_2x2_forward(x, 1)
                results.append(
                    (y.tobytes(), codes.tobytes(), K.max_pool2d_2x2_backward(g, codes, 1).tobytes())
                )
        assert results[0] == results[1], (x.shape, specials)


@contextmanager
def _general_kernel_only():
    try:
        yield _pooling._use_2x2_kernels(False)
    finally:
        _pooling._use_2x2_kernels(True)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 20),
    h=st.integers(2, 11),
    half_w=st.sampled_from([1, 2, 3, 4, 5, 8, 9, 16]),
    dtype=st.sampled_from(DTYPES),
    specials=st.booleans(),
    simd=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_max_pool_2x2_kernels_equal_the_general_kernel_bit_for_bit(
    n, c, h, half_w, dtype, specials, simd, threads, seed
):
    x = tricky_planes(np.random.default_rng(seed), (n, c, h, 2 * half_w), dtype, specials)
    pool = (2, 2), (2, 2), (0, 0)
    with _general_kernel_only():
        y_general, idx_general = K.max_pool2d_forward(x, *pool, threads)
        y_general_values, none = K.max_pool2d_forward(x, *pool, threads, need_indices=False)
    assert none is None and y_general_values.tobytes() == y_general.tobytes()
    with pool_path(simd):
        y, idx = K.max_pool2d_forward(x, *pool, threads)
        y_values, _ = K.max_pool2d_forward(x, *pool, threads, need_indices=False)
        assert y.tobytes() == y_general.tobytes()
        np.testing.assert_array_equal(idx, idx_general)
        assert y_values.tobytes() == y_general.tobytes()
        if h % 2 == 0:
            y_codes, codes = K.max_pool2d_2x2_forward(x, threads)
            assert y_codes.tobytes() == y_general.tobytes()
            np.testing.assert_array_equal(codes, _codes_of(idx_general, x.shape[3]))


def _check_window_codes(shape, dtype, specials, threads, seed):
    x = tricky_planes(np.random.default_rng(seed), shape, dtype, specials)
    y, codes = K.max_pool2d_2x2_forward(x, threads)
    y_ref, idx_ref = R.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    y_flat, idx_flat = K.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), threads)
    assert codes.dtype == np.uint8 and codes.shape == y_ref.shape
    np.testing.assert_array_equal(codes, _codes_of(idx_ref, shape[3]))
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN == NaN here
    assert y.tobytes() == y_flat.tobytes()  # bit for bit: +-0 and NaN included
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    g.flat[::7] = -0.0
    dx = K.max_pool2d_2x2_backward(g, codes, threads)
    np.testing.assert_array_equal(dx, R.max_pool2d_backward(g, idx_ref, shape).astype(dtype))
    assert dx.tobytes() == K.max_pool2d_backward(g, idx_flat, shape, threads).tobytes()


def test_max_pool_records_window_codes_on_even_planes_and_indices_otherwise():
    """F.max_pool2d's gradient is the same through both recordings."""
    rng = np.random.default_rng(3)
    for shape in [(4, 8, 6, 8), (4, 8, 7, 8)]:  # even plane: codes; odd: flat indices
        x = minidl.tensor(rng.standard_normal(shape).astype(np.float64), requires_grad=True)
        g = rng.standard_normal((4, 8, 3, 4))
        F.max_pool2d(x, 2).backward(g)
        _, idx_ref = R.max_pool2d_forward(x.data, (2, 2), (2, 2), (0, 0))
        np.testing.assert_array_equal(x.grad, R.max_pool2d_backward(g, idx_ref, shape))
    assert minidl.gradcheck(
        lambda t: F.max_pool2d(t, 2),
        (minidl.tensor(rng.permutation(64).reshape(1, 1, 8, 8) / 8.0, requires_grad=True),),
    )


@st.composite
def _max_pool_configs(draw):
    """Mostly the 2x2 / stride 2 / no padding values-only path, sometimes another
    kernel / stride / padding (which computes the indices and drops them)."""
    if draw(st.booleans()):
        return (2, 2), (2, 2), (0, 0)
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    return kernel, stride, padding


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 40),
    h=st.integers(3, 11),
    w=st.integers(3, 11),
    config=_max_pool_configs(),
    dtype=st.sampled_from(DTYPES),
    specials=st.booleans(),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_max_pool_values_only_is_bit_identical_to_the_indices_path(
    n, c, h, w, config, dtype, specials, threads, seed
):
    kernel, stride, padding = config
    x = tricky_planes(np.random.default_rng(seed), (n, c, h, w), dtype, specials)
    y, none = K.max_pool2d_forward(x, kernel, stride, padding, threads, need_indices=False)
    y_with, _ = K.max_pool2d_forward(x, kernel, stride, padding, threads)
    y_ref, _ = R.max_pool2d_forward(x, kernel, stride, padding)
    assert none is None
    assert y.dtype == dtype and y.shape == y_with.shape
    assert y.tobytes() == y_with.tobytes()  # bit for bit: +-0 and NaN included
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN == NaN here


@settings(max_examples=40)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 40),
    h=st.integers(2, 11),
    w=st.integers(2, 11),
    dtype=st.sampled_from(DTYPES),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_avg_pool_2x2_fast_path_matches_reference(n, c, h, w, dtype, threads, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = K.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), True, threads)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(
        y, R.avg_pool2d_forward(x.astype(np.float64), (2, 2)), rtol=tol, atol=tol
    )
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = K.avg_pool2d_backward(g, x.shape, (2, 2), (2, 2), (0, 0), True, threads)
    np.testing.assert_allclose(
        dx, R.avg_pool2d_backward(g.astype(np.float64), x.shape, (2, 2)), rtol=tol, atol=tol
    )


def _one_of_each(x, threads):
    """Call every kernel on x (N, C, H, W) with a 3x3 conv (pad 1) and a 2x2 pool; return
    {kernel name: planned threads}."""
    one, two, none = (1, 1), (2, 2), (0, 0)
    w = np.ones((6, x.shape[1], 3, 3), x.dtype)
    geometry = dict(stride=one, padding=one, dilation=one, groups=1, num_threads=threads)
    y = K.conv2d_forward(x, w, None, **geometry)
    cols = K.im2col(x, (3, 3), one, one, one, threads)
    pooled, indices = K.max_pool2d_forward(x, two, two, none, threads)
    _, codes = K.max_pool2d_2x2_forward(x, threads)
    averaged = K.avg_pool2d_forward(x, two, two, none, True, threads)
    calls = {
        K.conv2d_forward: lambda: K.conv2d_forward(x, w, None, **geometry),
        K.conv2d_backward_input: lambda: K.conv2d_backward_input(y, w, x.shape, **geometry),
        K.conv2d_backward_weight: lambda: K.conv2d_backward_weight(
            x, y, w.shape, **geometry, need_bias=True
        ),
        K.im2col: lambda: K.im2col(x, (3, 3), one, one, one, threads),
        K.col2im: lambda: K.col2im(cols, x.shape, (3, 3), one, one, one, threads),
        K.max_pool2d_forward: lambda: K.max_pool2d_forward(x, two, two, none, threads),
        K.max_pool2d_backward: lambda: K.max_pool2d_backward(pooled, indices, x.shape, threads),
        K.max_pool2d_2x2_forward: lambda: K.max_pool2d_2x2_forward(x, threads),
        K.max_pool2d_2x2_backward: lambda: K.max_pool2d_2x2_backward(pooled, codes, threads),
        K.avg_pool2d_forward: lambda: K.avg_pool2d_forward(x, two, two, none, True, threads),
        K.avg_pool2d_backward: lambda: K.avg_pool2d_backward(
            averaged, x.shape, two, two, none, True, threads
        ),
    }
    plans = {}
    for kernel, call in calls.items():
        call()
        plans[kernel.__name__] = K.planned_threads(kernel)
    return plans


@pytest.mark.parametrize("threads", [2, 8])
def test_one_8x8_image_stays_on_one_thread(threads):
    plans = _one_of_each(np.ones((1, 1, 8, 8), np.float32), threads)
    assert plans == dict.fromkeys(plans, 1)


def test_a_large_job_uses_the_threads_it_is_given():
    x = np.ones((64, 32, 32, 32), np.float32)
    plans = _one_of_each(x, 2)
    expected = 2 if K.openmp_enabled() else 1
    assert plans == dict.fromkeys(plans, expected)
    assert _one_of_each(x, 1) == dict.fromkeys(plans, 1)


@settings(max_examples=60)
@given(
    n=st.integers(1, 70),
    c_per_group=st.integers(1, 4),
    f_per_group=st.integers(1, 4),
    groups=st.sampled_from([1, 2]),
    size=st.integers(3, 9),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31 - 1),
)
def test_weight_gradient_from_the_forwards_cached_cols_is_bit_identical(
    n, c_per_group, f_per_group, groups, size, k, stride, padding, dilation, dtype, seed
):
    """conv2d_forward(..., keep_input=True) hands its im2col to conv2d_backward_weight; the
    forward and the weight gradient must not change by a bit (1 or 2 threads), and both
    must match the naive reference."""
    if (size + 2 * padding - dilation * (k - 1) - 1) < 0:
        return  # output would be empty: not a valid configuration
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_per_group * groups, size, size)).astype(dtype)
    w = rng.standard_normal((f_per_group * groups, c_per_group, k, k)).astype(dtype)
    hyper = ((stride, stride), (padding, padding), (dilation, dilation), groups)
    geometry = dict(zip(("stride", "padding", "dilation", "groups"), hyper))
    y_cached, cols = K.conv2d_forward(x, w, None, **geometry, keep_input=True, num_threads=2)
    y_plain = K.conv2d_forward(x, w, None, **geometry, num_threads=1)
    np.testing.assert_array_equal(y_cached, y_plain)
    g = rng.standard_normal(y_plain.shape).astype(dtype)
    dw_cached, db_cached = K.conv2d_backward_weight(
        x, g, w.shape, **geometry, need_bias=True, kept_input=cols, num_threads=2
    )
    dw_plain, db_plain = K.conv2d_backward_weight(
        x, g, w.shape, **geometry, need_bias=True, num_threads=1
    )
    np.testing.assert_array_equal(dw_cached, dw_plain)
    np.testing.assert_array_equal(db_cached, db_plain)
    _, dw_ref, db_ref = R.conv2d_backward(
        x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), *hyper
    )
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dw_plain, dw_ref, rtol=tol, atol=tol * np.abs(dw_ref).max())
    np.testing.assert_allclose(db_plain, db_ref, rtol=tol, atol=tol * np.abs(db_ref).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel_size, stride, padding", [(2, None, 0), (3, 2, 1)])
def test_max_pool2d_without_grad_gives_the_values_it_gives_with_grad(
    dtype, kernel_size, stride, padding
):
    x_data = tricky_planes(np.random.default_rng(7), (3, 5, 8, 8), dtype, specials=True)
    x = minidl.tensor(x_data, requires_grad=True)
    with_grad = F.max_pool2d(x, kernel_size, stride, padding)
    assert with_grad.requires_grad
    with minidl.no_grad():
        without = F.max_pool2d(x, kernel_size, stride, padding)
    plain = F.max_pool2d(minidl.tensor(x_data), kernel_size, stride, padding)
    for y in (without, plain):
        assert not y.requires_grad
        assert y.data.dtype == dtype
        assert y.data.tobytes() == with_grad.data.tobytes()
    with minidl.no_grad():
        y, idx = F.max_pool2d(x, kernel_size, stride, padding, return_indices=True)
    assert y.data.tobytes() == with_grad.data.tobytes() and idx.data.dtype == np.int64
