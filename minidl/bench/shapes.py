"""The shapes every benchmark runs at (benchmarks/bench_kernels.py, issue 2, times the
conv layers of every family but MNIST-like; the suite of issue 5 times them all).

Each family has convolution layers; pooling (2x2, stride 2) runs on each layer's conv
output, linear on a classifier-sized GEMM of the same family, cross-entropy on (N, 10)
logits.
"""

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class _ImageShape:
    """The input (n, c, h, w) of one layer of a shape family."""

    family: str
    layer: str
    n: int
    c: int
    h: int
    w: int

    @property
    def name(self):
        return f"{self.family} {self.layer}"

    def with_n(self, n):
        """The same layer at batch size ``n``."""
        return dataclasses.replace(self, n=n)


@dataclass(frozen=True)
class ConvShape(_ImageShape):
    """One conv2d layer: input (n, c, h, w), weight (f, c, k, k)."""

    f: int
    k: int
    stride: int = 1
    padding: int = 0

    @property
    def label(self):
        pad = f" p{self.padding}" if self.padding else ""
        stride = f" s{self.stride}" if self.stride != 1 else ""
        return f"N={self.n} {self.c}->{self.f} {self.h}x{self.w} k{self.k}{stride}{pad}"

    @property
    def out_hw(self):
        ho = (self.h + 2 * self.padding - self.k) // self.stride + 1
        wo = (self.w + 2 * self.padding - self.k) // self.stride + 1
        return ho, wo

    @property
    def out_shape(self):
        return (self.n, self.f) + self.out_hw

    @property
    def gemm(self):
        """(M, K, N) of the forward GEMM weight (F, C*k*k) @ cols (C*k*k, N*Ho*Wo)."""
        ho, wo = self.out_hw
        return self.f, self.c * self.k * self.k, self.n * ho * wo

    @property
    def flops(self):
        return gemm_flops(*self.gemm)


@dataclass(frozen=True)
class PoolShape(_ImageShape):
    """Pooling input (n, c, h, w), window k, stride k."""

    k: int = 2

    @property
    def label(self):
        return f"N={self.n} C={self.c} {self.h}x{self.w} k{self.k} s{self.k}"


@dataclass(frozen=True)
class LinearShape:
    """x (n, in_features) @ weight (out_features, in_features).T + bias."""

    family: str
    n: int
    in_features: int
    out_features: int

    @property
    def name(self):
        return f"{self.family} fc"

    @property
    def label(self):
        return f"N={self.n} {self.in_features}->{self.out_features}"

    @property
    def gemm(self):
        """(M, K, N) of the forward GEMM x (n, in) @ weight.T (in, out)."""
        return self.n, self.in_features, self.out_features

    @property
    def flops(self):
        return gemm_flops(*self.gemm)


@dataclass(frozen=True)
class LossShape:
    """Logits (n, classes), int64 targets (n,)."""

    family: str
    n: int
    classes: int = 10

    @property
    def name(self):
        return f"{self.family} loss"

    @property
    def label(self):
        return f"N={self.n} classes={self.classes}"


CONV_SHAPES = (
    ConvShape("LeNet-digits", "conv1", 64, 1, 8, 8, 6, 3, 1, 1),
    ConvShape("LeNet-digits", "conv2", 64, 6, 4, 4, 16, 3, 1, 1),
    ConvShape("MNIST-like", "conv1", 64, 1, 28, 28, 6, 5),
    ConvShape("MNIST-like", "conv2", 64, 6, 12, 12, 16, 5),
    ConvShape("CIFAR-like", "conv1", 64, 3, 32, 32, 32, 3, 1, 1),
    ConvShape("CIFAR-like", "conv2", 64, 32, 16, 16, 64, 3, 1, 1),
    ConvShape("CS231n", "conv", 100, 3, 31, 31, 25, 3, 2, 1),
)
FAMILIES = ("LeNet-digits", "MNIST-like", "CIFAR-like", "CS231n")
TINY_FAMILIES = ("LeNet-digits",)

# Pure-Python loops are only bearable on the tiniest shapes at a small batch.
PURE_PYTHON_BATCH = 8


def pool_shapes(conv_shapes):
    """2x2 pooling of each conv layer's output."""
    shapes = []
    for conv in conv_shapes:
        n, c, h, w = conv.out_shape
        shapes.append(PoolShape(conv.family, conv.layer.replace("conv", "pool"), n, c, h, w))
    return tuple(shapes)


# Classifier GEMMs: the flattened features of each family's last pooled layer.
LINEAR_SHAPES = (
    LinearShape("LeNet-digits", 64, 64, 120),
    LinearShape("MNIST-like", 64, 256, 120),
    LinearShape("CIFAR-like", 64, 4096, 256),
    LinearShape("CS231n", 100, 1600, 10),
)
LOSS_SHAPES = (
    LossShape("LeNet-digits", 64),
    LossShape("MNIST-like", 64),
    LossShape("CIFAR-like", 64),
    LossShape("CS231n", 100),
)


def gemm_flops(m, k, n):
    """Floating-point operations of one (m, k) @ (k, n) matrix product."""
    return 2.0 * m * k * n


def select(shapes, families):
    return tuple(s for s in shapes if s.family in families)
