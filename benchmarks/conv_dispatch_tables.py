"""Time every conv path per pass, as the tables of benchmarks/conv_dispatch.md.

For each stride-1 layer of benchmarks/bench_conv_paths.py (the suite's and those that
bound the conv plan's thresholds) and each thread count: one markdown table per pass
(forward, input gradient, weight gradient) with the milliseconds of every path
minidl.ops.conv_plan.candidates allows (each forced by calling its kernel), the fastest,
and what the built-in plan (plan_conv2d, training) picks.  r = C*F/(C+F) and the work
N*Ho*Wo*C*F are the quantities the thresholds compare.  float32, medians of interleaved
repeats (minidl.bench.timing).  Paste the output into benchmarks/conv_dispatch.md under
the machine's name (the CPU line is printed first).

    python benchmarks/conv_dispatch_tables.py [--threads 1 2] [--repeats 7] [--shapes 0 3]
    python benchmarks/conv_dispatch_tables.py --quick   # one tiny layer: checks it runs
"""

import argparse
import sys
from pathlib import Path

try:
    import minidl  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench_conv_paths import SHAPES, check, paths

from minidl import _kernels as K
from minidl.bench.machine import cpu_model
from minidl.bench.ops import conv_arrays
from minidl.bench.shapes import ConvShape
from minidl.bench.threads import thread_count
from minidl.bench.timing import time_interleaved
from minidl.ops import conv_plan

PASS_TABLES = {"fwd": "forward", "bwd_input": "input", "bwd_weight": "weight"}
QUICK_SHAPE = ConvShape("tiny", "conv", 2, 4, 6, 6, 8, 3, 1, 1)


def planned(shape, nt):
    """{table name: the path name the built-in plan runs} for training at ``shape``."""
    plan = conv_plan.plan_conv2d(
        (shape.n, shape.c, shape.h, shape.w),
        (shape.f, shape.c, shape.k, shape.k),
        np.float32,
        1,
        shape.padding,
        num_threads=nt,
    )
    names = {}
    for table, which in PASS_TABLES.items():
        chosen = getattr(plan, which)
        name = chosen.describe(shape.k)
        if plan.keep_input and chosen.path == "im2col" and which != "input":
            name = "im2col+keep" if which == "forward" else "im2col+cols"
        names[table] = name
    return names


def rows(shapes, nt, repeats, min_time):
    """{table: [(shape, {path: median ms}, planned path)]} at ``nt`` threads."""
    out = {table: [] for table in PASS_TABLES}
    with thread_count(nt):
        for shape in shapes:
            x, w, b, g = conv_arrays(shape, np.random.default_rng(0))
            table = paths(shape, x, w, b, g, nt, None)
            check(table)
            choice = planned(shape, nt)
            for name, fns in table.items():
                stats = time_interleaved(fns, repeats=repeats, min_time=min_time)
                ms = {path: s.median * 1e3 for path, s in stats.items()}
                out[name].append((shape, ms, choice[name]))
    return out


def markdown(table_rows, which, nt):
    """One pass's table at ``nt`` threads."""
    lines = [
        f"#### {which} pass, {nt} thread(s), float32, ms (median)",
        "",
        "| layer | r | work | paths (ms) | fastest | built-in plan |",
        "|---|---|---|---|---|---|",
    ]
    for shape, ms, choice in table_rows:
        ho, wo = shape.out_hw
        r = shape.c * shape.f / (shape.c + shape.f)
        work = shape.n * ho * wo * shape.c * shape.f
        cells = ", ".join(f"{path} {t:.3f}" for path, t in ms.items())
        fastest = min(ms, key=ms.get)
        lines.append(f"| {shape.label} | {r:.1f} | {work:.3g} | {cells} | {fastest} | {choice} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--shapes", type=int, nargs="+", default=None, help="indices into SHAPES (default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one tiny layer, 1 thread, 1 repeat (a smoke test)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        shapes, threads, repeats, min_time = [QUICK_SHAPE], [1], 1, 0.0
    else:
        shapes = SHAPES if args.shapes is None else [SHAPES[i] for i in args.shapes]
        threads, repeats, min_time = args.threads, args.repeats, 0.02
    level = ("none", "AVX2", "AVX-512")[K.direct_level()]
    print(f"<!-- {cpu_model()} (direct kernels: {level}); python {' '.join(sys.argv)} -->\n")
    for nt in threads:
        tables = rows(shapes, nt, repeats, min_time)
        for name, which in PASS_TABLES.items():
            print(markdown(tables[name], which, nt), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
