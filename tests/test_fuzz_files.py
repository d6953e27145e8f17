"""Fuzzing the file readers with broken and hostile files (issue 22).

``minidl.load``, ``Module.load_state_dict`` and ``minidl.data.load_npz`` / ``load_idx`` /
``load_image_folder`` get random bytes, truncated and bit-flipped copies of valid files,
npz files holding object arrays (a pickle inside), and well-formed files with wrong keys,
shapes and dtypes. Each must give a ValueError or TypeError with a message (FileNotFound
for a file that is not there), never unpickle anything and never crash. Hypothesis runs
with a fixed seed (``derandomize``) so that CI sees the same cases every time.
"""

import gzip
import io
import pickle
import zipfile
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidl
from minidl import nn
from minidl.data import load_idx, load_image_folder, load_npz

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _no_pickle(*args, **kwargs):
    raise AssertionError("a file reader tried to unpickle")


@contextmanager
def _pickle_forbidden():
    with (
        mock.patch.object(pickle, "load", _no_pickle),
        mock.patch.object(pickle, "loads", _no_pickle),
        mock.patch.object(pickle, "Unpickler", _no_pickle),
    ):
        yield


def _expect_clear_error(fn):
    """Run ``fn``: it may succeed; a failure must be a ValueError/TypeError with a message."""
    with _pickle_forbidden():
        try:
            fn()
        except (ValueError, TypeError) as exc:
            assert str(exc), f"{type(exc).__name__} without a message"


def _valid_checkpoint() -> bytes:
    buf = io.BytesIO()
    path = _tmp_path / "valid.npz"
    minidl.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "epoch": 3, "s": "x"}, path)
    buf.write(path.read_bytes())
    return buf.getvalue()


def _npz_bytes(arrays: dict, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=allow_pickle)
    return buf.getvalue()


def _idx_bytes(magic: int, shape: tuple[int, ...]) -> bytes:
    head = magic.to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in shape)
    return head + bytes(int(np.prod(shape)))


_tmp_path = None


@pytest.fixture(autouse=True)
def _tmp(tmp_path):
    global _tmp_path
    _tmp_path = tmp_path


# a few hostile or broken payloads, mutated further by the strategies below
_ARRAYS = st.sampled_from(
    [
        np.zeros((2, 3), np.float32),
        np.zeros((4, 8, 8), np.uint8),
        np.zeros((4, 1, 8, 8), np.float64) + 2.0,
        np.array([0, 1, 2, 1], np.int64),
        np.array([0.5, 1.0]),
        np.array([1 + 2j]),
        np.array(["a", "b"]),
        np.array(3.0),
        np.zeros((0, 8, 8), np.uint8),
        np.array([np.nan, np.inf]),
        np.array([-1, 7], np.int64),
        np.zeros((4, 5), np.bool_),
    ]
)
_KEYS = st.sampled_from(["X", "y", "X_train", "y_train", "X_test", "y_test", "w", "__minidl__"])


def _mutate(data: bytes, how: str, cut: float, byte: int) -> bytes:
    if not data:
        return data
    i = int(cut * len(data)) % len(data)
    if how == "truncate":
        return data[:i]
    if how == "flip":
        return data[:i] + bytes([data[i] ^ (byte or 1)]) + data[i + 1 :]
    return data


@st.composite
def _files(draw):
    """Bytes of a broken file: random, a mutated valid file, or an npz of odd arrays."""
    kind = draw(st.sampled_from(["random", "checkpoint", "npz", "object", "idx", "text"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=100)).encode()
    if kind == "checkpoint":
        data = _valid_checkpoint()
    elif kind == "object":
        a = np.empty(2, dtype=object)
        a[:] = [{"x": 1}, [2]]
        data = _npz_bytes({draw(_KEYS): a, "X": np.zeros((2, 8, 8), np.uint8)}, True)
    elif kind == "idx":
        n = draw(st.integers(0, 3))
        magic = draw(st.sampled_from([0x803, 0x801, 0x0D03, 2**32 - 1]))
        data = _idx_bytes(magic, (n, 4, 4) if magic != 0x801 else (n,))
        if draw(st.booleans()):
            data = gzip.compress(data)
    else:
        data = _npz_bytes(draw(st.dictionaries(_KEYS, _ARRAYS, max_size=5)))
    how = draw(st.sampled_from(["truncate", "flip", "keep"]))
    return _mutate(data, how, draw(st.floats(0, 1)), draw(st.integers(0, 255)))


@SETTINGS
@given(data=_files())
def test_load_refuses_broken_files_clearly(data):
    path = _tmp_path / "f.npz"
    path.write_bytes(data)
    _expect_clear_error(lambda: minidl.load(path))


@SETTINGS
@given(data=_files(), test_size=st.sampled_from([0.2, 0.5, 0.0, 1.0, -1, 2, 0.99]))
def test_load_npz_refuses_broken_files_clearly(data, test_size):
    path = _tmp_path / "d.npz"
    path.write_bytes(data)
    _expect_clear_error(lambda: load_npz(path, test_size=test_size))


@SETTINGS
@given(images=_files(), labels=_files())
def test_load_idx_refuses_broken_files_clearly(images, labels):
    (_tmp_path / "i.idx").write_bytes(images)
    (_tmp_path / "l.idx").write_bytes(labels)
    _expect_clear_error(lambda: load_idx(_tmp_path / "i.idx", _tmp_path / "l.idx"))


@SETTINGS
@given(
    files=st.lists(_files(), min_size=1, max_size=3),
    suffix=st.sampled_from([".png", ".jpg", ".jpeg"]),
    size=st.sampled_from([None, (4, 4), 3, (0, 2), (2,), "x"]),
)
def test_load_image_folder_refuses_broken_images_clearly(files, suffix, size):
    pytest.importorskip("PIL")
    root = _tmp_path / "imgs"
    for old in root.glob("*/*"):
        old.unlink()
    (root / "a").mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(files):
        (root / "a" / f"{i}{suffix}").write_bytes(data)
    _expect_clear_error(lambda: load_image_folder(root, size=size))


_VALUES = st.one_of(
    _ARRAYS,
    st.sampled_from([None, "abc", 3, 2.5, True, [1, 2], {"a": 1}, b"xy"]),
    st.builds(lambda s: minidl.tensor(np.zeros(s, np.float32)), st.sampled_from([(4, 3), (4,)])),
)


@SETTINGS
@given(
    state=st.dictionaries(
        st.sampled_from(["weight", "bias", "0.weight", "weight.extra", "", "running_mean"]),
        _VALUES,
        max_size=4,
    ),
    strict=st.sampled_from([True, False, None, 1]),
)
def test_load_state_dict_refuses_wrong_keys_shapes_and_dtypes_clearly(state, strict):
    model = nn.Linear(3, 4)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    with _pickle_forbidden():
        try:
            model.load_state_dict(state, strict=strict)
        except (ValueError, TypeError) as exc:
            assert str(exc)
            for k, v in model.state_dict().items():  # nothing half-loaded
                assert np.array_equal(np.asarray(v), before[k])
