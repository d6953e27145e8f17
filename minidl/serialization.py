"""Saving and loading state dicts as ``.npz`` files (no pickle).

``save`` writes to a temporary file in the destination folder and then moves it into
place with ``os.replace``, so a crash never leaves a half-written checkpoint. ``load``
opens the file with ``allow_pickle=False``: loading an untrusted file cannot run code.
"""
import os
import tempfile

import numpy as np


def _as_array(key, value):
    if hasattr(value, "detach") and hasattr(value, "data"):  # a Tensor or Parameter
        value = value.data
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"save: value for key {key!r} is not numeric (object array of "
                        f"{type(value).__name__}); only arrays, Tensors and numbers can be saved")
    return array


def save(state_dict, path):
    """Save a mapping ``{name: ndarray or Tensor}`` to ``path`` (npz; the name is kept as is).

    Keys must be strings; their order is preserved by ``load``.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save expects a dict of arrays, got {type(state_dict).__name__}")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be str, got {key!r} ({type(key).__name__})")
        arrays[key] = _as_array(key, value)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def load(path):
    """Load a file written by :func:`save`; returns ``{name: ndarray}`` in the saved order."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
