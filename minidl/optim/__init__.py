"""Optimisers (SGD, Adam) and learning-rate schedules, as ``torch.optim``."""

from minidl.optim import lr_scheduler
from minidl.optim.adam import Adam
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer", "lr_scheduler"]
