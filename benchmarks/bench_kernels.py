"""Kernel benchmark: minidl's Cython kernels against the naive reference loops, and conv2d
forward against numpy's matmul on the GEMM of the same shape (and against PyTorch when it
is installed).  Run by hand; never a test:

    python benchmarks/bench_kernels.py                 # full run (several minutes)
    python benchmarks/bench_kernels.py --quick         # tiny shapes, checks it all works
    python benchmarks/bench_kernels.py --threads 1,2 --dtypes float32 --repeats 20

What is timed, per shape, dtype and thread count (median of --repeats calls, after one
warm-up call, time.perf_counter):
  conv_forward    conv2d forward (bias included)
  conv_backward   conv2d backward: input, weight and bias gradients
  pool            2x2 / stride-2 max pooling forward + backward, on the conv's output
  im2col, col2im  the conv's unfold / fold alone (minidl only: for the thread scaling)
  gemm            numpy matmul (F, C*kh*kw) @ (C*kh*kw, N*Ho*Wo): the BLAS limit for
                  conv_forward (GFLOP/s counts 2*F*C*kh*kw*N*Ho*Wo per call)

The naive reference (minidl.reference: numpy loops over n, f, i, j as in seed 002; the
backward as the same loops, reference.conv2d_backward_loops) is slow, so it is timed with
fewer repeats (--reference-repeats, default 1) on the first --reference-samples samples of
the batch, and its time is scaled linearly to the whole batch (its loop over n does the
same work for every sample).  It runs single-threaded numpy, so it is timed once per
shape and dtype and compared with the kernels at every thread count.

Structure (for benchmarks built on this one): ``run(...)`` returns a list of row dicts,
``derive_ratios(rows)`` adds the comparisons, ``format_table(rows)`` prints them.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import minidl
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import minidl
from minidl import reference
from minidl.bench import ops as suite_ops
from minidl.bench.shapes import CONV_SHAPES
from minidl.bench.suite import import_torch
from minidl.bench.threads import thread_count
from minidl.bench.timing import Stats, gflops, time_calls

try:
    from minidl import _kernels
except ImportError as exc:  # a benchmark without kernels has nothing to measure
    raise SystemExit(
        f"minidl._kernels is not built ({exc}); run: python setup.py build_ext --inplace"
    ) from exc


# The suite's conv layers (minidl.bench.shapes) this benchmark times, by its short names
# (its --shapes flag and its table's shape column).
SHORT_NAMES = {
    "LeNet-digits conv1": "lenet-digits-1",
    "LeNet-digits conv2": "lenet-digits-2",
    "CIFAR-like conv1": "cifar-1",
    "CIFAR-like conv2": "cifar-2",
    "CS231n conv": "cs231n",
}
SHAPES = [shape for shape in CONV_SHAPES if shape.name in SHORT_NAMES]
QUICK_BATCH = 2


def short_name(shape):
    return SHORT_NAMES.get(shape.name, shape.name)


def make_arrays(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x, w, b, dy = suite_ops.conv_arrays(shape, rng, dtype)
    ho, wo = shape.out_hw
    # pooling input: the conv's output (cropped to even size so 2x2/2 covers it)
    p = rng.standard_normal(
        (shape.n, shape.f, max(2, ho - ho % 2), max(2, wo - wo % 2)), dtype=dtype
    )
    return {"x": x, "w": w, "b": b, "dy": dy, "pool_x": p}


def kernel_ops(shape, a, threads):
    """name -> zero-argument callable running minidl's kernels."""
    pair = lambda v: (v, v)  # noqa: E731
    s, p, d = pair(shape.stride), pair(shape.padding), (1, 1)
    x, w, b, dy, px = a["x"], a["w"], a["b"], a["dy"], a["pool_x"]
    pooled_shape = (px.shape[0], px.shape[1], px.shape[2] // 2, px.shape[3] // 2)
    pool_dy = np.ones(pooled_shape, dtype=px.dtype)

    geometry = dict(stride=s, padding=p, dilation=d, groups=1, num_threads=threads)

    def conv_backward():
        _kernels.conv2d_backward_input(dy, w, x.shape, **geometry)
        _kernels.conv2d_backward_weight(x, dy, w.shape, **geometry, need_bias=True)

    def pool():
        y, idx = _kernels.max_pool2d_forward(px, (2, 2), (2, 2), (0, 0), threads)
        _kernels.max_pool2d_backward(pool_dy, idx, px.shape, threads)

    k = (shape.k, shape.k)
    cols = _kernels.im2col(x, k, s, p, d, 1)
    return {
        "conv_forward": lambda: _kernels.conv2d_forward(x, w, b, **geometry),
        "conv_backward": conv_backward,
        "pool": pool,
        "im2col": lambda: _kernels.im2col(x, k, s, p, d, threads),
        "col2im": lambda: _kernels.col2im(cols, x.shape, k, s, p, d, threads),
    }


def reference_ops(shape, a, samples):
    """name -> callable running the naive reference on the first `samples` samples."""
    s, p = shape.stride, shape.padding
    x, dy, px = a["x"][:samples], a["dy"][:samples], a["pool_x"][:samples]
    w, b = a["w"], a["b"]

    def pool():
        y, idx = reference.max_pool2d_forward(px, (2, 2), (2, 2), 0)
        reference.max_pool2d_backward(np.ones_like(y), idx, px.shape)

    return {
        "conv_forward": lambda: reference.conv2d_forward(x, w, b, s, p),
        "conv_backward": lambda: reference.conv2d_backward_loops(x, w, dy, s, p),
        "pool": pool,
    }


def torch_ops(torch, shape, a):
    """name -> callable running PyTorch (its thread count is set by the caller)."""
    import torch.nn.functional as TF

    s, p = shape.stride, shape.padding
    x = torch.from_numpy(a["x"]).requires_grad_(True)
    w = torch.from_numpy(a["w"]).requires_grad_(True)
    b = torch.from_numpy(a["b"]).requires_grad_(True)
    dy = torch.from_numpy(a["dy"])
    px = torch.from_numpy(a["pool_x"]).requires_grad_(True)

    def conv_backward():
        # forward outside the timer is not possible with autograd; use the aten backward
        torch.ops.aten.convolution_backward(
            dy, x, w, [shape.f], [s, s], [p, p], [1, 1], False, [0, 0], 1, [True, True, True]
        )

    def pool():
        y = TF.max_pool2d(px, 2, 2)
        y.backward(torch.ones_like(y))

    def forward():
        with torch.no_grad():
            TF.conv2d(x, w, b, s, p)

    return {"conv_forward": forward, "conv_backward": conv_backward, "pool": pool}


def gemm_op(shape, dtype, seed=1):
    """numpy matmul (F, C*kh*kw) @ (C*kh*kw, N*Ho*Wo), the GEMM of conv_forward."""
    fn, _ = suite_ops.gemm_problem(
        "conv2d", shape, suite_ops.FWD, np.random.default_rng(seed), dtype
    )
    return fn


def _row(shape, dtype, threads, op, impl, times, scale=1.0, note=""):
    stats = Stats.of(times).scaled(scale)
    row = {
        "shape": short_name(shape),
        "config": shape.label,
        "dtype": dtype,
        "threads": threads,
        "op": op,
        "impl": impl,
        "note": note,
        "min": stats.min,
        "median": stats.median,
        "max": stats.max,
        "repeats": stats.repeats,
    }
    if op in ("conv_forward", "gemm"):
        row["gflops"] = gflops(shape.flops, stats.median)
    return row


def run(
    shapes=None,
    dtypes=("float32", "float64"),
    threads=(1, 2),
    repeats=10,
    reference_repeats=1,
    reference_samples=2,
    quick=False,
    with_reference=True,
    with_torch=True,
    progress=None,
):
    """Time everything; return a list of row dicts (times in seconds).

    quick: batch of QUICK_BATCH samples per shape, repeats capped at 3 — only to check
    that the benchmark runs.  shapes: a list of minidl.bench.shapes.ConvShape (default
    SHAPES).
    """
    shapes = list(SHAPES if shapes is None else shapes)
    if quick:
        shapes = [s.with_n(min(s.n, QUICK_BATCH)) for s in shapes]
        repeats = min(repeats, 3)
    torch = import_torch() if with_torch else None
    rows = []
    for shape in shapes:
        name = short_name(shape)
        for dtype in dtypes:
            arrays = make_arrays(shape, np.dtype(dtype))
            if with_reference:
                samples = min(shape.n, reference_samples)
                scale = shape.n / samples
                note = (
                    f"{reference_repeats} run(s) on {samples} of {shape.n} samples, "
                    f"scaled x{scale:g}"
                )
                for op, fn in reference_ops(shape, arrays, samples).items():
                    if progress:
                        progress(f"{name} {dtype} reference {op}")
                    times = time_calls(fn, reference_repeats, warmup=0)
                    rows.append(_row(shape, dtype, 1, op, "reference", times, scale, note))
            for t in threads:
                if progress:
                    progress(f"{name} {dtype} {t} thread(s)")
                with thread_count(t, torch):
                    timed = [
                        ("minidl", kernel_ops(shape, arrays, t)),
                        ("numpy", {"gemm": gemm_op(shape, dtype)}),
                    ]
                    if torch is not None:
                        timed.append(("torch", torch_ops(torch, shape, arrays)))
                    for impl, fns in timed:
                        for op, fn in fns.items():
                            rows.append(_row(shape, dtype, t, op, impl, time_calls(fn, repeats)))
    return rows


def _find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    return None


def derive_ratios(rows):
    """Comparison rows: for every minidl row, x faster than the reference, than torch,
    % of the GEMM's GFLOP/s (conv_forward), and speed-up over 1 thread."""
    out = []
    for row in rows:
        if row["impl"] != "minidl":
            continue
        key = dict(shape=row["shape"], dtype=row["dtype"], op=row["op"])
        entry = dict(key, threads=row["threads"], minidl_median=row["median"])
        ref = _find(rows, impl="reference", **key)
        if ref:
            entry["x_vs_reference"] = ref["median"] / row["median"]
        torch_row = _find(rows, impl="torch", threads=row["threads"], **key)
        if torch_row:
            entry["x_vs_torch"] = torch_row["median"] / row["median"]
        if row["op"] == "conv_forward":
            gemm = _find(
                rows,
                impl="numpy",
                op="gemm",
                shape=row["shape"],
                dtype=row["dtype"],
                threads=row["threads"],
            )
            if gemm:
                entry["pct_of_gemm"] = 100.0 * row["gflops"] / gemm["gflops"]
        one = _find(rows, impl="minidl", threads=1, **key)
        if one and row["threads"] != 1:
            entry["x_vs_1_thread"] = one["median"] / row["median"]
        out.append(entry)
    return out


def _fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def format_table(rows, ratios=None):
    """Two plain-text tables: raw timings (min/median/max), then the comparisons."""
    lines = [
        f"{'shape':<15} {'dtype':<8} {'thr':>3} {'op':<14} {'impl':<9} "
        f"{'min':>10} {'median':>10} {'max':>10} {'GFLOP/s':>8}  note"
    ]
    for r in rows:
        gf = f"{r['gflops']:.1f}" if "gflops" in r else ""
        lines.append(
            f"{r['shape']:<15} {r['dtype']:<8} {r['threads']:>3} {r['op']:<14} "
            f"{r['impl']:<9} {_fmt_time(r['min']):>10} {_fmt_time(r['median']):>10} "
            f"{_fmt_time(r['max']):>10} {gf:>8}  {r['note']}"
        )
    ratios = derive_ratios(rows) if ratios is None else ratios
    lines += [
        "",
        f"{'shape':<15} {'dtype':<8} {'thr':>3} {'op':<14} {'minidl':>10} "
        f"{'x vs ref':>10} {'x vs torch':>10} {'% of GEMM':>9} {'x vs 1 thr':>10}",
    ]

    def cell(entry, key, fmt):
        return fmt.format(entry[key]) if key in entry else "-"

    for e in ratios:
        lines.append(
            f"{e['shape']:<15} {e['dtype']:<8} {e['threads']:>3} {e['op']:<14} "
            f"{_fmt_time(e['minidl_median']):>10} "
            f"{cell(e, 'x_vs_reference', '{:.0f}x'):>10} "
            f"{cell(e, 'x_vs_torch', '{:.2f}x'):>10} "
            f"{cell(e, 'pct_of_gemm', '{:.0f}%'):>9} "
            f"{cell(e, 'x_vs_1_thread', '{:.2f}x'):>10}"
        )
    return "\n".join(lines)


def _header(args):
    blas = ", ".join(
        f"{lib.get('owner')}:{lib.get('internal_api')}({lib.get('num_threads')} thr)"
        for lib in getattr(minidl._threads, "blas_libraries", lambda: [])()
    )
    return (
        f"minidl {minidl.__version__}; kernels OpenMP: {_kernels.openmp_enabled()}; "
        f"numpy {np.__version__}; BLAS: {blas or 'unknown'}\n"
        f"medians of {args.repeats} repeats (reference: {args.reference_repeats} "
        f"repeat(s) on {args.reference_samples} sample(s), scaled to the batch)"
        + ("; QUICK mode: batch of 2, not representative" if args.quick else "")
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", default="1,2", help="comma-separated, e.g. 1,2")
    parser.add_argument("--dtypes", default="float32,float64")
    names = [short_name(s) for s in SHAPES]
    parser.add_argument(
        "--shapes", default=",".join(names), help="comma-separated names from: " + ", ".join(names)
    )
    parser.add_argument("--reference-repeats", type=int, default=1)
    parser.add_argument("--reference-samples", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny batches and few repeats: only checks that it runs",
    )
    args = parser.parse_args(argv)

    by_name = {short_name(s): s for s in SHAPES}
    unknown = [n for n in args.shapes.split(",") if n not in by_name]
    if unknown:
        parser.error(f"unknown shape(s) {unknown}; choose from {list(by_name)}")
    shapes = [by_name[n] for n in args.shapes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    dtypes = [d.strip() for d in args.dtypes.split(",")]

    print(_header(args), flush=True)
    rows = run(
        shapes=shapes,
        dtypes=dtypes,
        threads=threads,
        repeats=args.repeats,
        reference_repeats=args.reference_repeats,
        reference_samples=args.reference_samples,
        quick=args.quick,
        with_reference=not args.no_reference,
        with_torch=not args.no_torch,
        progress=lambda msg: print(f"  ... {msg}", file=sys.stderr, flush=True),
    )
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
