"""Depth-wise convolution kernel against PyTorch's conv2d(groups=C) at MobileNet-style
shapes (N 64, C 32-128, 16x16 and 8x8 planes, 3x3, padding 1, stride 1 and 2).  Run by
hand; never a test:

    python benchmarks/bench_depthwise.py                   # 1 and 2 threads, float32
    python benchmarks/bench_depthwise.py --threads 1 --repeats 21 --channels 64
    python benchmarks/bench_depthwise.py --quick           # small, checks it all works

Per shape and thread count, each pass is timed side by side with PyTorch's in one
process (minidl.bench.timing.time_interleaved: medians of interleaved repeats):
  forward   minidl._kernels.depthwise_conv2d_forward   vs torch conv2d(groups=C)
  input     depthwise_conv2d_backward_input            vs aten.convolution_backward (dx)
  weight    depthwise_conv2d_backward_weight (+ bias)  vs aten.convolution_backward (dw, db)
"ratio" is PyTorch's median / minidl's: above 1, minidl is faster.
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
from minidl.bench.suite import import_torch
from minidl.bench.threads import thread_count
from minidl.bench.timing import time_interleaved


def shapes(channels, planes, strides, n):
    return [(n, c, hw, s) for c in channels for hw in planes for s in strides]


def passes(torch, x, w, b, dy, stride, threads):
    """{pass: (minidl callable, torch callable or None)} for one shape."""
    s, p, d = (stride, stride), (1, 1), (1, 1)
    c = x.shape[1]
    ours = {
        "forward": lambda: K.depthwise_conv2d_forward(x, w, b, s, p, d, threads),
        "input": lambda: K.depthwise_conv2d_backward_input(dy, w, x.shape, s, p, d, threads),
        "weight": lambda: K.depthwise_conv2d_backward_weight(
            x, dy, w.shape, s, p, d, True, threads
        ),
    }
    if torch is None:
        return {name: (fn, None) for name, fn in ours.items()}
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    conv = torch.nn.functional.conv2d
    backward = torch.ops.aten.convolution_backward

    def t_backward(mask):
        return lambda: backward(tdy, tx, tw, [c], s, p, d, False, [0, 0], c, mask)

    theirs = {
        "forward": lambda: conv(tx, tw, tb, s, p, d, c),
        "input": t_backward([True, False, False]),
        "weight": t_backward([False, True, True]),
    }
    return {name: (ours[name], theirs[name]) for name in ours}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--channels", default="32,64,128")
    parser.add_argument("--planes", default="16,8", help="H = W of the input planes")
    parser.add_argument("--strides", default="1,2")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 3 repeats")
    args = parser.parse_args(argv)
    ints = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    threads_list = ints(args.threads)
    if args.quick:
        todo, repeats = shapes([8], [8], [1, 2], 4), 3
    else:
        todo = shapes(ints(args.channels), ints(args.planes), ints(args.strides), args.batch)
        repeats = args.repeats
    torch = import_torch()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(
        f"depth-wise 3x3 conv, padding 1, {dtype}, medians of {repeats} interleaved repeats; "
        f"ratio = torch / minidl (> 1: minidl faster)"
        + ("" if torch else "; torch not installed: minidl only")
    )
    print(
        f"{'N':>3} {'C':>4} {'HxW':>6} {'s':>2} {'thr':>3} {'pass':>8}  "
        f"{'minidl ms':>10} {'torch ms':>9} {'ratio':>6}"
    )
    for n, c, hw, stride in todo:
        x = rng.standard_normal((n, c, hw, hw)).astype(dtype)
        w = rng.standard_normal((c, 1, 3, 3)).astype(dtype)
        b = rng.standard_normal(c).astype(dtype)
        ho = (hw + 2 - 3) // stride + 1
        dy = rng.standard_normal((n, c, ho, ho)).astype(dtype)
        for threads in threads_list:
            with thread_count(threads, torch):
                for name, (ours, theirs) in passes(torch, x, w, b, dy, stride, threads).items():
                    fns = {"minidl": ours} if theirs is None else {"minidl": ours, "torch": theirs}
                    stats = time_interleaved(fns, repeats)
                    mine = stats["minidl"].median * 1e3
                    if theirs is None:
                        tail = f"{'-':>9} {'-':>6}"
                    else:
                        ref = stats["torch"].median * 1e3
                        tail = f"{ref:9.3f} {ref / mine:6.2f}"
                    print(
                        f"{n:3d} {c:4d} {f'{hw}x{hw}':>6} {stride:2d} {threads:3d} {name:>8}  "
                        f"{mine:10.3f} {tail}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
