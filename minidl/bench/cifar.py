"""The CIFAR-10-size network of issue 23, in minidl and (identically) in PyTorch, and one
SGD training step of each on synthetic data (the suite's "cifar-train-step" rows; PyTorch's
classic 6/16-channel LeNet is end_to_end's "LeNet-digits").

CIFAR net: conv 3->32, BatchNorm, ReLU, conv 32->32, max pool 2, conv 32->64, BatchNorm,
ReLU, conv 64->64, max pool 2, conv 64->128, global average pool, linear 128->10; every
conv 3x3 with padding 1; input (N, 3, 32, 32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import minidl
from minidl import nn

STEP = "cifar-train-step"  # the op name of the suite's rows for this network
CIFAR_INPUT = (64, 3, 32, 32)
CLASSES = 10


def _layers(nn_: Any) -> list:
    conv = nn_.Conv2d
    layers = [
        conv(3, 32, 3, padding=1),
        nn_.BatchNorm2d(32),
        nn_.ReLU(),
        conv(32, 32, 3, padding=1),
        nn_.MaxPool2d(2),
        conv(32, 64, 3, padding=1),
        nn_.BatchNorm2d(64),
        nn_.ReLU(),
        conv(64, 64, 3, padding=1),
        nn_.MaxPool2d(2),
        conv(64, 128, 3, padding=1),
        nn_.AdaptiveAvgPool2d(1),
        nn_.Flatten(),
        nn_.Linear(128, CLASSES),
    ]
    return layers


def cifar_net() -> nn.Module:
    """The CIFAR-size network in minidl: (N, 3, 32, 32) -> (N, 10) logits."""
    return nn.Sequential(*_layers(nn))


def torch_cifar_net(torch: Any) -> Any:
    """The same network in PyTorch."""
    return torch.nn.Sequential(*_layers(torch.nn))


def synthetic_batch(shape=CIFAR_INPUT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images of ``shape`` and int64 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, CLASSES, shape[0]).astype(np.int64)
    return x, y


def minidl_step(model: nn.Module, x: np.ndarray, y: np.ndarray, lr: float = 0.01):
    """One SGD training step; returns a callable that runs another."""
    optimizer = minidl.optim.SGD(model.parameters(), lr=lr)
    xt, yt = minidl.tensor(x), minidl.tensor(y)

    def step() -> float:
        loss = nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_step(torch: Any, model: Any, x: np.ndarray, y: np.ndarray, lr: float = 0.01):
    """PyTorch's twin of ``minidl_step``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
