"""conv2d forward with its GEMM through two BLAS routes (issue 2: "measure both, keep the
faster"):

* kernel: what minidl does: im2col and GEMM through scipy's ``cython_blas`` from nogil
  code, per batch of samples, straight into the (N, F, Ho, Wo) output, bias fused;
* numpy: minidl's im2col kernel, then numpy's batched matmul ``W (F, C*k*k) @ cols
  (N, C*k*k, Ho*Wo)`` (which lands in the (N, F, Ho*Wo) layout too), then the bias.

Both are checked to agree before timing. float32, 3x3 kernels, padding 1; medians of 7
interleaved repeats. Run by hand:  python benchmarks/bench_gemm_paths.py
"""
import time

import numpy as np

import minidl
from minidl import _kernels as K

SHAPES = {  # name: (N, C, H, W, F)
    "lenet-digits-1": (64, 1, 8, 8, 6),
    "lenet-digits-2": (64, 6, 4, 4, 16),
    "lenet-default-conv2": (64, 32, 4, 4, 64),
    "cifar-1": (64, 3, 32, 32, 32),
    "cifar-2": (64, 32, 16, 16, 64),
}
ONE, PAD = (1, 1), (1, 1)


def kernel_path(x, w, b, threads):
    return K.conv2d_forward(x, w, b, ONE, PAD, ONE, 1, threads)


def numpy_path(x, w, b, threads):
    cols = K.im2col(x, (3, 3), ONE, PAD, ONE, threads)
    y = np.matmul(w.reshape(w.shape[0], -1), cols)
    y += b[:, None]
    return y


def median_seconds(fn, args, calls, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def main():
    for threads in (1, 2):
        minidl.set_num_threads(threads)  # also numpy's BLAS threads
        for name, (n, c, h, w, f) in SHAPES.items():
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, c, h, w)).astype(np.float32)
            weight = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
            bias = rng.standard_normal(f).astype(np.float32)
            args = (x, weight, bias, threads)
            np.testing.assert_allclose(numpy_path(*args), kernel_path(*args).reshape(n, f, -1),
                                       rtol=1e-4, atol=1e-4)
            calls = 200 if x.size < 1e5 else 20
            kernel_s = median_seconds(kernel_path, args, calls)
            numpy_s = median_seconds(numpy_path, args, calls)
            print(f"{threads} thr {name:20s} kernel (cython_blas) {kernel_s * 1e6:9.1f} us   "
                  f"im2col + numpy matmul {numpy_s * 1e6:9.1f} us   numpy/kernel "
                  f"{numpy_s / kernel_s:5.2f}x")


if __name__ == "__main__":
    main()
