"""Mini-batching ``DataLoader`` (over arrays or over a Dataset), ``default_collate`` and the
one-pixel shift augmentation.

Images are (N, C, H, W) float32 arrays; labels are int64 arrays of shape (N,).
"""

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from minidl.autograd import Tensor, tensor
from minidl.data.dataset import Dataset, tensor_arrays
from minidl.random import get_generator
from minidl.transforms import RandomShift


def random_shift(max_shift: int = 1, seed: int | None = None) -> RandomShift:
    """``minidl.transforms.RandomShift(max_shift, seed=seed)``: moves each image of an
    (N, C, H, W) batch by up to ``max_shift`` pixels (zeros moved in); with ``seed=None``
    it draws from minidl's global generator (so ``minidl.manual_seed`` makes it repeat)."""
    return RandomShift(max_shift, seed=seed)


def _check_batch_size(batch_size: Any) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")


def _check_callable(fn: Any, name: str) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(f"DataLoader: {name} must be callable, got {type(fn).__name__}")


def _batch_count(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _array_form(args: tuple, kwargs: dict) -> bool:
    """Whether a DataLoader call is the array form ``(X, y, ...)`` rather than ``(dataset, ...)``:
    ``y`` is given (a second positional argument that is not a batch size, or ``y=``), or an
    argument only that form has. A :class:`Dataset` is always the dataset form."""
    if "dataset" in kwargs:
        return False
    if {"X", "y", "seed", "transform"} & kwargs.keys():
        return True
    if not args:
        raise TypeError("DataLoader() needs a dataset (or arrays X and y)")
    if isinstance(args[0], Dataset):
        return False
    return len(args) > 1 and args[1] is not None and not _is_int(args[1])


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate`` does for numpy
    data: ndarrays / Tensors / numpy scalars are stacked into a Tensor with a new first
    dimension N, Python floats become a float64 Tensor and ints an int64 one, strings stay a
    list; tuples and lists are collated position by position (a tuple gives a list), dicts
    key by key."""
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, (Tensor, np.ndarray, np.generic)):
        arrays = [b.data if isinstance(b, Tensor) else np.asarray(b) for b in batch]
        kind = arrays[0].dtype.kind
        if kind not in "biuf":
            raise TypeError(
                f"default_collate: arrays of dtype {arrays[0].dtype} cannot become a Tensor"
            )
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(
                f"default_collate: samples must have the same shape, got {sorted(shapes)}"
            )
        return Tensor(np.stack(arrays))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise ValueError(
                "default_collate: each element in list of batch should be of equal size"
            )
        columns = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
            return type(elem)(*columns)
        return columns
    raise TypeError(
        "default_collate: batch must contain Tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


class DataLoader:
    """Iterate over mini-batches, in either of two forms.

    ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
    generator=None)``, as in PyTorch: ``dataset`` has ``__getitem__`` and ``__len__``;
    each batch is ``collate_fn(list_of_samples)`` (default :func:`default_collate`, so a
    ``(x, y)`` sample gives ``[xb, yb]`` Tensors with a first dimension N). With
    ``shuffle=True`` the order is redrawn every epoch from ``generator`` (an
    ``np.random.Generator``), or from minidl's global one (``minidl.manual_seed``).

    ``DataLoader(X, y, batch_size=1, shuffle=False, seed=None, drop_last=False,
    transform=None)``: ``(xb, yb)`` mini-batches of arrays, ``xb`` a Tensor and ``yb`` the
    ndarray slice of ``y`` (the fast form ``minidl train`` uses).

    The form is chosen by the arguments: ``y`` given (or ``seed=`` / ``transform=``) is
    the array form; anything else is the dataset form.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "DataLoader":
        if cls is DataLoader:
            cls = _ArrayDataLoader if _array_form(args, kwargs) else _DatasetDataLoader
        return object.__new__(cls)


class _DatasetDataLoader(DataLoader):
    """``DataLoader(dataset, ...)``: see :class:`DataLoader`."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                f"DataLoader: dataset must have __getitem__ and __len__, got "
                f"{type(dataset).__name__}"
            )
        _check_batch_size(batch_size)
        _check_callable(collate_fn, "collate_fn")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"DataLoader: generator must be a numpy.random.Generator, got "
                f"{type(generator).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.generator = generator

    def __len__(self) -> int:
        return _batch_count(len(self.dataset), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self.shuffle:
            rng = self.generator if self.generator is not None else get_generator()
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        # a TensorDataset of arrays (or a Subset of one): one gather per array gives what
        # collating the samples one by one would
        gather = tensor_arrays(self.dataset) if self.collate_fn is default_collate else None
        if gather is not None:
            arrays, positions = gather
            if positions is not None:
                order = positions[order]
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            if gather is not None:
                yield [Tensor(a[index]) for a in arrays]
            else:
                yield self.collate_fn([self.dataset[i] for i in index.tolist()])


class _ArrayDataLoader(DataLoader):
    """``DataLoader(X, y, ...)``: ``(xb, yb)`` mini-batches of arrays ``X`` (N, ...) and
    ``y`` (N, ...).

    ``xb`` is a :class:`minidl.Tensor` (after ``transform``, if given, is applied to the
    batch array); ``yb`` is the ndarray slice of ``y``. With ``shuffle=True`` the order is
    redrawn every epoch from the loader's own generator: ``np.random.default_rng(seed)``,
    or minidl's global generator when ``seed`` is None.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
            raise ValueError(
                f"DataLoader: X and y need the same first dimension, got shapes "
                f"{X.shape} and {y.shape}"
            )
        _check_batch_size(batch_size)
        _check_callable(transform, "transform")
        self.X, self.y = X, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        return _batch_count(len(self.X), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[Tensor, np.ndarray]]:
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
