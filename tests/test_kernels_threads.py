"""Kernels at sizes big enough to be split across threads.

- medium problems (which the small hypothesis configurations of test_kernels.py rarely
  reach: several threads, the weight gradient summed in chunks) against the reference;
- 1 and 2 (and 3) threads give bit-identical results (np.array_equal);
- two Python threads calling the kernels at the same time both get correct results.

If minidl._kernels cannot be imported, every test here FAILS (it never skips).
"""

import threading

import numpy as np
import pytest
from kernel_checks import assert_close, kernels

from minidl import reference as R

# (N, C, H, W, F, kernel, stride, padding, dilation, groups)
MEDIUM_CONVS = [
    (16, 4, 10, 10, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (24, 3, 9, 7, 6, (2, 3), (2, 1), (0, 2), (1, 2), 3),  # depth-wise x2, non-square
    (12, 4, 11, 11, 4, (3, 3), (2, 2), (1, 1), (2, 2), 2),
    (40, 2, 6, 6, 4, (1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1: im2col is x itself
    (33, 2, 5, 5, 3, (5, 5), (1, 1), (0, 0), (1, 1), 1),  # kernel = whole image
]


def medium_conv_arrays(cfg, dtype, seed=0):
    N, C, H, W, F, k, s, p, d, G = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // G) + k).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    Ho, Wo = R.output_size(H, k[0], s[0], p[0], d[0]), R.output_size(W, k[1], s[1], p[1], d[1])
    dy = rng.standard_normal((N, F, Ho, Wo)).astype(dtype)
    return x, w, b, dy


def run_conv(K, cfg, arrays, threads):
    *_, k, s, p, d, G = cfg
    x, w, b, dy = arrays
    geometry = dict(stride=s, padding=p, dilation=d, groups=G, num_threads=threads)
    y = K.conv2d_forward(x, w, b, **geometry)
    dx = K.conv2d_backward_input(dy, w, x.shape, **geometry)
    dw, db = K.conv2d_backward_weight(x, dy, w.shape, **geometry, need_bias=True)
    return {
        "conv2d_forward": y,
        "conv2d_backward_input": dx,
        "conv2d_backward_weight dW": dw,
        "conv2d_backward_weight db": db,
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cfg",
    MEDIUM_CONVS,
    ids=lambda c: "N{}C{}H{}W{}F{}k{}s{}p{}d{}g{}".format(*c).replace(" ", ""),
)
def test_medium_conv_against_reference(cfg, dtype):
    K = kernels()
    *_, k, s, p, d, G = cfg
    arrays = medium_conv_arrays(cfg, dtype)
    got = run_conv(K, cfg, arrays, threads=2)
    x, w, b, dy = (a.astype(np.float64) for a in arrays)
    ax, aw, ab, ady = (np.abs(a) for a in (x, w, b, dy))
    want_y, mag_y = R.conv2d_forward(x, w, b, s, p, d, G), R.conv2d_forward(ax, aw, ab, s, p, d, G)
    want = R.conv2d_backward(x, w, dy, s, p, d, G)
    mag = R.conv2d_backward(ax, aw, ady, s, p, d, G)
    assert_close(got["conv2d_forward"], want_y, mag_y, dtype, "conv2d_forward")
    assert_close(got["conv2d_backward_input"], want[0], mag[0], dtype, "conv2d_backward_input")
    assert_close(got["conv2d_backward_weight dW"], want[1], mag[1], dtype, "dW")
    assert_close(got["conv2d_backward_weight db"], want[2], mag[2], dtype, "db")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_medium_unfold_and_pooling_against_reference(dtype):
    # (4, 8, 16, 16) with 3x3 windows: enough work for the kernels to use 2 threads
    K = kernels()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 8, 16, 16)).astype(dtype)
    x[:, :, ::3, ::2] = 0.5  # plenty of ties for max pooling
    x64 = x.astype(np.float64)
    one, k = (1, 1), (3, 3)
    cols = K.im2col(x, k, (2, 1), one, (1, 2), 2)
    np.testing.assert_array_equal(cols, R.im2col(x, k, (2, 1), one, (1, 2)))
    c = rng.standard_normal(cols.shape).astype(dtype)
    assert_close(
        K.col2im(c, x.shape, k, (2, 1), one, (1, 2), 2),
        R.col2im(c.astype(np.float64), x.shape, k, (2, 1), one, (1, 2)),
        R.col2im(np.abs(c.astype(np.float64)), x.shape, k, (2, 1), one, (1, 2)),
        dtype,
        "col2im",
    )

    y, idx = K.max_pool2d_forward(x, k, one, one, 2)
    want_y, want_idx = R.max_pool2d_forward(x, k, one, one)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(
        K.max_pool2d_backward(dy, idx, x.shape, 2),
        R.max_pool2d_backward(dy.astype(np.float64), want_idx, x.shape),
        R.max_pool2d_backward(np.abs(dy.astype(np.float64)), want_idx, x.shape),
        dtype,
        "max_pool2d_backward",
    )
    for cip in (True, False):
        a = K.avg_pool2d_forward(x, k, (2, 2), one, cip, 2)
        assert_close(
            a,
            R.avg_pool2d_forward(x64, k, (2, 2), one, cip),
            R.avg_pool2d_forward(np.abs(x64), k, (2, 2), one, cip),
            dtype,
            "avg_pool2d_forward",
        )
        da = rng.standard_normal(a.shape).astype(dtype)
        assert_close(
            K.avg_pool2d_backward(da, x.shape, k, (2, 2), one, cip, 2),
            R.avg_pool2d_backward(da.astype(np.float64), x.shape, k, (2, 2), one, cip),
            R.avg_pool2d_backward(np.abs(da.astype(np.float64)), x.shape, k, (2, 2), one, cip),
            dtype,
            "avg_pool2d_backward",
        )


# --------------------------------------------------------------------------------------
# 1 thread vs 2 threads: identical bits
# --------------------------------------------------------------------------------------

CIFAR_LIKE = (16, 8, 32, 32)  # (N, C, H, W): big enough that every kernel splits


def run_unfold_and_pooling(K, x, threads):
    one, k = (1, 1), (3, 3)
    cols = K.im2col(x, k, one, one, one, threads)
    out = {"im2col": cols, "col2im": K.col2im(cols, x.shape, k, one, one, one, threads)}
    y, idx = K.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), threads)
    out["max_pool2d_forward"], out["max_pool2d_forward indices"] = y, idx
    out["max_pool2d_backward"] = K.max_pool2d_backward(y * 2, idx, x.shape, threads)
    # overlapping windows: routing has to add up gradients
    y3, idx3 = K.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), threads)
    out["max_pool2d_backward overlapping"] = K.max_pool2d_backward(y3, idx3, x.shape, threads)
    for cip in (True, False):
        a = K.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), cip, threads)
        out[f"avg_pool2d_forward cip={cip}"] = a
        out[f"avg_pool2d_backward cip={cip}"] = K.avg_pool2d_backward(
            a, x.shape, (3, 3), (2, 2), (1, 1), cip, threads
        )
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_pooling_bit_identical_across_thread_counts(dtype):
    K = kernels()
    x = np.random.default_rng(1).standard_normal(CIFAR_LIKE).astype(dtype)
    one_thread = run_unfold_and_pooling(K, x, 1)
    for threads in (2, 3):
        many = run_unfold_and_pooling(K, x, threads)
        different = [
            name for name in one_thread if not np.array_equal(one_thread[name], many[name])
        ]
        assert not different, f"1 vs {threads} threads differ: {different}"


CIFAR_CONVS = [
    (16, 3, 32, 32, 32, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (16, 32, 16, 16, 64, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (16, 32, 16, 16, 32, (3, 3), (2, 2), (1, 1), (1, 1), 32),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CIFAR_CONVS, ids=["3to32", "32to64", "depthwise"])
def test_conv_bit_identical_across_thread_counts(cfg, dtype):
    K = kernels()
    arrays = medium_conv_arrays(cfg, dtype, seed=2)
    one_thread = run_conv(K, cfg, arrays, 1)
    for threads in (2, 3):
        many = run_conv(K, cfg, arrays, threads)
        different = [
            name for name in one_thread if not np.array_equal(one_thread[name], many[name])
        ]
        assert not different, f"1 vs {threads} threads differ: {different}"


def test_same_call_twice_is_bit_identical():
    K = kernels()
    arrays = medium_conv_arrays(CIFAR_CONVS[1], np.float32, seed=3)
    first, second = run_conv(K, CIFAR_CONVS[1], arrays, 2), run_conv(K, CIFAR_CONVS[1], arrays, 2)
    assert all(np.array_equal(first[name], second[name]) for name in first)


# --------------------------------------------------------------------------------------
# two Python threads at once
# --------------------------------------------------------------------------------------


def test_two_python_threads_calling_kernels_concurrently_get_correct_results():
    K = kernels()
    jobs = []
    for seed, dtype, cfg in [(10, np.float32, MEDIUM_CONVS[0]), (11, np.float64, MEDIUM_CONVS[2])]:
        arrays = medium_conv_arrays(cfg, dtype, seed=seed)
        x = arrays[0]
        expected = run_conv(K, cfg, arrays, 1)
        expected.update(run_unfold_and_pooling(K, x, 1))
        jobs.append((cfg, arrays, expected))
    # check the sequential answers once against the reference, so "correct" means correct
    cfg, arrays, expected = jobs[1]
    *_, k, s, p, d, G = cfg
    x, w, b, dy = arrays
    np.testing.assert_allclose(
        expected["conv2d_forward"], R.conv2d_forward(x, w, b, s, p, d, G), rtol=1e-10, atol=1e-10
    )

    failures = []
    barrier = threading.Barrier(2)

    def worker(index):
        cfg, arrays, expected = jobs[index]
        try:
            barrier.wait(timeout=30)
            for repeat in range(15):
                threads = 1 + repeat % 2
                got = run_conv(K, cfg, arrays, threads)
                got.update(run_unfold_and_pooling(K, arrays[0], threads))
                for name, value in expected.items():
                    if not np.array_equal(got[name], value):
                        failures.append(f"python thread {index}, repeat {repeat}: {name}")
        except Exception as exc:  # reported below, in the main thread
            failures.append(f"python thread {index} raised {exc!r}")

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "a kernel call hung"
    assert not failures, failures[:10]
