"""``summary(model, input_shape)``: each layer's output shape and parameter count.

Exposed as ``minidl.nn.summary``. The table follows torchsummary's layout: one row per
leaf module in call order, batch dimension shown as -1, then the totals. A
``DepthwiseSeparableConv2d`` adds a line after its two convs: its parameter count beside a
standard Conv2d of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import no_grad, tensor
from minidl.nn.modules.depthwise import DepthwiseSeparableConv2d
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
    notes: dict[int, str] = {}  # after row i: a separable conv against a standard one
    handles = []

    def record_row(module: Module, inputs: tuple, output: Any) -> None:
        count = sum(p.data.size for p in module.parameters(recurse=False))
        out_shape = (-1,) + tuple(getattr(output, "shape", ())[1:])
        rows.append((f"{type(module).__name__}-{len(rows) + 1}", out_shape, count))

    # the layer being run, so that an error can say where input_shape stops fitting
    current: list[tuple[str, Module]] = []
    names = {id(m): name for name, m in model.named_modules()}

    def enter(module: Module, inputs: tuple) -> None:
        current.append((names.get(id(module), ""), module))

    def note_separable(module: Module, inputs: tuple, output: Any) -> None:
        count = sum(p.data.size for p in module.parameters())
        notes[len(rows)] = (
            f"    separable conv above: {count:,} params "
            f"(a standard Conv2d of that shape: {module.standard_conv_parameters():,})"
        )

    for module in model.modules():
        if isinstance(module, DepthwiseSeparableConv2d):
            handles.append(module.register_forward_hook(note_separable))
        if next(module.children(), None) is None:  # leaf layers only
            handles.append(module.register_forward_hook(record_row))
            handles.append(module.register_forward_pre_hook(enter))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(tensor(np.zeros((2,) + shape, dtype=dtype)))
    except (ValueError, TypeError) as err:
        where = ""
        if current:
            name, module = current[-1]
            where = f" at layer {name!r} ({type(module).__name__})" if name else ""
            shapes = " -> ".join(str(list(row[1])) for row in rows)
            if shapes:
                where += f" after output shapes {shapes}"
        # the batch of 2 is summary's own: shown as -1, as in the table
        detail = str(err).replace("input shape (2, ", "input shape (-1, ")
        raise type(err)(
            f"summary: input_shape {shape} does not fit the model{where}: {detail}"
        ) from err
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
    for i, (name, out_shape, count) in enumerate(rows, 1):
        lines.append(f"{name:>20}  {list(out_shape)!s:>25}  {count:>15,}")
        if i in notes:
            lines.append(notes[i])
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
