"""Issue 2: GEMM through scipy's cython_blas from nogil code (what the kernels do) versus
im2col + numpy's matmul, for conv2d forward. Run by hand:
    python benchmarks/bench_gemm_paths.py
Both paths are checked to agree before timing; medians of 7 interleaved repeats."""
import time, numpy as np, minidl
from minidl import _kernels as K
shapes = {"lenet-digits-1": (64,1,8,8,6,3,1), "lenet-digits-2": (64,6,4,4,16,3,1),
          "lenet-default-conv2": (64,32,4,4,64,3,1),
          "cifar-1": (64,3,32,32,32,3,1), "cifar-2": (64,32,16,16,64,3,1)}
def numpy_path(x, w, b, p, nt):
    cols = K.im2col(x, (3,3), (1,1), (p,p), (1,1), nt)
    y = np.matmul(w.reshape(w.shape[0], -1), cols)
    y += b[:, None]
    return y
for threads in (1, 2):
    minidl.set_num_threads(threads)
    for name, (n,c,h,wd,f,k,p) in shapes.items():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n,c,h,wd)).astype(np.float32)
        w = rng.standard_normal((f,c,k,k)).astype(np.float32); b = rng.standard_normal(f).astype(np.float32)
        ref = K.conv2d_forward(x, w, b, (1,1), (p,p), (1,1), 1, threads).reshape(n, f, -1)
        np.testing.assert_allclose(numpy_path(x,w,b,p,threads), ref, rtol=1e-4, atol=1e-4)
        reps = 200 if n*c*h*wd < 1e5 else 20
        ts = {"cython_blas": [], "numpy": []}
        for _ in range(7):
            t=time.perf_counter()
            for _ in range(reps): K.conv2d_forward(x, w, b, (1,1), (p,p), (1,1), 1, threads)
            ts["cython_blas"].append((time.perf_counter()-t)/reps)
            t=time.perf_counter()
            for _ in range(reps): numpy_path(x, w, b, p, threads)
            ts["numpy"].append((time.perf_counter()-t)/reps)
        a, bb = np.median(ts["cython_blas"]), np.median(ts["numpy"])
        print(f"{threads} thr {name:20s} cython_blas {a*1e6:9.1f} us   numpy {bb*1e6:9.1f} us   numpy/cython {bb/a:5.2f}x")
