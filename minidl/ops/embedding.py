"""``embedding`` (a differentiable row lookup) and ``one_hot`` (integer classes -> 0/1)."""

from __future__ import annotations

import numpy as np

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V


def _indices(value: object, what: str, name: str = "input") -> np.ndarray:
    idx = value.data if isinstance(value, Tensor) else np.asarray(value)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: {name} must hold integer indices, got dtype {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of weight (num_embeddings, embedding_dim) picked by integer input (*) ->
    (*, embedding_dim). The row at ``padding_idx`` gets no gradient; with ``max_norm``,
    looked-up rows whose norm exceeds it are rescaled in place first (as PyTorch)."""
    what = "embedding"
    w = V.data_of(what, "weight", weight)
    idx = _indices(input, what)
    if w.ndim != 2:
        raise ValueError(
            f"{what}: weight must be 2-D (num_embeddings, embedding_dim), got {w.shape}"
        )
    n = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(f"{what}: index {bad} is out of range for {n} embeddings (0..{n - 1})")
    if sparse:
        raise ValueError(f"{what}: sparse=True is not supported (minidl has no sparse gradients)")
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
            raise TypeError(f"{what}: padding_idx must be an int or None, got {padding_idx!r}")
        if not -n <= padding_idx < n:
            raise ValueError(
                f"{what}: padding_idx {padding_idx} is out of range for {n} embeddings"
            )
        padding_idx = int(padding_idx) % n
    if max_norm is not None:
        _renorm_rows(w, np.unique(idx), float(max_norm), float(norm_type))
    out = w[idx]
    counts = None
    if scale_grad_by_freq:
        counts = np.bincount(idx.ravel(), minlength=n)

    def backward(g):
        gw = np.zeros(w.shape, g.dtype)
        flat = idx.ravel()
        rows = g.reshape(-1, w.shape[1])
        if counts is not None:
            rows = rows / counts[flat][:, None]
        np.add.at(gw, flat, rows)
        if padding_idx is not None:
            gw[padding_idx] = 0
        return (gw,)

    return record(out, (weight,), backward)


def _renorm_rows(w: np.ndarray, rows: np.ndarray, max_norm: float, p: float) -> None:
    norms = np.sum(np.abs(w[rows]) ** p, axis=1) ** (1 / p)
    big = norms > max_norm
    if big.any():
        scale = max_norm / (norms[big] + 1e-7)
        w[rows[big]] *= scale[:, None].astype(w.dtype)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer classes (*) -> int64 (*, num_classes) with a 1 at each class
    (num_classes=-1: one more than the largest class)."""
    what = "one_hot"
    idx = _indices(tensor, what, "tensor")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"{what}: num_classes must be an int, got {num_classes!r}")
    if idx.size and idx.min() < 0:
        raise ValueError(f"{what}: class values must be non-negative, got {idx.min()}")
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError(f"{what}: cannot infer num_classes from an empty tensor")
        num_classes = int(idx.max()) + 1
    elif num_classes < 1 and not (num_classes == 0 and idx.size == 0):
        raise ValueError(f"{what}: num_classes must be -1 or positive, got {num_classes}")
    elif idx.size and idx.max() >= num_classes:
        raise ValueError(
            f"{what}: class value {idx.max()} must be smaller than num_classes={num_classes}"
        )
    out = np.zeros(idx.shape + (int(num_classes),), dtype=np.int64)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return Tensor(out)
