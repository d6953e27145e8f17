"""Parameters as one flat vector and back: ``parameters_to_vector``, ``vector_to_parameters``."""

from collections.abc import Iterable

import numpy as np

from minidl.autograd import Tensor
from minidl.nn.utils._params import as_param_list


def parameters_to_vector(parameters: Tensor | Iterable[Tensor]) -> Tensor:
    """All of ``parameters`` flattened and concatenated into one 1-D Tensor (a copy).

    Unlike PyTorch's, the result is not connected to the tape (minidl has no
    differentiable concatenation yet): use it to read or save the weights.
    """
    params = as_param_list("parameters_to_vector", parameters)
    if not params:
        raise ValueError("parameters_to_vector: parameters is empty")
    return Tensor(np.concatenate([p.data.reshape(-1) for p in params]))


def vector_to_parameters(vec: Tensor, parameters: Tensor | Iterable[Tensor]) -> None:
    """Copy the 1-D Tensor ``vec`` into ``parameters``, in their order and shapes.

    The values are copied into each parameter's own array (which keeps its dtype), where
    PyTorch makes the parameters views of ``vec``.
    """
    what = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{what}: expected a Tensor for vec, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"{what}: vec must be 1-D, got shape {vec.shape}")
    params = as_param_list(what, parameters)
    total = sum(p.data.size for p in params)
    if vec.shape[0] != total:
        raise ValueError(
            f"{what}: vec has {vec.shape[0]} elements, the parameters have {total} "
            f"(shapes {[p.shape for p in params]})"
        )
    start = 0
    for p in params:
        n = p.data.size
        p.data[...] = vec.data[start : start + n].reshape(p.data.shape)
        start += n
