"""Map-style data sets, as ``torch.utils.data``: Dataset, TensorDataset, Subset,
ConcatDataset and random_split.

A data set is anything with ``__getitem__(index)`` and ``__len__()``; a sample is
usually a tuple ``(x, y)`` of ndarrays, Tensors or numbers.
"""

import bisect
import math
import warnings
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any, Generic, TypeVar

import numpy as np

from minidl.autograd import Tensor
from minidl.random import get_generator

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """Base class of map-style data sets: subclasses implement ``__getitem__`` and
    ``__len__``. ``a + b`` concatenates two data sets."""

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


def _length_of(what: str, value: Any) -> int:
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) == 0:
        raise ValueError(f"{what}: a 0-d array has no samples to index")
    try:
        return len(value)
    except TypeError:
        raise TypeError(
            f"{what}: expected arrays or Tensors (N, ...), got {type(value).__name__}"
        ) from None


class TensorDataset(Dataset[tuple[Any, ...]]):
    """Samples are ``(tensors[0][i], tensors[1][i], ...)``: rows of arrays or Tensors that
    share their first dimension N (e.g. images (N, C, H, W) and labels (N,))."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one array or Tensor")
        sizes = [_length_of("TensorDataset", t) for t in tensors]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> T_co:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """The samples of several data sets one after the other."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for i, d in enumerate(self.datasets):
            if not (hasattr(d, "__getitem__") and hasattr(d, "__len__")):
                raise TypeError(
                    f"ConcatDataset: datasets[{i}] ({type(d).__name__}) has no "
                    f"__getitem__ and __len__"
                )
        self.cumulative_sizes = list(accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += n
        if idx >= n:
            raise IndexError(f"index {idx} is out of range for a data set of length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    """``lengths`` as counts: integers as given, or fractions of ``n`` summing to 1 (the
    remainder of flooring goes one by one to the first splits, as in PyTorch)."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths must not be empty")
    for x in lengths:
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"random_split: lengths must be numbers, got {x!r}")
        if not x >= 0:
            raise ValueError(f"random_split: lengths must be >= 0, got {x!r}")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.",
                    stacklevel=3,
                )
        return counts
    if any(x != int(x) for x in lengths):
        raise ValueError(
            f"random_split: lengths must be ints, or fractions that sum to 1, got {lengths}"
        )
    if sum(lengths) != n:
        raise ValueError(
            f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input "
            f"dataset ({n})!"
        )
    return [int(x) for x in lengths]


def random_split(
    dataset: Dataset[T_co],
    lengths: Sequence[float],
    generator: np.random.Generator | None = None,
) -> list[Subset[T_co]]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s of the given lengths
    (counts, or fractions summing to 1). The permutation is drawn from ``generator`` (an
    ``np.random.Generator``), or from minidl's global one (``minidl.manual_seed``)."""
    if generator is None:
        generator = get_generator()
    elif not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"random_split: generator must be a numpy.random.Generator, got "
            f"{type(generator).__name__}"
        )
    counts = _split_lengths(len(dataset), lengths)
    order = generator.permutation(sum(counts)).tolist()
    return [
        Subset(dataset, order[end - count : end]) for end, count in zip(accumulate(counts), counts)
    ]


def tensor_arrays(dataset: Any) -> tuple[list[np.ndarray], np.ndarray | None] | None:
    """For a :class:`TensorDataset` of ndarrays / Tensors (or a Subset of one, at any
    depth): its arrays and the positions in them of the data set's samples (None: all, in
    order). Else None. The loader then gathers a batch with one fancy index per array."""
    positions = None
    while type(dataset) is Subset:
        inner = np.asarray(dataset.indices, dtype=np.int64)
        positions = inner if positions is None else inner[positions]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:
        return None
    arrays = []
    for t in dataset.tensors:
        data = t.data if isinstance(t, Tensor) else t
        if type(data) is not np.ndarray or data.dtype.kind not in "biuf":
            return None
        arrays.append(data)
    return arrays, positions
