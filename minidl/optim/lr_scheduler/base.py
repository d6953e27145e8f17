"""The scheduler base class and the argument checks every schedule shares.

A scheduler sets ``group["lr"]`` of its optimizer's groups on each ``step()``; create it
after the optimizer and call ``scheduler.step()`` after ``optimizer.step()``. Schedules
use PyTorch's recursive ("chainable") form where PyTorch does, so they compose with
manual changes of ``group["lr"]`` exactly as PyTorch's do, and keep a closed form for
``step(epoch)`` and for :class:`SequentialLR`'s hand-overs.
"""

import copy
import warnings
from typing import Any

import numpy as np

from minidl.optim.optimizer import Optimizer


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= minimum (bools are not ints here); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_number(
    owner: str, name: str, value: Any, low: float = 0.0, high: float = np.inf
) -> float:
    """``value`` as a real number in [low, high]: TypeError / ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}")
    if not low <= value <= high:  # also rejects NaN
        raise ValueError(f"{owner}: {name} must be in [{low}, {high}], got {value!r}")
    return value


def per_group(owner: str, name: str, optimizer: Optimizer, value: Any) -> list:
    """One value per parameter group: a list/tuple of the right length, or one value."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{owner}: {name} must have one value per parameter group "
                f"({len(optimizer.param_groups)}), got {len(value)}"
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


class LRScheduler:
    """Base class of the schedules (``torch.optim.lr_scheduler.LRScheduler``).

    Subclasses implement ``get_lr()`` (the recursive form, from the groups' current
    ``lr``) and, where one exists, ``_get_closed_form_lr()`` (from ``base_lrs``).
    """

    _is_initial = False
    _not_saved: tuple[str, ...] = ("optimizer",)  # what state_dict() leaves out

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        check_int(type(self).__name__, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] "
                        f"when resuming an optimizer"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group after the last ``step()``."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (``epoch`` jumps to that step: deprecated, as in PyTorch)."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(
                "The epoch parameter in `scheduler.step()` is deprecated (as in PyTorch); "
                "call step() without it",
                UserWarning,
                stacklevel=2,
            )
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (save that with the optimizer's own state_dict)."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in self._not_saved})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved. Create the scheduler before loading the
        optimizer's state (its first step sets the groups' ``lr``), as in PyTorch."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        self.__dict__.update(copy.deepcopy(state_dict))
