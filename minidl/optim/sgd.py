"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

Per parameter, with g its gradient (PyTorch's documented algorithm):

    g = g + weight_decay * p                   (if weight_decay != 0)
    b = g                                      (first step with momentum)
    b = momentum * b + (1 - dampening) * g     (later steps)
    g = g + momentum * b  if nesterov  else  b (if momentum != 0)
    p = p - lr * g        (p + lr * g when maximize)
"""

from typing import Any

import numpy as np

from minidl import _kernels as K
from minidl.optim.optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """``torch.optim.SGD``: state ``"momentum_buffer"`` per parameter (with momentum)."""

    _non_negative = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self) -> None:
        state = self.state
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            maximize = group["maximize"]
            for p in group["params"]:
                d_p = p.grad
                if d_p is None:
                    continue
                data = p.data
                buf = None
                first = False
                if momentum != 0:
                    st = state.get(p)
                    buf = None if st is None else st.get("momentum_buffer")
                    if buf is None:
                        first = True
                        buf = np.empty_like(data)
                        state[p] = {"momentum_buffer": buf}
                if K.sgd_update(
                    data,
                    d_p,
                    buf,
                    lr,
                    momentum,
                    dampening,
                    weight_decay,
                    nesterov,
                    maximize,
                    first,
                ):
                    continue  # one pass in C; below, the same arithmetic in numpy
                if maximize:
                    d_p = -d_p
                if weight_decay != 0:
                    d_p = d_p + weight_decay * data
                if buf is not None:
                    if first:
                        buf[...] = d_p
                    else:
                        buf *= momentum
                        buf += d_p if dampening == 0 else (1 - dampening) * d_p
                    d_p = d_p + momentum * buf if nesterov else buf
                data -= lr * d_p
