"""A user's threadpoolctl.threadpool_limits(n) must not make the kernels' inner GEMM run on
n threads: every kernel entry puts scipy's BLAS back on one thread, and results do not
change.  Also minidl.set_flush_denormal (FTZ/DAZ)."""

import platform

import numpy as np
import pytest
from kernel_checks import kernels, run_conv

import minidl
from minidl.ops.conv_plan import IM2COL, ConvPlan

threadpoolctl = pytest.importorskip("threadpoolctl")


def _scipy_blas_threads():
    return [
        lib["num_threads"]
        for lib in threadpoolctl.threadpool_info()
        if lib.get("user_api") == "blas" and "/scipy" in lib["filepath"]
    ]


def test_a_conv_puts_scipy_blas_back_on_one_thread_under_threadpool_limits():
    K = kernels()
    if not K.pin_scipy_blas():
        pytest.skip("scipy's BLAS is shared with numpy or its thread functions are not found")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    plan = ConvPlan(IM2COL, IM2COL, IM2COL)
    saved = minidl.get_num_threads()
    minidl.set_num_threads(2)
    try:
        want = run_conv(x, w, b, plan=plan, padding=1)
        with threadpoolctl.threadpool_limits(2):
            assert _scipy_blas_threads() == [2]  # the cap did raise it
            got = run_conv(x, w, b, plan=plan, padding=1)
            assert _scipy_blas_threads() == [1]
    finally:
        minidl.set_num_threads(saved)
    for a, e in zip(got, want):
        assert np.array_equal(a, e)


def test_linear_puts_scipy_blas_back_on_one_thread():
    K = kernels()
    if not K.pin_scipy_blas():
        pytest.skip("scipy's BLAS is shared with numpy or its thread functions are not found")
    x = minidl.tensor(np.ones((40, 8), np.float32))
    w = minidl.tensor(np.ones((3, 8), np.float32))
    with threadpoolctl.threadpool_limits(2):
        y = minidl.nn.functional.linear(x, w)
        assert _scipy_blas_threads() == [1]
    assert np.array_equal(y.data, np.full((40, 3), 8, np.float32))


def test_set_flush_denormal_flushes_and_restores():
    kernels()
    tiny = np.float32(1e-39)  # denormal in float32
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
    assert minidl.set_flush_denormal(True) is x86
    try:
        if x86:
            # DAZ: a denormal input reads as zero in the kernels' arithmetic
            out = minidl.nn.functional.linear(
                minidl.tensor(np.full((1, 1), tiny)), minidl.tensor(np.ones((1, 1), np.float32))
            )
            assert out.data[0, 0] == 0
    finally:
        assert minidl.set_flush_denormal(False) is x86
    out = minidl.nn.functional.linear(
        minidl.tensor(np.full((1, 1), tiny)), minidl.tensor(np.ones((1, 1), np.float32))
    )
    assert out.data[0, 0] == tiny


def test_set_flush_denormal_rejects_a_non_bool():
    with pytest.raises(TypeError, match="mode"):
        minidl.set_flush_denormal("yes")
