"""``Parameter``: a Tensor that a Module registers as learnable (requires_grad=True)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from minidl.autograd import Tensor


class Parameter(Tensor):
    """A leaf Tensor that, assigned as a Module attribute, joins ``module.parameters()``.

    ``Parameter(data)`` shares ``data``'s array (like ``torch.nn.Parameter``).
    """

    __slots__ = ()

    def __init__(self, data: ArrayLike | Tensor | None = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty(0, dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
