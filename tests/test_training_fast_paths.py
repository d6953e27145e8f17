"""The shortcuts taken for speed in the data path and ``minidl train`` keep their meaning."""

import gc

import numpy as np
import pytest

from minidl.data import DataLoader
from minidl.training import gc_quiet


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("transform", [None, lambda x: x, "view_of_X"])
def test_batches_never_alias_the_data(shuffle, transform):
    X = np.arange(10 * 1 * 2 * 2, dtype=np.float32).reshape(10, 1, 2, 2)
    y = np.arange(10)
    saved = X.copy()
    if transform == "view_of_X":

        def transform(xb):  # a (bad) transform returning part of X itself
            return X[: len(xb)]

    loader = DataLoader(X, y, batch_size=4, shuffle=shuffle, seed=0, transform=transform)
    for xb, _ in loader:
        assert not np.shares_memory(xb.data, X)
        xb.data[...] = -1
    np.testing.assert_array_equal(X, saved)


def test_a_transform_reusing_its_output_array_still_gives_separate_batches():
    X = np.arange(8 * 4, dtype=np.float32).reshape(8, 1, 2, 2)
    buffer = np.empty((2, 1, 2, 2), np.float32)

    def into_buffer(xb):
        np.copyto(buffer, xb)
        return buffer

    batches = [
        xb
        for xb, _ in DataLoader(
            X, np.arange(8), batch_size=2, shuffle=True, seed=0, transform=into_buffer
        )
    ]
    assert len({id(b.data) for b in batches}) == 4
    assert not any(np.shares_memory(b.data, buffer) for b in batches)


def test_gc_quiet_restores_the_collector_and_leaves_a_callers_freeze_alone():
    assert gc.get_freeze_count() == 0
    with gc_quiet():
        assert gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_quiet():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
