"""Optimisers and schedulers against hand-computed steps of PyTorch's documented equations."""

import math

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.optim import lr_scheduler


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def _run(opt, params, grads_per_step):
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = np.array(g, dtype=np.float64)
        opt.step()


def test_sgd_plain_and_weight_decay():
    p = _param([1.0, -2.0])
    _run(optim.SGD([p], lr=0.1), [p], [[[0.5, 1.0]]])
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.1], rtol=0, atol=1e-15)

    p = _param([1.0, -2.0])
    _run(optim.SGD([p], lr=0.1, weight_decay=0.01), [p], [[[0.5, 1.0]]])
    # g + wd * p = [0.51, 0.98]
    np.testing.assert_allclose(p.data, [1.0 - 0.051, -2.0 - 0.098], rtol=0, atol=1e-15)


@pytest.mark.parametrize("nesterov, dampening", [(False, 0.0), (False, 0.3), (True, 0.0)])
def test_sgd_momentum_first_buffer_is_the_gradient(nesterov, dampening):
    lr, mu = 0.1, 0.9
    g1, g2 = np.array([1.0, -1.0]), np.array([0.5, 2.0])
    p = _param([0.0, 0.0])
    opt = optim.SGD([p], lr=lr, momentum=mu, dampening=dampening, nesterov=nesterov)
    _run(opt, [p], [[g1], [g2]])
    b1 = g1
    d1 = g1 + mu * b1 if nesterov else b1
    b2 = mu * b1 + (1 - dampening) * g2
    d2 = g2 + mu * b2 if nesterov else b2
    np.testing.assert_allclose(p.data, -lr * d1 - lr * d2, rtol=1e-14)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], b2, rtol=1e-14)


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.95, 1e-6, 0.1
    p0 = np.array([0.5, -1.0, 2.0])
    g = [np.array([0.1, -0.2, 0.3]), np.array([-0.4, 0.5, 0.0])]
    p = _param(p0)
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    _run(opt, [p], [[g[0]], [g[1]]])
    theta, m, v = p0.copy(), 0.0, 0.0
    for t in (1, 2):
        gt = g[t - 1] + wd * theta
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(p.data, theta, rtol=1e-12)
    assert opt.state[p]["step"] == 2


def test_adam_first_step_moves_each_weight_by_about_lr():
    p = _param([1.0, 1.0, 1.0])
    _run(optim.Adam([p], lr=0.01), [p], [[[1e-3, -5.0, 100.0]]])
    # bias-corrected m_hat / sqrt(v_hat) = sign(g) on step 1
    np.testing.assert_allclose(p.data, [0.99, 1.01, 0.99], rtol=1e-5)


def test_float32_parameters_stay_float32_and_update_in_place():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    data = p.data
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p])):
        p.grad = np.ones(3, dtype=np.float32)
        opt.step()
        assert p.data is data and p.data.dtype == np.float32


def test_parameters_without_grad_are_skipped_and_zero_grad():
    a, b = _param([1.0]), _param([2.0])
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = np.array([1.0])
    opt.step()
    assert a.data[0] == 0.0 and b.data[0] == 2.0
    opt.zero_grad(set_to_none=False)
    assert a.grad[0] == 0.0 and b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_take_their_own_hyper_parameters():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    _run(opt, [a, b], [[[1.0], [1.0]]])
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=-1), "learning rate"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: optim.SGD(p, lr=float("nan")), "learning rate"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta"),
        (lambda p: optim.Adam(p, betas=(0.9,)), "betas"),
        (lambda p: optim.Adam(p, eps=-1e-8), "epsilon"),
        (lambda p: optim.Adam(p, weight_decay=-1), "weight_decay"),
        (lambda p: optim.AdamW(p, lr=-0.1), "learning rate"),
        (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "beta"),
        (lambda p: optim.AdamW(p, betas=(0.9, 1.5)), "beta"),
        (lambda p: optim.RMSprop(p, alpha=-0.5), "alpha"),
        (lambda p: optim.RMSprop(p, alpha=1.5), "alpha"),
        (lambda p: optim.RMSprop(p, momentum=-1), "momentum"),
        (lambda p: optim.RMSprop(p, eps=-1), "epsilon"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator"),
        (lambda p: optim.Adagrad(p, eps=float("nan")), "epsilon"),
        (lambda p: optim.SGD(p, lr=0.1, dampening=-1), "dampening"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    ],
)
def test_invalid_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([_param([1.0])])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_non_numeric_learning_rate_is_a_type_error(cls):
    with pytest.raises(TypeError, match="learning rate"):
        cls([_param([1.0])], lr="0.1")


def test_add_param_group_checks_the_group():
    opt = optim.SGD([_param([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        opt.add_param_group({"params": [_param([1.0])], "lr": -1.0})
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([_param([1.0])]).add_param_group({"params": [_param([1.0])], "betas": (1, 0)})
    with pytest.raises(TypeError, match="dict"):
        opt.add_param_group([_param([1.0])])
    with pytest.raises(TypeError, match="ordered"):
        opt.add_param_group({"params": {_param([1.0])}})
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": opt.param_groups[0]["params"]})
    assert len(opt.param_groups) == 1
    q = _param([2.0])
    opt.add_param_group({"params": q, "momentum": 0.5})  # a single tensor is accepted
    assert opt.param_groups[1]["params"] == [q] and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["momentum"] == 0.5


def test_bad_params_argument():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(_param([1.0]), lr=0.1)  # a single tensor, not an iterable of them
    with pytest.raises(ValueError, match="more than once"):
        p = _param([1.0])
        optim.SGD([p, p], lr=0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
        lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    ],
)
def test_state_dict_round_trip_resumes_bit_exactly(make, tmp_path):
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(3), rng.standard_normal((2, 2))] for _ in range(6)]
    ps = [_param([1.0, 2.0, 3.0]), _param([[1.0, 0.0], [0.0, 1.0]])]
    opt = make(ps)
    _run(opt, ps, grads[:3])
    saved_params = [p.data.copy() for p in ps]
    saved = opt.state_dict()
    assert sorted(saved["state"]) == [0, 1] and saved["param_groups"][0]["params"] == [0, 1]
    _run(opt, ps, grads[3:])

    qs = [_param(v) for v in saved_params]
    resumed = make(qs)
    resumed.load_state_dict(saved)
    _run(resumed, qs, grads[3:])
    for p, q in zip(ps, qs):
        assert np.array_equal(p.data, q.data)


def test_load_state_dict_rejects_mismatches():
    opt = optim.SGD([_param([1.0])], lr=0.1, momentum=0.9)
    other = optim.SGD([_param([1.0]), _param([2.0])], lr=0.1)
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())
    p = _param([1.0, 2.0])
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    bad = {
        "state": {0: {"momentum_buffer": np.zeros(5)}},
        "param_groups": sgd.state_dict()["param_groups"],
    }
    with pytest.raises(ValueError, match="shape"):
        sgd.load_state_dict(bad)


def _torch_compare(torch, ours_cls, theirs_cls, kwargs, steps=5):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(a.shape) for a in init] for _ in range(steps)]
    ours = [_param(a) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    o, t = ours_cls(ours, **kwargs), theirs_cls(theirs, **kwargs)
    for gs in grads:
        for p, q, g in zip(ours, theirs, gs):
            p.grad = g.copy()
            q.grad = torch.tensor(g)
        o.step()
        t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.5),
        dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01),
    ],
)
def test_sgd_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _torch_compare(torch, optim.SGD, torch.optim.SGD, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(lr=0.01, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
    ],
)
def test_adam_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    _torch_compare(torch, optim.Adam, torch.optim.Adam, kwargs)


def _lrs(scheduler, n):
    values = [scheduler.get_last_lr()[0]]
    for _ in range(n):
        scheduler.optimizer.step()
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


def test_step_lr_values():
    opt = optim.SGD([_param([1.0])], lr=1.0)
    values = _lrs(lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), 7)
    expected = [1.0 * 0.5 ** (epoch // 3) for epoch in range(8)]
    np.testing.assert_allclose(values, expected, rtol=1e-15)
    assert opt.param_groups[0]["lr"] == values[-1]


def test_cosine_annealing_values_follow_the_closed_form():
    T, eta_min, base = 10, 0.01, 0.5
    opt = optim.SGD([_param([1.0])], lr=base)
    values = _lrs(lr_scheduler.CosineAnnealingLR(opt, T_max=T, eta_min=eta_min), 2 * T)
    expected = [
        eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(2 * T + 1)
    ]
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)


def test_schedulers_match_torch():
    torch = pytest.importorskip("torch")
    for make_ours, make_theirs in [
        (
            lambda o: lr_scheduler.StepLR(o, 4, gamma=0.3),
            lambda o: torch.optim.lr_scheduler.StepLR(o, 4, gamma=0.3),
        ),
        (
            lambda o: lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.001),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.001),
        ),
    ]:
        ours = make_ours(optim.SGD([_param([1.0])], lr=0.2))
        theirs = make_theirs(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2))
        np.testing.assert_allclose(_lrs(ours, 20), _lrs(theirs, 20), rtol=1e-12)


def test_scheduler_state_dict_round_trip():
    opt = optim.SGD([_param([1.0])], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    _lrs(sched, 3)
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3
    opt2 = optim.SGD([_param([1.0])], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=8)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    assert _lrs(sched, 4) == _lrs(sched2, 4)


def test_scheduler_argument_errors():
    opt = optim.SGD([_param([1.0])], lr=1.0)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, 0)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.StepLR(object(), 2)


def test_training_a_tiny_regression_reduces_the_loss():
    minidl.manual_seed(0)
    model = nn.Linear(3, 1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = (X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3).astype(np.float32)
    opt = optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(100):
        loss = loss_fn(model(minidl.tensor(X)), minidl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_step_calls_the_closure_first_and_returns_its_loss(cls):
    p = _param([1.0, -1.0])
    opt = cls([p], lr=0.1)
    calls = []

    def closure():
        calls.append(p.data.copy())
        p.grad = np.array([0.5, 0.5])
        return 7.0

    assert opt.step(closure) == 7.0
    assert np.array_equal(calls[0], [1.0, -1.0]) and not np.array_equal(p.data, [1.0, -1.0])
    assert opt.step() is None


def _sgd_by_numpy(data, grads, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD written as numpy expressions, one rounding per operation (torch's algorithm)."""
    data = data.copy()
    buf = None
    for g in grads:
        d = -g if maximize else g
        if weight_decay != 0:
            d = d + weight_decay * data
        if momentum != 0:
            if buf is None:
                buf = d.copy()
            else:
                buf = buf * momentum
                buf = buf + (d if dampening == 0 else (1 - dampening) * d)
            d = d + momentum * buf if nesterov else buf
        data = data - lr * d
    return data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.05),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.1, momentum=0.5, dampening=0.25, weight_decay=1e-3),
        dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1),
        dict(lr=0.02, momentum=0.9, nesterov=True),
        dict(lr=0.3, momentum=0.7, maximize=True),
        dict(lr=1e-3, weight_decay=5e-4, maximize=True),
    ],
)
def test_sgd_one_pass_update_has_the_bits_of_the_numpy_formula(kwargs, dtype):
    # the fused kernel (C-contiguous grads) and the numpy path (any other grad) must agree
    # with the formula to the last bit: checkpoints made before the kernel stay the same
    rng = np.random.default_rng(0)
    start = rng.standard_normal((7, 33)).astype(dtype)
    grads = [rng.standard_normal(start.shape).astype(dtype) for _ in range(6)]
    options = dict(momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)
    options.update(kwargs)
    want = _sgd_by_numpy(start, grads, **options)
    for layout in ("contiguous", "fortran"):
        p = nn.Parameter(minidl.tensor(start.copy()))
        opt = optim.SGD([p], **kwargs)
        for g in grads:
            p.grad = g.copy() if layout == "contiguous" else np.asfortranarray(g)
            opt.step()
        assert p.data.dtype == dtype
        assert np.array_equal(p.data, want), layout


def _adam_by_numpy(data, grads, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    """Adam written as numpy expressions, one rounding per operation (torch's algorithm)."""
    b1, b2 = betas
    data = data.copy()
    m = np.zeros_like(data)
    v = np.zeros_like(data)
    vmax = np.zeros_like(data)
    for step, g in enumerate(grads, start=1):
        d = -g if maximize else g
        if weight_decay != 0:
            if decoupled:
                data = data * (1 - lr * weight_decay)
            else:
                d = d + weight_decay * data
        m = m * b1
        m = m + (1 - b1) * d
        v = v * b2
        v = v + (1 - b2) * (d * d)
        second = v
        if amsgrad:
            vmax = np.maximum(vmax, v)
            second = vmax
        denom = np.sqrt(second)
        denom = denom / math.sqrt(1 - b2**step)
        denom = denom + eps
        data = data - (lr / (1 - b1**step)) * (m / denom)
    return data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make, options",
    [
        (optim.Adam, dict(lr=1e-2)),
        (optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
        (optim.Adam, dict(lr=1e-2, amsgrad=True, maximize=True)),
        (optim.AdamW, dict(lr=1e-2)),
        (optim.AdamW, dict(lr=5e-3, weight_decay=0.3, amsgrad=True)),
    ],
)
def test_adam_one_pass_update_has_the_bits_of_the_numpy_formula(make, options, dtype):
    rng = np.random.default_rng(1)
    start = rng.standard_normal((5, 17)).astype(dtype)
    grads = [rng.standard_normal(start.shape).astype(dtype) for _ in range(7)]
    full = dict(betas=(0.9, 0.999), eps=1e-8, amsgrad=False, maximize=False)
    full["weight_decay"] = 1e-2 if make is optim.AdamW else 0
    full.update(options)
    want = _adam_by_numpy(start, grads, decoupled=make is optim.AdamW, **full)
    for layout in ("contiguous", "fortran"):  # the C pass, then numpy's
        p = nn.Parameter(minidl.tensor(start.copy()))
        opt = make([p], **options)
        for g in grads:
            p.grad = g.copy() if layout == "contiguous" else np.asfortranarray(g)
            opt.step()
        assert p.data.dtype == dtype
        assert np.array_equal(p.data, want), layout


TINY32 = np.finfo(np.float32).tiny


def _denormals(a):
    return int(np.count_nonzero((np.abs(a) > 0) & (np.abs(a) < np.finfo(a.dtype).tiny)))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: optim.Adam(ps, lr=1e-3),
        lambda ps: optim.AdamW(ps, lr=1e-3, amsgrad=True),
    ],
)
def test_updates_flush_denormals_on_both_paths_and_restore_the_thread(make):
    """A state decaying into the denormal range becomes 0, on the one-pass kernel and on
    the numpy path alike (the same bits), and the thread's FTZ/DAZ state is left as it was
    (off, then on when the user turned it on)."""
    from minidl import _kernels as K

    rng = np.random.default_rng(2)
    start = rng.standard_normal(64).astype(np.float32)
    # one gradient just above the smallest normal float, then zeros: the momenta decay
    # by 0.9 a step through the denormal range (without the flush, into denormals)
    grads = [(rng.standard_normal(64) * 1e-36).astype(np.float32)]
    grads += [np.zeros(64, np.float32)] * 60
    for user_flush in (False, True):
        minidl.set_flush_denormal(user_flush)
        try:
            results = []
            for layout in ("contiguous", "fortran"):
                p = nn.Parameter(minidl.tensor(start.reshape(8, 8).copy()))
                opt = make([p])
                for g in grads:
                    g = g.reshape(8, 8)
                    p.grad = g.copy() if layout == "contiguous" else np.asfortranarray(g)
                    opt.step()
                    assert K.flush_denormal() is user_flush
                state = [v for v in opt.state[p].values() if isinstance(v, np.ndarray)]
                assert state and all(_denormals(s) == 0 for s in state)
                results.append([p.data.tobytes()] + [s.tobytes() for s in state])
            assert results[0] == results[1]
        finally:
            minidl.set_flush_denormal(False)
