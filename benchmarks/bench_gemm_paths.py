"""conv2d forward with its GEMM through two BLAS routes (issue 2: "measure both, keep the
faster"):

* kernel: what minidl does: im2col and GEMM through scipy's ``cython_blas`` from nogil
  code, per batch of samples, straight into the (N, F, Ho, Wo) output, bias fused;
* numpy: minidl's im2col kernel, then numpy's batched matmul ``W (F, C*k*k) @ cols
  (N, C*k*k, Ho*Wo)`` (which lands in the (N, F, Ho*Wo) layout too), then the bias.

Both are checked to agree before timing; float32, the suite's LeNet-digits and CIFAR-like
shapes plus the default LeNet's second conv, repeats interleaved (minidl.bench.timing).
Run by hand:  python benchmarks/bench_gemm_paths.py
"""

import sys
from pathlib import Path

import numpy as np

try:
    import minidl  # noqa: F401
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minidl import _kernels as K
from minidl.bench.ops import conv_arrays
from minidl.bench.shapes import CONV_SHAPES, ConvShape, select
from minidl.bench.threads import thread_count
from minidl.bench.timing import time_interleaved

SHAPES = select(CONV_SHAPES, ["LeNet-digits", "CIFAR-like"]) + (
    ConvShape("LeNet default", "conv2", 64, 32, 4, 4, 64, 3, 1, 1),
)


def kernel_path(shape, x, w, b, threads):
    pair, pad = (1, 1), (shape.padding, shape.padding)
    stride = (shape.stride, shape.stride)
    return K.conv2d_forward(
        x, w, b, stride=stride, padding=pad, dilation=pair, groups=1, num_threads=threads
    )


def numpy_path(shape, x, w, b, threads):
    pair, pad = (1, 1), (shape.padding, shape.padding)
    stride = (shape.stride, shape.stride)
    cols = K.im2col(x, (shape.k, shape.k), stride, pad, pair, threads)
    y = np.matmul(w.reshape(w.shape[0], -1), cols)
    y += b[:, None]
    return y


def main():
    for threads in (1, 2):
        with thread_count(threads):  # minidl's kernels and numpy's BLAS
            for shape in SHAPES:
                x, w, b, _ = conv_arrays(shape, np.random.default_rng(0))
                args = (shape, x, w, b, threads)
                np.testing.assert_allclose(
                    numpy_path(*args),
                    kernel_path(*args).reshape(shape.n, shape.f, -1),
                    rtol=1e-4,
                    atol=1e-4,
                )
                stats = time_interleaved(
                    {
                        "kernel": lambda a=args: kernel_path(*a),
                        "numpy": lambda a=args: numpy_path(*a),
                    },
                    repeats=7,
                )
                kernel_s, numpy_s = stats["kernel"].median, stats["numpy"].median
                print(
                    f"{threads} thr {shape.name:20s} {shape.label:28s} "
                    f"kernel (cython_blas) {kernel_s * 1e6:9.1f} us   "
                    f"im2col + numpy matmul {numpy_s * 1e6:9.1f} us   "
                    f"numpy/kernel {numpy_s / kernel_s:5.2f}x"
                )


if __name__ == "__main__":
    main()
