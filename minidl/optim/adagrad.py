"""Adagrad (Duchi et al.), as PyTorch computes it.

Per parameter at step t, with g its gradient (PyTorch's documented algorithm):

    g = g + weight_decay * p                       (if weight_decay != 0)
    clr = lr / (1 + (t - 1) * lr_decay)
    s = s + g * g                                  (s starts at initial_accumulator_value)
    p = p - clr * g / (sqrt(s) + eps)
"""

from typing import Any

import numpy as np

from minidl.optim.optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``: state ``"step"`` and ``"sum"`` per parameter, created with
    the optimizer (as PyTorch does), so ``state_dict()`` holds them before the first step."""

    _non_negative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self.state[p] = {
                "step": 0,
                "sum": np.full_like(p.data, group["initial_accumulator_value"]),
            }

    def _update(self) -> None:
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad)
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0:
                    grad = grad + weight_decay * p.data
                state = self.state[p]
                state["step"] += 1
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                state_sum = state["sum"]
                state_sum += grad * grad
                std = np.sqrt(state_sum)
                std += eps
                p.data -= clr * (grad / std)
