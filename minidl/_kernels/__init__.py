"""minidl's compiled kernels (Cython, nogil, OpenMP), fused over float32 / float64.

The ops layer validates every argument; these functions trust theirs (C-contiguous
arrays of one float dtype, consistent shapes, (h, w) tuples).  ``num_threads`` is an
upper bound: small jobs run on fewer threads.  See notes in each module.

The three conv families share one calling convention: the arrays (and the shape of the
array they compute) positionally, everything else by keyword, in this order: stride,
padding, dilation, groups (im2col only; Winograd and direct are stride 1, dilation 1,
one group), the path's own parameter (Winograd ``tile``, direct input-gradient
``layout``), need_bias, keep_input / kept_input (what the forward made of x, handed to
the weight gradient: im2col's cols, Winograd's V), num_threads.  Which family runs, with
which tile or layout, is minidl.ops.conv_plan's choice, never the kernels'.

OpenMP waiting: unless the user chose otherwise (OMP_WAIT_POLICY or GOMP_SPINCOUNT set),
an idle OpenMP thread spins for GOMP_SPINCOUNT=10000 turns, then sleeps.  Sleeping at
once (OMP_WAIT_POLICY=passive) made every parallel region pay a futex wake-up, which
cost more than a 2-thread split of a mid-size pooling layer saves; spinning for long (the
libgomp default) starves the working thread when another process holds a core.  Both
measured in benchmarks/RESULTS.md.  (Read by libgomp when it loads, i.e. on the import
below; no effect if another package already loaded it.)
"""

# ruff: noqa: E402  (the functions are re-exported below the check that the modules built)

import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

import importlib

from minidl import _threads

# every compiled module of the package (setup.py builds one extension per .pyx)
_NAMES = (
    "_activation",
    "_batchnorm",
    "_conv",
    "_depthwise",
    "_direct",
    "_im2col",
    "_linear",
    "_loss",
    "_optim",
    "_pooling",
    "_winograd",
)
try:
    _MODULES = {
        m.__name__: m for m in map(importlib.import_module, (f"{__name__}.{n}" for n in _NAMES))
    }
except ImportError as _exc:
    # a source tree that was never built (e.g. the repository's root after `pip install .`)
    import importlib.util

    _missing = [n for n in _NAMES if importlib.util.find_spec(f"{__name__}.{n}") is None]
    if not _missing and (_exc.name or "").startswith(__name__ + "."):
        _missing = [_exc.name.rpartition(".")[2]]  # the shared Cython utility module
    if not _missing:
        raise
    _here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        f"minidl's compiled kernels are not built in {_here} (missing: "
        f"{', '.join(_missing)}). This minidl is a source tree (running Python from the "
        f"repository's root hides an installed minidl): build it in place with "
        f"`pip install -e .` or `python setup.py build_ext --inplace`, or run Python "
        f"from another folder to use the installed minidl.",
        name=__name__,
        path=_here,
    ) from None
from minidl._kernels._activation import relu_backward, relu_forward
from minidl._kernels._batchnorm import batch_norm_backward, batch_norm_forward
from minidl._kernels._conv import (
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_forward,
)
from minidl._kernels._depthwise import (
    depthwise_conv2d_backward_input,
    depthwise_conv2d_backward_weight,
    depthwise_conv2d_forward,
)
from minidl._kernels._direct import (
    conv2d_backward_input as direct_conv2d_backward_input,
)
from minidl._kernels._direct import (
    conv2d_backward_weight as direct_conv2d_backward_weight,
)
from minidl._kernels._direct import (
    conv2d_forward as direct_conv2d_forward,
)
from minidl._kernels._direct import (
    conv2d_pool_forward as direct_conv2d_pool_forward,
)
from minidl._kernels._direct import (
    efficiency as direct_efficiency,
)
from minidl._kernels._direct import (
    level as direct_level,
)
from minidl._kernels._direct import (
    vector_width as direct_vector_width,
)
from minidl._kernels._im2col import build_flags, col2im, im2col, openmp_enabled  # noqa: F401  (build_flags: read by minidl info)
from minidl._kernels._linear import (
    flush_denormal,
    flush_denormal_enter,
    flush_denormal_restore,
    linear_backward_input,
    linear_backward_weight,
    linear_forward,
    pin_scipy_blas,
    set_flush_denormal,
)
from minidl._kernels._loss import cross_entropy_backward, cross_entropy_forward
from minidl._kernels._optim import adam_update, sgd_update
from minidl._kernels._pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_2x2_backward,
    max_pool2d_2x2_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_relu_2x2_forward,
)
from minidl._kernels._winograd import (
    fits_winograd,
    winograd_backward_input,
    winograd_backward_weight,
    winograd_channel_major_fits,
    winograd_channel_major_lanes,
    winograd_forward,
    winograd_kept_input_elements,
    winograd_pool_forward,
)

# scipy's BLAS (called from inside our OpenMP regions) is now loaded: pin its threads
# (every kernel entry pins it again if a user's threadpool_limits raised it).
_threads._configure_blas()


def planned_threads(kernel):
    """How many threads the last call of ``kernel`` (a function of this package) planned:
    at most its ``num_threads``, fewer when the job is too small to split."""
    return _MODULES[kernel.__module__].planned_threads()


__all__ = [
    "adam_update",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm_backward",
    "batch_norm_forward",
    "col2im",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "depthwise_conv2d_backward_input",
    "depthwise_conv2d_backward_weight",
    "depthwise_conv2d_forward",
    "direct_conv2d_backward_input",
    "direct_conv2d_backward_weight",
    "direct_conv2d_forward",
    "direct_conv2d_pool_forward",
    "direct_efficiency",
    "direct_level",
    "direct_vector_width",
    "fits_winograd",
    "flush_denormal",
    "flush_denormal_enter",
    "flush_denormal_restore",
    "im2col",
    "linear_backward_input",
    "linear_backward_weight",
    "linear_forward",
    "max_pool2d_2x2_backward",
    "max_pool2d_2x2_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "max_pool2d_relu_2x2_forward",
    "openmp_enabled",
    "pin_scipy_blas",
    "planned_threads",
    "relu_backward",
    "relu_forward",
    "set_flush_denormal",
    "sgd_update",
    "winograd_backward_input",
    "winograd_backward_weight",
    "winograd_channel_major_fits",
    "winograd_channel_major_lanes",
    "winograd_forward",
    "winograd_kept_input_elements",
    "winograd_pool_forward",
]
