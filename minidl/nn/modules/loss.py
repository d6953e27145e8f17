"""Loss modules: CrossEntropyLoss (logits + class indices), MSELoss."""

from __future__ import annotations

from numpy.typing import ArrayLike

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn.modules.module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """input (N, classes) logits, target (N,) int class indices -> mean of -log softmax."""

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.cross_entropy(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) of squared differences; input and target of the same shape."""

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)
