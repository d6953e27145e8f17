"""``minidl sweep``: a grid search over CNNClassifier, spread over a Dask cluster.

scikit-learn's ``GridSearchCV`` runs its fits through joblib; inside
``joblib.parallel_backend("dask")`` joblib hands them to a Dask cluster, which schedules
them on its workers and runs a task again elsewhere when a worker dies. Without a
scheduler address, :func:`sweep` starts a ``LocalCluster`` (one process a core, one
thread each) and shuts it down at the end. Dask starts its workers with
``OMP_NUM_THREADS=1``, so each fit's kernels run on one thread (a worker runs as many
fits at once as it has threads). Needs ``pip install "minidl[distributed]"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

import minidl
from minidl import data
from minidl.cli import output_path_problem
from minidl.sklearn import CNNClassifier

DEFAULT_CV = 3


# ---- the grid -------------------------------------------------------------------------
def _value(text: str) -> Any:
    """'32' -> 32, '0.05' -> 0.05, 'true' -> True, 'none' -> None, '8:16' -> (8, 16)."""
    if ":" in text:
        return tuple(_value(part) for part in text.split(":"))
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"lr=0.01,0.05"`` -> ``("lr", [0.01, 0.05])``; a ValueError says what is wrong.

    The name must be a CNNClassifier parameter or ``module__<name>``.
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ValueError(f"--param {text!r}: expected NAME=VALUE[,VALUE...], e.g. lr=0.01,0.1")
    allowed = set(CNNClassifier().get_params()) - {"module"}
    if name not in allowed and not (name.startswith("module__") and len(name) > 8):
        raise ValueError(
            f"--param {text!r}: {name!r} is not a CNNClassifier parameter; choose from "
            f"{', '.join(sorted(allowed))} or module__<name>"
        )
    parsed = [_value(v) for v in values.split(",") if v.strip()]
    if not parsed:
        raise ValueError(f"--param {text!r}: no values")
    return name, parsed


def param_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """The ``--param`` options as a GridSearchCV grid (a name given twice is an error)."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        name, values = parse_param(text)
        if name in grid:
            raise ValueError(f"--param {name} is given twice")
        grid[name] = values
    return grid


# ---- the search ----------------------------------------------------------------------
def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            'minidl sweep needs dask.distributed: pip install "minidl[distributed]"'
        ) from exc
    return distributed


def sweep(
    grid: dict[str, list[Any]],
    X: Any,
    y: Any,
    *,
    cv: int = DEFAULT_CV,
    scheduler: str | None = None,
    n_workers: int | None = None,
    estimator_params: dict[str, Any] | None = None,
    log: Callable[[str], Any] | None = print,
):
    """``GridSearchCV(CNNClassifier(**estimator_params), grid, cv=cv)`` fitted on (X, y)
    with its fits on Dask; returns the fitted search (``best_estimator_`` refitted on all
    of X).

    ``scheduler``: the address of a running Dask scheduler (``tcp://host:8786``); None
    starts a ``LocalCluster`` of ``n_workers`` processes (default: one a core) with one
    thread each, closed at the end.
    """
    import joblib
    from sklearn.model_selection import GridSearchCV, check_cv

    distributed = _import_distributed()
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}")
    if n_workers is not None and (
        isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
    ):
        raise ValueError(f"n_workers must be an int >= 1, got {n_workers!r}")
    X, y = np.asarray(X), np.asarray(y)
    # joblib's Dask backend scatters large task arguments to one worker each, and data
    # scattered to a worker that dies is lost (Dask cannot recompute it): X and y go to
    # every worker (broadcast) and the folds' indices travel inside the tasks as lists.
    folds = [
        (train.tolist(), test.tolist())
        for train, test in check_cv(cv, y, classifier=True).split(X, y)
    ]
    search = GridSearchCV(
        CNNClassifier(**(estimator_params or {})), grid, cv=folds, n_jobs=-1, error_score="raise"
    )
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=n_workers or joblib.cpu_count(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        else:
            client = stack.enter_context(distributed.Client(scheduler))
        _check_cluster_imports_minidl(client)
        workers = client.scheduler_info().get("workers", {})
        if log is not None:
            where = "a local cluster" if scheduler is None else f"the scheduler at {scheduler}"
            configurations = math.prod(len(v) for v in grid.values())
            log(
                f"sweeping {configurations} configurations x {cv} folds on {where} "
                f"({len(workers)} workers, {sum(w['nthreads'] for w in workers.values())} "
                f"threads)"
            )
        with joblib.parallel_backend("dask", scatter=[X, y]):
            search.fit(X, y)
    return search


# Evaluated on the scheduler and the workers: a plain expression, so that checking does
# not itself need minidl there (a function of this module would be pickled by reference).
_FINDS_MINIDL = "__import__('importlib.util').util.find_spec('minidl') is not None"


def _check_cluster_imports_minidl(client) -> None:
    """A RuntimeError when the scheduler or a worker cannot import minidl (Dask would
    otherwise fail to read the tasks there and the search would wait forever)."""
    places = {"the scheduler": client.run_on_scheduler(eval, _FINDS_MINIDL)}
    places.update({f"worker {w}": ok for w, ok in client.run(eval, _FINDS_MINIDL).items()})
    missing = [place for place, ok in places.items() if not ok]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} cannot import minidl: install the same minidl on every "
            f'machine of the cluster (pip install "minidl[distributed]")'
        )


# ---- reporting -----------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-ready: tuples to lists, numpy numbers to Python numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def results(search, **extra: Any) -> dict[str, Any]:
    """The search as a JSON-ready dict: one row per configuration, best first."""
    cv = search.cv_results_
    order = sorted(range(len(cv["params"])), key=lambda i: int(cv["rank_test_score"][i]))
    rows = [
        {
            "rank": int(cv["rank_test_score"][i]),
            "params": _plain(cv["params"][i]),
            "mean_score": float(cv["mean_test_score"][i]),
            "std_score": float(cv["std_test_score"][i]),
            "mean_fit_seconds": float(cv["mean_fit_time"][i]),
            "fold_scores": [float(cv[f"split{k}_test_score"][i]) for k in range(search.n_splits_)],
        }
        for i in order
    ]
    return {
        "best_params": _plain(search.best_params_),
        "best_score": float(search.best_score_),
        "cv": int(search.n_splits_),
        "results": rows,
        **_plain(extra),
    }


def _show(params: dict[str, Any]) -> str:
    """``name=value`` pairs as ``--param`` takes them (a tuple as 8:16:32)."""

    def text(v: Any) -> str:
        return ":".join(text(x) for x in v) if isinstance(v, (list, tuple)) else str(v)

    return " ".join(f"{k}={text(v)}" for k, v in params.items())


def table(summary: dict[str, Any], folds: bool = False) -> str:
    """The rows of :func:`results` as a text table (``folds``: each fold's score too)."""
    header = ("rank", "mean score", "std", "fit (s)")
    if folds:
        header += tuple(f"fold {k}" for k in range(summary["cv"]))
    header += ("parameters",)
    lines = [header]
    for row in summary["results"]:
        cells = (
            str(row["rank"]),
            f"{row['mean_score']:.4f}",
            f"{row['std_score']:.4f}",
            f"{row['mean_fit_seconds']:.2f}",
        )
        if folds:
            cells += tuple(f"{score:.4f}" for score in row["fold_scores"])
        lines.append((*cells, _show(row["params"])))
    widths = [max(len(line[c]) for line in lines) for c in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1]
        for line in lines
    )


def plot(summary: dict[str, Any], path: str) -> None:
    """A bar chart of each configuration's mean score (std as error bars) at ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'minidl sweep --plot needs matplotlib: pip install "minidl[plot]"'
        ) from exc
    rows = summary["results"]
    labels = [_show(row["params"]).replace(" ", "\n") for row in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows)), 4.0))
    ax.bar(
        range(len(rows)),
        [row["mean_score"] for row in rows],
        yerr=[row["std_score"] for row in rows],
        capsize=4,
        color="tab:blue",
    )
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel(f"mean accuracy over {summary['cv']} folds")
    ax.set_title("minidl sweep: CNNClassifier, best first")
    lowest = min(row["mean_score"] - row["std_score"] for row in rows)
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the command line (its parser is in minidl/cli.py) ------------------------------
def _load(path: str | None, seed: int):
    """(X_train, y_train, X_test, y_test) of the digits, an npz file or an image folder."""
    if path is None:
        return data.load_digits()
    if os.path.isdir(path):
        from sklearn.model_selection import train_test_split

        X, y, _ = data.load_image_folder(path)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.2, random_state=seed, stratify=y
        )
        return X_train, y_train, X_test, y_test
    return data.load_npz(path, random_state=seed)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``minidl sweep``: returns the exit code (2 for bad arguments, as argparse)."""
    try:
        grid = param_grid(args.param)
    except ValueError as exc:
        parser.error(str(exc))
    if args.cv < 2:
        parser.error("--cv must be >= 2")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    for option in ("results_json", "save", "plot"):
        path = getattr(args, option)
        problem = None if path is None else output_path_problem(path)
        if problem is not None:
            parser.error(f"--{option.replace('_', '-')} {path!r} {problem}")
    if args.data is not None and not os.path.exists(args.data):
        parser.error(f"--data {args.data!r} does not exist")
    try:
        _import_distributed()
    except ImportError as exc:
        print(f"minidl sweep: error: {exc}", file=sys.stderr)
        return 1
    try:
        X_train, y_train, X_test, y_test = _load(args.data, args.seed)
    except (ValueError, ImportError) as exc:
        print(f"minidl sweep: error: {exc}", file=sys.stderr)
        return 1
    params = {"max_epochs": args.epochs, "random_state": args.seed}
    try:
        search = sweep(
            grid,
            X_train,
            y_train,
            cv=args.cv,
            scheduler=args.scheduler,
            n_workers=args.workers,
            estimator_params=params,
            log=None if args.quiet else print,
        )
    except (ValueError, RuntimeError, OSError) as exc:  # a diverged fit, no scheduler ...
        print(f"minidl sweep: error: {exc}", file=sys.stderr)
        return 1
    best = search.best_estimator_
    test_accuracy = float(np.mean(best.predict(X_test) == y_test))
    summary = results(
        search,
        test_accuracy=test_accuracy,
        max_epochs=args.epochs,
        seed=args.seed,
        data=args.data or "digits",
        scheduler=args.scheduler or "local",
    )
    say = (lambda text: None) if args.quiet else print
    say(table(summary, folds=args.verbose))
    say(
        f"best: {_show(summary['best_params'])}  "
        f"cv score {summary['best_score']:.4f}  test accuracy {test_accuracy:.4f}"
    )
    if args.results_json:
        with open(args.results_json, "w") as f:
            json.dump(summary, f, indent=2)
    if args.save:
        minidl.save(best.module_.state_dict(), args.save)
        say(f"best model's weights saved to {args.save}")
    if args.plot:
        plot(summary, args.plot)
    return 0
