"""The benchmark suite runs in its tiny mode (one repeat, smallest shapes) so it cannot rot.

No timing is asserted: only that every expected row was produced, ran without error and
measured something. The pure-Python baseline is also checked for correctness.
"""

import importlib.util
import json
import os

import numpy as np
import pytest

import minidl
from minidl import bench
from minidl.bench import report, suite
from minidl.bench.pure_python import conv2d_lists
from minidl.bench.timing import sign_test_slower

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _expected_tiny_keys(threads, with_torch):
    """(op, shape, pass, threads, comparator) of every row the tiny mode must produce,
    spelled out here rather than taken from the suite's own plan."""
    per_op = {
        "conv2d": (
            ("LeNet-digits conv1", "LeNet-digits conv2"),
            {
                "fwd": ["naive", "pure-python", "numpy-gemm", "torch"],
                "fwd+bwd": ["naive", "numpy-gemm", "torch"],
            },
        ),
        "max_pool2d": (
            ("LeNet-digits pool1", "LeNet-digits pool2"),
            {"fwd": ["naive", "torch"], "fwd+bwd": ["naive", "torch"]},
        ),
        "avg_pool2d": (
            ("LeNet-digits pool1", "LeNet-digits pool2"),
            {"fwd": ["naive", "torch"], "fwd+bwd": ["naive", "torch"]},
        ),
        "linear": (
            ("LeNet-digits fc",),
            {"fwd": ["numpy-gemm", "torch"], "fwd+bwd": ["numpy-gemm", "torch"]},
        ),
        "cross_entropy": (("LeNet-digits loss",), {"fwd": ["torch"], "fwd+bwd": ["torch"]}),
    }
    keys = set()
    for op, (shape_names, passes) in per_op.items():
        for shape in shape_names:
            for pass_, comparators in passes.items():
                for comparator in comparators:
                    if comparator == "torch" and not with_torch:
                        continue
                    keys.add((op, shape, pass_, threads, comparator))
    e2e_comparator = "torch" if with_torch else None
    for model in ("LeNet-digits", "LeNet() default"):
        keys.add(("lenet-train-epoch", model, "epoch", threads, e2e_comparator))
        keys.add(("lenet-inference", model, "fwd", threads, e2e_comparator))
    keys.add(("cifar-train-step", "CIFAR-size net", "step", threads, e2e_comparator))
    return keys


def _key(row):
    return (row["op"], row["shape"], row["pass"], row["threads"], row["comparator"])


@pytest.fixture(scope="module")
def tiny_results():
    return bench.run_tiny()


def test_tiny_mode_produces_every_expected_row(tiny_results):
    produced = [_key(r) for r in tiny_results["rows"]]
    assert len(produced) == len(set(produced)), "a row was measured twice"
    assert set(produced) == _expected_tiny_keys(1, HAS_TORCH)


def test_tiny_mode_rows_ran_without_error(tiny_results):
    errors = [(_key(r), r["error"]) for r in tiny_results["rows"] if r["error"]]
    assert errors == []
    for row in tiny_results["rows"]:
        assert row["minidl"]["median"] > 0 and row["minidl"]["repeats"] == 1
        if row["comparator"] is not None:
            assert row["other"]["median"] > 0 and row["ratio"] > 0


def test_tiny_results_render_as_table_and_json(tiny_results, tmp_path):
    table = report.format_table(tiny_results)
    for row in tiny_results["rows"]:
        assert report.format_row_line(row).split(" | ")[0] in table
    markdown = report.format_markdown(tiny_results)
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 1 + len(tiny_results["rows"])  # header + one per row
    path = tmp_path / "bench.json"
    report.write_json(tiny_results, path)
    loaded = json.loads(path.read_text())
    assert len(loaded["rows"]) == len(tiny_results["rows"])
    assert loaded["meta"]["cpu"] and loaded["meta"]["numpy"]


def test_plot_is_written(tiny_results, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedups.png"
    few_rows = {
        "rows": [r for r in tiny_results["rows"] if r["op"] in ("linear", "lenet-inference")]
    }
    report.write_plot(few_rows, path)
    assert path.stat().st_size > 0


def test_without_torch_its_rows_are_skipped():
    config = suite.preset("tiny").replace(use_torch=False, ops=("max_pool2d",), end_to_end=False)
    results = suite.run_suite(config, log=None)
    keys = {_key(r) for r in results["rows"]}
    assert keys == {
        ("max_pool2d", f"LeNet-digits pool{i}", p, 1, "naive")
        for i in (1, 2)
        for p in ("fwd", "fwd+bwd")
    }
    assert all(r["error"] is None for r in results["rows"])


def test_pure_python_conv_matches_the_reference():
    from minidl.reference import conv2d_forward

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    for padding in (0, 1, 2):
        ours = np.array(conv2d_lists(x.tolist(), w.tolist(), b.tolist(), padding))
        expected = conv2d_forward(x, w, b, stride=1, padding=padding)
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_command_line_options_select_the_run():
    path = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "bench_suite.py")
    spec = importlib.util.spec_from_file_location("bench_suite", path)
    bench_suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_suite)

    args = bench_suite.parse_args(
        ["--quick", "--threads", "1,2", "--ops", "conv2d,linear", "--repeats", "4"]
    )
    config = bench_suite.config_from_args(args)
    assert config.mode == "quick" and config.threads == (1, 2)
    assert config.ops == ("conv2d", "linear") and not config.end_to_end
    assert config.repeats == 4

    config = bench_suite.config_from_args(bench_suite.parse_args(["--end-to-end"]))
    assert config.ops == () and config.end_to_end and config.mode == "full"
    with pytest.raises(SystemExit):
        bench_suite.config_from_args(bench_suite.parse_args(["--ops", "conv3d"]))


def _row(op, shape, threads, minidl_s, ratio, comparator="torch", pass_="step"):
    return {
        "op": op,
        "shape": shape,
        "label": "",
        "pass": pass_,
        "threads": threads,
        "comparator": comparator,
        "minidl": {"median": minidl_s},
        "ratio": ratio,
        "error": None,
    }


def test_thread_scaling_targets_prefer_the_interleaved_rows():
    rows = [
        _row("lenet-train-epoch", "LeNet() default", 1, 0.040, 3.5),
        _row("lenet-train-epoch", "LeNet() default", 2, 0.041, 3.6),  # apart: 0.976
        _row("lenet-train-epoch", "LeNet() default", 2, 0.039, 1.02, suite.ONE_THREAD, "epoch"),
        _row("cifar-train-step", "CIFAR-size net", 1, 0.100, 1.2),
        _row("cifar-train-step", "CIFAR-size net", 2, 0.060, 1.1),  # apart: 1.67
    ]
    got = {(c["issue"], c["target"], c["threads"]): c for c in report.targets(rows)}
    epoch = got[(23, "LeNet() default epoch: 2 threads not slower than 1", 2)]
    assert epoch["met"] and epoch["worst"] == 1.02
    scaling = got[(23, "CIFAR-size network step: 2 threads >= 1.7x faster than 1", 2)]
    assert abs(scaling["worst"] - 0.100 / 0.060) < 1e-12  # no interleaved row: the old way
    assert got[(23, "LeNet() default epoch: minidl <= 1/3 of torch", 1)]["worst"] == 3.5


def test_thread_scaling_rows_time_minidl_against_itself():
    config = suite.preset("tiny")
    before = minidl.get_num_threads()
    rows = suite.measure_thread_scaling(config)
    assert minidl.get_num_threads() == before
    keys = {_key(r) for r in rows}
    assert keys == {
        ("lenet-train-epoch", "LeNet() default", "epoch", 2, suite.ONE_THREAD),
        ("lenet-inference", "LeNet() default", "fwd", 2, suite.ONE_THREAD),
        ("cifar-train-step", "CIFAR-size net", "step", 2, suite.ONE_THREAD),
    }
    for row in rows:
        assert row["ratio"] == row["other"]["median"] / row["minidl"]["median"]
        two, one = row["minidl"]["samples"], row["other"]["samples"]
        assert len(two) == len(one) == config.scaling_repeats
        assert row["slower_rounds"] == sum(a > b for a, b in zip(two, one))
        assert row["slower_rounds"] <= row["rounds"] <= len(two)
        assert 0.0 < row["p_slower"] <= 1.0


def test_sign_test_against_scipy_binomtest():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        base = list(rng.random(n))
        times = [b + d for b, d in zip(base, rng.normal(0.05, 0.2, n))]
        ties = int(rng.integers(0, n // 4 + 1))
        times[:ties] = base[:ties]  # equal samples count for neither side
        slower, rounds, p = sign_test_slower(times, base)
        assert slower == sum(t > b for t, b in zip(times, base))
        assert rounds == sum(t != b for t, b in zip(times, base))
        if rounds:
            want = stats.binomtest(slower, rounds, 0.5, alternative="greater").pvalue
            assert abs(p - want) < 1e-12
    assert sign_test_slower([2.0, 2.0], [1.0, 1.0]) == (2, 2, 0.25)
    assert sign_test_slower([1.0], [1.0]) == (0, 0, 1.0)  # no round differs
    with pytest.raises(ValueError, match="3 samples against 2"):
        sign_test_slower([1.0, 2.0, 3.0], [1.0, 2.0])


def _paired_row(ratio, slower_rounds, rounds, p_slower):
    row = _row("lenet-train-epoch", "LeNet() default", 2, 0.04, ratio, suite.ONE_THREAD, "epoch")
    row.update(slower_rounds=slower_rounds, rounds=rounds, p_slower=p_slower)
    return row


def test_not_slower_is_judged_by_the_sign_test():
    name = (23, "LeNet() default epoch: 2 threads not slower than 1", 2)

    def check(row):
        return {(c["issue"], c["target"], c["threads"]): c for c in report.targets([row])}[name]

    noise = check(_paired_row(0.998, 11, 21, 0.5))  # a hair under 1: noise
    assert noise["met"] and noise["worst"] == 0.998
    assert "not significantly slower" in noise["note"] and "11 of 21" in noise["note"]
    slower = check(_paired_row(0.97, 19, 21, 1.1e-4))  # slower round after round
    assert not slower["met"] and slower["note"].startswith("slower: ")
    faster = check(_paired_row(1.02, 2, 21, 0.99999))
    assert faster["met"] and "note" not in faster
    assert not check(_paired_row(0.99, 0, 0, None))["met"]  # no test: the ratio decides
    text = report.format_targets(report.targets([_paired_row(0.998, 11, 21, 0.5)]))
    assert "0.998 (goal 1); not significantly slower" in text


def test_issue_23_targets_from_hand_made_rows():
    rows = [
        _row("cifar-train-step", "CIFAR-size net", 1, 0.100, 1.2),
        _row("cifar-train-step", "CIFAR-size net", 2, 0.060, 1.1),  # 1.67x: short of 1.7
        _row("lenet-train-epoch", "LeNet() default", 1, 0.040, 3.5),
        _row("lenet-train-epoch", "LeNet() default", 2, 0.041, 3.6),  # slower at 2 threads
        _row("lenet-inference", "LeNet() default", 1, 0.004, 2.0),
        _row("lenet-inference", "LeNet() default", 2, 0.003, 2.6),
    ]
    got = {(c["issue"], c["target"], c["threads"]): c for c in report.targets(rows)}
    step = got[(23, "CIFAR-size network step: minidl <= torch", 1)]
    assert step["met"] and step["worst"] == 1.2
    assert (23, "CIFAR-size network step: minidl <= torch", 2) not in got  # 1 thread only
    scaling = got[(23, "CIFAR-size network step: 2 threads >= 1.7x faster than 1", 2)]
    assert not scaling["met"] and abs(scaling["worst"] - 0.100 / 0.060) < 1e-12
    epoch = got[(23, "LeNet() default epoch: 2 threads not slower than 1", 2)]
    assert not epoch["met"] and abs(epoch["worst"] - 0.040 / 0.041) < 1e-12
    assert got[(23, "LeNet() default inference: 2 threads not slower than 1", 2)]["met"]
    assert got[(23, "LeNet() default epoch: minidl <= 1/3 of torch", 1)]["met"]
    assert not got[(23, "LeNet() default inference: minidl <= 0.4 of torch", 1)]["met"]
    assert got[(5, "LeNet() default epoch: torch time / minidl >= 2", 2)]["met"]
    assert "targets (issue 23)" in report.format_targets(report.targets(rows))
