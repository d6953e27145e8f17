"""One thread-count setting for every kernel, and BLAS threads that never oversubscribe.

``set_num_threads(n)`` / ``get_num_threads()`` mirror PyTorch. The default is
``OMP_NUM_THREADS`` when it is set, else the number of cores this process may run on.
Kernels receive the count explicitly and may still choose fewer threads when a job is
too small to split.

BLAS threads.  Two different BLAS libraries are in play:

* scipy's OpenBLAS (``scipy.libs/libscipy_openblas*``), reached through
  ``scipy.linalg.cython_blas`` by the convolution kernels.  They call it from *inside*
  their own OpenMP parallel loops (one small GEMM per sample), so it must run on one
  thread, or every OpenMP thread would wake a BLAS thread pool of its own.  It is set
  to 1 thread once, when ``minidl._kernels`` is first imported (the library must be
  loaded for threadpoolctl to see it).
* numpy's OpenBLAS (``numpy.libs/libscipy_openblas64_*``), used by ``linear`` and other
  numpy matmuls outside our kernels.  It is kept at ``get_num_threads()``: set at that
  same first import and again on every ``set_num_threads``.

Nothing happens per kernel call.  When both packages share one BLAS library (e.g. a
system or conda OpenBLAS), it cannot be both 1 and n: it is left at
``get_num_threads()`` (an OpenMP-built BLAS goes serial inside our parallel regions by
itself).  threadpoolctl is imported lazily; if it is missing, BLAS is left alone.
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
    """Set the number of threads minidl's kernels (and numpy's BLAS) may use (n >= 1)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads expects n >= 1, got {n}")
    _num_threads = n
    if _blas_configured:
        _set_blas_threads(numpy_threads=n, scipy_threads=None)


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


def _set_blas_threads(numpy_threads: int | None, scipy_threads: int | None) -> None:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    try:
        controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        for lib in controllers:
            owner = _owner(lib.filepath or "")
            if owner == "scipy":
                wanted = scipy_threads
            else:  # numpy's own, or one library shared by numpy and scipy
                wanted = numpy_threads
            if wanted is not None and lib.num_threads != wanted:
                lib.set_num_threads(wanted)
    except Exception:  # never let thread tuning break a computation
        pass


def _configure_blas() -> None:
    """Called once by minidl._kernels after import (scipy's BLAS is then loaded)."""
    global _blas_configured
    if _blas_configured:
        return
    import scipy.linalg.cython_blas  # noqa: F401  (make sure the library is loaded)

    _set_blas_threads(numpy_threads=get_num_threads(), scipy_threads=1)
    _blas_configured = True
