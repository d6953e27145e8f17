"""Measured dispatch: the table ``minidl tune`` writes (where, what, read back), the
plans a table names run and give the reference's numbers, ``minidl.backends``
(autotune, deterministic), and a seeded ``minidl train`` bit-identical with a table."""

import json
import os
import time

import numpy as np
import pytest
from kernel_checks import assert_close, count_kernel_calls, kernels, reference, run_conv

import minidl
from minidl import backends, cli
from minidl import reference as R
from minidl.bench import tune as bench_tune
from minidl.nn import functional as F
from minidl.ops import conv_plan, conv_tune
from minidl.ops.conv_plan import IM2COL, ConvPlan

F32 = np.dtype(np.float32)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh MINIDL_CACHE_DIR; dispatch back to the defaults afterwards."""
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path))
    conv_plan.reload_table()
    yield tmp_path
    backends.autotune(False)
    backends.deterministic(False)
    monkeypatch.delenv("MINIDL_CACHE_DIR")
    conv_plan.reload_table()


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIDL_CACHE_DIR", str(tmp_path / "a"))
    assert conv_tune.cache_dir() == str(tmp_path / "a")
    monkeypatch.delenv("MINIDL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert conv_tune.cache_dir() == str(tmp_path / "xdg" / "minidl")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert conv_tune.cache_dir() == str(tmp_path / "home" / ".cache" / "minidl")
    name = os.path.basename(conv_tune.table_path())
    assert name.endswith(f"-level{conv_tune.cpu_level()}.json") and "/" not in name


def test_tune_writes_a_table_dispatch_and_info_read(cache, monkeypatch, capsys):
    kernels()
    layer = ((4, 6, 9, 9), (8, 6, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, 0)
    monkeypatch.setattr(bench_tune, "_model_layers", lambda batches: {layer})
    monkeypatch.setattr(bench_tune, "_suite_layers", lambda batches: set())
    assert cli.main(["info"]) == 0
    assert "built-in defaults" in capsys.readouterr().out
    assert cli.main(["tune"]) == 0
    path = conv_tune.table_path()
    assert path.startswith(str(cache)) and "table: " + path in capsys.readouterr().out
    with open(path) as f:
        raw = json.load(f)
    assert raw["cpu"] == conv_tune.cpu_model() and raw["level"] == conv_tune.cpu_level()
    nt = minidl.get_num_threads()
    key = conv_tune.layer_key(*layer[:8], 1)
    assert key in raw["plans"] and len(raw["plans"]) == len({1, nt})
    plan = conv_tune.plan_from_json(raw["plans"][key])
    conv_plan.check_plan(plan, *layer[:7])
    assert conv_plan.cached_plan(*layer[:8], 1) == plan
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert path in out and raw["cpu"] in out and raw["created"] in out


def _table_with(cache, layer, plan):
    conv_tune.save_table({conv_tune.layer_key(*layer): plan})
    conv_plan.reload_table()


# (N, C, F, H, W, k, padding, groups): 3x3 and 5x5 with every path, a depth-wise layer
TABLE_LAYERS = [
    (2, 4, 5, 7, 8, 3, (1, 1), 1),
    (2, 3, 4, 8, 8, 5, (2, 1), 1),
    (2, 4, 8, 6, 7, 3, (1, 1), 4),
]


@pytest.mark.parametrize("shape", TABLE_LAYERS)
def test_every_plan_a_table_can_name_gives_the_reference_results(cache, shape):
    """Each candidate of each pass (and the kept-input pairs), named by the table for the
    layer, is what F.conv2d runs, with the naive reference's numbers."""
    kernels()
    n, c, f, h, w, k, p, groups = shape
    rng = np.random.default_rng(sum(shape[:6]))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    nt = minidl.get_num_threads()
    layer = (x.shape, wt.shape, F32, (1, 1), p, (1, 1), groups, True, nt)
    can = conv_plan.candidates(*layer[:7])
    plans = [
        ConvPlan(**(dict.fromkeys(conv_plan.PASSES, IM2COL) | {which: chosen}))
        for which in conv_plan.PASSES
        for chosen in can[which][1:]
    ]
    plans += [
        ConvPlan(q, IM2COL, q, True) for q in can["forward"] if q.path in ("im2col", "winograd")
    ]
    assert len(plans) > 3
    hyper = ((1, 1), p, (1, 1), groups)
    for plan in plans:
        _table_with(cache, layer, plan)
        assert conv_plan.cached_plan(*layer) == plan
        y, gx, gw, gb, g = run_conv(x, wt, b, padding=p, groups=groups)
        want_y, mag_y = reference(R.conv2d_forward, (x, wt, b), *hyper)
        (want_dx, want_dw, want_db), (mag_dx, mag_dw, mag_db) = reference(
            R.conv2d_backward, (x, wt, g), *hyper
        )
        for name, p_, got, want, mag in (
            ("output", plan.forward, y, want_y, mag_y),
            ("input grad", plan.input, gx, want_dx, mag_dx),
            ("weight grad", plan.weight, gw, want_dw, mag_dw),
            ("bias grad", plan.weight, gb, want_db, mag_db),
        ):
            wino = p_.path == "winograd"
            slack = (4.0 if k == 5 else 1.0) if wino and name != "bias grad" else 1.0
            assert_close(got, want, mag, np.float32, f"{plan} {name}", wino, slack)


def test_a_broken_or_mismatched_table_falls_back_to_the_defaults(cache, capsys):
    kernels()
    layer = ((2, 3, 6, 6), (4, 3, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, 1)
    with open(conv_tune.table_path(), "w") as f:
        f.write("{not json")
    conv_plan.reload_table()
    built_in = conv_plan.plan_conv2d(*layer[:5], weight_grad=True, num_threads=1)
    assert conv_plan.cached_plan(*layer) == built_in
    assert cli.main(["info"]) == 0
    assert "built-in defaults (unreadable" in capsys.readouterr().out
    # a plan this layer cannot run (5x5 Winograd for a 3x3 layer, say, from another build)
    bad = ConvPlan(IM2COL, IM2COL, conv_plan.PassPlan("winograd", 4))
    conv_tune.save_table({conv_tune.layer_key(*layer[:6], 2, True, 1): bad})
    conv_plan.reload_table()
    other = ((2, 4, 6, 6), (4, 2, 3, 3)) + layer[2:6] + (2, True, 1)
    assert conv_plan.cached_plan(*other) == conv_plan.plan_conv2d(
        *other[:6], 2, weight_grad=True, num_threads=1
    )


def test_a_pooled_layer_has_a_plan_of_its_own_timed_with_the_pool(cache, monkeypatch):
    """The fused conv + 2x2 max pool + ReLU (ops.fused) looks its layer up under a key of
    its own, which the tune times as that op runs it: the table's plan for that key is
    what the fused op runs, while F.conv2d at the same shape runs the plain key's."""
    K = kernels()
    if not K.winograd_channel_major_lanes():
        pytest.skip("no channel-major Winograd on this CPU: nothing pools in the conv")
    nt = minidl.get_num_threads()
    layer = ((8, 6, 4, 4), (16, 6, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, nt)
    pooled_key = conv_tune.layer_key(*layer, True)
    assert pooled_key == conv_tune.layer_key(*layer) + "|pool"
    plan, times = conv_tune.measure_plan(*layer, pooled=True, repeats=1)
    conv_plan.check_plan(plan, *layer[:7])
    assert "winograd F(4x4, 3x3), channel-major" in times["forward"], times
    # an odd output plane cannot pool: timed as the plain layer
    odd = ((2, 3, 5, 5), (4, 3, 3, 3)) + layer[2:]
    conv_plan.check_plan(conv_tune.measure_plan(*odd, pooled=True, repeats=1)[0], *odd[:7])

    major, planes = conv_plan.WINOGRAD_CHANNEL_MAJOR, conv_plan.PassPlan("winograd", 4)
    conv_tune.save_table(
        {
            pooled_key: ConvPlan(major, major, major),
            conv_tune.layer_key(*layer): ConvPlan(planes, planes, planes),
        }
    )
    conv_plan.reload_table()
    calls = count_kernel_calls(
        monkeypatch, {"pooled": "winograd_pool_forward", "plain": "winograd_forward"}
    )
    rng = np.random.default_rng(8)
    conv = minidl.nn.Conv2d(6, 16, 3, padding=1)
    x = minidl.tensor(rng.standard_normal(layer[0]).astype(np.float32))
    y = minidl.nn.Sequential(conv, minidl.nn.MaxPool2d(2), minidl.nn.ReLU())(x)
    assert calls == {"pooled": 1, "plain": 0}
    want = F.relu(F.max_pool2d(F.conv2d(x, conv.weight, conv.bias, padding=1), 2))
    assert calls == {"pooled": 1, "plain": 1}
    np.testing.assert_allclose(y.data, want.data, rtol=1e-4, atol=1e-4)


def test_deterministic_runs_im2col_everywhere_whatever_the_table(cache):
    kernels()
    layer = ((2, 8, 9, 9), (8, 8, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, 1)
    wino = ConvPlan(*(conv_plan.PassPlan("winograd", 2),) * 3)
    _table_with(cache, layer, wino)
    assert conv_plan.cached_plan(*layer) == wino
    assert backends.deterministic(True) is True
    assert minidl.backends.are_deterministic_algorithms_enabled()
    assert conv_plan.cached_plan(*layer) == ConvPlan(IM2COL, IM2COL, IM2COL)
    dw = ((2, 8, 9, 9), (8, 1, 3, 3), F32, (1, 1), (1, 1), (1, 1), 8, True, 1)
    assert conv_plan.cached_plan(*dw) == ConvPlan(IM2COL, IM2COL, IM2COL)
    backends.deterministic(False)
    assert conv_plan.cached_plan(*layer) == wino


def test_autotune_times_each_new_shape_once(cache, monkeypatch):
    kernels()
    calls = []
    measure = conv_tune.measure_plan

    def counted(*layer, **kw):
        calls.append(layer)
        return measure(*layer, **kw)

    load, key, _ = conv_plan._measured
    monkeypatch.setattr(conv_plan, "_measured", (load, key, counted))
    assert backends.autotune(True) is True and backends.autotune() is True
    layer = ((2, 8, 9, 9), (8, 8, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, 1)
    plan = conv_plan.cached_plan(*layer)
    conv_plan.check_plan(plan, *layer[:7])
    assert conv_plan.cached_plan(*layer) is plan and len(calls) == 1
    x = np.random.default_rng(0).standard_normal((2, 8, 9, 9)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)
    y = run_conv(x, w, np.zeros(8, np.float32), padding=1)[0]
    want, mag = reference(R.conv2d_forward, (x, w, None), (1, 1), (1, 1), (1, 1), 1)
    assert_close(y, want, mag, np.float32, "autotuned", True)
    backends.autotune(False)
    assert conv_plan._mode == "table"


def test_measure_plan_times_the_kept_pairs_and_takes_one_that_wins(monkeypatch):
    """The forward keeping its cols or V plus the weight gradient reading them is timed as
    one pair; a pair faster than the two passes' best paths apart is chosen (here every
    pass apart is made slow, the pairs free)."""
    kernels()
    layer = ((8, 6, 4, 4), (16, 6, 3, 3), F32, (1, 1), (1, 1), (1, 1), 1, True, 1)
    plan, times = conv_tune.measure_plan(*layer, repeats=1)
    assert set(times["forward+weight kept"]) >= {"im2col", "winograd F(4x4, 3x3)"}, times
    conv_plan.check_plan(plan, *layer[:7])

    def slow(*args):
        time.sleep(0.002)

    monkeypatch.setattr(conv_tune, "_run_pass", slow)
    monkeypatch.setattr(conv_tune, "_run_kept_pair", lambda *args: None)
    plan, times = conv_tune.measure_plan(*layer, repeats=1)
    assert plan.keep_input and plan.forward == plan.weight, (plan, times)
    assert plan.forward.path in ("im2col", "winograd"), plan


@pytest.mark.parametrize("switch", [backends.autotune, backends.deterministic])
def test_backends_switches_take_bools(switch):
    with pytest.raises(TypeError, match="enabled"):
        switch(1)


def test_train_with_a_table_is_bit_identical_run_to_run(cache, monkeypatch, tmp_path):
    """A table that sends LeNet's layers to other paths than im2col, two seeded runs."""
    kernels()
    monkeypatch.setattr(bench_tune, "_suite_layers", lambda batches: set())
    monkeypatch.setattr(conv_tune, "measure_plan", _not_im2col)
    bench_tune.tune(threads=(1,), log=lambda s: None)
    table, _ = conv_tune.load_table()
    assert any(plan.forward != IM2COL for plan in table.values()), table
    weights = []
    for run in range(2):
        path = str(tmp_path / f"w{run}.npz")
        assert cli.main(["train", "--epochs", "1", "--seed", "3", "--save", path, "--quiet"]) == 0
        weights.append(minidl.load(path))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert np.array_equal(np.asarray(weights[0][key]), np.asarray(weights[1][key])), key


def _not_im2col(
    ishape, wshape, dtype, stride, padding, dilation, groups, weight_grad, nt, pooled=False, **kw
):
    """The last candidate of each pass (a stand-in for a measurement that picks them)."""
    can = conv_plan.candidates(ishape, wshape, dtype, stride, padding, dilation, groups)
    chosen = {which: can[which][-1] for which in conv_plan.PASSES}
    ho, wo = conv_plan.V.conv_output_size("t", ishape, wshape[2:], stride, padding, dilation)
    plan = conv_plan.compose(chosen, ishape, wshape, np.dtype(dtype), padding, weight_grad, ho, wo)
    return plan, {}
