"""Fuzzing every public op with random, mostly invalid arguments, in subprocesses.

The cases come from ``tests/fuzz_harness.py`` (each rebuilt from its seed). Batches run in
child processes so that a segfault, an abort or a hang fails this test with the case that
caused it instead of killing pytest. ``pytest --fuzz`` runs ten times as many cases, from
seeds that change every run.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import minidl

HARNESS = Path(__file__).with_name("fuzz_harness.py")
ROOT = Path(minidl.__file__).resolve().parent.parent
BATCH = 500
BATCH_TIMEOUT = 120.0


def _run_batch(first, count):
    """The rows of cases first..first+count-1 and, if the child died or hung, a finding."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env["OMP_NUM_THREADS"] = "2"
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(HARNESS), str(first), str(count)],
            capture_output=True,
            text=True,
            timeout=BATCH_TIMEOUT,
            env=env,
        )
        stdout, returncode = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        returncode = "timeout"
    rows, started = [], None
    for line in stdout.splitlines():
        if line.startswith("start "):
            started = int(line.split()[1])
        elif line.startswith("{"):
            rows.append(json.loads(line))
            started = None
    if returncode != 0 and started is not None:
        what = "hung" if returncode == "timeout" else f"killed the interpreter ({returncode})"
        rows.append(
            {
                "seed": started,
                "outcome": "finding",
                "error": what,
                "reproduce": f"python {HARNESS.name} {started} 1",
            }
        )
        rest = first + count - started - 1
        if rest > 0 and time.monotonic() - start < BATCH_TIMEOUT:
            rows += _run_batch(started + 1, rest)
    elif returncode != 0:
        pytest.fail(f"the fuzz harness failed to start: {proc.stderr[-2000:]}")
    return rows


def test_random_calls_raise_clear_errors_or_match_the_reference(request):
    long = request.config.getoption("--fuzz")
    total = 50_000 if long else 5_000
    first = int(time.time()) % 10**6 * 100 if long else 0
    rows = []
    for batch_start in range(first, first + total, BATCH):
        rows += _run_batch(batch_start, min(BATCH, first + total - batch_start))
    findings = [r for r in rows if r["outcome"] == "finding"]
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("ok", "error", "finding")}
    print(f"fuzz: {len(rows)} cases from seed {first}: {counts}")
    assert len(rows) >= total
    assert not findings, "\n".join(json.dumps(r) for r in findings[:20])
