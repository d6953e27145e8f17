"""Saving and loading state dicts as ``.npz`` files (no pickle).

A flat ``{name: array}`` mapping (a module's ``state_dict()``) is stored as a plain npz
with the same keys. Nested containers (an optimizer's ``state_dict()``: dicts with int
keys, lists, tuples, numbers, strings) are stored too: their arrays as npz entries and the
structure as JSON text in the entry ``__minidl_tree__``; ``load`` rebuilds them.

``save`` writes to a temporary file in the destination folder and then moves it into
place with ``os.replace``, so a crash never leaves a half-written checkpoint. ``load``
opens the file with ``allow_pickle=False``: loading an untrusted file cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from minidl.autograd import is_tensor

_TREE_KEY = "__minidl_tree__"


def _as_array(key: str, value: Any) -> np.ndarray:
    if is_tensor(value):
        value = value.data
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biufcSU":
        raise TypeError(
            f"save: value for key {key!r} is not numeric ({type(value).__name__}); "
            f"only arrays, Tensors and numbers can be saved"
        )
    return array


def _is_array_like(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic)) or is_tensor(value)


def _encode(value: Any, arrays: dict[str, np.ndarray], path: list[str]) -> Any:
    """JSON-able skeleton of ``value``; its arrays go into ``arrays`` under path names."""
    if _is_array_like(value):
        name = "/".join(path) or "array"
        arrays[name] = _as_array(name, value)
        return {"$array": name}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: nested dict keys must be str or int, got {k!r}")
            items.append([k, _encode(v, arrays, path + [str(k)])])
        return {"$dict": items}
    if isinstance(value, (list, tuple)):
        tag = "$list" if isinstance(value, list) else "$tuple"
        return {tag: [_encode(v, arrays, path + [str(i)]) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save: cannot store {type(value).__name__} at {'/'.join(path)!r}")


def _decode(node: Any, archive: Mapping[str, np.ndarray]) -> Any:
    if isinstance(node, dict):
        if "$array" in node:
            return archive[node["$array"]]
        if "$dict" in node:
            return {k: _decode(v, archive) for k, v in node["$dict"]}
        if "$list" in node:
            return [_decode(v, archive) for v in node["$list"]]
        if "$tuple" in node:
            return tuple(_decode(v, archive) for v in node["$tuple"])
        raise ValueError(f"load: unknown node in the stored structure: {sorted(node)}")
    return node


def save(obj: Mapping[Any, Any], path: str | os.PathLike[str]) -> None:
    """Save ``obj`` to ``path`` (npz; the file name is used as given).

    ``obj`` is a mapping ``{name: ndarray or Tensor}`` (its key order is kept by
    :func:`load`), or a nested dict of such values, lists, tuples, numbers and strings.
    """
    if not isinstance(obj, dict) and not (hasattr(obj, "items") and hasattr(obj, "keys")):
        raise TypeError(f"save expects a dict (e.g. a state_dict), got {type(obj).__name__}")
    for key in obj:
        if not isinstance(key, str) and not (isinstance(key, int) and not isinstance(key, bool)):
            raise TypeError(f"save: keys must be str, got {key!r} ({type(key).__name__})")
    flat = all(isinstance(k, str) and k != _TREE_KEY for k in obj) and all(
        not isinstance(v, (dict, list, tuple, str)) and v is not None for v in obj.values()
    )
    if flat:
        arrays = {key: _as_array(key, value) for key, value in obj.items()}
    else:
        arrays = {}
        tree = _encode(dict(obj), arrays, [])
        arrays[_TREE_KEY] = np.frombuffer(json.dumps(tree).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes it owner-only
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a file written by :func:`save`: ``{name: ndarray}`` in the saved order, or the
    nested structure that was saved."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    if _TREE_KEY in arrays:
        tree = json.loads(arrays.pop(_TREE_KEY).tobytes().decode("utf-8"))
        return _decode(tree, arrays)
    return arrays
