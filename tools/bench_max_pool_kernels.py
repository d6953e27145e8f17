"""Why max pooling has three kernels: each against the alternatives, side by side.

For the 2x2 / stride 2 pooling shapes of the LeNet-digits and MNIST-like families
(minidl.bench.shapes), float32 and float64, one thread, interleaved repeats
(minidl.bench.timing): what each use would cost on the other kernels.

- recorded layer (fwd + bwd): window codes / 2x2 flat indices / general kernel
- return_indices (fwd):       2x2 flat indices / general kernel
- no_grad (fwd):              values only / window codes / general kernel

    python tools/bench_max_pool_kernels.py [--repeats 15] [--simd off]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import minidl  # noqa: F401  (installed, or run from the repository root)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minidl import _kernels as K
from minidl._kernels import _pooling
from minidl.bench.shapes import CONV_SHAPES, pool_shapes
from minidl.bench.timing import time_interleaved

POOL = (2, 2), (2, 2), (0, 0)
FAMILIES = ("LeNet-digits", "MNIST-like")


def _general(fn):
    def run():
        _pooling._use_2x2_kernels(False)
        try:
            fn()
        finally:
            _pooling._use_2x2_kernels(True)

    return run


def candidates(x, g):
    """use -> {kernel: callable}."""
    shape = x.shape

    def codes_fb():
        _, codes = K.max_pool2d_2x2_forward(x, 1)
        K.max_pool2d_2x2_backward(g, codes, 1)

    def indices_fb():
        _, idx = K.max_pool2d_forward(x, *POOL, 1)
        K.max_pool2d_backward(g, idx, shape, 1)

    def indices_f():
        K.max_pool2d_forward(x, *POOL, 1)

    def values_f():
        K.max_pool2d_forward(x, *POOL, 1, need_indices=False)

    def codes_f():
        K.max_pool2d_2x2_forward(x, 1)

    return {
        "recorded fwd+bwd": {
            "codes": codes_fb,
            "2x2 indices": indices_fb,
            "general": _general(indices_fb),
        },
        "return_indices fwd": {"2x2 indices": indices_f, "general": _general(indices_f)},
        "no_grad fwd": {"values only": values_f, "codes": codes_f, "general": _general(values_f)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--simd", choices=("on", "off"), default="on")
    args = parser.parse_args()
    print(f"2x2 max pool SIMD: {_pooling._use_simd(args.simd == 'on')}; microseconds, median")
    print("[min-max] over the repeats, 1 thread")
    rng = np.random.default_rng(0)
    for shape in pool_shapes(CONV_SHAPES):
        if shape.family not in FAMILIES:
            continue
        dims = (shape.n, shape.c, shape.h, shape.w)
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(dims).astype(dtype)
            g = rng.standard_normal((shape.n, shape.c, shape.h // 2, shape.w // 2)).astype(dtype)
            for use, fns in candidates(x, g).items():
                stats = time_interleaved(fns, repeats=args.repeats, min_time=0.01)
                cells = "  ".join(
                    f"{name} {s.median * 1e6:7.1f} [{s.min * 1e6:.1f}-{s.max * 1e6:.1f}]"
                    for name, s in stats.items()
                )
                print(f"{str(dims):16s} {np.dtype(dtype).name:7s} {use:19s} {cells}")
    _pooling._use_simd(True)


if __name__ == "__main__":
    main()
