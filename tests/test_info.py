"""``minidl info`` lists every thread pool threadpoolctl sees, with library, version and
thread count."""

import numpy as np
import pytest

from minidl import cli
from minidl.info import thread_pools

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_every_pool_threadpoolctl_reports_is_printed(capsys):
    import scipy.linalg  # noqa: F401  (scipy's BLAS loaded, as the kernels load it)

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    pools = threadpoolctl.threadpool_info()
    assert {p["user_api"] for p in pools} >= {"blas", "openmp"}
    for pool in pools:
        line = next(
            line
            for line in out.splitlines()
            if f"{pool['prefix']} (" in line
            and f"{pool['num_threads']} thread" in line
            and f"version {pool['version'] or 'unknown'}" in line
        )
        assert line
        assert pool["filepath"] in out


def test_pools_name_their_owner_and_follow_thread_changes():
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        pools = thread_pools()
        blas = [p for p in pools if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
    names = {p["pool"] for p in pools}
    assert any("OpenMP" in n for n in names)
    assert any("numpy" in n for n in names)
    np.dot(np.ones(2), np.ones(2))  # numpy stays usable
