"""Shared pytest setup: hypothesis profiles and a header line saying what was tested."""

import os

from hypothesis import HealthCheck, settings

# Kernels run in microseconds but the naive reference loops do not: no deadlines.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI replays the same examples every run, so a failure there is reproducible.
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz", action="store_true", help="run the long fuzzing mode (new seeds each run)"
    )


def pytest_report_header(config):
    import minidl

    lines = [f"minidl {minidl.__version__}, threads={minidl.get_num_threads()}"]
    try:
        from minidl._kernels import openmp_enabled

        lines.append(f"kernels built with OpenMP: {openmp_enabled()}")
    except ImportError as exc:  # the kernel tests then fail loudly, not here
        lines.append(f"kernels not importable: {exc}")
    try:
        import torch

        lines.append(f"torch {torch.__version__}: cross-checks run")
    except ImportError:
        lines.append("torch not installed: cross-checks against PyTorch are skipped")
    return lines
