"""Run one computation in minidl and in PyTorch and compare outputs and gradients."""

from __future__ import annotations

import numpy as np

import minidl

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}


def compare(md_fn, t_fn, arrays, dtype=np.float64, seed=0, tol=None, grads=True):
    """md_fn(*minidl tensors) vs t_fn(*torch tensors) on ``arrays``: float arrays are cast
    to ``dtype`` and get gradients, integer arrays pass as they are. Both outputs are
    weighted by one random array and backpropagated; every gradient is compared."""
    import torch

    tol = tol or TOL[dtype]
    md, tt = [], []
    for a in arrays:
        if np.asarray(a).dtype.kind == "f":
            a = np.asarray(a, dtype=dtype)
            md.append(minidl.tensor(a, requires_grad=grads))
            tt.append(torch.tensor(a, requires_grad=grads))
        else:
            md.append(minidl.tensor(a))
            tt.append(torch.tensor(a))
    out = md_fn(*md)
    tout = t_fn(*tt)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    assert out.data.dtype == tout.detach().numpy().dtype
    if not grads:
        return out
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.data.dtype)
    out.backward(weights)
    tout.backward(torch.from_numpy(weights))
    for m, t in zip(md, tt):
        if t.requires_grad:
            expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
            got = np.zeros(t.shape) if m.grad is None else m.grad
            np.testing.assert_allclose(got, expected, **tol)
    return out
