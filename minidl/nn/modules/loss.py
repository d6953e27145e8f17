"""Loss modules (as ``torch.nn``): each holds its options and calls the functional loss.

Class weights (``weight``, ``pos_weight``) are buffers, so they appear in ``state_dict``
and follow ``.to(dtype)``, as in PyTorch.
"""

from __future__ import annotations

import numpy as np
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


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | np.ndarray | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """input (N, C) (or (C,), or (N, C, d1, ...)) logits; target (N,) int class indices
    (or class probabilities of the input's shape) -> see ``F.cross_entropy``."""

    def __init__(
        self,
        weight: Tensor | np.ndarray | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """input (N, C) (or (C,), or (N, C, d1, ...)) log-probabilities; target (N,) int class
    indices -> see ``F.nll_loss``."""

    def __init__(
        self,
        weight: Tensor | np.ndarray | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.nll_loss(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class BCELoss(_WeightedLoss):
    """input probabilities and target in [0, 1], same shape -> see
    ``F.binary_cross_entropy``."""

    def __init__(
        self, weight: Tensor | np.ndarray | None = None, *, reduction: str = "mean"
    ) -> None:
        super().__init__(weight, reduction)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """input logits and target in [0, 1], same shape -> see
    ``F.binary_cross_entropy_with_logits``."""

    def __init__(
        self,
        weight: Tensor | np.ndarray | None = None,
        *,
        reduction: str = "mean",
        pos_weight: Tensor | np.ndarray | None = None,
    ) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class MSELoss(_Loss):
    """Mean (or sum) of squared differences; input and target of the same shape."""

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean (or sum) of absolute differences; input and target of the same shape."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared below ``beta``, absolute above -> see ``F.smooth_l1_loss``."""

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Squared below ``delta``, linear above -> see ``F.huber_loss``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(Module):
    """input log-probabilities, target probabilities (log-probabilities when
    ``log_target``) of the same shape -> see ``F.kl_div``."""

    def __init__(self, *, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS + ("batchmean",):
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS + ('batchmean',)}, got {reduction!r}"
            )
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
