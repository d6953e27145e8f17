"""The crashes, hangs and wrong results found by fuzzing (issue 22), each run in a child
process so that a regression fails this test instead of killing pytest."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import minidl

ROOT = Path(minidl.__file__).resolve().parent.parent

PRELUDE = """
import numpy as np, minidl, minidl.nn.functional as F
from minidl import reference as R
T = minidl.tensor
def raises(kind, words, fn):
    try:
        fn()
    except kind as exc:
        assert all(w in str(exc) for w in words), str(exc)
        return
    raise AssertionError("no " + kind.__name__)
"""

CASES = {
    "max_pool2d, stride 2**31-1 (was a segfault)": """
        x = np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32)
        for p in (0, 1, 2):
            y = F.max_pool2d(T(x), kernel_size=4, stride=2**31 - 1, padding=p).data
            want = R.max_pool2d_forward(x.astype(np.float64), 4, 2**31 - 1, p)[0]
            assert np.array_equal(y, want.astype(np.float32))
    """,
    "conv2d 8x8, padding 2**31-1 (was a segfault)": """
        raises(ValueError, ["conv2d", "padding"], lambda: F.conv2d(
            T(np.ones((1, 1, 8, 8), np.float32)), T(np.ones((1, 1, 2, 2), np.float32)),
            padding=2**31 - 1))
    """,
    "conv2d 4x4 3x3, padding 2**31-1 (was SIGFPE)": """
        raises(ValueError, ["conv2d", "padding"], lambda: F.conv2d(
            T(np.ones((1, 1, 4, 4), np.float32)), T(np.ones((1, 1, 3, 3), np.float32)),
            padding=2**31 - 1))
    """,
    "conv2d, stride 2**31-1 padding 2**30-1 (was a wrong shape)": """
        raises(ValueError, ["conv2d", "padding"], lambda: F.conv2d(
            T(np.ones((1, 1, 4, 8), np.float32)), T(np.ones((2, 1, 1, 1), np.float32)),
            stride=2**31 - 1, padding=2**30 - 1, dilation=2))
    """,
    "max_pool2d, kernel 2**31-2 (ran for minutes)": """
        raises(ValueError, ["max_pool2d", "padding"], lambda: F.max_pool2d(
            T(np.ones((1, 1, 7, 1), np.float32)), kernel_size=2**31 - 2, stride=1,
            padding=2**30 - 1))
    """,
    "stride 2**31 is a ValueError naming it, not an OverflowError": """
        for fn in (
            lambda: F.conv2d(T(np.ones((1, 1, 4, 4), np.float32)),
                             T(np.ones((1, 1, 3, 3), np.float32)), stride=2**31),
            lambda: F.max_pool2d(T(np.ones((1, 1, 4, 4), np.float32)), 2, stride=2**31),
            lambda: F.conv1d(T(np.ones((1, 1, 4), np.float32)), T(np.ones((1, 1, 1), np.float32)),
                             dilation=2**63 - 1),
        ):
            raises(ValueError, ["is too large"], fn)
    """,
    "misaligned C-contiguous input (UBSan misaligned loads)": """
        raw = np.zeros(4 * 64 + 1, np.uint8)[1:]
        x = raw.view(np.float32).reshape(1, 1, 8, 8)
        x[...] = np.arange(64, dtype=np.float32).reshape(8, 8)
        assert not x.flags.aligned and x.flags.c_contiguous
        w = np.ones((2, 1, 3, 3), np.float32)
        got = F.conv2d(minidl.Tensor(x), minidl.Tensor(w), padding=1).data
        assert np.array_equal(got, F.conv2d(T(np.array(x)), T(w), padding=1).data)
        assert np.array_equal(F.max_pool2d(minidl.Tensor(x), 2).data,
                              F.max_pool2d(T(np.array(x)), 2).data)
    """,
    "0-d inputs, float16, None targets, a 0-d conv1d bias": """
        for fn, want in ((F.log_softmax, 0.0), (F.softmax, 1.0)):
            for dim in (0, -1):
                x = T(1.5, requires_grad=True)
                y = fn(x, dim)
                y.backward()
                assert y.shape == () and y.item() == want and x.grad == 0.0
            raises(IndexError, ["dim"], lambda fn=fn: fn(T(1.5), 1))
        values, indices = T(1.0).max(dim=0)
        assert values.item() == 1.0 and indices.item() == 0
        raises(TypeError, ["float32 or float64"], lambda: F.conv2d(
            T(np.ones((1, 1, 4, 4), np.float16)), T(np.ones((1, 1, 3, 3), np.float16))))
        raises(TypeError, ["float32 or float64"],
               lambda: F.max_pool2d(T(np.ones((1, 1, 4, 4), np.float16)), 2))
        raises(TypeError, ["target"], lambda: F.mse_loss(T([1.0]), None))
        raises(ValueError, ["bias"], lambda: F.conv1d(T(np.ones((1, 1, 5), np.float32)),
               T(np.ones((2, 1, 1), np.float32)), T(np.float32(1))))
    """,
    "one inf pixel stays local on every conv path (Winograd made its tile NaN)": """
        import torch
        from minidl.ops import conv_plan as P
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 32, 8, 8)).astype(np.float32)
        x[0, 0, 3, 4] = np.inf
        w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
        want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
        cands = P.candidates(x.shape, w.shape, np.float32, (1, 1), (1, 1), (1, 1), 1)
        for fwd in cands["forward"]:
            plan = P.ConvPlan(fwd, cands["input"][0], cands["weight"][0], False)
            with P.forced(plan):
                got = F.conv2d(T(x), T(w), padding=1).data
            assert np.array_equal(np.isfinite(got), np.isfinite(want)), fwd
    """,
    "values too large for Winograd's sums stay finite on every conv path": """
        from minidl.ops import conv_plan as P
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 8, 8, 8)).astype(np.float32) * np.float32(1e37)
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * np.float32(1e-37)
        want = F.conv2d(T(x.astype(np.float64)), T(w.astype(np.float64)), padding=1).data
        assert np.isfinite(want).all()
        cands = P.candidates(x.shape, w.shape, np.float32, (1, 1), (1, 1), (1, 1), 1)
        for fwd in cands["forward"]:
            plan = P.ConvPlan(fwd, cands["input"][0], cands["weight"][0], False)
            with P.forced(plan):
                got = F.conv2d(T(x), T(w), padding=1).data
            assert np.allclose(got, want, rtol=1e-4, atol=1e-3), fwd
    """,
    "nn.Embedding, padding_idx=2.5 (was an IndexError from numpy)": """
        from minidl import nn
        for bad in (2.5, "1", True):
            raises(TypeError, ["Embedding", "padding_idx"],
                   lambda: nn.Embedding(3, 1, padding_idx=bad))
        assert nn.Embedding(3, 1, padding_idx=np.int64(-1)).padding_idx == 2
    """,
    "interpolate, size=2**63-1 (was an empty output, then an IndexError)": """
        x = T(np.ones((3, 3, 4, 4), np.float32))
        for kw in ({"size": 2**63 - 1}, {"size": (2, 2**31)}, {"scale_factor": 2.0**40}):
            raises(ValueError, ["interpolate"], lambda: F.interpolate(x, **kw))
    """,
}


@pytest.mark.parametrize("name", list(CASES))
def test_reproducer_in_a_child_process(name):
    code = PRELUDE + textwrap.dedent(CASES[name])
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
