"""Resuming a run ends where the uninterrupted run ends, bit for bit (issue 22)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl.training import TrainingInterrupted, train_digits

ROOT = Path(minidl.__file__).resolve().parent.parent


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _run(epochs, *, interrupt_at=None, resume_state=None, checkpoints=None, **kw):
    steps = [0]

    def interrupt():
        steps[0] += 1
        return interrupt_at is not None and steps[0] == interrupt_at

    def checkpoint(state):
        if checkpoints is not None:
            checkpoints.append(state)

    return train_digits(
        epochs=epochs,
        batch_size=64,
        seed=3,
        checkpoint=checkpoint,
        interrupt=interrupt,
        resume_state=resume_state,
        **kw,
    )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("interrupt_at", [1, 23, 60])
def test_an_interrupted_run_resumed_from_its_checkpoint_ends_bit_identical(
    tmp_path, threads, interrupt_at
):
    saved = minidl.get_num_threads()
    minidl.set_num_threads(threads)
    try:
        model, history = _run(3)
        want = _weights(model)
        checkpoints = []
        with pytest.raises(TrainingInterrupted):
            _run(3, interrupt_at=interrupt_at, checkpoints=checkpoints)
        path = tmp_path / "ckpt.npz"
        minidl.save(checkpoints[-1], path)  # through the file, as the CLI does
        resumed, resumed_history = _run(3, resume_state=minidl.load(path))
    finally:
        minidl.set_num_threads(saved)
    for name, value in want.items():
        np.testing.assert_array_equal(_weights(resumed)[name], value, err_msg=name)
    assert [r["loss"] for r in resumed_history] == [r["loss"] for r in history]


def test_resuming_also_works_with_dropout_and_without_augmentation():
    from minidl.models import LeNet

    def factory():
        return LeNet(dropout=0.3)

    model, _ = _run(2, model=factory, augment=False)
    checkpoints = []
    with pytest.raises(TrainingInterrupted):
        _run(2, interrupt_at=30, checkpoints=checkpoints, model=factory, augment=False)
    resumed, _ = _run(2, resume_state=checkpoints[-1], model=factory, augment=False)
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(_weights(resumed)[name], value, err_msg=name)


def test_a_checkpoint_of_another_pipeline_is_refused():
    checkpoints = []
    with pytest.raises(TrainingInterrupted):
        _run(1, interrupt_at=3, checkpoints=checkpoints)
    with pytest.raises(ValueError, match="generators"):
        _run(1, resume_state=checkpoints[-1], augment=False)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        _run(1, resume_state={"weights": np.ones(1)})


def _cli(args, tmp_path, **popen):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-m", "minidl", "train", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_says_how_to_resume_and_the_resumed_run_matches(tmp_path, sig):
    common = ["--epochs", "3", "--batch-size", "32", "--seed", "5"]
    full = _cli([*common, "--save", "full.npz"], tmp_path)
    assert full.wait(timeout=300) == 0, full.stderr.read()
    run = _cli([*common, "--save", "cut.npz"], tmp_path)
    deadline = time.monotonic() + 120
    while not (tmp_path / "cut-resume.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.005)  # the first epoch is done: stop in the middle of a later one
    time.sleep(0.05)
    run.send_signal(sig)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "minidl train --resume" in err and "cut-resume.npz" in err
    resumed = _cli(["--resume", "cut-resume.npz"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    want, got = minidl.load(tmp_path / "full.npz"), minidl.load(tmp_path / "cut.npz")
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_resume_refuses_what_is_not_a_training_checkpoint(tmp_path):
    minidl.save({"w": np.ones(2)}, tmp_path / "weights.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    for name, says in (
        ("weights.npz", "not a minidl train checkpoint"),
        ("junk.npz", "not a minidl checkpoint"),
        ("missing.npz", "No such file"),
    ):
        proc = _cli(["--resume", name], tmp_path)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert says in err and name in err
