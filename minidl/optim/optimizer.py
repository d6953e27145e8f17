"""Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict.

Follows ``torch.optim.Optimizer``: ``param_groups`` is a list of dicts holding
``"params"`` (a list of Parameters) and the hyper-parameters of the group; ``state``
maps each parameter to a dict of arrays. ``state_dict()`` numbers parameters 0, 1, ...
across the groups in order, as PyTorch does.
"""

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minidl._fpenv import denormals_flushed
from minidl.autograd import is_tensor

ParamsT = Iterable[Any] | Iterable[dict[str, Any]]


def check_non_negative(name: str, value: Any) -> None:
    """TypeError unless ``value`` is a real number, ValueError unless it is >= 0 (not NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"Invalid {name}: {value}")


def check_betas(betas: Any) -> tuple[float, float]:
    """``betas`` as a pair of numbers in [0, 1); a clear error otherwise."""
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        check_non_negative(f"beta parameter at index {i}", beta)
        if not beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    return tuple(betas)


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class _ParamState(dict):
    """``optimizer.state``: keyed by the parameter object itself (by identity)."""

    def __getitem__(self, param):
        return dict.__getitem__(self, id(param))

    def __setitem__(self, param, value):
        dict.__setitem__(self, id(param), value)

    def __contains__(self, param):
        return dict.__contains__(self, id(param))

    def get(self, param, default=None):
        return dict.get(self, id(param), default)


class Optimizer:
    """Base class of every optimiser. Subclasses implement ``step()``."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self._check_group(defaults)
        self.defaults = defaults
        self.state = _ParamState()
        self.param_groups = []
        if is_tensor(params):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of "
                "Tensors or dicts, but got a single Tensor"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a dict ``{"params": [...], **hyper_parameters}``; missing ones take the defaults.

        Useful to train more of a model later (unfreezing layers) with its own
        hyper-parameters; the values of the group are checked as the constructor's are.
        """
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(
                "param group must be a dict with a 'params' entry, got "
                f"{type(param_group).__name__}"
            )
        params = param_group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list "
                "instead."
            )
        params = [params] if is_tensor(params) else list(params)
        for p in params:
            if not is_tensor(p):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not getattr(p, "is_leaf", True):
                raise ValueError("can't optimize a non-leaf Tensor (one computed by an op)")
        group = {"params": params}
        for name, default in self.defaults.items():
            value = param_group.get(name, default)
            if value is required:
                raise ValueError(
                    f"parameter group didn't specify a value of required "
                    f"optimization parameter {name}"
                )
            group[name] = value
        for name, value in param_group.items():
            group.setdefault(name, value)
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("some parameters appear more than once in the optimizer's groups")
        self.param_groups.append(group)

    # the hyper-parameters that must be numbers >= 0, checked in this order (subclasses)
    _non_negative: tuple[str, ...] = ()
    _labels = {"lr": "learning rate", "eps": "epsilon value"}

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError/TypeError for a bad hyper-parameter of ``group``; subclasses
        add their other checks after this one."""
        for key in self._non_negative:
            check_non_negative(self._labels.get(key, f"{key} value"), group[key])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set ``p.grad = None`` (default) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place.

        ``closure``, if given, is called first (it recomputes the loss and its gradients);
        its result is returned, as in PyTorch.

        The update's arithmetic treats denormal floats as zero and rounds results below
        the smallest normal float (1.2e-38 in float32) to zero (FTZ and DAZ on the calling
        thread, for the update only): a decaying momentum or moment becomes 0 instead of
        a denormal, on which every operation takes a slow microcode path (a converged
        small network stepped 3.8x slower). PyTorch keeps denormals (unless
        ``torch.set_flush_denormal(True)``); updates of normal floats are PyTorch's.
        """
        loss = None if closure is None else closure()
        with denormals_flushed():
            self._update()
        return loss

    def _update(self) -> None:
        """One update of every parameter with a gradient (subclasses)."""
        raise NotImplementedError

    def _params(self) -> list[Any]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index]}]}``.

        Arrays are copies, so the result does not change as training goes on.
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {}
        for p in self._params():
            if p in self.state:
                state[index_of[id(p)]] = {
                    k: (v.copy() if isinstance(v, np.ndarray) else v)
                    for k, v in self.state[p].items()
                }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(
                "optimizer state_dict must be a dict with keys 'state' and 'param_groups'"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i}: loaded state dict has "
                    f"{len(saved['params'])} parameters, the optimizer has "
                    f"{len(group['params'])}"
                )
        param_of = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for index, p in zip(saved["params"], group["params"]):
                param_of[int(index)] = p
        new_state = _ParamState()
        for index, saved_state in state_dict["state"].items():
            index = int(index)
            if index not in param_of:
                raise ValueError(
                    f"loaded optimizer state names parameter {index}, which is not "
                    f"in any parameter group"
                )
            p = param_of[index]
            restored = {}
            for name, value in saved_state.items():
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"optimizer state {name!r} of parameter {index} has "
                            f"shape {value.shape}, the parameter has shape "
                            f"{p.data.shape}"
                        )
                    value = value.astype(p.data.dtype, copy=True)
                elif isinstance(value, np.ndarray):
                    value = value.item()
                restored[name] = value
            new_state[p] = restored
        for saved, group in zip(saved_groups, self.param_groups):
            for name, value in saved.items():
                if name != "params":
                    group[name] = copy.deepcopy(value)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
