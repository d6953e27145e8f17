"""Augmentation on whole batches (seed 004): callables mapping an (N, C, H, W) ndarray to a
new (N, C, H, W) ndarray, as torchvision's transforms but vectorised over the batch.

Each random transform draws one set of parameters per image from its own generator,
``np.random.default_rng(seed)``, or from minidl's global generator when ``seed`` is None
(so ``minidl.manual_seed`` makes it repeat); the generator is the attribute ``generator``
(None for the global one), which :func:`minidl.training.fit` saves and restores when it
resumes. The geometric transforms build one source-index map per image and gather every
image at once, with nearest interpolation (torchvision's default) and zeros for pixels
that come from outside the image. ``DataLoader(X, y, transform=...)`` applies one to each
batch.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from minidl.random import get_generator

__all__ = [
    "Compose",
    "Normalize",
    "RandomAffine",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomShift",
]

Batch = np.ndarray


def _batch(what: str, images: object) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{what} expects (N, C, H, W) images, got shape {images.shape}")
    return images


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range(what: str, name: str, value: object, symmetric: bool) -> tuple[float, float]:
    """A (low, high) pair from a number (symmetric: (-v, v)) or a sequence of two numbers."""
    if _is_number(value) and symmetric:
        if value < 0:
            raise ValueError(f"{what}: {name} must be >= 0 when a single number, got {value!r}")
        return -float(value), float(value)
    if (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(_is_number(v) and np.isfinite(v) for v in value)
        and value[0] <= value[1]
    ):
        return float(value[0]), float(value[1])
    single = "a number >= 0 or " if symmetric else ""
    raise ValueError(
        f"{what}: {name} must be {single}a pair (low, high) with low <= high, got {value!r}"
    )


class _RandomTransform:
    """The generator handling every random transform shares."""

    returns_new_array = True  # DataLoader need not copy the result

    def __init__(self, seed: int | None) -> None:
        # None: draws from the global generator (see fit's resuming)
        self.generator = None if seed is None else np.random.default_rng(seed)

    def _rng(self) -> np.random.Generator:
        return self.generator if self.generator is not None else get_generator()


class Compose:
    """Apply ``transforms`` one after the other: ``Compose([RandomShift(1), Normalize(...)])``.

    ``generator`` is the one generator of its own a member has (None if none does), what
    fit's resuming saves: with several seeded members only that first one is restored,
    so seed at most one member (or none: they then all draw from the global generator).
    """

    def __init__(self, transforms: Sequence[Callable[[Batch], Batch]]) -> None:
        transforms = list(transforms)
        for t in transforms:
            if not callable(t):
                raise TypeError(
                    f"Compose: every transform must be callable, got {type(t).__name__}"
                )
        self.transforms = transforms
        self.returns_new_array = bool(transforms) and all(
            getattr(t, "returns_new_array", False) for t in transforms
        )

    @property
    def generator(self) -> np.random.Generator | None:
        own = [getattr(t, "generator", None) for t in self.transforms]
        return next((g for g in own if isinstance(g, np.random.Generator)), None)

    def __call__(self, images: Batch) -> Batch:
        for t in self.transforms:
            images = t(images)
        return images

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class RandomShift(_RandomTransform):
    """Move each image by (dy, dx), each drawn uniformly from -max_shift..max_shift; pixels
    moved in from outside are zero. (N, C, H, W) -> (N, C, H, W), same dtype.

    The draws: one ``integers(-s, s + 1, size=(2, N))`` call per batch (all dy, then all dx).
    """

    def __init__(self, max_shift: int, seed: int | None = None) -> None:
        if (
            isinstance(max_shift, bool)
            or not isinstance(max_shift, (int, np.integer))
            or max_shift < 0
        ):
            raise ValueError(f"RandomShift: max_shift must be an int >= 0, got {max_shift!r}")
        super().__init__(seed)
        self.max_shift = int(max_shift)

    def __call__(self, images: Batch) -> Batch:
        images = _batch("RandomShift", images)
        s = self.max_shift
        if s == 0:
            return images.copy()
        n, c, h, w = images.shape
        padded = np.zeros((n, c, h + 2 * s, w + 2 * s), images.dtype)
        padded[:, :, s : s + h, s : s + w] = images
        dy, dx = self._rng().integers(-s, s + 1, size=(2, n))
        # windows[i, c, a, b] is the h x w window of image i whose top-left corner is
        # (a, b) in the padded image; image i shifted by (dy, dx) is the one at
        # (s - dy, s - dx): one gather picks every image's window at once.
        strides = padded.strides
        windows = np.lib.stride_tricks.as_strided(
            padded, (n, c, 2 * s + 1, 2 * s + 1, h, w), strides + strides[2:], writeable=False
        )
        return windows[np.arange(n), :, s - dy, s - dx]

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift})"


def affine_gather(images: Batch, matrices: np.ndarray, offsets: np.ndarray) -> Batch:
    """Resample each image i of (N, C, H, W) at the source positions
    ``p = matrices[i] @ q + offsets[i]`` of every output pixel q = (x, y) (column, row
    index), rounded to the nearest pixel (half to even); positions outside are zero.
    matrices (N, 2, 2), offsets (N, 2). One gather for the whole batch."""
    n, c, h, w = images.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    q = np.stack([xs.ravel(), ys.ravel()])  # (2, H*W)
    p = matrices @ q + offsets[:, :, None]  # (N, 2, H*W)
    sx, sy = np.rint(p[:, 0]).astype(np.int64), np.rint(p[:, 1]).astype(np.int64)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    flat = np.zeros((n, c, h * w + 1), images.dtype)  # the last column: the zero fill
    flat[:, :, : h * w] = images.reshape(n, c, h * w)
    index = np.where(inside, sy * w + sx, h * w)[:, None, :]
    return np.take_along_axis(flat, index, axis=2).reshape(n, c, h, w)


def _inverse_affine(angle_deg, scale, tx, ty, h, w):
    """(matrices, offsets) of affine_gather for output = rotate the image counter-clockwise
    (as seen, rows pointing down) by ``angle_deg`` and scale it about its centre
    ((W-1)/2, (H-1)/2), then translate by (tx, ty) pixels: per image, arrays (N,)."""
    a = np.deg2rad(angle_deg)
    cos, sin = np.cos(a), np.sin(a)
    # forward: q = centre + scale * R (p - centre) + t with R = [[cos, sin], [-sin, cos]];
    # inverse: p = centre + R^T (q - centre - t) / scale
    inv = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2) / scale[:, None, None]
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    shift = np.stack([tx, ty], -1)
    offsets = centre - np.einsum("nij,nj->ni", inv, centre + shift)
    return inv, offsets


class RandomAffine(_RandomTransform):
    """Rotate each image by an angle drawn uniformly from ``degrees`` (a number d: (-d, d);
    or a pair), translate it by up to ``translate = (a, b)`` times its width / height
    (drawn uniformly, rounded to whole pixels as torchvision does) and scale it by a
    factor drawn uniformly from ``scale = (low, high)``; about the image centre, nearest
    interpolation, zeros outside. (N, C, H, W) -> (N, C, H, W), same dtype.

    The draws per batch, in order: N angles, then (if translate) N x then N y
    translations, then (if scale) N scales.
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        translate: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        seed: int | None = None,
    ) -> None:
        what = type(self).__name__
        self.degrees = _range(what, "degrees", degrees, symmetric=True)
        if translate is not None:
            translate = _range(what, "translate", translate, symmetric=False)
            if translate[0] < 0 or translate[1] > 1:
                raise ValueError(f"{what}: translate values must be in [0, 1], got {translate}")
        if scale is not None:
            scale = _range(what, "scale", scale, symmetric=False)
            if scale[0] <= 0:
                raise ValueError(f"{what}: scale values must be > 0, got {scale}")
        super().__init__(seed)
        self.translate = translate
        self.scale = scale

    def _params(self, n: int, h: int, w: int):
        rng = self._rng()
        angle = rng.uniform(self.degrees[0], self.degrees[1], size=n)
        tx = ty = np.zeros(n)
        if self.translate is not None:
            mx, my = self.translate[0] * w, self.translate[1] * h
            tx = np.round(rng.uniform(-mx, mx, size=n))
            ty = np.round(rng.uniform(-my, my, size=n))
        factor = np.ones(n)
        if self.scale is not None:
            factor = rng.uniform(self.scale[0], self.scale[1], size=n)
        return angle, factor, tx, ty

    def __call__(self, images: Batch) -> Batch:
        images = _batch(type(self).__name__, images)
        n, _, h, w = images.shape
        angle, factor, tx, ty = self._params(n, h, w)
        return affine_gather(images, *_inverse_affine(angle, factor, tx, ty, h, w))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(degrees={list(self.degrees)}, translate={self.translate}, "
            f"scale={self.scale})"
        )


class RandomRotation(RandomAffine):
    """Rotate each image about its centre by an angle drawn uniformly from ``degrees`` (a
    number d: (-d, d); or a pair), counter-clockwise for positive angles; nearest
    interpolation, zeros outside. (N, C, H, W) -> (N, C, H, W). Draws N angles per batch.
    """

    def __init__(self, degrees: float | Sequence[float], seed: int | None = None) -> None:
        super().__init__(degrees, seed=seed)

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={list(self.degrees)})"


class RandomHorizontalFlip(_RandomTransform):
    """Mirror each image left-right with probability ``p``: (N, C, H, W) -> (N, C, H, W).
    Draws N uniforms per batch (image i flips when its draw is < p)."""

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        if not _is_number(p) or not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        super().__init__(seed)
        self.p = float(p)

    def __call__(self, images: Batch) -> Batch:
        images = _batch("RandomHorizontalFlip", images)
        flip = self._rng().random(images.shape[0]) < self.p
        return np.where(flip[:, None, None, None], images[..., ::-1], images)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """(x - mean[c]) / std[c] per channel: (N, C, H, W) floats -> a new array of the same
    dtype. ``mean`` and ``std``: a number or one value per channel. Not random
    (``generator`` is None)."""

    returns_new_array = True
    generator = None

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
                raise ValueError(f"Normalize: {name} must be finite numbers, got {v.tolist()}")
        if (self.std == 0).any():
            raise ValueError(f"Normalize: std must not be 0, got {self.std.tolist()}")

    def __call__(self, images: Batch) -> Batch:
        images = _batch("Normalize", images)
        if images.dtype.kind != "f":
            raise TypeError(f"Normalize expects floating images, got dtype {images.dtype}")
        c = images.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(
                    f"Normalize: {name} has {v.size} values for images of {c} channels"
                )
        mean = self.mean.astype(images.dtype)[None, :, None, None]
        std = self.std.astype(images.dtype)[None, :, None, None]
        return (images - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"
