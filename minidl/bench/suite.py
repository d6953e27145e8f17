"""Plan and run the suite: which rows to measure, measured side by side, at each thread count.

A row is one comparison: (op, shape, pass, threads, comparator). minidl's and the
comparator's repeats are interleaved within the row (see timing.time_interleaved).
"""

import dataclasses
import gc
import time
from dataclasses import dataclass

import numpy as np

from minidl.bench import cifar, ops, shapes
from minidl.bench.end_to_end import END_TO_END, MODELS
from minidl.bench.ops import FWD, FWD_BWD, NAIVE, NUMPY_GEMM, ONE_THREAD, PURE_PYTHON, TORCH
from minidl.bench.threads import thread_count
from minidl.bench.timing import gflops, sign_test_slower, time_interleaved

OPS = ("conv2d", "max_pool2d", "avg_pool2d", "linear", "cross_entropy")
COMPARATORS = (NAIVE, PURE_PYTHON, NUMPY_GEMM, TORCH)
# numpy's threaded OpenBLAS busy-waits ~0.1 s after a call (its THREAD_TIMEOUT); minidl's
# next sample would share the cores with its spinning workers
GEMM_SETTLE_SECONDS = 0.15


@dataclass
class SuiteConfig:
    """What to run and how long. See ``preset`` for the full, quick and tiny modes."""

    mode: str = "full"
    families: tuple = shapes.FAMILIES
    threads: tuple = (1, 2)
    ops: tuple = OPS
    comparators: tuple = COMPARATORS
    end_to_end: bool = True
    repeats: int = 11  # interleaved samples per side and row
    min_time: float = 0.02  # seconds per sample (calls are repeated up to this)
    naive_repeats: int = 3  # the naive loops are slow: fewer samples
    naive_budget: float = 1.0  # seconds per naive call; the batch is cut to fit, time scaled
    naive_families: tuple = None  # families where the naive loops run (None: all)
    e2e_repeats: int = 7
    # minidl at 2 threads against 1: a ratio near 1 where both run the same kernels, so
    # more samples (each only an epoch or a step long) to tell it from the host's noise
    scaling_repeats: int = 21
    max_train: int = None  # training images for the end-to-end epoch (None: all)
    use_torch: bool = True
    seed: int = 0

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def preset(mode):
    """The named modes: ``full`` (benchmarks/bench_suite.py), ``quick`` (``python -m
    minidl bench``, under ~30 s) and ``tiny`` (tests: one repeat, smallest shapes)."""
    if mode == "full":
        return SuiteConfig()
    if mode == "quick":
        # one thread count (minidl's current one); the naive loops only where they are short
        import minidl

        return SuiteConfig(
            mode="quick",
            families=("LeNet-digits", "CIFAR-like"),
            threads=(minidl.get_num_threads(),),
            repeats=5,
            min_time=0.005,
            naive_repeats=1,
            naive_budget=0.1,
            naive_families=("LeNet-digits",),
            e2e_repeats=3,
            scaling_repeats=5,
        )
    if mode == "tiny":
        return SuiteConfig(
            mode="tiny",
            families=shapes.TINY_FAMILIES,
            threads=(1,),
            repeats=1,
            min_time=0.0,
            naive_repeats=1,
            naive_budget=0.0,
            e2e_repeats=1,
            scaling_repeats=1,
            max_train=128,
        )
    raise ValueError(f"unknown mode {mode!r}: expected 'full', 'quick' or 'tiny'")


def import_torch():
    """torch, or None when it is not installed (its columns are then skipped)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- the plan ------------------------------------------------------------------------
@dataclass(frozen=True)
class RowSpec:
    op: str
    shape: object
    pass_: str
    threads: int
    comparator: str

    @property
    def key(self):
        return (self.op, self.shape.name, self.pass_, self.threads, self.comparator)


def _op_shapes(op, families):
    conv = shapes.select(shapes.CONV_SHAPES, families)
    if op == "conv2d":
        return conv
    if op in ("max_pool2d", "avg_pool2d"):
        return shapes.pool_shapes(conv)
    if op == "linear":
        return shapes.select(shapes.LINEAR_SHAPES, families)
    if op == "cross_entropy":
        return shapes.select(shapes.LOSS_SHAPES, families)
    raise ValueError(f"unknown op {op!r}; expected one of {OPS}")


def _applies(comparator, op, shape, pass_, config):
    if comparator == NAIVE:
        return op in ("conv2d", "max_pool2d", "avg_pool2d") and (
            config.naive_families is None or shape.family in config.naive_families
        )
    if comparator == PURE_PYTHON:
        return op == "conv2d" and pass_ == FWD and shape.family == "LeNet-digits"
    if comparator == NUMPY_GEMM:
        return op in ("conv2d", "linear")
    if comparator == TORCH:
        return True
    raise ValueError(f"unknown comparator {comparator!r}; expected one of {COMPARATORS}")


def plan_rows(config, torch_available):
    rows = []
    for threads in config.threads:
        for op in config.ops:
            for shape in _op_shapes(op, config.families):
                for pass_ in (FWD, FWD_BWD):
                    for comparator in config.comparators:
                        if comparator == TORCH and not torch_available:
                            continue
                        if not _applies(comparator, op, shape, pass_, config):
                            continue
                        if comparator == PURE_PYTHON:
                            shape_here = shape.with_n(shapes.PURE_PYTHON_BATCH)
                        else:
                            shape_here = shape
                        rows.append(RowSpec(op, shape_here, pass_, threads, comparator))
    return rows


CIFAR_STEP = cifar.STEP  # the CIFAR-size network's rows
CIFAR_SHAPE = "CIFAR-size net"


def expected_end_to_end(config, torch_available):
    if not config.end_to_end:
        return []
    comparator = TORCH if torch_available and TORCH in config.comparators else None
    return [
        (name, model, threads, comparator)
        for threads in config.threads
        for model, _ in MODELS
        for name in END_TO_END
    ] + [(CIFAR_STEP, CIFAR_SHAPE, threads, comparator) for threads in config.threads]


# ---- measuring -----------------------------------------------------------------------
def _naive_batch(call_for_n, n_total, budget):
    """The largest batch whose naive call fits in ``budget`` seconds (at least 1 image)."""
    probe = call_for_n(1)
    start = time.perf_counter()
    probe()
    per_image = time.perf_counter() - start
    n = int(budget / per_image) if per_image > 0 else n_total
    return max(1, min(n_total, n))


def measure_row(spec, config, torch):
    rng = np.random.default_rng(config.seed)
    arrays = ops.arrays_for(spec.op, spec.shape, rng)
    minidl_fn = ops.minidl_call(spec.op, spec.shape, spec.pass_, arrays)
    note = ""
    scale = 1.0
    override = {}
    pause = None
    flops = ops.op_flops(spec.op, spec.shape, spec.pass_)
    if spec.comparator == TORCH:
        other_fn = ops.torch_call(torch, spec.op, spec.shape, spec.pass_, arrays)
    elif spec.comparator == NAIVE:

        def naive_for(n):
            return ops.naive_call(spec.op, spec.shape, spec.pass_, arrays, n)

        n_naive = _naive_batch(naive_for, spec.shape.n, config.naive_budget)
        other_fn = naive_for(n_naive)
        scale = spec.shape.n / n_naive
        override = {"other": config.naive_repeats}
        note = f"naive loops: {config.naive_repeats} repeat(s)"
        if n_naive < spec.shape.n:
            note += f", timed on N={n_naive} and scaled x{scale:g} (loops are linear in N)"
    elif spec.comparator == PURE_PYTHON:
        other_fn = ops.pure_python_call(spec.shape, arrays)
        override = {"other": config.naive_repeats}
        note = f"pure-Python lists: {config.naive_repeats} repeat(s)"
    elif spec.comparator == NUMPY_GEMM:
        other_fn, flops = ops.gemm_problem(spec.op, spec.shape, spec.pass_, rng)
        m, k, n = spec.shape.gemm
        note = f"GEMM {m}x{k} @ {k}x{n}" + (" (+2 backward GEMMs)" if spec.pass_ == FWD_BWD else "")
        if spec.threads > 1:
            pause = {"other": GEMM_SETTLE_SECONDS}
            note += f", {GEMM_SETTLE_SECONDS:g} s pause after each GEMM sample"
    else:
        raise ValueError(f"unknown comparator {spec.comparator!r}")

    warmup = 0 if spec.comparator in (NAIVE, PURE_PYTHON) else 1
    # the naive side's warm-up is its batch probe; minidl always warms up
    minidl_fn()
    stats = time_interleaved(
        {"minidl": minidl_fn, "other": other_fn},
        config.repeats,
        min_time=config.min_time,
        warmup=warmup,
        repeats_override=override,
        pause_after=pause,
    )
    other = stats["other"].scaled(scale)
    row = _row_dict(
        spec.op, spec.shape, spec.pass_, spec.threads, spec.comparator, stats["minidl"], other, note
    )
    if flops:
        row["minidl_gflops"] = gflops(flops, stats["minidl"].median)
        if spec.comparator == NUMPY_GEMM:
            row["other_gflops"] = gflops(flops, other.median)
    return row


def _row_dict(op, shape, pass_, threads, comparator, minidl_stats, other_stats, note):
    ratio = None
    if minidl_stats is not None and other_stats is not None:
        ratio = other_stats.median / minidl_stats.median
    return {
        "section": "op" if op not in END_TO_END else "end-to-end",
        "op": op,
        "shape": shape if isinstance(shape, str) else shape.name,
        "label": shape if isinstance(shape, str) else shape.label,
        "pass": pass_,
        "threads": threads,
        "comparator": comparator,
        "minidl": minidl_stats.to_dict() if minidl_stats else None,
        "other": other_stats.to_dict() if other_stats else None,
        "ratio": ratio,
        "note": note,
        "error": None,
    }


def measure_end_to_end(config, torch, threads, log, model, widths):
    """The epoch and inference rows of one architecture (end_to_end.MODELS)."""
    from minidl.bench import end_to_end

    calls, about = end_to_end.build(torch, max_train=config.max_train, widths=widths)
    rows = []
    for name, key, label in (
        (
            "lenet-train-epoch",
            "epoch",
            f"{about['train_images']} images, {about['batches_per_epoch']} "
            f"steps of {about['batch_size']}, {about['optimizer']}",
        ),
        ("lenet-inference", "inference", f"{about['test_images']} test images, one batch"),
    ):
        fns = {"minidl": calls["minidl"][key]}
        if "torch" in calls:
            fns["other"] = calls["torch"][key]
        stats = time_interleaved(
            fns,
            config.e2e_repeats,
            min_time=config.min_time if key == "inference" else 0.0,
            disable_gc=False,
        )
        row = _row_dict(
            name,
            model,
            "epoch" if key == "epoch" else "fwd",
            threads,
            TORCH if "other" in stats else None,
            stats["minidl"],
            stats.get("other"),
            "same initial weights, data in memory, GC on",
        )
        row["label"] = label
        rows.append(row)
        log(row)
    return rows, about


def _cifar_batch(config):
    """The CIFAR-size rows' synthetic batch (batch 64; 4 in the tiny mode): (n, x, y)."""
    n = 4 if config.max_train is not None else cifar.CIFAR_INPUT[0]
    x, y = cifar.synthetic_batch((n,) + cifar.CIFAR_INPUT[1:], seed=config.seed)
    return n, x, y


def _cifar_minidl_step(config, x, y):
    """minidl's CIFAR-size network, seeded by the config, and its training step on x, y."""
    import minidl

    minidl.manual_seed(config.seed)
    return cifar.minidl_step(cifar.cifar_net(), x, y)


def measure_cifar_step(config, torch, threads):
    """The CIFAR-size network's training step row, side by side with PyTorch's identical
    network (batch 64; 4 in the tiny mode), synthetic data."""
    n, x, y = _cifar_batch(config)
    fns = {"minidl": _cifar_minidl_step(config, x, y)}
    if torch is not None:
        torch.manual_seed(config.seed)
        fns["other"] = cifar.torch_step(torch, cifar.torch_cifar_net(torch), x, y)
    stats = time_interleaved(fns, config.e2e_repeats, min_time=config.min_time, disable_gc=False)
    row = _row_dict(
        CIFAR_STEP,
        CIFAR_SHAPE,
        "step",
        threads,
        TORCH if "other" in stats else None,
        stats["minidl"],
        stats.get("other"),
        "synthetic data, SGD(lr=0.01), GC on",
    )
    row["section"] = "end-to-end"
    row["label"] = f"batch {n} of 3x32x32, one SGD step"
    return row


def _at_threads(n, fn):
    import minidl

    def call():
        minidl.set_num_threads(n)
        fn()

    return call


def measure_thread_scaling(config):
    """minidl at 2 threads against itself at 1 thread, their repeats interleaved in one
    process, so that drift between the 1-thread and the 2-thread rows (measured minutes
    apart) cannot decide a speed-up target: one row per end-to-end workload with a
    scaling target (the LeNet() rows and the CIFAR-size step), threads 2, comparator
    ONE_THREAD, ratio = the 1-thread time / the 2-thread time; ``slower_rounds`` of
    ``rounds`` and ``p_slower``: the sign test of 2 threads being the slower
    (timing.sign_test_slower)."""
    import minidl
    from minidl.bench import end_to_end

    workloads = []
    for model, widths in MODELS:
        if model.startswith("LeNet()"):
            calls, _ = end_to_end.build(None, max_train=config.max_train, widths=widths)
            workloads.append(("lenet-train-epoch", model, "epoch", calls["minidl"]["epoch"]))
            workloads.append(("lenet-inference", model, "fwd", calls["minidl"]["inference"]))
    _, x, y = _cifar_batch(config)
    workloads.append((CIFAR_STEP, CIFAR_SHAPE, "step", _cifar_minidl_step(config, x, y)))
    rows = []
    previous = minidl.get_num_threads()
    try:
        for op, shape, pass_, fn in workloads:
            stats = time_interleaved(
                {"minidl": _at_threads(2, fn), "other": _at_threads(1, fn)},
                config.scaling_repeats,
                min_time=0.0 if pass_ == "epoch" else config.min_time,
                disable_gc=False,
            )
            note = (
                f"minidl at 2 threads against 1, {config.scaling_repeats} repeats "
                "interleaved, GC on"
            )
            row = _row_dict(op, shape, pass_, 2, ONE_THREAD, stats["minidl"], stats["other"], note)
            row["section"] = "end-to-end"
            row["slower_rounds"], row["rounds"], row["p_slower"] = sign_test_slower(
                stats["minidl"].samples, stats["other"].samples
            )
            rows.append(row)
    finally:
        minidl.set_num_threads(previous)
    return rows


def run_suite(config=None, log=print, strict=False):
    """Measure every planned row; returns {"meta", "config", "rows", "targets"}.

    A row that fails is kept with its ``error`` (or re-raised when ``strict``)."""
    config = config or preset("full")
    torch = import_torch() if config.use_torch else None
    torch_available = torch is not None and TORCH in config.comparators
    # Move everything alive now (torch's many objects) out of the collector's sight, so
    # that the one collection per row before timing costs milliseconds, not 0.1 s.
    gc.collect()
    gc.freeze()
    try:
        return _run_rows(config, torch, torch_available, log, strict)
    finally:
        gc.unfreeze()


def _run_rows(config, torch, torch_available, log, strict):
    from minidl.bench import machine, report

    results = []
    started = time.perf_counter()
    for threads in config.threads:
        with thread_count(threads, torch):
            for spec in plan_rows(config.replace(threads=(threads,)), torch_available):
                try:
                    row = measure_row(spec, config, torch)
                except Exception as exc:  # keep going: one broken row must not hide the rest
                    if strict:
                        raise
                    row = _row_dict(
                        spec.op, spec.shape, spec.pass_, threads, spec.comparator, None, None, ""
                    )
                    row["error"] = f"{type(exc).__name__}: {exc}"
                results.append(row)
                if log:
                    log(report.format_row_line(row))
            for model, widths in MODELS if config.end_to_end else ():
                try:
                    e2e_rows, _ = measure_end_to_end(
                        config,
                        torch if torch_available else None,
                        threads,
                        (lambda r: log(report.format_row_line(r))) if log else (lambda r: None),
                        model,
                        widths,
                    )
                    results.extend(e2e_rows)
                except Exception as exc:
                    if strict:
                        raise
                    for name in END_TO_END:
                        passname = "epoch" if name == "lenet-train-epoch" else "fwd"
                        row = _row_dict(
                            name,
                            model,
                            passname,
                            threads,
                            TORCH if torch_available else None,
                            None,
                            None,
                            "",
                        )
                        row["error"] = f"{type(exc).__name__}: {exc}"
                        results.append(row)
            if config.end_to_end:
                try:
                    row = measure_cifar_step(config, torch if torch_available else None, threads)
                except Exception as exc:
                    if strict:
                        raise
                    comparator = TORCH if torch_available else None
                    row = _row_dict(
                        CIFAR_STEP, CIFAR_SHAPE, "step", threads, comparator, None, None, ""
                    )
                    row["error"] = f"{type(exc).__name__}: {exc}"
                results.append(row)
                if log:
                    log(report.format_row_line(row))
    if config.end_to_end and {1, 2} <= set(config.threads):
        try:
            scaling = measure_thread_scaling(config)
        except Exception as exc:
            if strict:
                raise
            scaling = []
            if log:
                log(f"thread-scaling rows failed: {type(exc).__name__}: {exc}")
        results.extend(scaling)
        if log:
            for row in scaling:
                log(report.format_row_line(row))
    meta = machine.describe(torch)
    meta["seconds"] = time.perf_counter() - started
    return {
        "meta": meta,
        "config": _config_dict(config),
        "rows": results,
        "targets": report.targets(results),
    }


def _config_dict(config):
    out = dataclasses.asdict(config)
    out["families"] = list(config.families)
    return out


def run_quick(print_table=True):
    """The quick mode behind ``python -m minidl bench``: prints the table, returns results."""
    from minidl.bench import report

    results = run_suite(preset("quick"), log=None)
    if print_table:
        print(report.format_table(results))
    return results


def run_tiny():
    """One repeat at the smallest shapes: what the tests run so that the suite cannot rot."""
    return run_suite(preset("tiny"), log=None)
