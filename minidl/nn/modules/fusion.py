"""Runs of Sequential's children that execute as one op (minidl.ops.fused): the same
values with fewer passes over memory.

    Conv2d -> MaxPool2d(2) [-> ReLU]    ops.fused.conv2d_max_pool2d
    MaxPool2d(2) -> ReLU                ops.fused.max_pool2d_relu
    Linear -> ReLU                      ops.fused.linear_relu

A run is fused only when each child is exactly that class with no hooks and no
``forward`` of its own set on the instance, so that nothing could observe or change what
passes between them; and only where the fused op's kernel applies (it returns None
otherwise, and the children run one by one).
"""

from __future__ import annotations

from typing import Any

from minidl.nn.modules.activation import ReLU
from minidl.nn.modules.conv import Conv2d
from minidl.nn.modules.linear import Linear
from minidl.nn.modules.module import Module
from minidl.nn.modules.pooling import MaxPool2d
from minidl.ops import fused


def _plain(module: Module, cls: type) -> bool:
    """module is a ``cls`` whose forward runs as the class wrote it, unobserved."""
    d = module.__dict__
    return (
        type(module) is cls
        and not d.get("_forward_hooks")
        and not d.get("_forward_pre_hooks")
        and "forward" not in d
    )


def _pair_is(value: Any, n: int) -> bool:
    """value is the int n or a pair of ints (n, n), as a pooling argument may be given."""
    if isinstance(value, (tuple, list)):
        return len(value) == 2 and all(type(v) is int and v == n for v in value)
    return type(value) is int and value == n


def _pool_2x2(module: Module) -> bool:
    return (
        _plain(module, MaxPool2d)
        and _pair_is(module.kernel_size, 2)
        and _pair_is(module.stride, 2)
        and _pair_is(module.padding, 0)
        and _pair_is(module.dilation, 1)
        and not module.return_indices
        and not module.ceil_mode
    )


def fused_run(modules: list[Module], i: int, input: Any) -> tuple[Any, int] | None:
    """(output, number of children it stands for) when ``modules[i:]`` starts a run
    that runs fused on ``input``; None otherwise."""
    head = modules[i]
    if (
        type(head) is Conv2d
        and i + 1 < len(modules)
        and _pool_2x2(modules[i + 1])
        and _plain(head, Conv2d)
        and head.padding_mode == "zeros"
    ):
        relu = i + 2 < len(modules) and _plain(modules[i + 2], ReLU)
        out = fused.conv2d_max_pool2d(
            input,
            head.weight,
            head.bias,
            head.stride,
            head.padding,
            head.dilation,
            head.groups,
            relu,
        )
        if out is not None:
            return out, 3 if relu else 2
    if (
        type(head) is MaxPool2d
        and i + 1 < len(modules)
        and _plain(modules[i + 1], ReLU)
        and _pool_2x2(head)
    ):
        out = fused.max_pool2d_relu(input)
        if out is not None:
            return out, 2
    if (
        type(head) is Linear
        and i + 1 < len(modules)
        and _plain(modules[i + 1], ReLU)
        and _plain(head, Linear)
    ):
        out = fused.linear_relu(input, head.weight, head.bias)
        if out is not None:
            return out, 2
    return None
