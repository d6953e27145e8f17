"""Dataset, TensorDataset, Subset, ConcatDataset, random_split, default_collate and the
dataset form of DataLoader, against torch.utils.data where PyTorch has the same thing."""

from collections import namedtuple

import numpy as np
import pytest

import minidl
from minidl.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


class Squares(Dataset):
    """Samples (x, y): x = [i, i*i] float32, y = i % 3 (a Python int)."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.array([i, i * i], dtype=np.float32), i % 3

    def __len__(self):
        return self.n


def _xy(n=10):
    X = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    return X, np.arange(n, dtype=np.int64) % 4


def test_tensor_dataset_indexes_every_array_and_tensor():
    X, y = _xy()
    ds = TensorDataset(X, minidl.tensor(y))
    assert len(ds) == 10
    x3, y3 = ds[3]
    assert np.array_equal(x3, X[3]) and isinstance(y3, minidl.Tensor) and y3.item() == y[3]
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(X, y[:5])
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))
    with pytest.raises(TypeError, match="int"):
        TensorDataset(5)


def test_subset_and_concat_match_torch():
    torch = pytest.importorskip("torch")
    tdata = torch.utils.data
    a, b = Squares(5), Squares(7)
    ours = ConcatDataset([a, Subset(b, [6, 0, 3])]) + a
    theirs = tdata.ConcatDataset([a, tdata.Subset(b, [6, 0, 3])]) + a
    assert isinstance(ours, ConcatDataset) and len(ours) == len(theirs) == 13
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    for i in list(range(13)) + [-1, -13]:
        (x, y), (xt, yt) = ours[i], theirs[i]
        assert np.array_equal(x, xt) and y == yt
    with pytest.raises(IndexError):
        ours[13]
    with pytest.raises(ValueError, match="exceed"):
        ours[-14]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="__getitem__"):
        ConcatDataset([a, 3])
    X, y = _xy()
    sub = Subset(TensorDataset(X, y), [7, 2, 5])
    xs, ys = sub[[0, 2]]
    assert np.array_equal(xs, X[[7, 5]]) and np.array_equal(ys, y[[7, 5]])


@pytest.mark.parametrize(
    "n, lengths",
    [
        (10, [0.5, 0.5]),
        (11, [0.3, 0.3, 0.4]),
        (7, [0.1, 0.9]),
        (100, [0.33, 0.33, 0.34]),
        (5, [2, 3]),
    ],
)
def test_random_split_lengths_match_torch_and_partition_the_data(n, lengths):
    torch = pytest.importorskip("torch")
    data = Squares(n)
    parts = random_split(data, lengths, generator=np.random.default_rng(0))
    theirs = torch.utils.data.random_split(data, lengths, torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [len(p) for p in theirs]
    assert all(isinstance(p, Subset) and p.dataset is data for p in parts)
    assert sorted(i for p in parts for i in p.indices) == list(range(n))


def test_random_split_is_seeded_by_its_generator_or_manual_seed():
    data = Squares(50)
    a = random_split(data, [20, 30], generator=np.random.default_rng(3))
    b = random_split(data, [20, 30], generator=np.random.default_rng(3))
    assert a[0].indices == b[0].indices and a[0].indices != list(range(20))
    minidl.manual_seed(4)
    c = random_split(data, [0.4, 0.6])
    minidl.manual_seed(4)
    d = random_split(data, [0.4, 0.6])
    assert c[1].indices == d[1].indices


@pytest.mark.parametrize(
    "lengths, generator, error, message",
    [
        ([3, 3], None, ValueError, "Sum of input lengths"),
        ([0.5, 0.6], None, ValueError, "fractions"),
        ([-1, 11], None, ValueError, ">= 0"),
        (["5", 5], None, TypeError, "numbers"),
        ([], None, ValueError, "empty"),
        ([5, 5], 42, TypeError, "Generator"),
    ],
)
def test_random_split_errors(lengths, generator, error, message):
    with pytest.raises(error, match=message):
        random_split(Squares(10), lengths, generator=generator)


def test_random_split_warns_about_an_empty_split():
    with pytest.warns(UserWarning) as caught:
        parts = random_split(Squares(2), [0.9, 0.05, 0.05])
    assert ["index 1 is 0" in str(w.message) for w in caught] == [True, False]
    assert "index 2 is 0" in str(caught[1].message)
    assert [len(p) for p in parts] == [2, 0, 0]


def _torch_batches(torch, dataset, **kwargs):
    return list(torch.utils.data.DataLoader(dataset, **kwargs))


def _same(ours, theirs):
    if isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    elif isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for k in theirs:
            _same(ours[k], theirs[k])
    elif hasattr(theirs, "numpy"):
        assert isinstance(ours, minidl.Tensor) and not ours.requires_grad
        expected = theirs.numpy()
        assert ours.dtype == expected.dtype and ours.shape == expected.shape
        assert np.array_equal(ours.data, expected)
    else:
        assert ours == theirs


Point = namedtuple("Point", "x label")


class Mixed(Dataset):
    """Samples of every kind default_collate handles."""

    def __getitem__(self, i):
        return {
            "image": np.full((2, 2), i, dtype=np.float64),
            "label": np.int64(i % 2),
            "weight": 0.5 * i,
            "flag": bool(i % 2),
            "name": f"s{i}",
            "pair": (i, np.float32(i / 2)),
            "point": Point(np.array([i, -i], dtype=np.int32), i),
        }

    def __len__(self):
        return 7


@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (3, False), (3, True), (7, False)])
@pytest.mark.parametrize("make", [lambda: Squares(10), lambda: TensorDataset(*_xy()), Mixed])
def test_dataset_loader_batches_match_torch(make, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    dataset = make()
    theirs_dataset = dataset
    if isinstance(dataset, TensorDataset):
        theirs_dataset = torch.utils.data.TensorDataset(*map(torch.from_numpy, dataset.tensors))
    loader = DataLoader(dataset, batch_size=batch_size, drop_last=drop_last)
    theirs = _torch_batches(torch, theirs_dataset, batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(theirs)
    ours = list(loader)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _same(a, b)


@pytest.mark.parametrize("subset", [False, True])
def test_the_tensor_dataset_gather_equals_collating_sample_by_sample(subset):
    X, y = _xy(23)
    ds = TensorDataset(X, minidl.tensor(y))
    if subset:  # a Subset of a Subset: positions compose
        ds = Subset(Subset(ds, list(range(22, -1, -1))), [3, 0, 7, 7, 12, -1, 5, 9, 1, 2, 4])
    for shuffle in (False, True):
        fast = DataLoader(ds, 5, shuffle, generator=np.random.default_rng(1))
        slow = DataLoader(
            ds,
            5,
            shuffle,
            collate_fn=lambda b: default_collate(b),
            generator=np.random.default_rng(1),
        )
        for (xa, ya), (xb, yb) in zip(fast, slow):
            assert np.array_equal(xa.data, xb.data) and xa.dtype == xb.dtype
            assert np.array_equal(ya.data, yb.data) and ya.dtype == yb.dtype
        xb, _ = next(iter(fast))
        assert not np.may_share_memory(xb.data, X)


def test_shuffle_is_a_fresh_permutation_each_epoch_and_seeded():
    ds = TensorDataset(np.arange(40, dtype=np.float32), np.arange(40))
    loader = DataLoader(ds, batch_size=6, shuffle=True, generator=np.random.default_rng(7))
    e1 = np.concatenate([yb.data for _, yb in loader])
    e2 = np.concatenate([yb.data for _, yb in loader])
    assert sorted(e1) == sorted(e2) == list(range(40)) and not np.array_equal(e1, e2)
    for xb, yb in loader:
        assert np.array_equal(xb.data, yb.data.astype(np.float32))
    again = DataLoader(ds, batch_size=6, shuffle=True, generator=np.random.default_rng(7))
    assert np.array_equal(np.concatenate([yb.data for _, yb in again]), e1)
    runs = []
    for _ in range(2):
        minidl.manual_seed(11)
        runs.append(np.concatenate([yb.data for _, yb in DataLoader(ds, 6, shuffle=True)]))
    assert np.array_equal(*runs)


def test_collate_fn_is_used():
    loader = DataLoader(Squares(5), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]


def test_both_call_forms():
    X, y = _xy(9)
    xb, yb = next(iter(DataLoader(X, y, 4)))  # the array form: (Tensor, ndarray)
    assert isinstance(xb, minidl.Tensor) and type(yb) is np.ndarray and len(yb) == 4
    xb, yb = next(iter(DataLoader(list(X), list(y), batch_size=4)))
    assert isinstance(xb, minidl.Tensor) and type(yb) is np.ndarray
    batch = next(iter(DataLoader(TensorDataset(X, y), 4)))  # dataset form: [Tensor, Tensor]
    assert isinstance(batch, list) and all(isinstance(t, minidl.Tensor) for t in batch)
    rows = next(iter(DataLoader(X, 4)))  # an array alone is a data set of its rows
    assert isinstance(rows, minidl.Tensor) and np.array_equal(rows.data, X[:4])
    assert len(DataLoader(dataset=Squares(9), batch_size=4)) == 3
    assert len(DataLoader(X=X, y=y, batch_size=4)) == 3
    assert all(isinstance(d, DataLoader) for d in (DataLoader(X, y), DataLoader(Squares(3))))


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((3,), {}, TypeError, "__getitem__"),
        ((), {}, TypeError, "dataset"),
        ((Squares(3),), dict(batch_size=0), ValueError, "batch_size"),
        ((Squares(3),), dict(batch_size=None), ValueError, "batch_size"),
        ((Squares(3),), dict(collate_fn=5), TypeError, "collate_fn"),
        ((Squares(3),), dict(generator=1), TypeError, "generator"),
    ],
)
def test_dataset_loader_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(*args, **kwargs)


@pytest.mark.parametrize(
    "batch, error, message",
    [
        ([], ValueError, "empty"),
        ([np.zeros(2), np.zeros(3)], ValueError, "same shape"),
        ([(1, 2), (1,)], ValueError, "equal size"),
        ([np.array(["a"])], TypeError, "dtype"),
        ([None], TypeError, "found NoneType"),
    ],
)
def test_default_collate_errors(batch, error, message):
    with pytest.raises(error, match=message):
        default_collate(batch)


def test_a_model_trains_from_a_dataset_loader():
    from minidl import nn, optim

    minidl.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    train, _ = random_split(TensorDataset(X, y), [0.75, 0.25])
    model = nn.Linear(4, 2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(20):
        for xb, yb in DataLoader(train, batch_size=16, shuffle=True):
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
