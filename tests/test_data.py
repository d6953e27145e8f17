"""load_digits, DataLoader and the random-shift augmentation."""

import numpy as np
import pytest

import minidl
from minidl.data import DataLoader, load_digits, random_shift


def test_load_digits_shapes_dtypes_range_and_stratification():
    X_train, y_train, X_test, y_test = load_digits()
    assert X_train.shape == (1437, 1, 8, 8) and X_test.shape == (360, 1, 8, 8)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    both = np.concatenate([X_train, X_test])
    assert both.min() == 0.0 and both.max() == 1.0
    # stratified: every class is ~20% in the test split
    total = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.2 * total) <= 1)
    # the split is fixed by random_state and changes with it
    again = load_digits()
    assert np.array_equal(again[3], y_test) and np.array_equal(again[0], X_train)
    other = load_digits(random_state=1)
    assert not np.array_equal(other[3], y_test)


def test_load_digits_test_size():
    X_train, _, X_test, _ = load_digits(test_size=0.5)
    assert len(X_train) + len(X_test) == 1797 and abs(len(X_test) - 898.5) <= 1


def _batches(loader):
    return [(xb.data.copy(), yb.copy()) for xb, yb in loader]


def test_dataloader_batches_in_order_without_shuffle():
    X = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    batches = _batches(DataLoader(X, y, batch_size=4))
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate([yb for _, yb in batches]), y)
    xb, _ = next(iter(DataLoader(X, y, batch_size=4)))
    assert isinstance(xb, minidl.Tensor) and xb.shape == (4, 1) and not xb.requires_grad
    assert len(DataLoader(X, y, batch_size=4)) == 3
    assert len(DataLoader(X, y, batch_size=4, drop_last=True)) == 2
    assert [len(yb) for _, yb in _batches(DataLoader(X, y, batch_size=4, drop_last=True))] == [4, 4]


def test_dataloader_shuffle_is_a_permutation_redrawn_each_epoch_and_seeded():
    X = np.arange(50, dtype=np.float32).reshape(50, 1)
    y = np.arange(50)
    loader = DataLoader(X, y, batch_size=7, shuffle=True, seed=3)
    epoch1 = np.concatenate([yb for _, yb in loader])
    epoch2 = np.concatenate([yb for _, yb in loader])
    assert sorted(epoch1) == list(range(50)) and sorted(epoch2) == list(range(50))
    assert not np.array_equal(epoch1, epoch2)
    for xb, yb in loader:  # images stay paired with their labels
        assert np.array_equal(xb.data[:, 0], yb.astype(np.float32))
    same = DataLoader(X, y, batch_size=7, shuffle=True, seed=3)
    assert np.array_equal(np.concatenate([yb for _, yb in same]), epoch1)
    assert not np.array_equal(
        np.concatenate([yb for _, yb in DataLoader(X, y, 7, shuffle=True, seed=4)]), epoch1
    )


def test_dataloader_without_seed_follows_manual_seed():
    X, y = np.zeros((30, 2), dtype=np.float32), np.arange(30)
    minidl.manual_seed(5)
    a = np.concatenate([yb for _, yb in DataLoader(X, y, 8, shuffle=True)])
    minidl.manual_seed(5)
    b = np.concatenate([yb for _, yb in DataLoader(X, y, 8, shuffle=True)])
    assert np.array_equal(a, b)


def test_dataloader_transform_is_applied_to_the_batch():
    X, y = np.ones((6, 1, 2, 2), dtype=np.float32), np.arange(6)
    loader = DataLoader(X, y, batch_size=3, transform=lambda xb: xb * 2)
    assert all(np.all(xb.data == 2) for xb, _ in loader)
    assert np.all(X == 1)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(batch_size=0), ValueError),
        (dict(batch_size=2.5), ValueError),
        (dict(transform=3), TypeError),
    ],
)
def test_dataloader_bad_arguments(kwargs, error):
    with pytest.raises(error):
        DataLoader(np.zeros((4, 1)), np.zeros(4), **kwargs)


def test_dataloader_length_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(3,\)"):
        DataLoader(np.zeros((4, 1)), np.zeros(3))


def _shift_by(image, dy, dx):
    """Move an (C, H, W) image down by dy and right by dx, filling with zeros."""
    out = np.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    rng = np.random.default_rng(0)
    images = rng.random((200, 2, 5, 6)).astype(np.float32) + 0.1  # no zeros inside
    shifted = random_shift(1, seed=0)(images)
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    found = set()
    for original, out in zip(images, shifted):
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if np.array_equal(out, _shift_by(original, dy, dx))
        ]
        assert len(matches) == 1
        found.add(matches[0])
    assert len(found) == 9  # all nine shifts occur on 200 images


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_matches_a_per_image_shift_with_the_drawn_offsets(max_shift):
    images = np.random.default_rng(0).random((40, 2, 5, 6)).astype(np.float32)
    shifted = random_shift(max_shift, seed=3)(images)
    # the offsets are the generator's first 2n draws: dy for every image, then dx
    dy, dx = np.random.default_rng(3).integers(-max_shift, max_shift + 1, size=(2, 40))
    for i in range(40):
        np.testing.assert_array_equal(shifted[i], _shift_by(images[i], dy[i], dx[i]))
    assert shifted.flags.c_contiguous and shifted.flags.writeable


def test_random_shift_is_seeded():
    images = np.random.default_rng(1).random((20, 1, 8, 8)).astype(np.float32)
    a, b = random_shift(1, seed=7), random_shift(1, seed=7)
    assert np.array_equal(a(images), b(images))
    assert np.array_equal(random_shift(0)(images), images)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(-1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_shift(1)(np.zeros((8, 8)))
