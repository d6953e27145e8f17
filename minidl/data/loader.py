"""Mini-batching ``DataLoader`` and the one-pixel shift augmentation.

Images are (N, C, H, W) float32 arrays; labels are int64 arrays of shape (N,).
"""

import math

import numpy as np

from minidl.autograd import Tensor, tensor
from minidl.random import get_generator


def random_shift(max_shift=1, seed=None):
    """A transform that moves each image of a batch by up to ``max_shift`` pixels.

    The shift (dy, dx) is drawn per image, uniformly from -max_shift..max_shift on each
    axis; pixels moved in from outside are zero. The returned function maps an
    (N, C, H, W) array to a new array of the same shape. With ``seed=None`` it draws from
    minidl's global generator (so ``minidl.manual_seed`` makes it repeat).
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be an int >= 0, got {max_shift!r}")
    s = int(max_shift)
    own_rng = None if seed is None else np.random.default_rng(seed)

    def shift(images):
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"random_shift expects (N, C, H, W) images, got shape {images.shape}")
        if s == 0:
            return images.copy()
        rng = own_rng if own_rng is not None else get_generator()
        n, c, h, w = images.shape
        padded = np.zeros((n, c, h + 2 * s, w + 2 * s), images.dtype)
        padded[:, :, s : s + h, s : s + w] = images
        # one draw of 2n shifts: the same numbers as drawing dy then dx (n each)
        dy, dx = rng.integers(-s, s + 1, size=(2, n))
        # windows[i, c, a, b] is the h x w window of image i whose top-left corner is
        # (a, b) in the padded image; image i shifted by (dy, dx) is the one at
        # (s - dy, s - dx): one gather picks every image's window at once.
        strides = padded.strides
        windows = np.lib.stride_tricks.as_strided(
            padded, (n, c, 2 * s + 1, 2 * s + 1, h, w), strides + strides[2:], writeable=False
        )
        return windows[np.arange(n), :, s - dy, s - dx]

    shift.returns_new_array = True  # DataLoader need not copy the result
    shift.generator = own_rng  # None: draws from the global generator (see fit's resuming)
    return shift


class DataLoader:
    """Iterate over ``(xb, yb)`` mini-batches of arrays ``X`` (N, ...) and ``y`` (N, ...).

    ``xb`` is a :class:`minidl.Tensor` (after ``transform``, if given, is applied to the
    batch array); ``yb`` is the ndarray slice of ``y``. With ``shuffle=True`` the order is
    redrawn every epoch from the loader's own generator: ``np.random.default_rng(seed)``,
    or minidl's global generator when ``seed`` is None.
    """

    def __init__(
        self, X, y, batch_size=1, shuffle=False, seed=None, drop_last=False, transform=None
    ):
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
            raise ValueError(
                f"DataLoader: X and y need the same first dimension, got shapes "
                f"{X.shape} and {y.shape}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(
                f"DataLoader: transform must be callable, got {type(transform).__name__}"
            )
        self.X, self.y = X, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self):
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        if self.shuffle:
            rng = self._rng if self._rng is not None else get_generator()
            order = rng.permutation(n)
        else:
            order = None
        # A shuffled batch is a gather (a new array) and so is the output of a transform
        # that says so (random_shift): those are wrapped as they are, anything else
        # (a slice of X, a user transform's array) is copied.
        if self.transform is None:
            fresh = order is not None
        else:
            fresh = getattr(self.transform, "returns_new_array", False)
        for b in range(len(self)):
            start = b * self.batch_size
            index = (
                slice(start, start + self.batch_size)
                if order is None
                else order[start : start + self.batch_size]
            )
            xb, yb = self.X[index], self.y[index]
            if self.transform is not None:
                xb = self.transform(xb)
            if (
                fresh
                and type(xb) is np.ndarray
                and xb.flags.c_contiguous
                and xb.flags.writeable
                and not np.may_share_memory(xb, self.X)
            ):
                yield Tensor(xb), yb  # a new array made for this batch: no second copy
            else:
                yield tensor(np.ascontiguousarray(xb)), yb
