"""The benchmark suite: minidl side by side with the naive loops of the lecture notes,
pure-Python loops, numpy's matmul on the same GEMM (the BLAS limit) and PyTorch.

    python -m minidl bench                      # quick mode (run_quick), prints a table
    python benchmarks/bench_suite.py --help     # full runs, --json, --plot

Nothing here imports torch or matplotlib until a run needs them.
"""

from minidl.bench.suite import (
    COMPARATORS,
    END_TO_END,
    OPS,
    SuiteConfig,
    expected_end_to_end,
    plan_rows,
    preset,
    run_quick,
    run_suite,
    run_tiny,
)

__all__ = [
    "COMPARATORS",
    "END_TO_END",
    "OPS",
    "SuiteConfig",
    "expected_end_to_end",
    "plan_rows",
    "preset",
    "run_quick",
    "run_suite",
    "run_tiny",
]
