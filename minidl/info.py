"""What ``python -m minidl info`` prints: versions, OpenMP, threads, BLAS in use; with
``--conv-plan``, the conv plan of one layer."""

import os
import platform
import sys


def info_text() -> str:
    """Return the report as one string (lines joined by newlines).

    Never raises: a part that cannot be determined is reported as such."""
    import numpy

    import minidl
    from minidl import _threads

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

    libs = _threads.blas_libraries()
    if not libs:
        lines.append("BLAS: none found by threadpoolctl (or threadpoolctl missing)")
    for lib in libs:
        owner = {
            "numpy": "numpy's",
            "scipy": "scipy's (used by the conv kernels)",
            "shared": "shared by numpy and scipy",
        }[lib["owner"]]
        lines.append(
            f"BLAS {owner}: {lib.get('internal_api', '?')} {lib.get('version', '?')}, "
            f"architecture {lib.get('architecture', '?')}, "
            f"threading {lib.get('threading_layer', '?')}, "
            f"num_threads {lib.get('num_threads', '?')}"
        )
        lines.append(f"    {lib.get('filepath', '?')}")
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
