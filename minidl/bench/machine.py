"""What the figures were measured on: CPU, cores, library versions, BLAS, environment."""

import os
import platform
import sys

from minidl.ops.conv_tune import cpu_model


def blas_pools():
    """threadpoolctl's view of the BLAS / OpenMP libraries loaded right now."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = (
        "user_api",
        "internal_api",
        "version",
        "architecture",
        "threading_layer",
        "num_threads",
        "filepath",
    )
    pools = []
    for info in threadpool_info():
        entry = {k: info.get(k) for k in keys if info.get(k) is not None}
        if "filepath" in entry:
            entry["filepath"] = os.path.basename(entry["filepath"])
        pools.append(entry)
    return pools


def _torch_backend(torch):
    """PyTorch's CPU kernels: SIMD level, oneDNN (MKL-DNN) and MKL availability."""
    if torch is None:
        return None
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:
        capability = None
    return {
        "cpu_capability": capability,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "mkl": bool(torch.backends.mkl.is_available()),
    }


def describe(torch=None):
    import numpy

    import minidl

    try:
        from minidl._kernels import openmp_enabled

        openmp = bool(openmp_enabled())
    except ImportError:
        openmp = None
    try:
        cores_available = len(os.sched_getaffinity(0))
    except AttributeError:
        cores_available = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cores_available": cores_available,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "minidl": minidl.__version__,
        "minidl_openmp": openmp,
        "numpy": numpy.__version__,
        "torch": getattr(torch, "__version__", None),
        "torch_backend": _torch_backend(torch),
        "blas": blas_pools(),
        "env": {
            k: os.environ.get(k)
            for k in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS",
            )
        },
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
