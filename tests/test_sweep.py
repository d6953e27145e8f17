"""The Dask sweep: GridSearchCV over CNNClassifier on a LocalCluster, and ``minidl sweep``."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import minidl
from minidl import sweep
from minidl.cli import main
from minidl.data import load_digits
from minidl.models import LeNet
from minidl.sklearn import CNNClassifier, default_n_threads

distributed = pytest.importorskip("distributed")

GRID = {"lr": [0.003, 0.01], "batch_size": [32, 64]}
PARAMS = {"max_epochs": 3, "optimizer": "adam", "random_state": 0, "n_threads": 1}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def small_digits():
    X_train, y_train, _, _ = load_digits()
    return X_train[:360], y_train[:360]


@pytest.fixture(scope="module")
def reference(small_digits):
    """The same search on joblib's default backend, one job."""
    return GridSearchCV(CNNClassifier(**PARAMS), GRID, cv=2, n_jobs=1).fit(*small_digits)


def _scores(search):
    cv = search.cv_results_
    return {k: cv[k] for k in ("split0_test_score", "split1_test_score", "mean_test_score")}


def test_dask_sweep_gives_the_scores_of_joblibs_default_backend(cluster, small_digits, reference):
    lines = []
    search = sweep.sweep(
        GRID,
        *small_digits,
        cv=2,
        scheduler=cluster.scheduler_address,
        estimator_params=PARAMS,
        log=lines.append,
    )
    assert lines == [
        f"sweeping 4 configurations x 2 folds on the scheduler at "
        f"{cluster.scheduler_address} (2 workers, 2 threads)"
    ]
    for key, expected in _scores(reference).items():
        np.testing.assert_array_equal(search.cv_results_[key], expected)
    assert search.best_params_ == reference.best_params_
    summary = sweep.results(search)
    assert [row["rank"] for row in summary["results"]] == [1, 2, 3, 4]  # no ties: it learns
    assert summary["best_score"] == pytest.approx(reference.best_score_)
    json.dumps(summary)  # JSON-ready


def test_kernels_in_a_dask_task_follow_the_workers_thread_count(cluster):
    with distributed.Client(cluster) as client:
        threads = client.run(lambda dask_worker: dask_worker.state.nthreads)
        assert set(threads.values()) == {1}
        seen = client.gather([client.submit(minidl.get_num_threads, pure=False) for _ in range(4)])
        assert seen == [1] * 4
        assert client.submit(default_n_threads).result() == 1


def test_cli_sweep_on_its_own_local_cluster(tmp_path, capsys):
    X_train, y_train, X_test, y_test = load_digits()
    data = tmp_path / "digits.npz"
    np.savez(data, X_train=X_train[:240], y_train=y_train[:240], X_test=X_test, y_test=y_test)
    out_json, weights, picture = tmp_path / "r.json", tmp_path / "best.npz", tmp_path / "s.png"
    code = main(
        [
            "sweep",
            "--param",
            "lr=0.05,0.1",
            "--param",
            "module__widths=4:8:16",
            "--cv",
            "2",
            "--epochs",
            "1",
            "--workers",
            "2",
            "--data",
            str(data),
            "--results-json",
            str(out_json),
            "--save",
            str(weights),
            "--plot",
            str(picture),
            "--verbose",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "rank  mean score     std  fit (s)  fold 0  fold 1  parameters" in out
    assert "module__widths=4:8:16" in out and "test accuracy" in out
    summary = json.loads(out_json.read_text())
    assert summary["cv"] == 2 and len(summary["results"]) == 2
    assert summary["results"][0]["params"]["module__widths"] == [4, 8, 16]
    assert 0 <= summary["test_accuracy"] <= 1 and summary["scheduler"] == "local"
    model = LeNet(widths=(4, 8, 16))
    model.load_state_dict(minidl.load(weights))  # the best model, loadable as is
    assert picture.stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "lr"], "expected NAME=VALUE"),
        (["--param", "lrr=0.1"], "'lrr' is not a CNNClassifier parameter"),
        (["--param", "lr=0.1", "--param", "lr=0.2"], "--param lr is given twice"),
        (["--param", "lr=0.1", "--cv", "1"], "--cv must be >= 2"),
        (["--param", "lr=0.1", "--workers", "0"], "--workers must be >= 1"),
        (["--param", "lr=0.1", "--save", "/no/such/folder/w.npz"], "--save '/no/such"),
        (["--param", "lr=0.1", "--data", "/no/such/file.npz"], "--data '/no/such/file.npz'"),
        ([], "the following arguments are required: --param"),
        (["--param", "lr=0.1", "-q", "-v"], "not allowed with argument --quiet"),
    ],
)
def test_cli_sweep_bad_arguments_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_sweep_quiet_on_a_running_scheduler(cluster, tmp_path, capsys):
    X_train, y_train, X_test, y_test = load_digits()
    data = tmp_path / "digits.npz"
    np.savez(data, X=np.concatenate([X_train, X_test])[:200], y=np.r_[y_train, y_test][:200])
    out_json = tmp_path / "r.json"
    args = ["sweep", "--param", "lr=0.05,0.1", "--cv", "2", "--epochs", "1", "--quiet"]
    args += ["--scheduler", cluster.scheduler_address, "--data", str(data)]
    assert main([*args, "--results-json", str(out_json)]) == 0
    assert capsys.readouterr().out == ""
    summary = json.loads(out_json.read_text())
    assert summary["scheduler"] == cluster.scheduler_address
    assert [row["params"]["lr"] for row in summary["results"]] in ([0.05, 0.1], [0.1, 0.05])


def test_param_values_are_parsed():
    assert sweep.parse_param("lr=0.01,0.1") == ("lr", [0.01, 0.1])
    assert sweep.parse_param("batch_size=32,64") == ("batch_size", [32, 64])
    assert sweep.parse_param("augment=none,1") == ("augment", [None, 1])
    assert sweep.parse_param("early_stopping=true,false") == ("early_stopping", [True, False])
    assert sweep.parse_param("optimizer=sgd,adam") == ("optimizer", ["sgd", "adam"])
    assert sweep.parse_param("module__widths=8:16,4:8:16") == (
        "module__widths",
        [(8, 16), (4, 8, 16)],
    )


def test_a_cluster_without_minidl_is_refused_before_the_search():
    class ClusterWithoutMinidl:  # stands in for a Client; the check only runs these two
        def run_on_scheduler(self, function, expression):
            return False

        def run(self, function, expression):
            return {"tcp://a:1": True, "tcp://b:2": False}

    assert eval(sweep._FINDS_MINIDL) is True  # what the cluster evaluates, true here
    with pytest.raises(RuntimeError, match=r"the scheduler, worker tcp://b:2 cannot import"):
        sweep._check_cluster_imports_minidl(ClusterWithoutMinidl())


def test_a_worker_killed_mid_sweep_loses_nothing(cluster, small_digits, reference):
    # runs last: it kills one of the shared cluster's workers (its nanny starts a new one)
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(
                sweep.sweep,
                GRID,
                *small_digits,
                cv=2,
                scheduler=cluster.scheduler_address,
                estimator_params=PARAMS,
                log=None,
            )
            victim = None
            deadline = time.monotonic() + 30
            while victim is None and time.monotonic() < deadline and not running.done():
                busy = [w for w, keys in client.processing().items() if keys]
                victim = busy[0] if busy else None
                time.sleep(0.02)
            assert victim is not None, "no fit ever ran on the cluster"
            os.kill(pids[victim], signal.SIGKILL)
            search = running.result(timeout=120)  # finishes, does not hang
        for key, expected in _scores(reference).items():
            np.testing.assert_array_equal(search.cv_results_[key], expected)

        # the scheduler may still list the dead worker for a moment: skip its error
        def alive():
            return client.run(os.getpid, on_error="ignore").values()

        deadline = time.monotonic() + 30
        while pids[victim] in alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids[victim] not in alive()
