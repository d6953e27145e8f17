"""minidl.save / minidl.load: npz without pickle, atomic replace, order kept."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl


def test_round_trip_is_bit_exact_and_keeps_order(tmp_path):
    rng = np.random.default_rng(0)
    state = {
        "z.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "a.bias": rng.standard_normal(3),
        "features.0.weight": np.arange(6, dtype=np.int64).reshape(2, 3),
        "scalar": np.float64(2.5),
    }
    path = tmp_path / "model.npz"
    minidl.save(state, path)
    loaded = minidl.load(path)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == np.asarray(value).dtype
        assert np.array_equal(loaded[key], value)


def test_tensors_are_saved_as_arrays_and_the_path_is_used_as_given(tmp_path):
    t = minidl.tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    path = tmp_path / "weights.ckpt"  # no .npz appended
    minidl.save({"t": t}, str(path))
    assert os.listdir(tmp_path) == ["weights.ckpt"]
    assert np.array_equal(minidl.load(path)["t"], t.data)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    minidl.save({"w": np.ones(3)}, path)

    def broken_write(file, array, **kwargs):
        file.write(b"half an array")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken_write)
    with pytest.raises(OSError, match="disk full"):
        minidl.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert np.array_equal(minidl.load(path)["w"], np.ones(3))


def test_pickled_content_is_refused_on_save_and_load(tmp_path):
    with pytest.raises(TypeError, match="'bad'"):
        minidl.save({"bad": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str"):
        minidl.save({1.5: np.ones(1)}, tmp_path / "x.npz")
    with pytest.raises(TypeError):
        minidl.save([np.ones(1)], tmp_path / "x.npz")
    evil = tmp_path / "evil.npz"
    np.savez(evil, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        minidl.load(evil)


def test_nested_optimizer_state_round_trips(tmp_path):
    from minidl import nn, optim

    p = nn.Parameter(np.array([1.0, 2.0], dtype=np.float32))
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9))
    p.grad = np.array([0.5, -0.5], dtype=np.float32)
    opt.step()
    state = opt.state_dict()
    minidl.save(state, tmp_path / "opt.npz")
    loaded = minidl.load(tmp_path / "opt.npz")
    assert loaded["param_groups"] == state["param_groups"]  # tuples, floats, bools kept
    assert list(loaded["state"]) == [0] and loaded["state"][0]["step"] == 1
    for name in ("exp_avg", "exp_avg_sq"):
        assert np.array_equal(loaded["state"][0][name], state["state"][0][name])
        assert loaded["state"][0][name].dtype == np.float32
    resumed = optim.Adam([nn.Parameter(p.data.copy())], lr=0.01, betas=(0.8, 0.9))
    resumed.load_state_dict(loaded)
    assert resumed.state_dict()["param_groups"] == state["param_groups"]


# ---- whatever save accepts, load gives back (issue 22) --------------------------------

_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint16, np.bool_])
_arrays = hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
_keys = st.one_of(st.text(max_size=10), st.integers(min_value=-5, max_value=5))
_values = st.recursive(
    st.one_of(_scalars, _arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=3),
    ),
    max_leaves=8,
)


def _assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        assert [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


@settings(max_examples=150)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_any_dict_save_accepts_loads_back_equal_and_of_the_same_type(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("roundtrip") / "x.npz"
    minidl.save(obj, path)
    _assert_same(obj, minidl.load(path))


@pytest.mark.parametrize(
    "obj",
    [
        {"allow_pickle": np.ones(2), "file": np.zeros(1), "x": np.arange(3)},
        {"a": {"b": np.ones(1)}, "a/b": np.zeros(1)},
        {"__minidl__": np.ones(1), "__minidl__array0": np.zeros(2), "k": {"z": np.ones(3)}},
        {"n": 3, "f": 2.5, "arr": np.ones(2), "s": "text", "b": True, "none": None},
        {"scalar": np.float32(1.5), "i": np.int64(7)},
        {"": np.ones(1), "with space": np.zeros(1), "é/ü": np.arange(2), 3: np.ones(1)},
    ],
    ids=[
        "numpy-argument-names",
        "path-collision",
        "reserved-names",
        "python-numbers",
        "numpy-scalars",
        "odd-keys",
    ],
)
def test_keys_that_used_to_be_lost_round_trip(tmp_path, obj):
    minidl.save(obj, tmp_path / "x.npz")
    _assert_same(obj, minidl.load(tmp_path / "x.npz"))


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"x": np.array([object()], dtype=object)}, "dtype object"),
        ({"x": {1.5: 1}}, "keys must be str or int"),
        ({(1, 2): 1}, "keys must be str or int"),
        ({"x": {"y": {1, 2}}}, "cannot store a set"),
        ({"t": np.array(["2020-01-01"], dtype="datetime64[D]")}, "dtype datetime64"),
    ],
)
def test_what_cannot_round_trip_is_refused_at_save_time(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        minidl.save(obj, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def _bad_files(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    minidl.save({"w": np.ones((4, 4)), "opt": {"step": 3}}, good)
    data = good.read_bytes()
    files = {
        "random bytes": rng.bytes(300),
        "empty": b"",
        "text": b"epoch 1 loss 0.5\n",
        "truncated": data[: len(data) // 2],
        "truncated-end": data[:-10],
    }
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    files["npy"] = npy.read_bytes()
    paths = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        paths[name] = path
    objects = tmp_path / "objects.npz"
    np.savez(objects, obj=np.array([{"a": 1}], dtype=object))
    paths["object array"] = objects
    return paths


def test_files_that_are_not_checkpoints_say_so_with_the_path(tmp_path):
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(ValueError) as info:
            minidl.load(path)
        message = str(info.value)
        assert message.startswith(f"not a minidl checkpoint: {path}"), (name, message)
        assert "allow_pickle" not in message, name


def test_a_newer_format_version_is_named(tmp_path):
    import json
    import zipfile

    path = tmp_path / "future.npz"
    header = json.dumps({"format": "minidl", "version": 99, "tree": {"$dict": []}}).encode()
    with zipfile.ZipFile(path, "w") as zf, zf.open("__minidl__.npy", "w") as f:
        np.lib.format.write_array(f, np.frombuffer(header, np.uint8))
    with pytest.raises(ValueError, match="format version 99"):
        minidl.load(path)


def test_plain_npz_files_of_older_versions_still_load(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, **{"features.0.weight": np.ones((2, 2), np.float32)})
    loaded = minidl.load(path)
    assert list(loaded) == ["features.0.weight"] and loaded["features.0.weight"].sum() == 4


def test_a_state_dict_keeps_its_keys_as_npz_names(tmp_path):
    state = {"features.0.weight": np.ones((2, 2), np.float32), "fc.bias": np.zeros(3)}
    minidl.save(state, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        assert set(state) <= set(archive.files)


def test_a_save_removes_temporaries_left_by_killed_processes(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".minidl-tmp-{dead.stdout.strip()}-abc"
    stale.write_bytes(b"half")
    mine = tmp_path / f".minidl-tmp-{os.getpid()}-xyz"  # a live process's: kept
    mine.write_bytes(b"busy")
    minidl.save({"w": np.ones(1)}, tmp_path / "ckpt.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", mine.name])


def test_bad_paths_are_named(tmp_path):
    with pytest.raises(ValueError, match="path is empty"):
        minidl.save({"w": np.ones(1)}, "")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        minidl.save({"w": np.ones(1)}, tmp_path)
    with pytest.raises(ValueError, match="it is a folder"):
        minidl.load(tmp_path)
