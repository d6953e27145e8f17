"""Batch normalisation layers: BatchNorm1d, BatchNorm2d (as torch.nn)."""

import numpy as np

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn.modules.module import Module
from minidl.nn.parameter import Parameter
from minidl.ops import _validation as V


class _BatchNorm(Module):
    """Per-channel y = (x - mean) / sqrt(var + eps) * weight + bias.

    Training: mean and var of the batch (biased var), and the running statistics are
    updated (unbiased var) with ``momentum``, or with a cumulative average when
    ``momentum=None``. Eval: the running statistics (the batch's when
    ``track_running_stats=False``). Parameters weight (C,) = 1 and bias (C,) = 0 when
    ``affine`` (no bias with the keyword-only ``bias=False``, as in PyTorch); buffers
    running_mean (C,) = 0, running_var (C,) = 1 and num_batches_tracked (int64 scalar)
    when ``track_running_stats``.
    """

    _input_dims = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = V.positive_int(num_features, "num_features", type(self).__name__)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            if self.bias is not None:
                self.bias.data[...] = 0

    def _check_input_dim(self, input: Tensor) -> None:
        ndim = getattr(input, "ndim", None)
        if ndim is not None and ndim not in self._input_dims:
            dims = " or ".join(f"{d}D" for d in self._input_dims)
            raise ValueError(f"expected {dims} input (got {ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, statistics per channel C."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, statistics per channel C."""

    _input_dims = (4,)
