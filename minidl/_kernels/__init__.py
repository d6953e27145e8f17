"""minidl's compiled kernels (Cython, nogil, OpenMP), fused over float32 / float64.

The ops layer validates every argument; these functions trust theirs (C-contiguous
arrays of one float dtype, consistent shapes, (h, w) tuples).  ``num_threads`` is an
upper bound: small jobs run on fewer threads.  See notes in each module.
"""
from minidl._kernels._im2col import openmp_enabled, build_flags, im2col, col2im
from minidl._kernels._conv import (
    conv2d_forward, conv2d_backward_input, conv2d_backward_weight,
)
from minidl._kernels._pooling import (
    max_pool2d_forward, max_pool2d_backward, avg_pool2d_forward, avg_pool2d_backward,
)
from minidl import _threads

# scipy's BLAS (used from inside our OpenMP regions) is now loaded: pin its threads.
_threads._configure_blas()

__all__ = [
    "openmp_enabled", "im2col", "col2im",
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
]
