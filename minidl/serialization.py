"""Saving and loading state dicts and checkpoints as ``.npz`` files (no pickle).

The file is a zip of ``.npy`` members, as numpy's ``savez`` writes, plus one member,
``__minidl__``, holding JSON: the format name and version and the skeleton of what was
saved (dicts with str or int keys, lists, tuples, None, bools, ints, floats and strings).
Each array in the skeleton names its member. A flat ``{name: array}`` mapping (a module's
``state_dict()``) keeps its keys as member names, so ``np.load`` reads it too.

``save`` writes the zip itself (numpy's ``savez`` would take keys such as ``file`` or
``allow_pickle`` as its own arguments), to a temporary file in the destination folder
that is fsynced and then renamed into place; the folder is fsynced after the rename.
A process killed mid-save leaves at most its temporary file, which the next save into
that folder removes. ``load`` never unpickles: loading an untrusted file cannot run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from typing import Any

import numpy as np

from minidl.autograd import Tensor

__all__ = ["save", "load", "CheckpointError", "FORMAT_VERSION"]

FORMAT_VERSION = 2
_HEADER = "__minidl__"
_LEGACY_TREE = "__minidl_tree__"  # format 1: the skeleton of nested containers only
_TMP_PREFIX = ".minidl-tmp-"
_ARRAY_KINDS = "biufcSU"


class CheckpointError(ValueError):
    """A file that is not a minidl checkpoint, or one this version cannot read."""


# ---- save ---------------------------------------------------------------------------
def _array(where: str, value: Any) -> np.ndarray:
    array = value.data if isinstance(value, Tensor) else value
    if array.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(
            f"save: {where} is an array of dtype {array.dtype}; only numeric, bool and "
            f"string arrays can be saved"
        )
    return array


class _Encoder:
    """Turns a value into its JSON skeleton; arrays go to ``self.arrays`` (member names)."""

    def __init__(self, reserved: set[str]):
        self.arrays: dict[str, np.ndarray] = {}
        self._reserved = reserved
        self._count = 0

    def _new_name(self) -> str:
        while True:
            name = f"{_HEADER}array{self._count}"
            self._count += 1
            if name not in self._reserved:
                return name

    def add(self, array: np.ndarray, name: str | None = None) -> str:
        name = name if name is not None else self._new_name()
        self.arrays[name] = array
        return name

    def encode(self, value: Any, where: str) -> Any:
        if isinstance(value, (np.ndarray, Tensor)):
            return {"$array": self.add(_array(where, value))}
        if isinstance(value, np.generic):
            return {"$scalar": self.add(_array(where, np.asarray(value)))}
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"save: keys must be str or int, got {k!r} in {where}")
                items.append([k, self.encode(v, f"{where}[{k!r}]")])
            return {"$dict": items}
        if isinstance(value, (list, tuple)):
            tag = "$list" if isinstance(value, list) else "$tuple"
            return {tag: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(
            f"save: cannot store a {type(value).__name__} at {where}; only arrays, Tensors, "
            f"numbers, strings, None and dicts, lists and tuples of them"
        )


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def _member_name_ok(key: str) -> bool:
    return _PLAIN_NAME.fullmatch(key) is not None and not key.startswith(_HEADER)


def _encode_root(obj: dict) -> tuple[Any, dict[str, np.ndarray]]:
    # Top-level arrays under str keys keep their key as member name (np.load reads them
    # by name); everything else gets a generated name.
    named = {
        k: v
        for k, v in obj.items()
        if isinstance(k, str) and _member_name_ok(k) and isinstance(v, (np.ndarray, Tensor))
    }
    encoder = _Encoder(reserved=set(named))
    items = []
    for k, v in obj.items():
        if isinstance(k, bool) or not isinstance(k, (str, int)):
            raise TypeError(f"save: keys must be str or int, got {k!r} ({type(k).__name__})")
        if k in named:
            items.append([k, {"$array": encoder.add(_array(repr(k), v), name=k)}])
        else:
            items.append([k, encoder.encode(v, repr(k))])
    return {"$dict": items}, encoder.arrays


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temporaries(folder: str) -> None:
    """Delete temporary files of earlier saves whose process no longer runs."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(_TMP_PREFIX):
            continue
        pid_text = name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, name))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def save(obj: dict, path: str | os.PathLike) -> None:
    """Save ``obj`` to ``path`` (an npz file; the name is used as given).

    ``obj`` is a dict with str or int keys whose values are ndarrays, Tensors (saved as
    their arrays), numpy scalars, Python numbers, strings, None, or dicts, lists and
    tuples of those. :func:`load` gives back the same keys, order, types and values;
    anything else is refused here with a TypeError.
    """
    if not isinstance(obj, dict):
        raise TypeError(f"save expects a dict (e.g. a state_dict), got {type(obj).__name__}")
    tree, arrays = _encode_root(obj)
    header = {"format": "minidl", "version": FORMAT_VERSION, "tree": tree}
    try:
        header_bytes = json.dumps(header, allow_nan=True).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise TypeError(f"save: a key or string cannot be stored: {exc}") from None
    path = os.fspath(path)
    if path == "":
        raise ValueError("save: path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path} is a folder, not a file")
    _remove_stale_temporaries(folder)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f"{_TMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                with zf.open(_HEADER + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(
                        member, np.frombuffer(header_bytes, np.uint8), allow_pickle=False
                    )
                for name, array in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes it owner-only
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- load ---------------------------------------------------------------------------
def _read_members(path: str) -> dict[str, np.ndarray]:
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"not a minidl checkpoint: {path} ({why})")

    if os.path.isdir(path):
        raise bad("it is a folder")
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            start = f.read(6)
        if start == b"\x93NUMPY":
            raise bad("a single .npy array, not an npz archive") from None
        raise bad("not an npz (zip) archive, or a truncated one") from None
    except OSError as exc:
        raise bad(str(exc)) from None
    members = {}
    with zf:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise bad(f"unexpected member {name!r}")
            try:
                with zf.open(info) as f:
                    members[name[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
            except ValueError as exc:
                if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                    raise bad(
                        f"entry {name[:-4]!r} holds Python objects; minidl never unpickles"
                    ) from None
                raise bad(f"entry {name[:-4]!r} cannot be read: {exc}") from None
            except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
                raise bad(f"entry {name[:-4]!r} is truncated or corrupt: {exc}") from None
    return members


def _decode(node: Any, members: dict[str, np.ndarray], path: str) -> Any:
    if isinstance(node, dict):
        ((tag, value),) = node.items()
        if tag == "$array":
            return members[value]
        if tag == "$scalar":
            return members[value][()]
        if tag == "$dict":
            return {k: _decode(v, members, path) for k, v in value}
        if tag == "$list":
            return [_decode(v, members, path) for v in value]
        if tag == "$tuple":
            return tuple(_decode(v, members, path) for v in value)
        raise CheckpointError(f"not a minidl checkpoint: {path} (unknown node {tag!r})")
    return node


def _header(members: dict[str, np.ndarray], path: str) -> dict | None:
    raw = members.pop(_HEADER, None)
    if raw is None:
        return None
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"not a minidl checkpoint: {path} (unreadable header)") from None
    if not isinstance(header, dict) or header.get("format") != "minidl":
        raise CheckpointError(f"not a minidl checkpoint: {path} (unknown header)")
    version = header.get("version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is a minidl checkpoint of format version {version!r}; this minidl "
            f"reads version {FORMAT_VERSION} (and the plain npz files of version 1)"
        )
    return header


def load(path: str | os.PathLike) -> dict:
    """Load what :func:`save` wrote: the same keys, order, types and values.

    Raises :class:`CheckpointError` (a ValueError) naming the path for a file that is
    not a minidl checkpoint (random bytes, a truncated file, a ``.npy``, a text file, an
    archive holding Python objects). Plain npz files of numeric arrays (what older
    minidl versions wrote) load as ``{name: ndarray}``.
    """
    path = os.fspath(path)
    members = _read_members(path)
    header = _header(members, path)
    try:
        if header is not None:
            return _decode(header["tree"], members, path)
        if _LEGACY_TREE in members:
            tree = json.loads(members.pop(_LEGACY_TREE).tobytes().decode("utf-8"))
            return _decode_legacy(tree, members)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(
            f"not a minidl checkpoint: {path} (inconsistent structure: {exc!r})"
        ) from None
    return members


def _decode_legacy(node: Any, members: dict[str, np.ndarray]) -> Any:
    if isinstance(node, dict):
        if "$array" in node:
            return members[node["$array"]]
        if "$dict" in node:
            return {k: _decode_legacy(v, members) for k, v in node["$dict"]}
        if "$list" in node:
            return [_decode_legacy(v, members) for v in node["$list"]]
        if "$tuple" in node:
            return tuple(_decode_legacy(v, members) for v in node["$tuple"])
        raise ValueError(f"unknown node {sorted(node)}")
    return node
