"""Transform-invariant convolution (seed 004): one filter applied under a set of rotations
and reflections, "each filter produces a set of transformed maps".

The transformed filters are index permutations of the filter's k x k taps, gathered into
one bank (out_channels * T filters) that a single conv2d applies; the backward of the
gather sums each transform's gradient back into the one shared filter ("derivatives flow
back through transforms to update individual filters").

Transforms act on the last two axes (rows, columns) of a filter, in numpy's conventions:
``rotK`` is ``np.rot90(w, K // 90, axes=(-2, -1))``, a counter-clockwise rotation by K
degrees as the array is printed (row 0 on top); ``flip`` is the left-right reflection
``w[..., ::-1]``; ``flip_rotK`` rotates first, then flips: ``flip(rotK(w))``.
"""

from functools import lru_cache

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V
from minidl.ops.conv import conv2d
from minidl.ops.math import getitem, max, reshape

__all__ = ["TRANSFORMS", "TRANSFORM_SETS", "transform_conv2d", "transform_filters"]

_QUARTER_TURNS = {"id": 0, "rot90": 1, "rot180": 2, "rot270": 3}
TRANSFORMS = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")
TRANSFORM_SETS = {"rot4": TRANSFORMS[:4], "flip2": ("id", "flip"), "dihedral8": TRANSFORMS}


def transform_names(transforms, what: str = "transform_conv2d") -> tuple:
    """``transforms`` (a set name or a sequence of member names) as a tuple of names."""
    if isinstance(transforms, str):
        if transforms not in TRANSFORM_SETS:
            raise ValueError(
                f"{what}: transforms must be one of {sorted(TRANSFORM_SETS)} or a tuple of "
                f"{TRANSFORMS}, got {transforms!r}"
            )
        return TRANSFORM_SETS[transforms]
    if not isinstance(transforms, (tuple, list)) or not transforms:
        raise TypeError(
            f"{what}: transforms must be a set name or a non-empty tuple of transform names, "
            f"got {transforms!r}"
        )
    for name in transforms:
        if name not in TRANSFORMS:
            raise ValueError(f"{what}: unknown transform {name!r} (choose from {TRANSFORMS})")
    if len(set(transforms)) != len(transforms):
        raise ValueError(f"{what}: transforms repeats a name: {tuple(transforms)!r}")
    return tuple(transforms)


def apply_transform(a: np.ndarray, name: str) -> np.ndarray:
    """Transform ``name`` of the last two (square) axes of ``a`` (a view where numpy can)."""
    if name.startswith("flip"):
        return np.rot90(a, _QUARTER_TURNS[name[5:] or "id"], axes=(-2, -1))[..., ::-1]
    return np.rot90(a, _QUARTER_TURNS[name], axes=(-2, -1))


@lru_cache(maxsize=64)
def _tap_permutations(names: tuple, k: int) -> tuple:
    """(perms, inverse), both (T, k*k): transform t's tap p is the filter's tap
    perms[t, p] (flat row-major); inverse[t] undoes perms[t]. Cached: read-only."""
    taps = np.arange(k * k).reshape(k, k)
    perms = np.stack([apply_transform(taps, name).ravel() for name in names])
    inverse = np.argsort(perms, axis=1)
    perms.flags.writeable = inverse.flags.writeable = False
    return perms, inverse


def transform_filters(weight: Tensor, transforms="rot4") -> Tensor:
    """The filter bank (F * T, C, k, k) of weight (F, C, k, k) under each of T transforms;
    filter f under transform t is bank row f * T + t. Differentiable: the gradient of every
    transformed copy flows back (un-permuted) into the one weight."""
    what = "transform_filters"
    names = transform_names(transforms, what)
    w = V.data_of(what, "weight", weight)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(
            f"{what}: weight must be (out_channels, in_channels, k, k) with a square kernel, "
            f"got shape {w.shape}"
        )
    f, c, k, _ = w.shape
    t = len(names)
    perms, inverse = _tap_permutations(names, k)
    # (F, C, T, k*k) -> (F, T, C, k*k): filter-major, transform-minor rows
    bank = w.reshape(f, c, k * k)[:, :, perms].transpose(0, 2, 1, 3).reshape(f * t, c, k, k)

    def backward(g):
        g = g.reshape(f, t, c, k * k)
        taps = np.take_along_axis(g, inverse[None, :, None, :], axis=3)
        return (taps.sum(axis=1).reshape(w.shape),)

    return record(bank, (weight,), backward)


def transform_conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    transforms="rot4",
    stride=1,
    padding=0,
    reduce: str | None = "max",
) -> Tensor:
    """Cross-correlate input (N, C, H, W) with weight (F, C, k, k) under every transform.

    reduce="max": (N, F, Ho, Wo), the maximum over the transforms of each filter (the
    bias is added to every transformed map, so it commutes with the maximum).
    reduce=None: (N, F * T, Ho, Wo), channel f * T + t is filter f under transform t.
    With stride 1 and a square input, rotating the input by 90 degrees rotates each
    map and cyclically shifts each filter's rot4 maps (t -> t + 1).
    """
    what = "transform_conv2d"
    names = transform_names(transforms, what)
    if reduce not in ("max", None):
        raise ValueError(f"{what}: reduce must be 'max' or None, got {reduce!r}")
    x = V.data_of(what, "input", input)
    w = V.data_of(what, "weight", weight)
    b = V.optional_data_of(what, "bias", bias)
    V.conv_arrays(what, x, w, b)
    V.conv_channels(what, x, w, b, 1, empty_batch_ok=True)
    t = len(names)
    bank = transform_filters(weight, names)
    bank_bias = None if bias is None else getitem(bias, np.repeat(np.arange(w.shape[0]), t))
    out = conv2d(input, bank, bank_bias, stride, padding)
    if reduce is None:
        return out
    n, _, ho, wo = out.shape
    return max(reshape(out, n, w.shape[0], t, ho, wo), 2).values
