"""The ``parameters`` argument of nn.utils: one Tensor, or an iterable of them."""

from collections.abc import Iterable
from typing import Any

from minidl.autograd import Tensor


def as_param_list(what: str, parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """``parameters`` as a list of Tensors; a TypeError naming ``what`` otherwise."""
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        params: list[Any] = list(parameters)
    except TypeError:
        raise TypeError(
            f"{what}: parameters must be a Tensor or an iterable of Tensors, got "
            f"{type(parameters).__name__}"
        ) from None
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{what}: expected Tensors in parameters, got {type(p).__name__}")
    return params
