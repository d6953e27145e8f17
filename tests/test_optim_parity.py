"""Every optimiser against torch.optim: the same parameters and gradients for many steps
give the same parameters (float64 and float32), state_dict round trips, add_param_group."""

import numpy as np
import pytest

from minidl import nn, optim

torch = pytest.importorskip("torch")

STEPS = 60
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    ("SGD", dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("AdamW", dict(lr=0.005, amsgrad=True, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.001, alpha=0.9, eps=1e-6, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.001, momentum=0.9, centered=True)),
    ("RMSprop", dict(lr=0.002, momentum=0.5, maximize=True, alpha=0.3)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.05, initial_accumulator_value=0.5, eps=1e-6, maximize=True)),
]


def _problem(dtype, steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)]
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in init] for _ in range(steps)]
    return init, grads


def _step_both(ours, theirs, o, t, grads):
    for gs in grads:
        for p, q, g in zip(ours, theirs, gs):
            p.grad = g.copy()
            q.grad = torch.from_numpy(g.copy())
        o.step()
        t.step()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_torch_step_by_step(name, kwargs, dtype):
    init, grads = _problem(dtype)
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    o = getattr(optim, name)(ours, **kwargs)
    t = getattr(torch.optim, name)(theirs, **kwargs)
    for i in range(0, STEPS, 10):
        _step_both(ours, theirs, o, t, grads[i : i + 10])
        for p, q in zip(ours, theirs):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, q.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("name, kwargs", CASES)
def test_defaults_and_state_dict_keys_match_torch(name, kwargs):
    init, grads = _problem(np.float64, steps=3)
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    o = getattr(optim, name)(ours, **kwargs)
    t = getattr(torch.optim, name)(theirs, **kwargs)
    _step_both(ours, theirs, o, t, grads)
    mine, torchs = o.state_dict(), t.state_dict()
    assert mine["param_groups"][0]["params"] == torchs["param_groups"][0]["params"]
    for key, value in mine["param_groups"][0].items():
        assert torchs["param_groups"][0][key] == value, key
    assert mine["state"].keys() == torchs["state"].keys()
    for index, state in mine["state"].items():
        assert state.keys() == torchs["state"][index].keys()
        for key, value in state.items():
            np.testing.assert_allclose(value, torchs["state"][index][key].numpy(), rtol=1e-10)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_state_dict_round_trip_resumes_bit_exactly(name, kwargs):
    init, grads = _problem(np.float32, steps=8)
    ps = [nn.Parameter(a.copy()) for a in init]
    opt = getattr(optim, name)(ps, **kwargs)
    for gs in grads[:4]:
        for p, g in zip(ps, gs):
            p.grad = g.copy()
        opt.step()
    saved, saved_params = opt.state_dict(), [p.data.copy() for p in ps]
    for gs in grads[4:]:
        for p, g in zip(ps, gs):
            p.grad = g.copy()
        opt.step()
    qs = [nn.Parameter(a) for a in saved_params]
    resumed = getattr(optim, name)(qs, lr=123.0)  # the saved groups bring back every value
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for gs in grads[4:]:
        for q, g in zip(qs, gs):
            q.grad = g.copy()
        resumed.step()
    for p, q in zip(ps, qs):
        assert np.array_equal(p.data, q.data)


@pytest.mark.parametrize("name, kwargs", CASES[::3])
def test_add_param_group_matches_torch(name, kwargs):
    init, grads = _problem(np.float64, steps=20)
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    o = getattr(optim, name)(ours[:1], **kwargs)
    t = getattr(torch.optim, name)(theirs[:1], **kwargs)
    _step_both(ours[:1], theirs[:1], o, t, [g[:1] for g in grads[:10]])
    extra = {"lr": 0.003, "weight_decay": 0.2}
    o.add_param_group({"params": ours[1], **extra})
    t.add_param_group({"params": theirs[1], **extra})
    assert o.param_groups[1].keys() <= t.param_groups[1].keys() | {"decoupled_weight_decay"}
    assert o.param_groups[1]["lr"] == 0.003
    _step_both(ours, theirs, o, t, grads[10:])
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_signature_defaults_match_torch(name):
    import inspect

    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    positional = [n for n, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [n for n in theirs if n in positional]  # same order
    assert list(theirs)[: len(positional)] == positional
    for n, p in ours.items():
        assert n in theirs, n
        if p.default is not p.empty:
            assert p.default == theirs[n].default, n
