"""What ``python -m minidl info`` prints: versions, OpenMP, threads, BLAS in use; with
``--conv-plan``, the conv plan of one layer."""

import os
import platform
import sys
from typing import Any


def info_text() -> str:
    """Return the report as one string (lines joined by newlines).

    Never raises: a part that cannot be determined is reported as such."""
    import numpy

    import minidl
    from minidl import _memory, _threads

    lines = [
        f"minidl {minidl.__version__}",
        f"Python {platform.python_version()} ({sys.executable})",
        f"numpy {numpy.__version__}",
    ]
    try:
        import scipy

        lines.append(f"scipy {scipy.__version__}")
    except ImportError:
        lines.append("scipy: not installed")

    try:
        from minidl import _kernels

        openmp = "yes" if _kernels.openmp_enabled() else "no (kernels run on one thread)"
        lines.append(f"kernels: built, OpenMP {openmp}")
        lines.append(f"kernel compile flags: {_kernels.build_flags()}")
        from minidl._kernels import _direct

        lines.append(
            f"direct conv kernels: {_direct.level_name()} "
            "(MINIDL_DIRECT_LEVEL=0/1 turns them off / keeps them on AVX2)"
        )
        from minidl._kernels import _pooling

        lines.append(f"2x2 max pool (float32): {_pooling.simd_level()}")
        lines.append(f"conv plan: {conv_table_text()}")
        lines.append("    (`minidl info --conv-plan N,C,H,W,F,k,stride,padding` shows one layer's)")
        policy = os.environ.get("OMP_WAIT_POLICY", "default")
        spin = os.environ.get("GOMP_SPINCOUNT")
        lines.append(f"OpenMP wait policy: {policy}" + (f", GOMP_SPINCOUNT={spin}" if spin else ""))
    except ImportError as exc:
        lines.append(
            f"kernels: NOT BUILT ({exc}); run `pip install .` or "
            "`python setup.py build_ext --inplace`"
        )
    lines.append(
        f"threads: {_threads.get_num_threads()} (minidl.set_num_threads / OMP_NUM_THREADS)"
    )
    if _memory.tuned:
        lines.append(
            f"malloc: mmap threshold {_memory.MMAP_THRESHOLD >> 20} MiB, trim threshold "
            f"{_memory.TRIM_THRESHOLD >> 20} MiB (MINIDL_MALLOC_TUNING=0 leaves them alone)"
        )
    else:
        lines.append("malloc: left alone (not glibc, or MINIDL_MALLOC_TUNING=0)")

    pools = thread_pools()
    if not pools:
        lines.append("thread pools: none found (threadpoolctl missing or nothing loaded)")
    else:
        lines.append("thread pools (threadpoolctl):")
    for pool in pools:
        extra = "".join(
            f", {key.replace('_', ' ')} {pool[key]}"
            for key in ("architecture", "threading_layer")
            if pool.get(key)
        )
        lines.append(
            f"  {pool['pool']}: {pool.get('prefix', '?')} ({pool.get('internal_api', '?')}) "
            f"version {pool.get('version') or 'unknown'}, {pool.get('num_threads', '?')} "
            f"thread(s){extra}"
        )
        lines.append(f"      {pool.get('filepath', '?')}")
    return "\n".join(lines)


def conv_table_text() -> str:
    """Which plans conv2d runs: the measured table (path, CPU, date) or the built-in
    defaults, and a backends switch when one is on."""
    from minidl import backends
    from minidl.ops import conv_plan

    meta = conv_plan.table_in_use()
    if "error" in meta:
        text = f"built-in defaults ({meta['error']} at {meta['path']}; `minidl tune` makes one)"
    else:
        text = (
            f"measured table {meta['path']} (CPU {meta['cpu']}, level {meta['level']}, "
            f"made {meta['created']}); built-in defaults for layers it does not name"
        )
    if backends.deterministic():
        text = "deterministic (im2col + GEMM for every pass; minidl.backends)"
    elif backends.autotune():
        text += "; autotune on (new shapes are timed; minidl.backends)"
    return text


_BLAS_OWNERS = {
    "numpy": "numpy's BLAS",
    "scipy": "scipy's BLAS (used by the conv kernels)",
    "shared": "BLAS shared by numpy and scipy",
}


def thread_pools() -> list[dict[str, Any]]:
    """Every thread pool threadpoolctl finds loaded (OpenMP runtimes and BLAS libraries):
    threadpoolctl's dict of each, plus ``pool``, a name saying whose it is; [] without
    threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    from minidl._threads import _owner

    pools = []
    for info in threadpool_info():
        api = info.get("user_api")
        if api == "blas":
            name = _BLAS_OWNERS[_owner(info.get("filepath", ""))]
        elif api == "openmp":
            name = "OpenMP (minidl's kernels)" if "gomp" in info.get("prefix", "") else "OpenMP"
        else:
            name = str(api)
        pools.append({"pool": name, **info})
    return pools


CONV_PLAN_FIELDS = ("N", "C", "H", "W", "F", "k", "stride", "padding")


def conv_plan_text(spec: str) -> str:
    """The conv plans (training and no_grad, float32, minidl's thread count) of the layer
    ``spec`` = "N,C,H,W,F,k,stride,padding": input (N, C, H, W), weight (F, C, k, k).
    A ValueError names what is wrong with ``spec``."""
    from minidl._threads import get_num_threads
    from minidl.ops.conv_plan import plan_conv2d

    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != len(CONV_PLAN_FIELDS) or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"expected {len(CONV_PLAN_FIELDS)} non-negative integers "
            f"{','.join(CONV_PLAN_FIELDS)}, got {spec!r}"
        )
    n, c, h, w, f, k, stride, padding = (int(p) for p in parts)
    threads = get_num_threads()
    layer = ((n, c, h, w), (f, c, k, k), "float32", stride, padding)
    lines = [
        f"conv2d input ({n}, {c}, {h}, {w}), weight ({f}, {c}, {k}, {k}), stride {stride}, "
        f"padding {padding}, float32, {threads} thread(s), built-in thresholds:"
    ]
    for title, weight_grad in (("training", True), ("no_grad / no weight gradient", False)):
        plan = plan_conv2d(*layer, weight_grad=weight_grad, num_threads=threads)
        lines += [f"{title}:", plan.describe(k)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(info_text())
