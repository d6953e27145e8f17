"""One thread-count setting for every kernel, and BLAS threads that never oversubscribe.

``set_num_threads(n)`` / ``get_num_threads()`` mirror PyTorch. The default is
``OMP_NUM_THREADS`` when it is set, else the number of cores this process may run on.
Kernels receive the count explicitly and may still choose fewer threads when a job is
too small to split.

BLAS threads.  The kernels (convolutions and ``linear``) call scipy's OpenBLAS
(``scipy.libs/libscipy_openblas*``, through ``scipy.linalg.cython_blas``) from *inside*
their own OpenMP parallel loops, so it must run on one thread, or every OpenMP thread
would wake a BLAS thread pool of its own.  It is set to 1 thread when ``minidl._kernels``
is first imported, and every kernel entry puts it back to 1 (one plain C call) if a
user's ``threadpoolctl.threadpool_limits(n)`` or a worker's thread cap raised it.

numpy's BLAS is left alone: minidl does not change numpy's global state (its own matmuls
run on its kernels).  When numpy and scipy share one BLAS library (e.g. a system or conda
OpenBLAS) it is numpy's too, so minidl leaves it alone as well (an OpenMP-built BLAS goes
serial inside our parallel regions by itself).  threadpoolctl is imported lazily; if it
is missing, BLAS is left alone at import (the per-call pin does not need it).
"""

from __future__ import annotations

import os
from typing import Any

_num_threads: int | None = None
_blas_configured = False


def _default_num_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """The number of threads minidl's kernels may use."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads minidl's kernels may use (n >= 1); numpy's BLAS keeps
    its own setting."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads expects n >= 1, got {n}")
    _num_threads = n


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS libraries, each tagged with its owner
    ("numpy", "scipy" or "shared"); [] when threadpoolctl is unavailable."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    libs = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        info = dict(info)
        info["owner"] = _owner(info.get("filepath", ""))
        libs.append(info)
    return libs


def _owner(filepath: str) -> str:
    path = filepath.replace("\\", "/").lower()
    if "/numpy" in path:
        return "numpy"
    if "/scipy" in path:
        return "scipy"
    return "shared"


def _pin_scipy_blas() -> None:
    """scipy's own BLAS on one thread (a library shared with numpy is left alone)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    try:
        controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        for lib in controllers:
            if _owner(lib.filepath or "") == "scipy" and lib.num_threads != 1:
                lib.set_num_threads(1)
    except Exception:  # never let thread tuning break a computation
        pass


def _configure_blas() -> None:
    """Called once by minidl._kernels after import (scipy's BLAS is then loaded)."""
    global _blas_configured
    if _blas_configured:
        return
    import scipy.linalg.cython_blas  # noqa: F401  (make sure the library is loaded)

    _pin_scipy_blas()
    _blas_configured = True
