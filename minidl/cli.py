"""The ``minidl`` command: ``train`` (LeNet on the digits), ``bench``, ``info``."""

import argparse
import contextlib
import gc
import importlib.util
import json
import math
import sys
import time

import numpy as np

# Defaults of ``minidl train``, chosen by experiment (examples/EXPERIMENTS.md).
DEFAULT_EPOCHS = 30
DEFAULT_BATCH_SIZE = 32
DEFAULT_OPTIMIZER = "sgd"
DEFAULT_LR = {"sgd": 0.05, "adam": 3e-3}
DEFAULT_SAVE = "lenet_digits.npz"
# LeNet on 8x8 digits is too small to split across cores: one thread was fastest in every
# measurement (2 threads was 10x slower on a busy 2-core machine, see EXPERIMENTS.md).
DEFAULT_TRAIN_THREADS = 1


@contextlib.contextmanager
def gc_quiet():
    """Keep the cyclic GC from re-scanning everything alive before training.

    ``gc.freeze()`` moves the objects alive on entry (the interpreter, scikit-learn, the
    model and the data: ~90k objects) out of the collector's view until exit, so the
    full collections that the training loop still triggers (about one every 4 epochs,
    ~13 ms each before) only traverse what training made. The collector stays on.
    """
    already_frozen = gc.get_freeze_count() > 0  # the caller's own freeze is left alone
    if not already_frozen:
        gc.freeze()
    try:
        yield
    finally:
        if not already_frozen:
            gc.unfreeze()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minidl", description="minidl: a small, fast deep-learning framework for the CPU."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train LeNet on scikit-learn's 8x8 digits")
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
        default=DEFAULT_SAVE,
        help=f"where the weights go, after every epoch (default: {DEFAULT_SAVE})",
    )
    train.add_argument(
        "--metrics-json",
        metavar="PATH",
        default=None,
        help="write test_accuracy, train_seconds, epochs, ... as JSON",
    )
    train.add_argument(
        "--no-augment", action="store_true", help="do not shift training images by up to one pixel"
    )

    sub.add_parser("bench", help="run the benchmark suite in quick mode")
    info = sub.add_parser(
        "info",
        help="version, OpenMP, threads, BLAS; the conv plan of a layer",
        description="Versions, OpenMP, thread pools, instruction sets; with --conv-plan, "
        "which kernel each pass of that conv2d layer runs on.",
        epilog="example: python -m minidl info --conv-plan 64,32,4,4,64,3,1,1",
    )
    info.add_argument(
        "--conv-plan",
        metavar="N,C,H,W,F,k,stride,padding",
        default=None,
        help="print the conv plan (float32, this many threads) of input (N, C, H, W) and "
        "weight (F, C, k, k) with this stride and padding",
    )
    return parser


def _check_train_args(parser, args):
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error("--lr must be a positive number")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.threads < 1:
        parser.error("--threads must be >= 1")


def accuracy(model, X, y, batch_size=512):
    """Fraction of ``X`` (N, C, H, W) that ``model`` classifies as ``y``, in eval mode."""
    import minidl

    was_training = model.training
    model.eval()
    correct = 0
    with minidl.no_grad():
        for start in range(0, len(X), batch_size):
            logits = model(minidl.tensor(X[start : start + batch_size])).data
            correct += int((logits.argmax(axis=1) == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / len(X)


def _train_one_epoch(model, batches, opt, schedule):
    """One pass over ``batches``; returns mean loss and train accuracy, None if diverged."""
    import minidl.nn.functional as F

    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for xb, yb in batches:
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        value = loss.item()
        if not math.isfinite(value):
            return None
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        total_loss += value * len(yb)
        correct += int((logits.data.argmax(axis=1) == yb).sum())
        seen += len(yb)
    return {"loss": total_loss / seen, "train_accuracy": correct / seen}


def train(
    epochs=DEFAULT_EPOCHS,
    batch_size=DEFAULT_BATCH_SIZE,
    optimizer=DEFAULT_OPTIMIZER,
    lr=None,
    seed=0,
    augment=True,
    save=None,
    progress=False,
    log=print,
    widths=None,
):
    """Train ``LeNet()`` on the digits; returns (model, metrics dict).

    Saves the weights to ``save`` after every epoch. Raises :class:`TrainingDiverged` as
    soon as a loss is not finite (the file then holds the last good epoch).
    ``widths`` overrides LeNet's layer widths (for experiments; None = ``LeNet()``).
    """
    import minidl
    from minidl import data, optim
    from minidl.models import LeNet

    lr = DEFAULT_LR[optimizer] if lr is None else lr
    minidl.manual_seed(seed)
    X_train, y_train, X_test, y_test = data.load_digits()
    model = LeNet() if widths is None else LeNet(widths=widths)
    if optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = optim.Adam(model.parameters(), lr=lr)
    transform = data.random_shift(1, seed=seed + 1) if augment else None
    loader = data.DataLoader(
        X_train, y_train, batch_size=batch_size, shuffle=True, seed=seed, transform=transform
    )
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))

    history = []
    with gc_quiet():
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            batches = loader
            if progress:
                from tqdm import tqdm

                batches = tqdm(
                    loader,
                    desc=f"epoch {epoch}/{epochs}",
                    leave=False,
                    file=sys.stdout,
                    unit="batch",
                )
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite losses raise below
                row = _train_one_epoch(model, batches, opt, schedule)
            if row is None:
                raise TrainingDiverged(
                    f"loss became non-finite in epoch {epoch} (lr={lr}); training stopped"
                    + (
                        f", {save} holds the last good epoch ({epoch - 1})"
                        if save and epoch > 1
                        else ""
                    )
                )
            row = {"epoch": epoch, **row, "test_accuracy": accuracy(model, X_test, y_test)}
            history.append(row)
            if save:
                minidl.save(model.state_dict(), save)
            log(
                f"epoch {epoch:3d}/{epochs}  loss {row['loss']:.4f}  "
                f"train acc {row['train_accuracy']:.4f}  test acc {row['test_accuracy']:.4f}"
            )
        seconds = time.perf_counter() - start
    metrics = {
        "test_accuracy": history[-1]["test_accuracy"],
        "train_seconds": seconds,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr,
        "seed": seed,
        "augment": augment,
        "num_threads": minidl.get_num_threads(),
        "final_loss": history[-1]["loss"],
        "train_accuracy": history[-1]["train_accuracy"],
        "history": history,
    }
    return model, metrics


def _run_train(args):
    import minidl

    previous_threads = minidl.get_num_threads()
    minidl.set_num_threads(args.threads)
    interactive = sys.stdout.isatty()
    log = print if not interactive else __import__("tqdm").tqdm.write
    try:
        _, metrics = train(
            args.epochs,
            args.batch_size,
            args.optimizer,
            args.lr,
            args.seed,
            not args.no_augment,
            args.save,
            progress=interactive,
            log=log,
        )
    except TrainingDiverged as exc:
        print(f"minidl train: error: {exc}. Try a smaller --lr.", file=sys.stderr)
        return 1
    finally:
        minidl.set_num_threads(previous_threads)
    print(
        f"final test accuracy {metrics['test_accuracy']:.4f} "
        f"({metrics['train_seconds']:.1f} s, {metrics['num_threads']} thread"
        f"{'s' if metrics['num_threads'] > 1 else ''}); weights saved to {args.save}"
    )
    if args.metrics_json:
        with open(args.metrics_json, "w") as f:
            json.dump(metrics, f, indent=2)
    return 0


def _run_bench():
    if importlib.util.find_spec("minidl.bench") is None:
        print("minidl bench: the benchmark suite is not installed (no minidl.bench package)")
        return 1
    from minidl import bench

    result = bench.run_quick()
    return result if isinstance(result, int) else 0


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


def main(argv=None):
    """Entry point of ``python -m minidl`` and the ``minidl`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        _check_train_args(parser, args)
        return _run_train(args)
    if args.command == "bench":
        return _run_bench()
    return _run_info(args)
