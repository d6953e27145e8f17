"""benchmarks/bench_kernels.py runs in its tiny mode and returns well-formed rows.

Structure only: no timing is asserted (speed lives in benchmarks/, run by hand).
"""

import importlib.util
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"


def load_bench():
    try:
        import minidl._kernels  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"minidl._kernels cannot be imported: {exc}")
    spec = importlib.util.spec_from_file_location("bench_kernels", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_kernels_tiny_run_returns_rows_ratios_and_a_table():
    bench = load_bench()
    shape = bench.SHAPES[1].with_n(2)  # LeNet-digits layer 2, two samples
    rows = bench.run(
        shapes=[shape], dtypes=("float64",), threads=(1, 2), repeats=1, with_torch=False
    )
    ops = {(r["impl"], r["op"], r["threads"]) for r in rows}
    for threads in (1, 2):
        for op in ("conv_forward", "conv_backward", "pool", "im2col", "col2im"):
            assert ("minidl", op, threads) in ops
        assert ("numpy", "gemm", threads) in ops
    for op in ("conv_forward", "conv_backward", "pool"):
        assert ("reference", op, 1) in ops
    for r in rows:
        assert 0 < r["min"] <= r["median"] <= r["max"]
    ratios = bench.derive_ratios(rows)
    assert {e["op"] for e in ratios} == {
        "conv_forward",
        "conv_backward",
        "pool",
        "im2col",
        "col2im",
    }
    assert all("x_vs_reference" in e for e in ratios if e["op"] not in ("im2col", "col2im"))
    assert all("x_vs_1_thread" in e for e in ratios if e["threads"] == 2)
    assert all("pct_of_gemm" in e for e in ratios if e["op"] == "conv_forward")
    table = bench.format_table(rows, ratios)
    assert bench.short_name(shape) == "lenet-digits-2"
    assert "lenet-digits-2" in table and "x vs ref" in table


def test_bench_kernels_gemm_flop_count_matches_the_conv():
    bench = load_bench()
    cs231n = next(s for s in bench.SHAPES if bench.short_name(s) == "cs231n")
    assert cs231n.out_hw == (16, 16)  # (31 + 2 - 3) // 2 + 1
    assert cs231n.flops == 2 * 25 * (3 * 3 * 3) * (100 * 16 * 16)
