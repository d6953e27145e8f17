"""Metrics on predictions: ``box_iou`` (intersection over union of boxes)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["box_iou"]


def _boxes(name: str, value: ArrayLike) -> np.ndarray:
    data = getattr(value, "data", value) if not isinstance(value, np.ndarray) else value
    boxes = np.asarray(data, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"box_iou: {name} must have shape (N, 4), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"box_iou: {name} holds a NaN or an infinity")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f"box_iou: {name} needs x1 >= x0 and y1 >= y0 in every (x0, y0, x1, y1)")
    return boxes


def box_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise IoU of boxes ``(x0, y0, x1, y1)``, as torchvision's ``box_iou``: a (N, 4)
    and b (M, 4) (ndarrays, Tensors or lists) -> (N, M) float64, entry (i, j) =
    area(a_i & b_j) / area(a_i | b_j), areas (x1 - x0) * (y1 - y0). For matched pairs
    (prediction i against target i) take ``box_iou(pred, target).diagonal()``. Two empty
    boxes give NaN (0 / 0), as torchvision.
    """
    a, b = _boxes("a", a), _boxes("b", b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)
