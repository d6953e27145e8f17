"""SIGKILL at any moment never leaves a checkpoint that does not load (issue 22)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import minidl

ROOT = Path(minidl.__file__).resolve().parent.parent


def test_a_training_run_killed_at_random_moments_leaves_loadable_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    ckpt = tmp_path / "ckpt.npz"
    loaded = 0
    for moment in rng.uniform(0.0, 1.5, size=20):
        if ckpt.exists():
            ckpt.unlink()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minidl",
                "train",
                "--epochs",
                "200",
                "--batch-size",
                "256",
                "--save",
                str(ckpt),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # training has saved its first epoch: saves now come every epoch
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if ckpt.exists():
            assert "features.0.weight" in minidl.load(ckpt)
            loaded += 1
        resume = tmp_path / "ckpt-resume.npz"
        if resume.exists():
            assert "model" in minidl.load(resume)
    kept = (ckpt.name, "ckpt-resume.npz", "other.npz")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in kept]
    minidl.save({"x": np.ones(1)}, tmp_path / "other.npz")  # cleans the killed runs' temporaries
    remaining = [p.name for p in tmp_path.iterdir() if p.name not in kept]
    assert loaded == 20, f"only {loaded} of 20 runs left a checkpoint"
    assert remaining == [], f"temporaries left after a save: {remaining} (before: {leftovers})"
