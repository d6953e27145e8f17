"""Learning-rate schedules, as ``torch.optim.lr_scheduler``."""

from minidl.optim.lr_scheduler.base import LRScheduler
from minidl.optim.lr_scheduler.cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from minidl.optim.lr_scheduler.multiplicative import (
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    StepLR,
)
from minidl.optim.lr_scheduler.one_cycle import OneCycleLR
from minidl.optim.lr_scheduler.plateau import ReduceLROnPlateau
from minidl.optim.lr_scheduler.sequential import SequentialLR

__all__ = [
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
