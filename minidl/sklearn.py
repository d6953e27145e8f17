"""scikit-learn estimators around minidl's CNNs: ``CNNClassifier`` and ``CNNRegressor``.

They work wherever a scikit-learn estimator does: ``Pipeline``, ``cross_val_score``,
``GridSearchCV``, ``clone``; they pass scikit-learn's estimator checks except the ones
listed in :data:`EXPECTED_FAILED_CHECKS`.

Inputs ``X`` are images (N, C, H, W), (N, H, W) (one channel), or flat rows (N, C*H*W)
reshaped to ``image_shape = (C, H, W)`` (default: a square single-channel image when the
row length is a square, such as the 64 pixels of ``load_digits().data``, else a 1 x D
strip). Training goes through :func:`minidl.training.fit`.

Threads: each ``fit`` (and ``predict``) caps minidl's kernels, the OpenMP pool and both
BLAS pools (numpy's and scipy's) to ``n_threads`` and restores them afterwards. The
default is this process's share of the cores: joblib's process workers (``n_jobs`` of
``cross_val_score`` / ``GridSearchCV``) and Dask's workers announce it in
``OMP_NUM_THREADS`` (cores / jobs, at least 1), otherwise every core. Two fits running
at once in threads of one process share minidl's global thread count and random
generator: parallelise with processes (joblib's default backend, or Dask).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import os
import sys
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    assert_all_finite,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

import minidl
from minidl import optim
from minidl import random as minidl_random
from minidl._threads import _default_num_threads
from minidl.data import DataLoader, random_shift
from minidl.models import LeNet
from minidl.nn.functional import cross_entropy, mse_loss
from minidl.training import History, fit

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "CNNClassifier",
    "CNNRegressor",
    "default_n_threads",
    "limit_threads",
]

#: scikit-learn estimator checks these estimators are expected to fail: check name -> reason.
#: The tests hand it to ``parametrize_with_checks(expected_failed_checks=...)``.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

_OPTIMIZERS = ("sgd", "adam")
_SCHEDULES = ("cosine", "constant")
_PREDICT_BATCH = 512


# ---- threads -------------------------------------------------------------------------
def default_n_threads() -> int:
    """This process's share of the cores: ``OMP_NUM_THREADS`` when set (joblib's process
    workers set it to cores // n_jobs, Dask's workers to 1), else 1 inside a Dask worker,
    else every core this process may run on (as ``minidl.get_num_threads`` defaults)."""
    if not os.environ.get("OMP_NUM_THREADS", "").strip() and _in_dask_worker():
        return 1
    return _default_num_threads()


def _in_dask_worker() -> bool:
    if "distributed" not in sys.modules:
        return False
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the block with minidl's kernels on ``n`` threads and every OpenMP and BLAS pool
    capped at ``n`` (threadpoolctl); everything is put back on exit."""
    from threadpoolctl import ThreadpoolController

    previous = minidl.get_num_threads()
    saved = [(lib, lib.num_threads) for lib in ThreadpoolController().lib_controllers]
    minidl.set_num_threads(n)  # also numpy's BLAS (minidl's own rule)
    try:
        for lib, _ in saved:
            if lib.num_threads > n:
                lib.set_num_threads(n)
        yield
    finally:
        minidl.set_num_threads(previous)
        for lib, threads in saved:
            if lib.num_threads != threads:
                lib.set_num_threads(threads)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """minidl's global generator seeded with ``seed`` for the block, then the old one back
    (weight initialisation and dropout draw from it)."""
    saved = minidl_random.get_generator()
    minidl_random.manual_seed(seed)
    try:
        yield
    finally:
        minidl_random._generator = saved


# ---- parameter checks ----------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not _is_int(value) or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{none}, got {value!r}")


def _check_number(name: str, value: Any, positive: bool) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def _row_image_shape(n_features: int) -> tuple[int, int, int]:
    side = math.isqrt(n_features)
    return (1, side, side) if side * side == n_features else (1, 1, n_features)


# ---- the estimators --------------------------------------------------------------------
class _BaseCNN(BaseEstimator):
    """What CNNClassifier and CNNRegressor share; see CNNClassifier for the parameters."""

    def __init__(
        self,
        module: Callable[..., Any] = LeNet,
        *,
        max_epochs: int = 30,
        batch_size: int = 32,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        augment: Any = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        n_iter_no_change: int = 5,
        image_shape: tuple[int, ...] | None = None,
        warm_start: bool = False,
        random_state: Any = None,
        n_threads: int | None = None,
        verbose: int = 0,
        **module_params: Any,
    ) -> None:
        self.module = module
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.image_shape = image_shape
        self.warm_start = warm_start
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        for key, value in module_params.items():  # checked in fit, as scikit-learn does
            setattr(self, key, value)

    # -- parameters: the signature's plus every module__<name> --------------------------
    def _extra_params(self) -> dict[str, Any]:
        """The keyword arguments beyond the signature (module__<name>): public attributes
        that are neither in the signature nor fitted (``name_``)."""
        named = _BaseCNN._param_names()
        return {
            k: v
            for k, v in vars(self).items()
            if k not in named and not k.startswith("_") and not k.endswith("_")
        }

    @staticmethod
    def _param_names() -> frozenset[str]:
        parameters = inspect.signature(_BaseCNN.__init__).parameters.values()
        return frozenset(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)

    def _module_params(self) -> dict[str, Any]:
        return {k[len("module__") :]: v for k, v in self._extra_params().items()}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(self._extra_params())
        return params

    def set_params(self, **params: Any) -> _BaseCNN:
        extra = self._extra_params()
        for key in [k for k in params if k.startswith("module__") or k in extra]:
            setattr(self, key, params.pop(key))
        if params:
            super().set_params(**params)
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if "optimizer_" in state:  # its state is keyed by id(parameter): pickle indices
            state = dict(state)
            state["_optimizer_state"] = state.pop("optimizer_").state_dict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        module = state.get("module_")
        if module is not None:
            # own, writeable ndarrays again (joblib may hand back read-only memmaps)
            for p in module.parameters():
                p.data = np.array(p.data)
            for m in module.modules():
                for name, b in list(m.named_buffers(recurse=False)):
                    setattr(m, name, np.array(b))
        if optimizer_state is not None and module is not None:
            self.optimizer_ = self._make_optimizer(module)
            self.optimizer_.load_state_dict(optimizer_state)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    def _check_params(self) -> None:
        for key in self._extra_params():
            if not key.startswith("module__") or key == "module__":
                raise TypeError(
                    f"{type(self).__name__} got an unexpected keyword argument {key!r} "
                    f"(arguments of the module go as module__<name>, e.g. module__widths)"
                )
        if isinstance(self.module, type):
            pass
        elif not callable(self.module) or hasattr(self.module, "parameters"):
            raise TypeError(
                f"module must be a Module class or a factory that returns a Module, not "
                f"{type(self.module).__name__} (pass LeNet, not LeNet())"
            )
        _check_int("max_epochs", self.max_epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        _check_number("lr", self.lr, positive=True)
        _check_number("momentum", self.momentum, positive=False)
        _check_number("weight_decay", self.weight_decay, positive=False)
        if self.lr_schedule not in _SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {_SCHEDULES}, got {self.lr_schedule!r}")
        if not (self.augment is None or callable(self.augment)):
            _check_int("augment (the largest shift in pixels)", self.augment, 0)
        vf = self.validation_fraction
        if not (isinstance(vf, numbers.Real) and not isinstance(vf, bool) and 0 <= vf < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {vf!r}")
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}")
        _check_int("n_threads", self.n_threads, 1, allow_none=True)
        _check_int("verbose", self.verbose, 0)
        shape = self.image_shape
        if shape is not None and (
            not isinstance(shape, (tuple, list))
            or len(shape) not in (2, 3)
            or not all(_is_int(s) and s >= 1 for s in shape)
        ):
            raise ValueError(f"image_shape must be (C, H, W) or (H, W) of ints >= 1, got {shape!r}")

    # -- inputs ---------------------------------------------------------------------------
    def _images(self, X: Any, reset: bool) -> np.ndarray:
        """X as float32 (N, C, H, W); sets n_features_in_ / image_shape_ when ``reset``."""
        name = type(self).__name__
        if isinstance(X, (list, tuple)):
            X = np.asarray(X)
        ndim = 2 if scipy.sparse.issparse(X) else getattr(X, "ndim", 2)
        if ndim > 4:
            raise ValueError(
                f"{name}: X must be rows (N, D), images (N, H, W) or (N, C, H, W), "
                f"got {ndim} dimensions"
            )
        if ndim in (3, 4):
            images = check_array(X, allow_nd=True, dtype=np.float32, estimator=self)
            if images.ndim == 3:
                images = images[:, None, :, :]
            shape = images.shape[1:]
            if 0 in shape:
                raise ValueError(f"{name}: X has an empty image dimension, shape {X.shape}")
            if reset:
                given = self.image_shape
                if given is not None and tuple(given) not in (shape, shape[1:]):
                    raise ValueError(
                        f"{name}: image_shape={tuple(given)} but X holds {shape} images"
                    )
                self.n_features_in_ = int(np.prod(shape))
                self.image_shape_ = shape
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif shape != self.image_shape_:
                raise ValueError(
                    f"X has images of shape {shape}, but {name} is expecting "
                    f"{self.image_shape_} images as input."
                )
            return np.ascontiguousarray(images)
        rows = validate_data(self, X, reset=reset, dtype=np.float32)
        if reset:
            if self.image_shape is None:
                shape = _row_image_shape(rows.shape[1])
            else:
                shape = tuple(int(s) for s in self.image_shape)
                shape = (1, *shape) if len(shape) == 2 else shape
                if int(np.prod(shape)) != rows.shape[1]:
                    raise ValueError(
                        f"{name}: image_shape={tuple(self.image_shape)} holds "
                        f"{int(np.prod(shape))} pixels but X has {rows.shape[1]} features"
                    )
            self.image_shape_ = shape
        return np.ascontiguousarray(rows.reshape((len(rows), *self.image_shape_)))

    def _require_y(self, y: Any) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )

    # -- training -------------------------------------------------------------------------
    def _build_module(self, n_outputs: int, seed: int):
        """``module(num_classes=, in_channels=, input_size=, **module__...)``, passing only
        the size arguments the factory accepts."""
        c, h, w = self.image_shape_
        sizes = {"num_classes": n_outputs, "in_channels": c, "input_size": (h, w)}
        try:
            accepted = inspect.signature(self.module).parameters
        except (TypeError, ValueError):
            accepted = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        kwargs = {k: v for k, v in sizes.items() if takes_any or k in accepted}
        kwargs.update(self._module_params())
        with _seeded(seed):
            model = self.module(**kwargs)
        if not hasattr(model, "parameters") or not callable(model):
            raise TypeError(
                f"module {self.module!r} returned {type(model).__name__}, not a minidl Module"
            )
        return model

    def _make_optimizer(self, model):
        if self.optimizer == "sgd":
            return optim.SGD(
                model.parameters(),
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
                nesterov=self.momentum > 0,
            )
        return optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _transform(self, seed: int):
        if self.augment is None or callable(self.augment):
            return self.augment

        return random_shift(int(self.augment), seed=seed) if self.augment else None

    def _train(self, images, targets, epochs: int, first: bool, constant_lr: bool):
        """``epochs`` passes of minidl.training.fit; returns the History."""
        if first:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            self._rng = np.random.default_rng(seed)
            self.module_ = self._build_module(self._n_outputs, seed)
            self.optimizer_ = self._make_optimizer(self.module_)
            self.history_ = History()
            self.n_iter_ = 0
        run_seed, shuffle_seed, shift_seed, split_seed = (
            int(s) for s in self._rng.integers(0, np.iinfo(np.int32).max, size=4)
        )
        train_X, train_y, val = images, targets, None
        if self.validation_fraction > 0:
            stratify = targets if _is_class_targets(targets) else None
            try:
                train_X, val_X, train_y, val_y = train_test_split(
                    images,
                    targets,
                    test_size=self.validation_fraction,
                    random_state=split_seed,
                    stratify=stratify,
                )
            except ValueError as exc:
                raise ValueError(
                    f"{type(self).__name__}: validation_fraction={self.validation_fraction} "
                    f"cannot hold out a validation set from {len(images)} samples: {exc}"
                ) from exc
            val = (val_X, val_y)
        loader = DataLoader(
            train_X,
            train_y,
            batch_size=self.batch_size,
            shuffle=True,
            seed=shuffle_seed,
            transform=self._transform(shift_seed),
        )
        for group in self.optimizer_.param_groups:  # a cosine schedule ends near 0
            group["lr"] = self.lr
        scheduler = None
        if self.lr_schedule == "cosine" and not constant_lr:
            scheduler = optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer_, T_max=epochs * len(loader)
            )
        monitor = _Monitor(self, val, self.early_stopping, self.n_iter_no_change)
        with _seeded(run_seed):  # dropout and the like draw from minidl's generator
            history = fit(
                self.module_,
                loader,
                self.optimizer_,
                epochs=epochs,
                loss_fn=self._loss,
                scheduler=scheduler,
                callbacks=[monitor],
                log=print if self.verbose else None,
            )
        rows = self.history_.rows
        for row, extra in zip(history.rows, monitor.columns):
            rows.append({**row, **extra, "epoch": len(rows) + 1})
        self.history_ = History(rows, stopped_early=history.stopped_early)
        self.n_iter_ += len(history)
        return self.history_

    def _fit(self, X, y, partial: bool, classes=None):
        self._check_params()
        self._require_y(y)
        first = not (partial or self.warm_start) or not hasattr(self, "module_")
        images = self._images(X, reset=first)
        targets = self._targets(y, images, first, classes)
        n_threads = default_n_threads() if self.n_threads is None else self.n_threads
        with limit_threads(n_threads):
            self._train(
                images,
                targets,
                epochs=1 if partial else self.max_epochs,
                first=first,
                constant_lr=partial,
            )
        return self

    def fit(self, X: Any, y: Any) -> _BaseCNN:
        """Train a new network for ``max_epochs`` epochs (or continue the current one when
        ``warm_start``); returns self. ``X``: (N, C, H, W), (N, H, W) or (N, D) rows."""
        return self._fit(X, y, partial=False)

    # -- inference --------------------------------------------------------------------------
    def _outputs(self, X: Any) -> np.ndarray:
        """The network's float64 outputs (N, outputs) for X, in eval mode.

        A float64 copy of the trained float32 network runs here, so that a row's output
        does not depend on which other rows share its batch (the kernels and BLAS may
        round differently for different batch sizes)."""
        check_is_fitted(self)
        images = self._images(X, reset=False)
        model = copy.deepcopy(self.module_).double()
        model.eval()
        n_threads = default_n_threads() if self.n_threads is None else self.n_threads
        outputs = []
        with limit_threads(n_threads), minidl.no_grad():
            for start in range(0, len(images), _PREDICT_BATCH):
                batch = images[start : start + _PREDICT_BATCH].astype(np.float64)
                outputs.append(np.asarray(model(minidl.tensor(batch)).data))
        return np.concatenate(outputs).reshape(len(images), -1)


def _is_class_targets(targets: np.ndarray) -> bool:
    return targets.ndim == 1 and targets.dtype.kind in "iu"


class _Monitor:
    """fit callback: the validation score per epoch and early stopping (best weights kept)."""

    def __init__(self, estimator: _BaseCNN, val, early_stopping: bool, patience: int) -> None:
        self.estimator, self.val = estimator, val
        self.early_stopping, self.patience = bool(early_stopping), patience
        self.columns: list[dict[str, float]] = []
        self.best, self.best_state, self.bad = -math.inf, None, 0

    def on_epoch_end(self, epoch: int, row: dict[str, Any], model) -> bool:
        extra = {}
        if self.val is not None:
            extra["val_score"] = self.estimator._val_score(model, *self.val)
            metric = extra["val_score"]
        else:
            metric = -row["loss"]
        self.columns.append(extra)
        if not self.early_stopping:
            return False
        if metric > self.best:
            self.best, self.bad = metric, 0
            self.best_state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad += 1
        return self.bad >= self.patience

    def on_train_end(self, history, model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def _eval_outputs(model, images: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        with minidl.no_grad():
            return np.concatenate(
                [
                    np.asarray(model(minidl.tensor(images[s : s + _PREDICT_BATCH])).data)
                    for s in range(0, len(images), _PREDICT_BATCH)
                ]
            )
    finally:
        model.train(was_training)


class CNNClassifier(ClassifierMixin, _BaseCNN):
    """A convolutional network as a scikit-learn classifier (trained by minidl).

    Parameters
    ----------
    module : a Module class or a factory (not an instance), default ``LeNet``
        Called as ``module(num_classes=..., in_channels=C, input_size=(H, W), **extra)``
        with only the size arguments it accepts; ``module__<name>=value`` arguments of
        the estimator go into ``extra`` (``module__widths=(16, 32, 64)``), as in skorch.
    max_epochs, batch_size : passes over the data, images per step.
    optimizer : ``"sgd"`` (with Nesterov momentum ``momentum``) or ``"adam"``.
    lr, momentum, weight_decay : the optimiser's settings (``lr`` is the peak rate).
    lr_schedule : ``"cosine"`` (per step, down to 0 over the fit) or ``"constant"``.
    augment : None, an int ``k`` (random shifts of up to k pixels, as ``minidl train``)
        or a function mapping an (N, C, H, W) batch to a new one.
    validation_fraction : share of the training data held out (stratified) to score
        each epoch (``history_``'s ``val_score``); 0 keeps all for training.
    early_stopping : stop after ``n_iter_no_change`` epochs without a better validation
        score (training loss when ``validation_fraction`` is 0), keeping the best weights.
    image_shape : (C, H, W) or (H, W) of flat rows; default a square single-channel image
        when the row length is a square, else a 1 x D strip. Images need none.
    warm_start : ``fit`` continues the current network instead of starting anew.
    random_state : int, RandomState or None; an int makes ``fit`` repeat bit for bit.
    n_threads : threads for this estimator's kernels and BLAS, default
        :func:`default_n_threads` (the process's share of the cores).
    verbose : 0 silent, 1 one line per epoch.

    Attributes
    ----------
    classes_ : the sorted distinct labels (as ``LabelEncoder``); outputs follow them.
    module_ : the trained network. ``optimizer_`` its optimiser.
    history_ : the :class:`minidl.training.History` of the training so far.
    n_features_in_ : pixels per sample (C*H*W). ``image_shape_`` : (C, H, W).
    n_iter_ : epochs trained.
    """

    def _targets(self, y: Any, images: np.ndarray, first: bool, classes=None) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        check_consistent_length(images, y)
        if y.dtype.kind == "f":
            assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        if first:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(labels) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least two classes in y; got one class "
                    f"({labels[0]!r})"
                    if len(labels)
                    else f"{type(self).__name__} got no class labels"
                )
            if classes is not None:
                unknown = np.setdiff1d(y, labels)
                if len(unknown):
                    raise ValueError(f"y holds labels {unknown[:5]} not in classes={labels}")
            self.classes_ = labels
            self._n_outputs = len(labels)
        else:
            unknown = np.setdiff1d(y, self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y holds labels {unknown[:5]} that the classifier was not fitted on "
                    f"(classes_ = {self.classes_})"
                )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    @staticmethod
    def _loss(outputs, targets):
        return cross_entropy(outputs, targets)

    def _val_score(self, model, images, targets) -> float:
        return float(np.mean(_eval_outputs(model, images).argmax(axis=1) == targets))

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> CNNClassifier:
        """One epoch over (X, y). The first call builds the network; ``classes`` (all the
        labels there will be) is needed then unless this y already holds every one."""
        if (
            classes is not None
            and hasattr(self, "classes_")
            and not np.array_equal(np.unique(np.asarray(classes)), self.classes_)
        ):
            raise ValueError(
                f"classes={classes!r} differs from the earlier partial_fit's "
                f"classes_ = {self.classes_}"
            )
        return self._fit(X, y, partial=True, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in the order of ``classes_``."""
        logits = self._outputs(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (N,), from ``classes_``."""
        best = self._outputs(X).argmax(axis=1)
        return self.classes_[best]


class CNNRegressor(RegressorMixin, _BaseCNN):
    """A convolutional network as a scikit-learn regressor, trained on ``mse_loss``.

    The parameters and attributes are CNNClassifier's (no ``classes_``); ``y`` is (N,) or
    (N, outputs) and ``predict`` returns the same shape (float64). The network gets
    ``num_classes = outputs``. Each output is standardised (mean 0, standard deviation 1)
    for training, so ``lr`` does not depend on the targets' units; ``history_``'s loss is
    in those standard units and ``predict`` answers in the original ones. ``score`` is
    R^2; ``validation_fraction`` scores R^2 too.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y: Any, images: np.ndarray, first: bool, classes=None) -> np.ndarray:
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y", estimator=self)
        check_consistent_length(images, y)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be (N,) or (N, outputs), got shape {y.shape}")
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self._y_ndim = y.ndim
        y = y.reshape(len(y), outputs)
        if first:
            self._n_outputs = outputs
            self._y_mean = y.mean(axis=0)
            scale = y.std(axis=0)
            self._y_scale = np.where(scale > 0, scale, 1.0)
        elif outputs != self._n_outputs:
            raise ValueError(
                f"y has {outputs} outputs, but {type(self).__name__} was fitted on "
                f"{self._n_outputs}"
            )
        return np.ascontiguousarray((y - self._y_mean) / self._y_scale, dtype=np.float32)

    @staticmethod
    def _loss(outputs, targets):
        return mse_loss(outputs, targets)

    def _val_score(self, model, images, targets) -> float:
        from sklearn.metrics import r2_score

        return float(r2_score(targets, _eval_outputs(model, images)))  # scale-free

    def partial_fit(self, X: Any, y: Any) -> CNNRegressor:
        """One epoch over (X, y); the first call builds the network."""
        return self._fit(X, y, partial=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, (N,) or (N, outputs) as ``y`` was, float64."""
        outputs = self._outputs(X) * self._y_scale + self._y_mean
        return outputs[:, 0] if self._y_ndim == 1 else outputs
