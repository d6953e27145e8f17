"""The C allocator's thresholds, so that a training step reuses memory instead of faulting
in fresh pages.

Every step allocates and frees the same arrays (activations, gradients, kernel scratch) of
a few hundred kB. With glibc's adaptive thresholds, the top of the heap is returned to the
system as soon as a few of them are freed, and taken back, page by page, on the next
step: about 750 page faults per `LeNet()` step (benchmarks/RESULTS.md). Fixed thresholds
keep up to ``TRIM_THRESHOLD`` bytes of freed memory for reuse and serve blocks up to
``MMAP_THRESHOLD`` bytes from the heap.

Applied once when minidl is imported, on glibc only; ``MINIDL_MALLOC_TUNING=0`` in the
environment leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# 32 MiB is glibc's own ceiling for its adaptive mmap threshold on 64-bit systems
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 64 * 2**20

tuned = False


def tune_malloc() -> bool:
    """Set glibc's mmap and trim thresholds (once); False where not glibc or turned off."""
    global tuned
    if tuned:
        return True
    if os.environ.get("MINIDL_MALLOC_TUNING", "1").strip() == "0" or not sys.platform.startswith(
        "linux"
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    tuned = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return tuned
