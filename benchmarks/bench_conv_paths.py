"""Stride-1 conv2d, each pass on each kernel path: im2col + GEMM, Winograd (each tiling
of 3x3 and 5x5 layers), the direct kernels (each input-gradient layout, where the CPU has
AVX2 or AVX-512) and PyTorch.

Per pass (forward, backward-input, backward-weight with the bias gradient), float32, at
the LeNet-digits, LeNet default, MNIST-like and CIFAR-like layers and a few others that
bound the conv plan's choice between them, 1 and 2 threads; medians of interleaved
repeats (minidl.bench.timing).  The paths are every one minidl.ops.conv_plan.candidates
allows at the shape.  The im2col weight gradient is timed both with its own im2col
("im2col") and with the forward's kept cols ("im2col+cols", what F.conv2d does when the
cols fit MAX_SAVED_COLS_BYTES; its forward then costs "im2col+keep" instead of "im2col").
Every path is checked against the im2col one first.  benchmarks/conv_dispatch_tables.py
prints the same timings as the tables of benchmarks/conv_dispatch.md.

    python benchmarks/bench_conv_paths.py [--threads 1 2] [--repeats 9] [--shapes 0 3]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import minidl  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minidl import _kernels as K
from minidl.bench.ops import conv_arrays
from minidl.bench.shapes import CONV_SHAPES, ConvShape
from minidl.bench.suite import import_torch
from minidl.bench.threads import thread_count
from minidl.bench.timing import time_interleaved
from minidl.ops import conv_plan

# the suite's stride-1 layers, then LeNet()'s and a few that bound F.conv2d's choices
SHAPES = tuple(s for s in CONV_SHAPES if s.stride == 1) + (
    ConvShape("LeNet default", "conv1", 64, 1, 8, 8, 32, 3, 1, 1),
    ConvShape("LeNet default", "conv2", 64, 32, 4, 4, 64, 3, 1, 1),
    ConvShape("LeNet default", "conv2", 360, 32, 4, 4, 64, 3, 1, 1),
    ConvShape("LeNet-digits", "conv1", 360, 1, 8, 8, 6, 3, 1, 1),  # inference: the test set
    ConvShape("LeNet-digits", "conv2", 360, 6, 4, 4, 16, 3, 1, 1),
    ConvShape("other", "conv", 64, 16, 8, 8, 16, 3, 1, 1),
    ConvShape("other", "conv", 64, 3, 16, 16, 64, 3, 1, 1),
    ConvShape("other", "conv", 64, 16, 16, 16, 16, 5, 1, 2),
)
ONE = (1, 1)


def paths(shape, x, w, b, g, nt, torch):
    """pass -> {path name: callable}."""
    p = (shape.padding, shape.padding)
    im2col = dict(stride=ONE, padding=p, dilation=ONE, groups=1, num_threads=nt)
    _, cols = K.conv2d_forward(x, w, b, **im2col, keep_input=True)
    fwd = {
        "im2col": lambda: K.conv2d_forward(x, w, b, **im2col),
        "im2col+keep": lambda: K.conv2d_forward(x, w, b, **im2col, keep_input=True),
    }
    bwd_x = {
        "im2col": lambda: K.conv2d_backward_input(g, w, x.shape, **im2col),
    }
    bwd_w = {
        "im2col": lambda: K.conv2d_backward_weight(x, g, w.shape, **im2col, need_bias=True),
        "im2col+cols": lambda: K.conv2d_backward_weight(
            x, g, w.shape, **im2col, need_bias=True, kept_input=cols
        ),
    }
    can = conv_plan.candidates(x.shape, w.shape, x.dtype, ONE, p)
    for which, kernels in zip(conv_plan.PASSES, (fwd, bwd_x, bwd_w)):
        for plan in can[which]:
            if plan.path != "im2col":
                kernels[plan.describe(shape.k)] = _kernel_call(which, plan, x, w, b, g, p, nt)
    if torch is not None:
        tx, tw, tb, tg = (torch.from_numpy(a) for a in (x, w, b, g))
        conv_bwd = torch.ops.aten.convolution_backward
        fwd["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, tb, 1, p)
        bwd_x["torch"] = lambda: conv_bwd(
            tg, tx, tw, [shape.f], [1, 1], list(p), [1, 1], False, [0, 0], 1, [True, False, False]
        )
        bwd_w["torch"] = lambda: conv_bwd(
            tg, tx, tw, [shape.f], [1, 1], list(p), [1, 1], False, [0, 0], 1, [False, True, True]
        )
    return {"fwd": fwd, "bwd_input": bwd_x, "bwd_weight": bwd_w}


def _kernel_call(which, plan, x, w, b, g, p, nt):
    """A zero-argument call of ``plan``'s kernel for pass ``which``."""
    if plan.path == "depthwise":  # C == groups: a 1-channel input is depth-wise too
        if which == "forward":
            return lambda: K.depthwise_conv2d_forward(x, w, b, ONE, p, ONE, nt)
        if which == "weight":
            return lambda: K.depthwise_conv2d_backward_weight(x, g, w.shape, ONE, p, ONE, True, nt)
        return lambda: K.depthwise_conv2d_backward_input(g, w, x.shape, ONE, p, ONE, nt)
    common = dict(padding=p, num_threads=nt)
    if plan.path == "winograd":
        common.update(tile=plan.tile, channel_major=plan.channel_major)
        forward, backward_input, backward_weight = (
            K.winograd_forward,
            K.winograd_backward_input,
            K.winograd_backward_weight,
        )
    else:
        forward, backward_input, backward_weight = (
            K.direct_conv2d_forward,
            K.direct_conv2d_backward_input,
            K.direct_conv2d_backward_weight,
        )
    if which == "forward":
        return lambda: forward(x, w, b, **common)
    if which == "weight":
        return lambda: backward_weight(x, g, w.shape, **common, need_bias=True)
    if plan.path == "direct":
        common["layout"] = plan.layout
    return lambda: backward_input(g, w, x.shape, **common)


def _result(fn):
    out = fn()
    if isinstance(out, tuple):
        out = out[0] if out[0] is not None else out[1]
    return np.asarray(out)


def check(table):
    for name, fns in table.items():
        want = _result(fns["im2col"])
        for path, fn in fns.items():
            got = _result(fn)
            scale = np.abs(want).max() + 1e-30
            assert np.abs(got - want).max() <= 1e-4 * scale, (name, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--shapes", type=int, nargs="+", default=None, help="indices into SHAPES (default: all)"
    )
    args = parser.parse_args()
    torch = import_torch()
    shapes = SHAPES if args.shapes is None else [SHAPES[i] for i in args.shapes]
    for nt in args.threads:
        with thread_count(nt, torch):
            for shape in shapes:
                x, w, b, g = conv_arrays(shape, np.random.default_rng(0))
                table = paths(shape, x, w, b, g, nt, torch)
                check(table)
                for name, fns in table.items():
                    stats = time_interleaved(fns, repeats=args.repeats, min_time=0.02)
                    cells = "  ".join(f"{path} {s.median * 1e3:7.3f}" for path, s in stats.items())
                    print(
                        f"{nt} thr  {shape.family:13s} {shape.label:28s} {name:10s} ms: {cells}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
