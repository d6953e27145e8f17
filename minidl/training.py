"""The training loop: ``fit`` a model, ``evaluate`` its accuracy, the ``History`` of a run.

``fit`` knows nothing of files or the command line: saving checkpoints, early stopping,
plotting and the like hook in as *callbacks*, objects with any of these methods:

- ``on_epoch_end(epoch, row, model) -> bool | None``: called after each epoch with the
  epoch number (from 1), that epoch's row of the :class:`History` (a dict) and the model;
  returning True stops training after this epoch (``History.stopped_early`` is then True).
- ``on_train_end(history, model) -> None``: called once when training ends normally
  (after the last epoch or an early stop), not when it raises.

:class:`Callback` is a base class with both as no-ops; any object with either method
works. ``train_arrays`` is the recipe of ``minidl train`` (``train_digits``: LeNet on
scikit-learn's digits).
"""

from __future__ import annotations

import contextlib
import gc
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from minidl import data, optim
from minidl.autograd import Tensor, no_grad, tensor
from minidl.models import LeNet
from minidl.nn import Module
from minidl.nn.functional import cross_entropy
from minidl.random import manual_seed

__all__ = [
    "Callback",
    "History",
    "TrainingDiverged",
    "TrainingInterrupted",
    "evaluate",
    "fit",
    "gc_quiet",
    "train_arrays",
    "train_digits",
]

# Defaults of ``train_digits`` (and so of ``minidl train``), chosen by experiment
# (examples/EXPERIMENTS.md).
DEFAULT_EPOCHS = 30
DEFAULT_BATCH_SIZE = 32
DEFAULT_OPTIMIZER = "sgd"
DEFAULT_LR = {"sgd": 0.05, "adam": 3e-3}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite.

    ``epoch`` is the epoch in which it happened (from 1), ``lr`` the learning rate of the
    first parameter group at that step and ``history`` the :class:`History` of the epochs
    completed before it.
    """

    def __init__(self, epoch: int, lr: float | None, history: History) -> None:
        lr_text = "" if lr is None else f" (lr={lr:g})"
        super().__init__(f"loss became non-finite in epoch {epoch}{lr_text}; training stopped")
        self.epoch = epoch
        self.lr = lr
        self.history = history


@contextlib.contextmanager
def gc_quiet() -> Iterator[None]:
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


class History:
    """Per-epoch rows of a training run, as returned by :func:`fit`.

    Each row is a dict with ``epoch`` (from 1), ``loss`` (mean training loss),
    ``train_accuracy`` (when the targets are integer class labels and the outputs are
    (N, classes) scores), ``test_accuracy`` (when ``fit`` was given ``eval_data``), ``lr``
    (the learning rate of the first parameter group at the epoch's first step) and
    ``seconds`` (the epoch's training steps and evaluation, callbacks excluded).

    ``history.loss`` is the column as a list, ``history[-1]`` the last row (a dict),
    ``len(history)`` the number of epochs run, ``history.to_dict()`` the columns as a dict
    of lists (JSON-ready) and ``history.rows`` the rows as a list of dicts.
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = (), stopped_early: bool = False) -> None:
        self._rows: list[dict[str, Any]] = [dict(row) for row in rows]
        self.stopped_early = bool(stopped_early)

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row."""
        self._rows.append(dict(row))

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Copies of the rows, first epoch first."""
        return [dict(row) for row in self._rows]

    def columns(self) -> list[str]:
        """The keys of the rows, in order of first appearance."""
        keys: dict[str, None] = {}
        for row in self._rows:
            keys.update(dict.fromkeys(row))
        return list(keys)

    def to_dict(self) -> dict[str, list[Any]]:
        """``{column: [value per epoch]}``; a value missing from a row is None."""
        return {key: [row.get(key) for row in self._rows] for key in self.columns()}

    def __getattr__(self, name: str) -> list[Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self.columns():
            raise AttributeError(
                f"History has no column {name!r}; its columns are {self.columns()}"
            )
        return [row.get(name) for row in self._rows]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self._rows[index])

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, columns={self.columns()})"


class Callback:
    """Base class of ``fit``'s callbacks; subclasses override what they need."""

    def on_epoch_end(self, epoch: int, row: dict[str, Any], model: Module) -> bool | None:
        """Called after each epoch; return True to stop training."""
        return None

    def on_train_end(self, history: History, model: Module) -> None:
        """Called once after the last epoch (or an early stop)."""


def evaluate(model: Module, X: Any, y: Any, batch_size: int = 512) -> float:
    """Fraction of the images ``X`` (N, C, H, W) that ``model`` classifies as ``y`` (N,).

    Runs in eval mode without recording a graph, ``batch_size`` images at a time, and
    puts the model back in the mode it was in.
    """
    X = X.data if isinstance(X, Tensor) else np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(
            f"evaluate: X and y need the same non-zero first dimension and y must be 1-D, "
            f"got shapes {X.shape} and {y.shape}"
        )
    _check_int("evaluate", "batch_size", batch_size, minimum=1)
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with no_grad():
            for start in range(0, len(X), batch_size):
                logits = model(tensor(X[start : start + batch_size])).data
                correct += int((logits.argmax(axis=1) == y[start : start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(X)


def fit(
    model: Module,
    train_loader: Iterable[tuple[Tensor, Any]],
    optimizer: optim.Optimizer,
    *,
    epochs: int,
    loss_fn: Callable[[Tensor, Any], Tensor] = cross_entropy,
    scheduler: optim.lr_scheduler.LRScheduler | None = None,
    scheduler_step: str = "batch",
    eval_data: tuple[Any, Any] | None = None,
    callbacks: Iterable[Any] = (),
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], Any] | None = None,
    interrupt: Callable[[], bool] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; returns the History.

    Each step: ``loss = loss_fn(model(xb), yb)``, ``optimizer.zero_grad()``,
    ``loss.backward()``, ``optimizer.step()``, then ``scheduler.step()`` when
    ``scheduler_step`` is ``"batch"`` (otherwise once per epoch, ``"epoch"``).
    ``train_loader`` yields ``(xb, yb)``: a Tensor (N, ...) and the targets. ``eval_data``
    ``(X, y)`` adds each epoch's ``test_accuracy`` (:func:`evaluate`). ``callbacks``: see
    the module docstring. ``progress`` shows a tqdm bar per epoch; ``log``, if given,
    receives one line per epoch (``fit`` prints nothing otherwise).

    Raises :class:`TrainingDiverged` as soon as a loss is not finite, before that step
    changes the weights.

    Resuming: ``checkpoint(state)``, if given, is called after every epoch and when
    ``interrupt()`` returns True after a step (``fit`` then raises
    :class:`TrainingInterrupted`). ``state`` is a dict that :func:`minidl.save` stores:
    the model, optimizer and scheduler state, the position (epoch and step), the history
    so far and the state of every random generator the run draws from (minidl's global
    one, the loader's and its transform's). ``fit(..., resume_state=state)`` with the
    same model, loader, optimizer and scheduler (freshly built) continues that run and
    ends with the weights the uninterrupted run ends with, bit for bit.
    """
    _check_int("fit", "epochs", epochs, minimum=1)
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"fit: scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if eval_data is not None and (not isinstance(eval_data, (tuple, list)) or len(eval_data) != 2):
        raise ValueError("fit: eval_data must be a pair (X, y) or None")
    if log is not None and not callable(log):
        raise TypeError(f"fit: log must be callable or None, got {type(log).__name__}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not (hasattr(cb, "on_epoch_end") or hasattr(cb, "on_train_end")):
            raise TypeError(f"fit: callback {cb!r} has neither on_epoch_end nor on_train_end")
    history = History()
    first_epoch, skip, sums = 1, 0, None
    generators = _generators(train_loader)
    if resume_state is not None:
        first_epoch, skip, sums, history = _restore(
            resume_state, model, optimizer, scheduler, generators
        )
    run = _Run(model, optimizer, scheduler, generators, history, checkpoint, interrupt)
    with gc_quiet():
        for epoch in range(first_epoch, epochs + 1):
            lr = _current_lr(optimizer)
            start = time.perf_counter()
            if skip:
                # back to the generators' state at the start of the interrupted epoch, so
                # the loader replays the same order and draws; then to the state at the
                # interruption, which dropout and later batches continue from
                _set_states(generators, resume_state["rng"]["epoch_start"])
            run.epoch_start(epoch)
            batches = train_loader
            if progress:
                from tqdm import tqdm

                batches = tqdm(
                    train_loader,
                    desc=f"epoch {epoch}/{epochs}",
                    leave=False,
                    file=sys.stdout,
                    unit="batch",
                )
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite losses raise below
                row = _one_epoch(
                    model,
                    batches,
                    optimizer,
                    loss_fn,
                    scheduler,
                    scheduler_step,
                    run,
                    skip,
                    sums,
                    resume_state["rng"]["now"] if skip else None,
                )
            skip, sums = 0, None
            if row is None:
                raise TrainingDiverged(epoch, _current_lr(optimizer), history)
            row = {"epoch": epoch, **row}
            if eval_data is not None:
                row["test_accuracy"] = evaluate(model, *eval_data)
            row["lr"] = lr
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            if log is not None:
                log(_format_row(row, epochs))
            run.save(epoch, 0, None)
            stop = False
            for cb in callbacks:
                hook = getattr(cb, "on_epoch_end", None)
                if hook is not None and hook(epoch, dict(row), model):
                    stop = True
            if stop:
                history.stopped_early = epoch < epochs
                break
    for cb in callbacks:
        hook = getattr(cb, "on_train_end", None)
        if hook is not None:
            hook(history, model)
    return history


def _one_epoch(
    model,
    batches,
    optimizer,
    loss_fn,
    scheduler,
    scheduler_step,
    run,
    skip=0,
    sums=None,
    states_now=None,
):
    """One pass over ``batches``; returns the loss (and accuracy) row, None if diverged.

    ``skip`` batches are drawn but not trained on (a resumed epoch), ``sums`` are the
    interrupted epoch's running totals and ``states_now`` the generators' states at the
    interruption, set once the skipped batches are drawn.
    """
    model.train()
    total_loss, correct, seen, classification = (
        (0.0, 0, 0, True)
        if sums is None
        else (sums["loss"], sums["correct"], sums["seen"], sums["classification"])
    )
    step = 0
    for xb, yb in batches:
        step += 1
        if step <= skip:
            if step == skip:
                _set_states(run.generators, states_now)
            continue
        outputs = model(xb)
        loss = loss_fn(outputs, yb)
        value = loss.item()
        if not math.isfinite(value):
            return None
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None and scheduler_step == "batch":
            scheduler.step()
        n = len(yb)
        total_loss += value * n
        seen += n
        if classification:
            labels = yb.data if isinstance(yb, Tensor) else np.asarray(yb)
            scores = outputs.data
            classification = labels.ndim == 1 and labels.dtype.kind in "iu" and scores.ndim == 2
            if classification:
                correct += int((scores.argmax(axis=1) == labels).sum())
        if run.interrupt is not None and run.interrupt():
            sums = {
                "loss": total_loss,
                "correct": correct,
                "seen": seen,
                "classification": classification,
            }
            run.save(run.epoch - 1, step, sums)
            raise TrainingInterrupted(run.epoch, step)
    if seen == 0:
        raise ValueError("fit: train_loader gave no batches")
    if scheduler is not None and scheduler_step == "epoch":
        scheduler.step()
    row = {"loss": total_loss / seen}
    if classification:
        row["train_accuracy"] = correct / seen
    return row


class TrainingInterrupted(Exception):
    """``fit`` stopped after a step because ``interrupt()`` said so; the checkpoint was
    written. ``epoch`` is the interrupted epoch (from 1), ``step`` the steps done in it."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"training interrupted in epoch {epoch} after step {step}")
        self.epoch, self.step = epoch, step


RESUME_FORMAT = 1


def _generators(loader) -> dict[str, np.random.Generator]:
    """Every random generator a run draws from, by name."""
    found = {"global": None}
    own = getattr(loader, "_rng", None) or getattr(loader, "generator", None)
    if isinstance(own, np.random.Generator):
        found["loader"] = own
    transform = getattr(loader, "transform", None)
    own = getattr(transform, "generator", None)
    if isinstance(own, np.random.Generator):
        found["transform"] = own
    return found


def _get_states(generators) -> dict[str, Any]:
    from minidl.random import get_generator

    return {
        name: (get_generator() if g is None else g).bit_generator.state
        for name, g in generators.items()
    }


def _set_states(generators, states) -> None:
    from minidl.random import get_generator

    if set(states) != set(generators):
        raise ValueError(
            f"resume: the checkpoint holds the generators {sorted(states)}, this run draws "
            f"from {sorted(generators)}: not the same data pipeline"
        )
    for name, g in generators.items():
        (get_generator() if g is None else g).bit_generator.state = states[name]


class _Run:
    """What ``fit`` needs to write a checkpoint at any step."""

    def __init__(self, model, optimizer, scheduler, generators, history, checkpoint, interrupt):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generators, self.history = generators, history
        self.checkpoint, self.interrupt = checkpoint, interrupt
        self.epoch, self.states_at_epoch_start = 0, None

    def epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        if self.checkpoint is not None or self.interrupt is not None:
            self.states_at_epoch_start = _get_states(self.generators)

    def save(self, epochs_done: int, step: int, sums: dict | None) -> None:
        if self.checkpoint is None:
            return
        now = _get_states(self.generators)
        self.checkpoint(
            {
                "resume_format": RESUME_FORMAT,
                "epochs_done": epochs_done,
                "step": step,
                "sums": sums,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "history": self.history.rows,
                "rng": {"epoch_start": self.states_at_epoch_start if step else now, "now": now},
            }
        )


def _restore(state, model, optimizer, scheduler, generators):
    """Load ``state`` (a ``checkpoint`` dict) into the run; returns where to continue."""
    if not isinstance(state, dict) or state.get("resume_format") != RESUME_FORMAT:
        found = state.get("resume_format") if isinstance(state, dict) else None
        raise ValueError(
            f"resume: not a training checkpoint of format {RESUME_FORMAT} (found {found!r})"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if (scheduler is None) != (state["scheduler"] is None):
        raise ValueError("resume: the checkpoint and this run disagree on having a scheduler")
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    history = History(state["history"])
    if state["step"]:
        return state["epochs_done"] + 1, state["step"], state["sums"], history
    _set_states(generators, state["rng"]["now"])
    return state["epochs_done"] + 1, 0, None, history


def _current_lr(optimizer) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else None


def _format_row(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']:3d}/{epochs}", f"loss {row['loss']:.4f}"]
    if "train_accuracy" in row:
        parts.append(f"train acc {row['train_accuracy']:.4f}")
    if "test_accuracy" in row:
        parts.append(f"test acc {row['test_accuracy']:.4f}")
    return "  ".join(parts)


def _check_int(where: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")


def train_digits(
    *,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    optimizer: str = DEFAULT_OPTIMIZER,
    lr: float | None = None,
    seed: int = 0,
    augment: bool = True,
    model: Callable[[], Module] | None = None,
    widths: Iterable[int] | None = None,
    callbacks: Iterable[Any] = (),
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], Any] | None = None,
    interrupt: Callable[[], bool] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> tuple[Module, History]:
    """The recipe of ``minidl train``: a model on scikit-learn's 8x8 digits.

    :func:`train_arrays` on ``data.load_digits()`` with ``model()`` (default ``LeNet()``,
    or ``LeNet(widths=widths)``). Returns ``(model, history)``.
    """
    if model is not None and widths is not None:
        raise ValueError("train_digits: give model or widths, not both")
    if model is None:
        model = LeNet if widths is None else (lambda: LeNet(widths=tuple(widths)))
    return train_arrays(
        *data.load_digits(),
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        augment=augment,
        callbacks=callbacks,
        progress=progress,
        log=log,
        checkpoint=checkpoint,
        interrupt=interrupt,
        resume_state=resume_state,
    )


def train_arrays(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    model: Callable[[], Module],
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    optimizer: str = DEFAULT_OPTIMIZER,
    lr: float | None = None,
    seed: int = 0,
    augment: bool = True,
    callbacks: Iterable[Any] = (),
    progress: bool = False,
    log: Callable[[str], Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], Any] | None = None,
    interrupt: Callable[[], bool] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> tuple[Module, History]:
    """The recipe of ``minidl train`` on any images: ``X_train`` (N, C, H, W) float32 and
    ``y_train`` (N,) int64 labels, evaluated on ``X_test``, ``y_test`` after every epoch.

    Seeds minidl with ``seed``, builds ``model()``, trains it with SGD (Nesterov momentum
    0.9) or Adam at peak ``lr`` (default per optimizer: ``DEFAULT_LR``) on a per-step
    cosine schedule, on shuffled batches shifted by up to one pixel when ``augment``.
    Returns ``(model, history)``. ``checkpoint``, ``interrupt`` and ``resume_state`` are
    :func:`fit`'s.
    """
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"train: optimizer must be one of {sorted(DEFAULT_LR)}")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    manual_seed(seed)
    net = model()
    if optimizer == "sgd":
        opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = optim.Adam(net.parameters(), lr=lr)
    transform = data.random_shift(1, seed=seed + 1) if augment else None
    loader = data.DataLoader(
        X_train, y_train, batch_size=batch_size, shuffle=True, seed=seed, transform=transform
    )
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    history = fit(
        net,
        loader,
        opt,
        epochs=epochs,
        scheduler=schedule,
        eval_data=(X_test, y_test),
        callbacks=callbacks,
        progress=progress,
        log=log,
        checkpoint=checkpoint,
        interrupt=interrupt,
        resume_state=resume_state,
    )
    return net, history
