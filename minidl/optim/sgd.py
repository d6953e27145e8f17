"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

Per parameter, with g its gradient (PyTorch's documented algorithm):

    g = g + weight_decay * p                   (if weight_decay != 0)
    b = g                                      (first step with momentum)
    b = momentum * b + (1 - dampening) * g     (later steps)
    g = g + momentum * b  if nesterov  else  b (if momentum != 0)
    p = p - lr * g        (p + lr * g when maximize)
"""

import numpy as np

from minidl.optim.optimizer import Optimizer


def _check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"Invalid {name}: {value}")


class SGD(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
    ):
        _check_non_negative("learning rate", lr)
        _check_non_negative("momentum value", momentum)
        _check_non_negative("dampening value", dampening)
        _check_non_negative("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self):
        """Update every parameter that has a gradient, in place."""
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
                if maximize:
                    d_p = -d_p
                if weight_decay != 0:
                    d_p = d_p + weight_decay * data
                if momentum != 0:
                    st = state.get(p)
                    buf = None if st is None else st.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(d_p, dtype=data.dtype, copy=True)
                        state[p] = {"momentum_buffer": buf}
                    else:
                        buf *= momentum
                        buf += d_p if dampening == 0 else (1 - dampening) * d_p
                    d_p = d_p + momentum * buf if nesterov else buf
                data -= lr * d_p
