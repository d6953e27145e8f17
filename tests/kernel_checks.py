"""What the kernel tests share: the kernels (a failure, never a skip, when they cannot be
imported), the example-count scale, float64 copies and the tolerance check.

Tolerance: |got - want| <= tol * (|want| + magnitude), with ``want`` the float64
reference and ``magnitude`` the same sums over absolute values (the scale rounding errors
are proportional to); tol = 1e-5 in float32 and 1e-12 in float64.  ``normwise=True``
takes the largest magnitude of the whole result instead of each element's own, for
algorithms whose rounding is spread over neighbouring outputs (Winograd's transforms).
"""

import contextlib
import functools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import strategies as st

try:
    from minidl import _kernels

    _KERNEL_IMPORT_ERROR = None
except ImportError as exc:
    _kernels = None
    _KERNEL_IMPORT_ERROR = exc

THREADS = 2
SCALE = float(os.environ.get("MINIDL_HYPOTHESIS_SCALE", "1"))
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def python_child(code, *args, env=None, drop=(), timeout=120):
    """``python -c code *args`` in a fresh interpreter (a module-level setting such as the
    CPU level is read once per process), with ``env`` added to this environment and the
    names in ``drop`` removed: its CompletedProcess, output as text."""
    child_env = dict(os.environ, **(env or {}))
    for name in drop:
        child_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def examples(n):
    """n hypothesis examples, times MINIDL_HYPOTHESIS_SCALE."""
    return max(1, int(n * SCALE))


def kernels():
    """minidl._kernels; the calling test fails if it cannot be imported."""
    if _kernels is None:
        pytest.fail(f"minidl._kernels cannot be imported: {_KERNEL_IMPORT_ERROR}")
    return _kernels


def conv_arrays(cfg, kernel, dtype):
    """Random x (N, C, H, W), weight (F, C, kh, kw), bias (F,) or None (cfg["bias"]) and
    dY (N, F, Ho, Wo) of ``dtype`` for a stride-1, undilated layer with cfg's sizes,
    padding and seed."""
    rng = np.random.default_rng(cfg["seed"])
    out = tuple(s + 2 * p - k + 1 for s, p, k in zip((cfg["H"], cfg["W"]), cfg["padding"], kernel))
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["F"], cfg["C"]) + tuple(kernel)).astype(dtype)
    b = rng.standard_normal(cfg["F"]).astype(dtype) if cfg["bias"] else None
    dy = rng.standard_normal((cfg["N"], cfg["F"]) + out).astype(dtype)
    return x, w, b, dy


def f64(a):
    return None if a is None else a.astype(np.float64)


def absf64(a):
    return None if a is None else np.abs(a.astype(np.float64))


def reference(fn, arrays, *args):
    """``fn`` (a minidl.reference function) on float64 copies of ``arrays`` and on their
    absolute values, with the further ``args``: (want, magnitude), each as fn returns."""
    return fn(*(f64(a) for a in arrays), *args), fn(*(absf64(a) for a in arrays), *args)


def assert_close(got, want, magnitude, dtype, what, normwise=False, slack=1.0):
    """got (kernel output, dtype) against want (float64 reference); see the top.
    ``slack`` scales the tolerance (for an algorithm known to round worse)."""
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    error = np.abs(got.astype(np.float64) - want)
    scale = magnitude.max() if normwise else magnitude
    bound = slack * TOLERANCE[dtype] * (np.abs(want) + scale)
    bad = ~(error <= bound)  # NaN counts as bad
    if bad.any():
        k = tuple(
            int(i)
            for i in np.unravel_index(
                np.argmax(np.where(bad, error / np.maximum(bound, 1e-300), 0)), got.shape
            )
        )
        raise AssertionError(
            f"{what} ({np.dtype(dtype)}): {bad.sum()} of {got.size} entries out of "
            f"tolerance; max abs error {np.nanmax(error):.3g}; worst at {k}: got {got[k]!r}, "
            f"want {want[k]!r}, bound {bound[k]:.3g}"
        )


def count_kernel_calls(monkeypatch, kernel_of_pass):
    """Wrap the functions of minidl._kernels named in ``kernel_of_pass`` ({pass: name};
    the ops call them as K.<name>) with counters for this test; returns {pass: calls}."""
    K = kernels()
    calls = dict.fromkeys(kernel_of_pass, 0)
    for which, name in kernel_of_pass.items():
        kernel = getattr(K, name)

        @functools.wraps(kernel)  # keeps __module__: K.planned_threads still finds it
        def counted(*args, _kernel=kernel, _which=which, **kwargs):
            calls[_which] += 1
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(K, name, counted)
    return calls


def run_conv(x, w, b, plan=None, **kw):
    """F.conv2d with autograd and a random upstream gradient: (y, gx, gw, gb, g); with
    ``plan`` (a minidl.ops.conv_plan.ConvPlan) forced."""
    import contextlib

    import minidl
    from minidl.nn import functional as F
    from minidl.ops import conv_plan

    xt = minidl.tensor(x, requires_grad=True)
    wt = minidl.tensor(w, requires_grad=True)
    bt = minidl.tensor(b, requires_grad=True)
    with conv_plan.forced(plan) if plan is not None else contextlib.nullcontext():
        y = F.conv2d(xt, wt, bt, **kw)
    g = np.random.default_rng(5).standard_normal(y.shape).astype(x.dtype)
    y.backward(g)
    return y.data, xt.grad, wt.grad, bt.grad, g


def im2col_f64(x, w, b, dy, padding, threads=1):
    """(y, dx, dW, db) of the stride-1, undilated conv on the float64 im2col kernels (each
    checked against the naive reference in test_kernels*.py), for shapes where the naive
    loops are too slow; b may be None (then db is None)."""
    K = kernels()
    one = (1, 1)
    geometry = dict(stride=one, padding=tuple(padding), dilation=one, groups=1)
    x, w, dy = f64(x), f64(w), f64(dy)
    y = K.conv2d_forward(x, w, f64(b), **geometry, num_threads=threads)
    dx = K.conv2d_backward_input(dy, w, x.shape, **geometry, num_threads=threads)
    dw, db = K.conv2d_backward_weight(
        x, dy, w.shape, **geometry, need_bias=b is not None, num_threads=threads
    )
    return y, dx, dw, db


@st.composite
def pool_case(draw):
    """(shape (N, C, H, W), kernel, stride, padding) of a valid 2-D pooling: padding at
    most half the kernel, the padded plane at least one window."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h = draw(st.integers(max(1, k[0] - 2 * p[0]), 9))
    w = draw(st.integers(max(1, k[1] - 2 * p[1]), 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    return shape, k, s, p


def tricky_planes(rng, shape, dtype, specials):
    """Small integers (so ties are common) with +-0, +-inf and NaN sprinkled in."""
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    if specials:
        picks = rng.random(shape)
        x[picks < 0.05] = np.inf
        x[(picks >= 0.05) & (picks < 0.10)] = -np.inf
        x[(picks >= 0.10) & (picks < 0.15)] = -0.0
        x[(picks >= 0.15) & (picks < 0.18)] = np.nan
    return x


@contextlib.contextmanager
def pool_path(simd):
    """The 2x2 max pool on its AVX-512 paths (where the CPU has them) or on the portable
    C; yields simd_level()."""
    from minidl._kernels import _pooling

    try:
        yield _pooling._use_simd(simd)
    finally:
        _pooling._use_simd(True)
