"""Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter), as PyTorch computes them.

Per parameter at step t, with g its gradient (PyTorch's documented algorithm):

    p = p * (1 - lr * weight_decay)                (AdamW: decoupled weight decay)
    g = g + weight_decay * p                       (Adam: L2 penalty, if weight_decay != 0)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                          (amsgrad; then v_max is used below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
"""

import math
from typing import Any

import numpy as np

from minidl import _kernels as K
from minidl.optim.optimizer import Optimizer, ParamsT, check_betas


class Adam(Optimizer):
    """``torch.optim.Adam``: state ``"step"``, ``"exp_avg"``, ``"exp_avg_sq"`` (and
    ``"max_exp_avg_sq"`` with amsgrad) per parameter."""

    _non_negative = ("lr", "eps", "weight_decay")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["betas"] = check_betas(group["betas"])

    def _update(self) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad)
                decoupled = group["decoupled_weight_decay"]
                if weight_decay != 0 and decoupled:
                    p.data *= 1 - lr * weight_decay
                state = self.state.get(p)
                if not state:
                    state = {
                        "step": 0,
                        "exp_avg": np.zeros_like(p.data),
                        "exp_avg_sq": np.zeros_like(p.data),
                    }
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                    self.state[p] = state
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                step_size = lr / (1 - beta1**step)
                bias2 = math.sqrt(1 - beta2**step)
                if K.adam_update(
                    p.data,
                    grad,
                    exp_avg,
                    exp_avg_sq,
                    state.get("max_exp_avg_sq"),
                    beta1,
                    beta2,
                    step_size,
                    bias2,
                    eps,
                    0 if decoupled else weight_decay,
                    group["maximize"],
                ):
                    continue  # one pass in C; below, the same arithmetic in numpy
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0 and not decoupled:
                    grad = grad + weight_decay * p.data
                exp_avg *= beta1
                exp_avg += (1 - beta1) * grad
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * (grad * grad)
                if group["amsgrad"]:
                    np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    second = state["max_exp_avg_sq"]
                else:
                    second = exp_avg_sq
                denom = np.sqrt(second)
                denom /= bias2
                denom += eps
                p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (default 1e-2)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
