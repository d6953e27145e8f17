"""Embedding: a learnable lookup table of num_embeddings rows of embedding_dim."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from minidl.autograd import Tensor
from minidl.nn import functional as F
from minidl.nn import init
from minidl.nn.modules.module import Module
from minidl.nn.parameter import Parameter
from minidl.ops import _validation as V


class Embedding(Module):
    """Integer indices (*) -> rows of weight: (*, embedding_dim).

    weight (num_embeddings, embedding_dim) starts N(0, 1), as PyTorch's, with the row at
    ``padding_idx`` zero (and never updated by a gradient).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | np.ndarray | None = None,
        _freeze: bool = False,
        device: str | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        super().__init__()
        what = "Embedding"
        self.num_embeddings = V.positive_int(num_embeddings, "num_embeddings", what)
        self.embedding_dim = V.positive_int(embedding_dim, "embedding_dim", what)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"{what}: padding_idx must be an int or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            padding_idx = padding_idx % num_embeddings
        if sparse:
            raise ValueError(f"{what}: sparse=True is not supported (no sparse gradients)")
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype))
            self.reset_parameters()
        else:
            data = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if data.shape != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"{what}: _weight shape {data.shape} does not match "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(np.array(data, dtype=dtype), requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(
            input,
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor | np.ndarray,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (2-D), frozen by default."""
        data = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        return cls(
            data.shape[0],
            data.shape[1],
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=data,
            _freeze=freeze,
            dtype=data.dtype,
        )

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
