"""Every bad input gets a ValueError / TypeError naming the problem, before any kernel runs.

Each case is an expression evaluated with F, np and T (float32 tensor maker) in scope.
All cases run in-process with pytest.raises and once more, batched, in a subprocess so
that a crash of the interpreter (a kernel fed a bad argument) fails the test instead of
killing the run.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F


def T(*shape, dtype=np.float32):
    return minidl.tensor(np.ones(shape, dtype=dtype))


X = "T(2, 3, 8, 8)"
W = "T(4, 3, 3, 3)"
CASES = [
    # conv2d: dimensions, channels, sizes, hyper-parameters
    (f"F.conv2d(T(8, 8), {W})", ValueError, r"4-D input.*\(8, 8\)"),
    (f"F.conv2d({X}, T(4, 3, 3))", ValueError, r"4-D weight.*\(4, 3, 3\)"),
    (f"F.conv2d({X}, T(4, 2, 3, 3))", ValueError, r"\(2, 3, 8, 8\).*\(4, 2, 3, 3\)"),
    (f"F.conv2d({X}, T(4, 3, 9, 9))", ValueError, r"output size 0x0"),
    (f"F.conv2d({X}, T(4, 3, 3, 3), dilation=5)", ValueError, r"output size"),
    (f"F.conv2d({X}, {W}, stride=0)", ValueError, r"stride must be >= 1"),
    (f"F.conv2d({X}, {W}, stride=(1, -2))", ValueError, r"stride must be >= 1"),
    (f"F.conv2d({X}, {W}, padding=-1)", ValueError, r"padding must be >= 0"),
    (f"F.conv2d({X}, {W}, dilation=0)", ValueError, r"dilation must be >= 1"),
    (f"F.conv2d({X}, {W}, stride=(1, 2, 3))", ValueError, r"stride.*tuple of 2"),
    (f"F.conv2d({X}, {W}, stride=1.5)", TypeError, r"stride"),
    (f"F.conv2d({X}, {W}, padding=(1, 'a'))", TypeError, r"padding"),
    (f"F.conv2d({X}, {W}, groups=0)", ValueError, r"groups must be >= 1"),
    (f"F.conv2d({X}, T(4, 1, 3, 3), groups=2)", ValueError, r"groups=2 does not divide the 3"),
    (
        "F.conv2d(T(2, 4, 8, 8), T(3, 2, 3, 3), groups=2)",
        ValueError,
        r"groups=2 does not divide the 3 output",
    ),
    (f"F.conv2d({X}, {W}, T(5))", ValueError, r"bias shape \(5,\)"),
    (f"F.conv2d({X}, {W}, T(4, 1))", ValueError, r"bias must be 1-D"),
    (f"F.conv2d({X}, T(4, 3, 3, 3, dtype=np.float64))", TypeError, r"float32.*float64"),
    (f"F.conv2d({X}, {W}, T(4, dtype=np.float64))", TypeError, r"float32.*float64"),
    (
        f"F.conv2d(minidl.tensor(np.ones((2, 3, 8, 8), np.int64)), {W})",
        TypeError,
        r"int64.*float32|float32.*int64",
    ),
    ("F.conv2d(T(2, 0, 8, 8), T(4, 0, 3, 3))", ValueError, r"empty"),
    ("F.true_conv2d(T(2, 0, 8, 8), T(4, 0, 3, 3))", ValueError, r"empty"),
    # conv1d and conv_transpose2d
    ("F.conv1d(T(2, 3, 8, 8), T(4, 3, 3))", ValueError, r"3-D input"),
    ("F.conv1d(T(2, 3, 8), T(4, 2, 3))", ValueError, r"channels"),
    ("F.conv1d(T(2, 3, 2), T(4, 3, 5))", ValueError, r"\(2, 3, 2\) is too short"),
    ("F.conv1d(T(2, 3, 8), T(4, 3, 3), stride=(1, 1))", ValueError, r"stride.*tuple of 1"),
    (
        "F.conv_transpose2d(T(2, 3, 4, 4), T(2, 4, 3, 3))",
        ValueError,
        r"\(2, 3, 4, 4\).*\(2, 4, 3, 3\)",
    ),
    (
        "F.conv_transpose2d(T(2, 3, 4, 4), T(3, 4, 3, 3), output_padding=1)",
        ValueError,
        r"output_padding",
    ),
    ("F.conv_transpose2d(T(2, 3, 1, 1), T(3, 4, 1, 1), padding=1)", ValueError, r"output size"),
    ("F.conv_transpose2d(T(2, 3, 4, 4), T(3, 4, 3, 3), groups=2)", ValueError, r"groups=2"),
    ("F.conv_transpose2d(T(2, 3, 4, 4), T(3, 4, 3, 3), T(5))", ValueError, r"bias shape"),
    (
        "F.conv_transpose2d(T(2, 3, 4, 4), T(3, 4, 3, 3, dtype=np.float64))",
        TypeError,
        r"float32.*float64",
    ),
    # pooling
    ("F.max_pool2d(T(8, 8), 2)", ValueError, r"4-D input"),
    ("F.max_pool2d(T(1, 1, 8, 8), 2, padding=2)", ValueError, r"half the kernel"),
    ("F.avg_pool2d(T(1, 1, 8, 8), 3, padding=2)", ValueError, r"half the kernel"),
    ("F.max_pool2d(T(1, 1, 2, 2), 3)", ValueError, r"output size"),
    ("F.max_pool2d(T(1, 1, 8, 8), 2, stride=0)", ValueError, r"stride must be >= 1"),
    ("F.max_pool2d(T(1, 1, 8, 8), 0)", ValueError, r"kernel_size must be >= 1"),
    ("F.avg_pool2d(T(1, 1, 8, 8), (2, 2, 2))", ValueError, r"kernel_size.*tuple of 2"),
    ("F.avg_pool2d(T(1, 1, 8, 8), 2.0)", TypeError, r"kernel_size"),
    ("F.max_pool2d(T(1, 1, 8, 8), 2, padding=-1)", ValueError, r"padding must be >= 0"),
    ("F.max_pool2d(minidl.tensor(np.ones((1, 1, 4, 4), np.int32)), 2)", TypeError, r"int32"),
    # losses, linear, dropout, softmax
    (
        "F.cross_entropy(T(3, 4), np.array([0, 1, 4]))",
        ValueError,
        r"target 4 is out of range for 4 classes",
    ),
    ("F.cross_entropy(T(3, 4), np.array([0, -1, 2]))", ValueError, r"target -1 is out of range"),
    (
        "F.cross_entropy(T(3, 4), np.array([0.0, 1.0, 2.0]))",
        TypeError,
        r"integer class indices.*float64",
    ),
    (
        "F.cross_entropy(T(3, 4), np.array([0, 1]))",
        ValueError,
        r"target shape \(2,\).*input shape \(3, 4\)",
    ),
    ("F.cross_entropy(T(3, 4), np.array([0, 1, 2]), reduction='avg')", ValueError, r"reduction"),
    ("F.mse_loss(T(3, 4), T(4, 3))", ValueError, r"\(3, 4\).*\(4, 3\)"),
    ("F.mse_loss(T(3), T(3, dtype=np.float64))", TypeError, r"float32.*float64"),
    ("F.linear(T(2, 3), T(4, 5))", ValueError, r"\(2, 3\).*\(4, 5\)"),
    ("F.linear(T(2, 3), T(4, 3), T(5))", ValueError, r"bias shape \(5,\)"),
    ("F.linear(T(2, 3), T(4, 3, dtype=np.float64))", TypeError, r"float32.*float64"),
    ("F.dropout(T(3), p=1.5)", ValueError, r"p must be in \[0, 1\]"),
    ("F.dropout(T(3), p=-0.1)", ValueError, r"p must be in \[0, 1\]"),
    ("F.dropout(T(3), p='x')", TypeError, r"p must be a number"),
    ("F.softmax(T(3, 4), 2)", IndexError, r"dim 2 out of range"),
    ("T(3, 4) + T(3, 4, dtype=np.float64)", TypeError, r"float32.*float64"),
    ("T(3, 4) @ T(5, 2)", ValueError, r"\(3, 4\).*\(5, 2\)"),
    ("T(3, 4).reshape(5, 5)", ValueError, r"\(3, 4\).*\(5, 5\)"),
    ("T(3, 4).sum(dim=3)", IndexError, r"dim 3 out of range"),
    # arguments that are not Tensors at all (an ndarray's .data is a memoryview)
    (
        f"F.conv2d(np.ones((2, 3, 8, 8), np.float32), {W})",
        TypeError,
        r"conv2d: argument 'input' must be a minidl.Tensor, not ndarray",
    ),
    (
        f"F.conv2d({X}, np.ones((4, 3, 3, 3), np.float32))",
        TypeError,
        r"argument 'weight'.*not ndarray",
    ),
    (f"F.conv2d({X}, {W}, np.ones(4, np.float32))", TypeError, r"argument 'bias'.*not ndarray"),
    ("F.conv1d([[[1.0]]], T(1, 1, 1))", TypeError, r"conv1d: argument 'input'.*not list"),
    ("F.conv_transpose2d(None, T(3, 4, 3, 3))", TypeError, r"argument 'input'.*NoneType"),
    ("F.max_pool2d(np.ones((1, 1, 4, 4)), 2)", TypeError, r"max_pool2d: argument 'input'"),
    ("F.avg_pool2d('x', 2)", TypeError, r"avg_pool2d: argument 'input'.*str"),
    ("F.linear(np.ones((2, 3), np.float32), T(4, 3))", TypeError, r"linear: argument 'input'"),
    ("F.linear(T(2, 3), np.ones((4, 3), np.float32))", TypeError, r"linear: argument 'weight'"),
    ("F.linear(T(2, 3), T(4, 3), [0.0] * 4)", TypeError, r"linear: argument 'bias'"),
    ("F.relu(np.ones(3))", TypeError, r"relu: argument 'input'"),
    ("F.sigmoid(np.ones(3))", TypeError, r"sigmoid: argument 'input'"),
    ("F.tanh(1.0)", TypeError, r"tanh: argument 'input'.*float"),
    ("F.softmax(np.ones((2, 3)), 1)", TypeError, r"softmax: argument 'input'"),
    ("F.log_softmax(np.ones((2, 3)), 1)", TypeError, r"log_softmax: argument 'input'"),
    (
        "F.cross_entropy(np.ones((2, 3)), np.array([0, 1]))",
        TypeError,
        r"cross_entropy: argument 'input'",
    ),
    ("F.mse_loss(np.ones(3), T(3))", TypeError, r"mse_loss: argument 'input'"),
    ("F.dropout(np.ones(3), 0.5)", TypeError, r"dropout: argument 'input'"),
    ("F.flatten(np.ones((2, 3)))", TypeError, r"flatten: argument 'input'"),
]


@pytest.mark.parametrize("code, exc, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(code, exc, pattern):
    with pytest.raises(exc, match=pattern):
        eval(code, {"F": F, "np": np, "T": T, "minidl": minidl})


def test_bad_inputs_do_not_crash_the_interpreter():
    script = textwrap.dedent(f"""
        import numpy as np, minidl
        import minidl.nn.functional as F
        def T(*shape, dtype=np.float32):
            return minidl.tensor(np.ones(shape, dtype=dtype))
        cases = {[(code, exc.__name__) for code, exc, _ in CASES]!r}
        for code, exc_name in cases:
            try:
                eval(code)
            except Exception as err:
                if type(err).__name__ != exc_name:
                    print("WRONG", code, type(err).__name__, err)
            else:
                print("NO ERROR", code)
        print("DONE")
    """)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=repo
    )
    assert proc.returncode == 0, f"interpreter died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "DONE", proc.stdout


def test_non_finite_values_propagate():
    x = minidl.tensor(np.array([[[[np.nan, 1.0], [np.inf, 2.0]]]], np.float32))
    w = minidl.tensor(np.ones((1, 1, 1, 1), np.float32))
    y = F.conv2d(x, w)
    assert np.isnan(y.data[0, 0, 0, 0]) and np.isinf(y.data[0, 0, 1, 0])
    assert np.isnan(F.max_pool2d(x, 2).data).all()


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize(
    "bad, valid",
    [
        ({"kernel_size": 2.0}, {"kernel_size": 2}),
        ({"kernel_size": True}, {"kernel_size": 1}),
        ({"kernel_size": (2, True)}, {"kernel_size": (2, 1)}),
        ({"kernel_size": 2, "stride": 1.0}, {"kernel_size": 2, "stride": 1}),
    ],
)
def test_pool_arguments_equal_to_valid_ones_are_still_rejected(op, bad, valid):
    # pool_args remembers valid arguments per shape; 2.0 == 2 and True == 1 must not hit
    x = T(1, 1, 8, 8)
    op(x, **valid)
    with pytest.raises(TypeError):
        op(x, **bad)
