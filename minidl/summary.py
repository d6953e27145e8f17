"""``summary(model, input_shape)``: each layer's output shape and parameter count.

Exposed as ``minidl.nn.summary``. The table follows torchsummary's layout: one row per
leaf module in call order, batch dimension shown as -1, then the totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import no_grad, tensor
from minidl.nn.modules.module import Module


def summary_text(model: Module, input_shape: Sequence[int], dtype: DTypeLike = np.float32) -> str:
    """The summary table as a string. ``input_shape`` excludes the batch: e.g. (1, 8, 8)."""
    if not isinstance(model, Module):
        raise TypeError(f"summary expects an nn.Module, got {type(model).__name__}")
    shape = tuple(input_shape)
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise ValueError(
            f"input_shape must be positive ints without the batch dim, got {input_shape!r}"
        )
    rows: list[tuple[str, tuple[int, ...], int]] = []
    handles = []

    def record_row(module: Module, inputs: tuple, output: Any) -> None:
        count = sum(p.data.size for p in module.parameters(recurse=False))
        out_shape = (-1,) + tuple(getattr(output, "shape", ())[1:])
        rows.append((f"{type(module).__name__}-{len(rows) + 1}", out_shape, count))

    for module in model.modules():
        if next(module.children(), None) is None:  # leaf layers only
            handles.append(module.register_forward_hook(record_row))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(tensor(np.zeros((2,) + shape, dtype=dtype)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    total = sum(p.data.size for p in model.parameters())
    trainable = sum(p.data.size for p in model.parameters() if p.requires_grad)
    width = 64
    lines = [
        "-" * width,
        f"{'Layer (type)':>20}  {'Output Shape':>25}  {'Param #':>15}",
        "=" * width,
    ]
    for name, out_shape, count in rows:
        lines.append(f"{name:>20}  {list(out_shape)!s:>25}  {count:>15,}")
    lines += [
        "=" * width,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "-" * width,
    ]
    return "\n".join(lines)


def summary(model: Module, input_shape: Sequence[int], dtype: DTypeLike = np.float32) -> None:
    """Print :func:`summary_text` (like torchsummary's ``summary``)."""
    print(summary_text(model, input_shape, dtype))
