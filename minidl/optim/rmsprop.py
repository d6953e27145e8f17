"""RMSprop (Hinton), as PyTorch computes it.

Per parameter, with g its gradient (PyTorch's documented algorithm):

    g = g + weight_decay * p                       (if weight_decay != 0)
    v = alpha * v + (1 - alpha) * g * g
    m = alpha * m + (1 - alpha) * g                (centered; then v - m*m is used below)
    d = sqrt(v) + eps
    b = momentum * b + g / d;  p = p - lr * b      (momentum > 0)
    p = p - lr * g / d                             (otherwise)
"""

from typing import Any

import numpy as np

from minidl.optim.optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: state ``"step"``, ``"square_avg"`` (and ``"momentum_buffer"``,
    ``"grad_avg"`` when used) per parameter."""

    _non_negative = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["alpha"] > 1:
            raise ValueError(f"Invalid alpha value: {group['alpha']} (must be in [0, 1])")

    def _update(self) -> None:
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad)
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0:
                    grad = grad + weight_decay * p.data
                state = self.state.get(p)
                if not state:
                    state = {"step": 0, "square_avg": np.zeros_like(p.data)}
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p.data)
                    self.state[p] = state
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg *= alpha
                square_avg += (1 - alpha) * (grad * grad)
                if group["centered"]:
                    grad_avg = state["grad_avg"]
                    grad_avg += (1 - alpha) * (grad - grad_avg)
                    avg = np.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    avg = np.sqrt(square_avg)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += grad / avg
                    p.data -= lr * buf
                else:
                    p.data -= lr * (grad / avg)
