"""Digits placed on a larger empty canvas, with their bounding boxes (seed 004: a second
output head that "predicts corners of bounding box")."""

from __future__ import annotations

import numpy as np


def make_localization_digits(
    n: int,
    canvas: int = 24,
    scale: bool = False,
    random_state: int | None = 0,
    digits: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images, each one digit pasted at a random position on a zero canvas.

    Returns ``(images, labels, boxes)``: images float32 (n, 1, canvas, canvas) in [0, 1],
    labels int64 (n,), boxes float32 (n, 4) as ``(x0, y0, x1, y1)`` in pixels, the square
    the digit was pasted into (x0, y0 its top-left corner, x1 = x0 + size, y1 = y0 + size,
    so its area is size**2). The digit is 8x8 (size 8), or with ``scale=True`` resized
    (nearest) to a size drawn uniformly from 8..min(16, canvas). The digits are drawn with
    replacement from ``digits`` = (images (M, 1, 8, 8), labels (M,)) if given (e.g. one
    split of :func:`load_digits`, to keep train and test digits apart), else from all of
    scikit-learn's 1797 digits. Seeded by ``random_state``.
    """
    what = "make_localization_digits"
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{what}: n must be an int >= 0, got {n!r}")
    if isinstance(canvas, bool) or not isinstance(canvas, (int, np.integer)) or canvas < 8:
        raise ValueError(f"{what}: canvas must be an int >= 8 (a digit is 8x8), got {canvas!r}")
    if digits is None:
        from sklearn.datasets import load_digits as _sk_load_digits

        source = _sk_load_digits()
        pool = (source.images / 16.0).astype(np.float32)
        pool_labels = source.target.astype(np.int64)
    else:
        pool, pool_labels = (np.asarray(a) for a in digits)
        if pool.ndim == 4 and pool.shape[1] == 1:
            pool = pool[:, 0]
        if (
            pool.ndim != 3
            or pool.shape[1:] != (8, 8)
            or len(pool) != len(pool_labels)
            or not len(pool)
        ):
            raise ValueError(
                f"{what}: digits must be (images (M, 1, 8, 8), labels (M,)) with M >= 1, got "
                f"shapes {np.shape(digits[0])} and {np.shape(digits[1])}"
            )
        pool = pool.astype(np.float32)
        pool_labels = pool_labels.astype(np.int64)
    rng = np.random.default_rng(random_state)
    pick = rng.integers(0, len(pool), size=n)
    sizes = rng.integers(8, min(16, canvas) + 1, size=n) if scale else np.full(n, 8)
    x0 = (rng.random(n) * (canvas - sizes + 1)).astype(np.int64)
    y0 = (rng.random(n) * (canvas - sizes + 1)).astype(np.int64)
    images = np.zeros((n, 1, canvas, canvas), np.float32)
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        source = np.arange(size) * 8 // size  # nearest: pixel k of the resized digit
        resized = pool[pick[rows]][:, source[:, None], source[None, :]]
        r = y0[rows, None, None] + np.arange(size)[None, :, None]
        c = x0[rows, None, None] + np.arange(size)[None, None, :]
        images[rows[:, None, None], 0, r, c] = resized
    boxes = np.stack([x0, y0, x0 + sizes, y0 + sizes], axis=1).astype(np.float32)
    return images, pool_labels[pick], boxes
