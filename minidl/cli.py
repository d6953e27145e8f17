"""The ``minidl`` command: ``train`` (a model on the digits), ``bench``, ``info``.

Exit codes: 0 success, 1 training failed (the loss diverged, a file could not be
written), 2 bad arguments (argparse's usage errors and the output-path checks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import minidl
from minidl.models import LeNet, MobileNetDigits
from minidl.nn import Module
from minidl.training import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    RESUME_FORMAT,
    Callback,
    TrainingDiverged,
    TrainingInterrupted,
    train_arrays,
    train_digits,
)

DEFAULT_SAVE = "lenet_digits.npz"
# LeNet on 8x8 digits is too small to split across cores: one thread was fastest in every
# measurement (2 threads was 10x slower on a busy 2-core machine, see EXPERIMENTS.md).
DEFAULT_TRAIN_THREADS = 1

# ``minidl train --model NAME``: a factory of a model for 1x8x8 images and 10 classes.
MODELS: dict[str, Callable[[], Module]] = {
    "lenet": LeNet,
    "mobilenet": MobileNetDigits,
}

# The example shown at the end of each sub-command's --help.
EXAMPLES = {
    "train": "example:\n  python -m minidl train --epochs 10 --seed 1 --save /tmp/lenet.npz\n"
    "  python -m minidl train --resume /tmp/lenet-resume.npz   (after Ctrl-C)\n"
    "  python -m minidl train --data mnist/train-images-idx3-ubyte.gz --epochs 5\n"
    "  python -m minidl train --data my_images/   (one sub-folder per class)",
    "bench": "example:\n  python -m minidl bench\n  python -m minidl bench --plot speedups.png",
    "tune": "example:\n  python -m minidl tune\n"
    "  MINIDL_CACHE_DIR=/tmp/minidl python -m minidl tune --full",
    "info": "example:\n  python -m minidl info\n"
    "  python -m minidl info --conv-plan 64,32,4,4,64,3,1,1",
    "sweep": "example:\n"
    "  python -m minidl sweep --param lr=0.01,0.05,0.1 --param batch_size=32,64 --cv 3 \\\n"
    "      --results-json sweep.json --save best.npz\n"
    "  (a tuple value is written with colons: --param module__widths=16:32:64,32:64:128)",
}
# ``minidl sweep``: folds and epochs of each fit unless swept (minidl/sweep.py runs it).
SWEEP_DEFAULT_CV = 3
SWEEP_DEFAULT_EPOCHS = 10


def build_parser() -> argparse.ArgumentParser:
    """The ``minidl`` argument parser and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="minidl",
        description="minidl: a small, fast deep-learning framework for the CPU.",
        epilog="example:\n  python -m minidl train --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minidl {minidl.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train a model (LeNet) on scikit-learn's 8x8 digits or --data"
    )
    train.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="lenet",
        help="the network (default: lenet)",
    )
    train.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="train on your own images instead of the digits: an .npz file (X_train, "
        "y_train, X_test, y_test or X, y), an IDX images file (MNIST's "
        "NAME-images-idx3-ubyte[.gz], its labels found beside it as "
        "NAME-labels-idx1-ubyte[.gz]) or IMAGES,LABELS (two IDX files), or a folder with "
        "one sub-folder of PNG/JPEG images per class; data without a test split is split "
        "80/20 stratified by --seed. LeNet is sized for the images (default: scikit-learn's "
        "8x8 digits)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"passes over the training set (default: {DEFAULT_EPOCHS})",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images per step (default: {DEFAULT_BATCH_SIZE})",
    )
    train.add_argument(
        "--optimizer",
        choices=sorted(DEFAULT_LR),
        default=DEFAULT_OPTIMIZER,
        help=f"(default: {DEFAULT_OPTIMIZER})",
    )
    train.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: {})".format(
            ", ".join(f"{k} {v}" for k, v in sorted(DEFAULT_LR.items()))
        ),
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the weights, the shuffling and the shifts (default: 0)",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_TRAIN_THREADS,
        help=f"threads for minidl's kernels (default: {DEFAULT_TRAIN_THREADS}; "
        f"this model is too small to gain from more)",
    )
    train.add_argument(
        "--save",
        metavar="PATH",
        default=None,
        help=f"where the weights go, after every epoch (default: {DEFAULT_SAVE}); the "
        f"checkpoint to resume from goes beside it, as NAME-resume.npz",
    )
    train.add_argument(
        "--resume",
        metavar="CKPT",
        default=None,
        help="continue the run saved in CKPT (a NAME-resume.npz) to the epochs it was "
        "started with; its settings replace the training options",
    )
    train.add_argument(
        "--metrics-json",
        metavar="PATH",
        default=None,
        help="write test_accuracy, train_seconds, epochs, history, ... as JSON",
    )
    train.add_argument(
        "--plot-dir",
        metavar="DIR",
        default=None,
        help="after training, save history.png, filters.png (first conv layer) and "
        "confusion.png (test split) in DIR (created if missing; needs matplotlib)",
    )
    train.add_argument(
        "--no-augment", action="store_true", help="do not shift training images by up to one pixel"
    )
    loudness = train.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", "-q", action="store_true", help="print only errors (no progress, no epochs)"
    )
    loudness.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also print the setup and each epoch's learning rate and time",
    )

    bench = sub.add_parser(
        "bench",
        help="run the benchmark suite in quick mode",
        description="minidl against PyTorch, the naive loops of the lecture notes, pure "
        "Python and numpy's matmul, per op and shape (quick mode; the full suite is "
        "benchmarks/bench_suite.py).",
    )
    bench.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw minidl's speed-up over PyTorch and the naive loops as a PNG bar "
        "chart (needs matplotlib); measures at 1 and 2 threads unless --threads says",
    )
    bench.add_argument(
        "--threads",
        metavar="LIST",
        help='thread counts, e.g. "1,2" (default: minidl\'s current one; 1,2 with --plot)',
    )
    bench.add_argument(
        "--tiny",
        action="store_true",
        help="one repeat at the smallest shapes: checks that it runs, the times mean little",
    )
    tune = sub.add_parser(
        "tune",
        help="time every conv path on this CPU; dispatch reads the table from then on",
    )
    tune.add_argument("--full", action="store_true", help="more shapes and repeats (slower)")
    info = sub.add_parser(
        "info",
        help="version, OpenMP, threads, BLAS; the conv plan of a layer",
        description="Versions, OpenMP, thread pools, instruction sets; with --conv-plan, "
        "which kernel each pass of that conv2d layer runs on.",
    )
    info.add_argument(
        "--conv-plan",
        metavar="N,C,H,W,F,k,stride,padding",
        default=None,
        help="print the conv plan (float32, this many threads) of input (N, C, H, W) and "
        "weight (F, C, k, k) with this stride and padding",
    )

    _add_sweep_parser(sub)

    for name, command in sub.choices.items():
        command.epilog = EXAMPLES[name]
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """``minidl sweep``: a GridSearchCV over CNNClassifier on Dask (minidl/sweep.py)."""
    sweep = sub.add_parser(
        "sweep",
        help="grid search over CNNClassifier on a Dask cluster",
        description="A GridSearchCV over minidl.sklearn.CNNClassifier, its fits on Dask: "
        "an embedded LocalCluster (a worker per core) or --scheduler ADDRESS.",
    )
    sweep.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="NAME=V1,V2",
        help="a CNNClassifier parameter and its values (repeat for more parameters)",
    )
    sweep.add_argument(
        "--cv", type=int, default=SWEEP_DEFAULT_CV, help=f"folds (default: {SWEEP_DEFAULT_CV})"
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)",
    )
    sweep.add_argument(
        "--workers", type=int, help="processes of the local cluster (default: one per core)"
    )
    sweep.add_argument(
        "--epochs",
        type=int,
        default=SWEEP_DEFAULT_EPOCHS,
        help=f"max_epochs of every fit unless swept (default: {SWEEP_DEFAULT_EPOCHS})",
    )
    sweep.add_argument("--seed", type=int, default=0, help="random_state of every fit (default: 0)")
    sweep.add_argument(
        "--data",
        metavar="PATH",
        help="an .npz file or an image folder (default: scikit-learn's 8x8 digits)",
    )
    sweep.add_argument("--results-json", metavar="PATH", help="write every result as JSON")
    sweep.add_argument("--save", metavar="PATH", help="save the best model's weights (.npz)")
    sweep.add_argument("--plot", metavar="PATH", help="draw the scores (needs matplotlib)")
    loudness = sweep.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", "-q", action="store_true", help="print only errors (the files are written)"
    )
    loudness.add_argument(
        "--verbose", "-v", action="store_true", help="also print each fold's score"
    )


def _check_train_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error("--lr must be a positive number")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.threads < 1:
        parser.error("--threads must be >= 1")


def output_path_problem(path: str) -> str | None:
    """Why a file cannot be written at ``path`` (checked before training), or None."""
    if path == "":
        return "is empty"
    if os.path.isdir(path):
        return "is a folder"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        return f"is in a folder that does not exist ({os.path.dirname(path) or folder})"
    if not os.path.isdir(folder):
        return f"is in {os.path.dirname(path) or folder}, which is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"is in a folder that is not writable ({os.path.dirname(path) or folder})"
    return None


def _check_output_paths(args: argparse.Namespace) -> bool:
    """Print one line per unusable output path; True when all can be written."""
    ok = True
    for option, path in (("--save", args.save), ("--metrics-json", args.metrics_json)):
        if path is None:
            continue
        problem = output_path_problem(path)
        if problem is not None:
            print(f"minidl train: error: {option} {path!r} {problem}", file=sys.stderr)
            ok = False
    if getattr(args, "plot_dir", None) is not None:
        problem = plot_dir_problem(args.plot_dir)
        if problem is not None:
            print(f"minidl train: error: --plot-dir {args.plot_dir!r} {problem}", file=sys.stderr)
            ok = False
    return ok


def plot_dir_problem(path: str) -> str | None:
    """Why ``--plot-dir`` cannot hold the pictures, or None; creates the folder (and its
    parents) if missing, so that a problem shows before training."""
    try:
        import matplotlib  # noqa: F401  (only whether it is installed)
    except ImportError:
        return 'needs matplotlib: pip install "minidl[plot]"'
    if path == "":
        return "is empty"
    if os.path.exists(path) and not os.path.isdir(path):
        return "is not a folder"
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def _save_plots(folder: str, model: Module, history: Any, X_test: Any, y_test: Any) -> list[str]:
    """history.png, filters.png (the first layer with a 4-D weight) and confusion.png (on
    the test split X_test, y_test) in ``folder``; returns their paths."""
    import numpy as np

    from minidl import viz

    paths = [os.path.join(folder, name) for name in ("history.png", "filters.png", "confusion.png")]
    viz.plot_history(history, paths[0])
    conv = next(m for m in model.modules() if getattr(getattr(m, "weight", None), "ndim", 0) == 4)
    viz.plot_filters(conv, paths[1])
    model.eval()
    with minidl.no_grad():
        predicted = np.argmax(model(minidl.tensor(X_test)).data, axis=1)
    viz.plot_confusion_matrix(y_test, predicted, paths[2])
    return paths


class _SaveWeights(Callback):
    """Saves the model's weights to ``path`` after every epoch."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.saved_epoch = 0

    def on_epoch_end(self, epoch: int, row: dict[str, Any], model: Module) -> None:
        minidl.save(model.state_dict(), self.path)
        self.saved_epoch = epoch


class _VerboseLog(Callback):
    """``--verbose``: each epoch's line with its learning rate and time."""

    def __init__(self, epochs: int, write: Callable[[str], Any]) -> None:
        self.epochs, self.write = epochs, write

    def on_epoch_end(self, epoch: int, row: dict[str, Any], model: Module) -> None:
        self.write(
            f"epoch {epoch:3d}/{self.epochs}  loss {row['loss']:.4f}  "
            f"train acc {row['train_accuracy']:.4f}  test acc {row['test_accuracy']:.4f}  "
            f"lr {row['lr']:.4g}  {row['seconds']:.3f} s"
        )


def resume_path(save: str) -> str:
    """Where ``minidl train --save SAVE`` keeps the checkpoint it can resume from."""
    base, ext = os.path.splitext(save)
    return f"{base}-resume{ext or '.npz'}"


# the training options a resume checkpoint records and restores
_RESUMED = ("model", "epochs", "batch_size", "optimizer", "lr", "seed", "no_augment", "save")
# recorded too, but absent from checkpoints written before ``--data`` existed
_RESUMED_OPTIONAL = ("data",)

_IDX_IMAGES, _IDX_LABELS = "images-idx3", "labels-idx1"


def idx_labels_path(images: str) -> str:
    """The labels file beside an IDX images file, by MNIST's naming
    (``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``); a ValueError when
    the name does not follow it."""
    folder, name = os.path.split(images)
    if _IDX_IMAGES not in name:
        raise ValueError(
            f"{images} is not a folder or an .npz file, and not an IDX images file named "
            f"NAME-{_IDX_IMAGES}-ubyte[.gz] (labels beside it in NAME-{_IDX_LABELS}-ubyte[.gz]); "
            f"pass IDX files as IMAGES,LABELS"
        )
    return os.path.join(folder, name.replace(_IDX_IMAGES, _IDX_LABELS))


def data_spec(text: str) -> str:
    """``--data`` with its paths made absolute (what a resume checkpoint records)."""
    return ",".join(os.path.abspath(part) for part in text.split(","))


def load_data(
    spec: str, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
    """``--data``'s ``(X_train, y_train, X_test, y_test)`` and the number of classes.

    Raises FileNotFoundError/ValueError/ImportError with a message naming the file.
    """
    from minidl import data

    parts = spec.split(",")
    if len(parts) > 2 or not all(parts):
        raise ValueError("expected PATH or IMAGES,LABELS (two IDX files)")
    for part in parts:
        if not os.path.exists(part):
            raise FileNotFoundError(f"{part} does not exist")
    if len(parts) == 1 and os.path.isdir(spec):
        X, y, classes = data.load_image_folder(spec)
        return _split(X, y, seed, spec), len(classes)
    if len(parts) == 1 and spec.lower().endswith(".npz"):
        arrays = data.load_npz(spec, random_state=seed)
        return arrays, int(max(arrays[1].max(), arrays[3].max())) + 1
    images, labels = parts if len(parts) == 2 else (spec, idx_labels_path(spec))
    if not os.path.exists(labels):
        raise FileNotFoundError(
            f"the labels of {images} are not beside it: {labels} does not exist "
            f"(pass IMAGES,LABELS)"
        )
    X, y = data.load_idx(images, labels)
    return _split(X, y, seed, spec), int(y.max()) + 1


def _split(X, y, seed, where):
    from sklearn.model_selection import train_test_split

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.2, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise ValueError(f"cannot split {where} 80/20 stratified: {exc}") from exc
    return X_train, y_train, X_test, y_test


def _load_resume(args: argparse.Namespace) -> dict[str, Any] | None:
    """The checkpoint of ``--resume`` with its options copied into ``args``; None (after
    printing why) when it cannot be resumed."""
    try:
        state = minidl.load(args.resume)
    except (OSError, ValueError) as exc:
        print(f"minidl train: error: --resume {args.resume!r}: {exc}", file=sys.stderr)
        return None
    options = state.get("cli") if isinstance(state, dict) else None
    if not isinstance(options, dict) or state.get("resume_format") != RESUME_FORMAT:
        found = state.get("resume_format") if isinstance(state, dict) else None
        print(
            f"minidl train: error: --resume {args.resume!r} is not a minidl train checkpoint "
            f"of format {RESUME_FORMAT} (found {found!r}); pass the NAME-resume.npz that "
            f"training wrote",
            file=sys.stderr,
        )
        return None
    if options.get("model") not in MODELS:
        print(
            f"minidl train: error: --resume {args.resume!r} holds a {options.get('model')!r} "
            f"model, which this minidl does not know",
            file=sys.stderr,
        )
        return None
    save_given = args.save
    for name in _RESUMED:
        setattr(args, name, options[name])
    for name in _RESUMED_OPTIONAL:
        setattr(args, name, options.get(name))
    if save_given is not None:
        args.save = save_given
    return state


@contextlib.contextmanager
def _stop_on_signals(write: Callable[[str], Any]):
    """Ctrl-C or SIGTERM: finish the current step, then stop (the flag this yields);
    a second Ctrl-C stops at once."""
    requested = []

    def handler(signum, frame):
        if requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.append(signum)
        write("stopping after this step (Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_train(args: argparse.Namespace) -> int:
    resume_state = None
    if args.resume is not None:
        resume_state = _load_resume(args)
        if resume_state is None:
            return 2
    if args.save is None:
        args.save = DEFAULT_SAVE
    if not _check_output_paths(args):
        return 2
    arrays = None
    if args.data is not None:
        args.data = data_spec(args.data)
        try:
            arrays, num_classes = load_data(args.data, args.seed)
        except (OSError, ValueError, ImportError) as exc:
            print(f"minidl train: error: --data {args.data!r}: {exc}", file=sys.stderr)
            return 2
        _, channels, height, width = arrays[0].shape
        shape = {"input_size": (height, width), "in_channels": channels}
        factory = MODELS[args.model]

        def model() -> Module:
            return factory(**shape, num_classes=num_classes)

        what = f"{args.data} ({channels}x{height}x{width}, {num_classes} classes)"
    interactive = sys.stdout.isatty() and not args.quiet
    write = print
    if interactive:
        from tqdm import tqdm

        write = tqdm.write
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    if args.verbose:
        print(
            f"minidl {minidl.__version__}: training {args.model} on "
            f"{'the 8x8 digits' if arrays is None else what}, "
            f"{args.epochs} epochs of batches of {args.batch_size}, {args.optimizer} at lr {lr} "
            f"(cosine), seed {args.seed}, augment {not args.no_augment}, "
            f"{args.threads} thread{'s' if args.threads > 1 else ''}"
        )
    saver = _SaveWeights(args.save)
    callbacks: list[Callback] = [saver]
    ckpt_path = resume_path(args.save)
    options = {name: getattr(args, name) for name in _RESUMED + _RESUMED_OPTIONAL}

    def checkpoint(state: dict[str, Any]) -> None:
        minidl.save({**state, "cli": options}, ckpt_path)

    if args.verbose:
        callbacks.append(_VerboseLog(args.epochs, write))
    previous_threads = minidl.get_num_threads()
    minidl.set_num_threads(args.threads)
    try:
        with _stop_on_signals(write) as interrupt:
            settings = dict(
                epochs=args.epochs,
                batch_size=args.batch_size,
                optimizer=args.optimizer,
                lr=args.lr,
                seed=args.seed,
                augment=not args.no_augment,
                callbacks=callbacks,
                progress=interactive,
                log=None if args.quiet or args.verbose else write,
                checkpoint=checkpoint,
                interrupt=interrupt,
                resume_state=resume_state,
            )
            if arrays is None:
                trained, history = train_digits(model=MODELS[args.model], **settings)
            else:
                trained, history = train_arrays(*arrays, model=model, **settings)
        num_threads = minidl.get_num_threads()
    except TrainingInterrupted as exc:
        print(
            f"interrupted in epoch {exc.epoch} after step {exc.step}; checkpoint saved to "
            f"{ckpt_path}, the weights of the last whole epoch to {args.save}\n"
            f"resume with: minidl train --resume {ckpt_path}",
            file=sys.stderr,
        )
        return 130
    except TrainingDiverged as exc:
        kept = (
            f", {args.save} holds the last good epoch ({saver.saved_epoch})"
            if saver.saved_epoch
            else ""
        )
        print(f"minidl train: error: {exc}{kept}. Try a smaller --lr.", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"minidl train: error: {exc}", file=sys.stderr)
        return 1
    finally:
        minidl.set_num_threads(previous_threads)
    last = history[-1]
    train_seconds = sum(history.seconds)
    metrics = {
        "test_accuracy": last["test_accuracy"],
        "train_seconds": train_seconds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": lr,
        "seed": args.seed,
        "augment": not args.no_augment,
        "num_threads": num_threads,
        "model": args.model,
        "data": args.data or "digits",
        "final_loss": last["loss"],
        "train_accuracy": last["train_accuracy"],
        "history": history.rows,
    }
    if args.metrics_json:
        try:
            with open(args.metrics_json, "w") as f:
                json.dump(metrics, f, indent=2)
        except OSError as exc:
            print(
                f"minidl train: error: could not write {args.metrics_json}: {exc}", file=sys.stderr
            )
            return 1
    if args.plot_dir is not None:
        try:
            test_split = minidl.data.load_digits()[2:] if arrays is None else arrays[2:]
            plotted = _save_plots(args.plot_dir, trained, history, *test_split)
        except OSError as exc:
            print(f"minidl train: error: could not save the plots: {exc}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"plots saved: {', '.join(plotted)}")
    if not args.quiet:
        print(
            f"final test accuracy {last['test_accuracy']:.4f} "
            f"({train_seconds:.1f} s, {num_threads} thread"
            f"{'s' if num_threads > 1 else ''}); weights saved to {args.save}"
        )
    return 0


def _run_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from minidl import bench

    if args.plot is None and args.threads is None and not args.tiny:
        result = bench.run_quick()
        return result if isinstance(result, int) else 0
    from minidl.bench import report, suite

    config = suite.preset("tiny" if args.tiny else "quick")
    threads = args.threads or ("1,2" if args.plot else None)
    if threads is not None:
        try:
            counts = tuple(int(t) for t in threads.split(","))
        except ValueError:
            counts = ()
        if not counts or min(counts) < 1:
            parser.error(f"--threads {threads!r}: expected positive integers, e.g. 1,2")
        config = config.replace(threads=counts)
    if args.plot is not None:
        problem = output_path_problem(args.plot)
        if problem is not None:
            parser.error(f"--plot {args.plot!r} {problem}")
        try:
            import matplotlib  # noqa: F401  (fail before the run, not after it)
        except ImportError:
            parser.error("--plot needs matplotlib: pip install matplotlib")
    results = suite.run_suite(config, log=None)
    print(report.format_table(results))
    if args.plot is not None:
        try:
            report.write_plot(results, args.plot)
        except (ValueError, OSError) as exc:
            print(f"minidl bench: error: --plot {args.plot!r}: {exc}", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}")
    return 0


def _run_info(args):
    from minidl.info import conv_plan_text, info_text

    if args.conv_plan is None:
        print(info_text())
        return 0
    try:
        print(conv_plan_text(args.conv_plan))
    except (ValueError, TypeError) as exc:
        print(f"minidl info: error: --conv-plan: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m minidl`` and the ``minidl`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        _check_train_args(parser, args)
        return _run_train(args)
    if args.command == "bench":
        return _run_bench(args, parser)
    if args.command == "sweep":
        from minidl.sweep import run  # scikit-learn's estimators: only when sweeping

        return run(args, parser)
    if args.command == "tune":
        from minidl.bench.tune import tune

        tune(full=args.full)
        return 0
    return _run_info(args)
