"""The fully connected layer's op, with its backward next to its forward."""

from __future__ import annotations

from minidl.autograd import Tensor, record
from minidl.ops import _validation as V


# ---- linear -------------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input (..., in) @ weight.T (out, in) + bias (out,) -> (..., out)."""
    xd = V.data_of("linear", "input", input)
    wd = V.data_of("linear", "weight", weight)
    V.linear_args(xd, wd, V.optional_data_of("linear", "bias", bias))
    out = xd @ wd.T
    inputs: tuple[Tensor, ...]
    if bias is not None:
        out += bias.data
        inputs = (input, weight, bias)
    else:
        inputs = (input, weight)

    def backward(g):
        gx = g @ wd if input.requires_grad else None
        gw = gb = None
        if weight.requires_grad:
            g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
            x2 = xd.reshape(-1, xd.shape[-1]) if xd.ndim != 2 else xd
            gw = g2.T @ x2
        if bias is None:
            return gx, gw
        if bias.requires_grad:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0) if g.ndim else g
        return gx, gw, gb

    return record(out, inputs, backward)
