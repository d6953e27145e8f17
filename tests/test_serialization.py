"""minidl.save / minidl.load: npz without pickle, atomic replace, order kept."""

import os

import numpy as np
import pytest

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

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
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
