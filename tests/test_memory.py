"""minidl sets glibc's malloc thresholds at import (minidl._memory), so that a training
step reuses freed memory instead of faulting in fresh pages; MINIDL_MALLOC_TUNING=0
leaves the allocator alone."""

import os
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="the thresholds are glibc's",
)


def _run(code, **env):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@glibc
def test_import_sets_the_thresholds_and_the_variable_turns_it_off():
    code = "import minidl, minidl._memory as m; print(m.tuned)"
    assert _run(code, MINIDL_MALLOC_TUNING="1") == "True"
    assert _run(code, MINIDL_MALLOC_TUNING="0") == "False"


@glibc
def test_training_steps_fault_in_no_new_pages_after_the_first():
    # without the thresholds, LeNet() steps took ~750 minor page faults each here
    code = """
        import resource
        import numpy as np
        import minidl
        import minidl.nn.functional as F
        from minidl.models import LeNet
        from minidl.optim import SGD

        minidl.set_num_threads(1)
        minidl.manual_seed(0)
        rng = np.random.default_rng(0)
        x = minidl.tensor(rng.random((64, 1, 8, 8), dtype=np.float32))
        y = rng.integers(0, 10, 64)
        model = LeNet()
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

        for _ in range(5):
            step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(30):
            step()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30)
    """
    assert float(_run(code)) < 20
