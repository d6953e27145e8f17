"""python -m minidl train / info: a short training run, checkpoints, divergence."""

import json

import numpy as np
import pytest

import minidl
from minidl import cli, training
from minidl.models import LeNet


def test_train_two_epochs_writes_checkpoint_and_metrics(tmp_path, capsys):
    ckpt, metrics = tmp_path / "w.npz", tmp_path / "m.json"
    threads = minidl.get_num_threads()
    code = cli.main(
        [
            "train",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--threads",
            "1",
            "--save",
            str(ckpt),
            "--metrics-json",
            str(metrics),
        ]
    )
    assert code == 0
    assert minidl.get_num_threads() == threads  # main() restores the thread count
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert all("test acc" in line for line in lines[:2])
    assert lines[-1].startswith("final test accuracy")
    m = json.loads(metrics.read_text())
    assert m["epochs"] == 2 and 0 <= m["test_accuracy"] <= 1 and m["train_seconds"] > 0
    assert m["num_threads"] == 1
    assert m["test_accuracy"] > 0.3  # two epochs already learn something (chance is 0.1)
    model = LeNet()
    model.load_state_dict(minidl.load(ckpt))
    assert training.evaluate(model, *minidl.data.load_digits()[2:]) == m["test_accuracy"]


@pytest.fixture
def one_thread():
    threads = minidl.get_num_threads()
    minidl.set_num_threads(1)
    yield
    minidl.set_num_threads(threads)


def test_same_seed_gives_identical_weights(one_thread):
    runs = [
        training.train_digits(epochs=1, batch_size=64, seed=7)[0].state_dict() for _ in range(2)
    ]
    assert list(runs[0]) == list(runs[1])
    for key in runs[0]:
        assert np.array_equal(runs[0][key], runs[1][key]), key
    other = training.train_digits(epochs=1, batch_size=64, seed=8)[0].state_dict()
    assert not np.array_equal(other["features.0.weight"], runs[0]["features.0.weight"])


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "w.npz"
    minidl.save({"previous": np.arange(3)}, ckpt)
    code = cli.main(
        ["train", "--epochs", "2", "--lr", "1e12", "--optimizer", "sgd", "--save", str(ckpt)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "loss became" in err and "--lr" in err and len(err.splitlines()) == 1
    assert list(minidl.load(ckpt)) == ["previous"]  # the diverged epoch was not saved


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "0"],
        ["train", "--lr", "-1"],
        ["train", "--optimizer", "rmsprop"],
        ["nope"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_info_prints_something(capsys):
    pytest.importorskip("minidl.info")
    assert cli.main(["info"]) == 0
    assert capsys.readouterr().out.strip()


def test_bench_calls_the_suites_quick_mode(monkeypatch):
    bench = pytest.importorskip("minidl.bench")
    calls = []
    monkeypatch.setattr(bench, "run_quick", lambda: calls.append("quick") or {"rows": []})
    assert cli.main(["bench"]) == 0 and calls == ["quick"]


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"minidl {minidl.__version__}"


# build_parser() fails on a sub-command missing from EXAMPLES, so this covers them all
@pytest.mark.parametrize("command", sorted(cli.EXAMPLES))
def test_every_sub_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m minidl {command}" in out.split("example:")[1]


def test_quiet_prints_nothing_and_verbose_prints_the_setup_and_lr(tmp_path, capsys):
    ckpt = str(tmp_path / "w.npz")
    common = ["train", "--epochs", "2", "--batch-size", "256", "--save", ckpt]
    assert cli.main([*common, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert cli.main([*common, "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "lenet" in lines[0] and "seed 0" in lines[0]
    assert [line.split()[:2] for line in lines[1:3]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert all(" lr " in line for line in lines[1:3])
    with pytest.raises(SystemExit) as info:
        cli.main([*common, "--quiet", "--verbose"])
    assert info.value.code == 2


def test_the_model_registry_names_the_network(tmp_path):
    assert cli.MODELS["lenet"] is LeNet
    metrics = tmp_path / "m.json"
    argv = ["train", "--model", "lenet", "--epochs", "1", "--batch-size", "256", "-q"]
    code = cli.main([*argv, "--save", str(tmp_path / "w.npz"), "--metrics-json", str(metrics)])
    assert code == 0
    m = json.loads(metrics.read_text())
    assert m["model"] == "lenet"
    assert [row["epoch"] for row in m["history"]] == [1]
    assert set(m["history"][0]) >= {"loss", "train_accuracy", "test_accuracy", "lr", "seconds"}


@pytest.fixture
def no_training(monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(cli, "train_digits", refuse)


@pytest.mark.parametrize("option", ["--save", "--metrics-json"])
@pytest.mark.parametrize("case", ["missing folder", "a folder", "empty", "under a file"])
def test_unusable_output_paths_fail_before_training(option, case, tmp_path, no_training, capsys):
    (tmp_path / "file.txt").write_text("x")
    path = {
        "missing folder": str(tmp_path / "nowhere" / "out.json"),
        "a folder": str(tmp_path),
        "empty": "",
        "under a file": str(tmp_path / "file.txt" / "out.json"),
    }[case]
    argv = ["train", "--save", str(tmp_path / "ok.npz"), option, path]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"minidl train: error: {option} {path!r} ")
    assert "Traceback" not in err


def test_a_failed_save_during_training_exits_1(tmp_path, monkeypatch, capsys):
    def fail(obj, path):
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(minidl, "save", fail)
    code = cli.main(["train", "--epochs", "1", "--save", str(tmp_path / "w.npz"), "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("minidl train: error:") and "No space left" in err
