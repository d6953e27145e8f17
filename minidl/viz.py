"""Pictures of what a network learnt: filters, feature maps, training curves and a
confusion matrix (matplotlib, the optional extra ``pip install "minidl[plot]"``, imported
only when a function here is called).

Every function returns a ``matplotlib.figure.Figure`` (made without pyplot, so nothing
global changes and no window opens) and, given ``path``, also saves it there as a PNG.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from minidl.autograd import Tensor, no_grad, tensor
from minidl.nn.modules.module import Module

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from minidl.training import History

__all__ = ["plot_confusion_matrix", "plot_feature_maps", "plot_filters", "plot_history"]

MAX_TILES = 64  # filters or maps shown at most: beyond that the tiles are too small to see


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is installed in the tests
        raise ImportError(
            'minidl.viz needs matplotlib: pip install "minidl[plot]" (or pip install matplotlib)'
        ) from err
    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _tiles(fig: Figure, planes: np.ndarray, cmap: str, symmetric: bool) -> None:
    """planes (T, h, w) as one near-square mosaic, row-major, a blank line between tiles,
    on a shared colour scale (one image: far quicker to draw than T small plots)."""
    count, h, w = planes.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(count):
        r, c = divmod(k, cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = planes[k]
    finite = planes[np.isfinite(planes)]
    if symmetric:
        top = float(np.abs(finite).max()) if finite.size else 0.0
        vmin, vmax = (-top, top) if top > 0 else (-1.0, 1.0)
    else:
        vmin = float(finite.min()) if finite.size else 0.0
        vmax = float(finite.max()) if finite.size else 1.0
    from matplotlib import colormaps

    colours = colormaps[cmap].with_extremes(bad="white")
    ax = fig.subplots()
    image = ax.imshow(mosaic, cmap=colours, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([(w + 1) * c + (w - 1) / 2 for c in range(cols)], range(cols))
    ax.set_yticks([(h + 1) * r + (h - 1) / 2 for r in range(rows)], range(0, count, cols))
    ax.tick_params(length=0, labelsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8)


def plot_filters(conv_or_weight: Any, path: str | os.PathLike | None = None) -> Figure:
    """The kh x kw filters of a conv layer (a module with a 4-D ``weight``, e.g.
        ``nn.Conv2d``) or of a weight (F, C, kh, kw) Tensor / ndarray: one tile per (filter,
        input channel), the first 64 in one mosaic (tick labels: the first tile of each row and
    each column's offset), on one colour scale symmetric about 0 (red positive,
        blue negative)."""
    weight = getattr(conv_or_weight, "weight", conv_or_weight)
    if isinstance(weight, Tensor):
        weight = weight.data
    if not isinstance(weight, np.ndarray) or weight.ndim != 4:
        raise TypeError(
            "plot_filters: expected a conv layer or a (F, C, kh, kw) weight, got "
            f"{type(conv_or_weight).__name__}"
            + (f" of shape {weight.shape}" if isinstance(weight, np.ndarray) else "")
        )
    n_filters, channels = weight.shape[:2]
    planes = weight.reshape(-1, *weight.shape[2:])[:MAX_TILES].astype(np.float64)
    side = max(3.0, 0.6 * math.ceil(math.sqrt(len(planes))))
    fig = _figure(side + 1, side)
    _tiles(fig, planes, "RdBu_r", symmetric=True)
    which = (
        "filter" if channels == 1 else f"(filter, channel), tile = filter * {channels} + channel"
    )
    fig.suptitle(f"weight {tuple(weight.shape)}: one tile per {which}", fontsize=9)
    return _finish(fig, path)


def _find_layer(model: Module, layer: Module | str) -> tuple[str, Module]:
    for name, module in model.named_modules():
        if module is layer or (isinstance(layer, str) and name == layer):
            return name, module
    names = [name for name, _ in model.named_modules() if name]
    raise ValueError(f"plot_feature_maps: layer {layer!r} is not in the model; its layers: {names}")


def plot_feature_maps(
    model: Module,
    x: Tensor | ArrayLike,
    layer: Module | str,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The output maps of ``layer`` (a submodule of ``model`` or its name in
    ``named_modules()``, e.g. ``"features.0"``) for the first image of ``x`` ((N, C, H, W)
    or one (C, H, W) image): one tile per channel, the first 64. The model runs in eval
    mode without gradients (its train/eval mode is restored after)."""
    if not isinstance(model, Module):
        raise TypeError(
            f"plot_feature_maps: model must be an nn.Module, got {type(model).__name__}"
        )
    name, module = _find_layer(model, layer)
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4 or len(data) == 0:
        raise ValueError(
            f"plot_feature_maps: x must be (N, C, H, W) or (C, H, W), got {data.shape}"
        )
    captured: list[np.ndarray] = []
    handle = module.register_forward_hook(
        lambda mod, inputs, output: captured.append(np.asarray(output.data))
    )
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(tensor(np.ascontiguousarray(data[:1])))
    finally:
        model.train(was_training)
        handle.remove()
    if not captured or captured[0].ndim != 4:
        shape = captured[0].shape if captured else None
        raise ValueError(
            f"plot_feature_maps: layer {name!r} must give (N, C, H, W) maps, got shape {shape}"
        )
    maps = captured[0][0, :MAX_TILES].astype(np.float64)
    side = max(3.0, 0.6 * math.ceil(math.sqrt(len(maps))))
    fig = _figure(side + 1, side)
    _tiles(fig, maps, "viridis", symmetric=False)
    fig.suptitle(
        f"{name} ({type(module).__name__}): {len(maps)} of {captured[0].shape[1]} maps, "
        "tile = channel",
        fontsize=9,
    )
    return _finish(fig, path)


def plot_history(history: History, path: str | os.PathLike | None = None) -> Figure:
    """Training curves of a :class:`minidl.training.History`: the loss per epoch (left)
    and the train / test accuracy per epoch (right, when the history has them)."""
    columns = getattr(history, "columns", None)
    if not callable(columns):
        raise TypeError(
            f"plot_history: expected a minidl.training.History, got {type(history).__name__}"
        )
    data = history.to_dict()
    if not data.get("epoch"):
        raise ValueError("plot_history: the history has no epochs")
    epochs = data["epoch"]
    accuracies = [k for k in ("train_accuracy", "test_accuracy") if k in data]
    fig = _figure(9 if accuracies else 5, 3.5)
    axes = fig.subplots(1, 2 if accuracies else 1, squeeze=False)[0]
    axes[0].plot(epochs, data["loss"], marker="o", markersize=3)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    if min(v for v in data["loss"] if v is not None) > 0:
        axes[0].set_yscale("log")
    for key in accuracies:
        axes[1].plot(epochs, data[key], marker="o", markersize=3, label=key.replace("_", " "))
    if accuracies:
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    return _finish(fig, path)


def plot_confusion_matrix(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    path: str | os.PathLike | None = None,
    labels: ArrayLike | None = None,
) -> Figure:
    """The confusion matrix of integer class labels (rows: true, columns: predicted), drawn
    by scikit-learn's ``ConfusionMatrixDisplay``; ``labels`` picks and orders the classes
    (default: every class in either array)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
        raise ValueError(
            "plot_confusion_matrix: y_true and y_pred must be non-empty 1-D arrays of the same "
            f"length, got shapes {y_true.shape} and {y_pred.shape}"
        )
    fig = _figure(5.5, 5)
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=ax, colorbar=False, cmap="Blues"
    )
    accuracy = float((y_true == y_pred).mean())
    ax.set_title(f"accuracy {accuracy:.4f} ({len(y_true)} samples)")
    return _finish(fig, path)
