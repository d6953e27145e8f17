"""Every schedule against torch.optim.lr_scheduler: the same learning rates (and cycled
momenta) step by step over 100 steps, state_dict round trips, argument errors."""

import pickle

import numpy as np
import pytest

from minidl import nn, optim
from minidl.optim import lr_scheduler as ours_lr

torch = pytest.importorskip("torch")
theirs_lr = torch.optim.lr_scheduler

STEPS = 100


class Warmup:
    """A callable object with state: LambdaLR saves its __dict__."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


def _sequential(lib, opt):
    return lib.SequentialLR(
        opt,
        [lib.LinearLR(opt, start_factor=0.1, total_iters=10), lib.CosineAnnealingLR(opt, 40)],
        milestones=[10],
    )


def _sequential3(lib, opt):
    return lib.SequentialLR(
        opt,
        [
            lib.ExponentialLR(opt, gamma=0.9),
            lib.StepLR(opt, 7, gamma=0.5),
            lib.MultiStepLR(opt, [5, 20], gamma=0.3),
        ],
        milestones=[15, 50],
    )


# (name, optimizer class, make(lib, optimizer)); lib is minidl's or torch's module
CASES = [
    ("step", "SGD", lambda lib, o: lib.StepLR(o, 9, gamma=0.7)),
    ("multistep", "SGD", lambda lib, o: lib.MultiStepLR(o, [10, 30, 31, 80])),
    ("multistep-repeat", "SGD", lambda lib, o: lib.MultiStepLR(o, [20, 20, 50], gamma=0.5)),
    ("exponential", "SGD", lambda lib, o: lib.ExponentialLR(o, gamma=0.97)),
    ("exponential-1", "Adam", lambda lib, o: lib.ExponentialLR(o, gamma=1.0)),
    ("lambda", "SGD", lambda lib, o: lib.LambdaLR(o, lambda e: 0.95**e)),
    ("lambda-list", "SGD", lambda lib, o: lib.LambdaLR(o, [Warmup(10), lambda e: 1 / (1 + e)])),
    ("linear", "SGD", lambda lib, o: lib.LinearLR(o)),
    ("linear-down", "SGD", lambda lib, o: lib.LinearLR(o, 1.0, 0.05, total_iters=60)),
    ("linear-up", "Adam", lambda lib, o: lib.LinearLR(o, 0.25, 0.75, total_iters=33)),
    ("cosine", "SGD", lambda lib, o: lib.CosineAnnealingLR(o, 30, eta_min=0.001)),
    ("warm-restarts", "SGD", lambda lib, o: lib.CosineAnnealingWarmRestarts(o, 10)),
    (
        "warm-restarts-mult",
        "SGD",
        lambda lib, o: lib.CosineAnnealingWarmRestarts(o, 5, T_mult=2, eta_min=1e-3),
    ),
    ("one-cycle", "SGD", lambda lib, o: lib.OneCycleLR(o, max_lr=0.5, total_steps=STEPS)),
    (
        "one-cycle-linear-3",
        "SGD",
        lambda lib, o: lib.OneCycleLR(
            o,
            max_lr=[0.4, 0.2],
            epochs=10,
            steps_per_epoch=10,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),
    (
        "one-cycle-adam",
        "Adam",
        lambda lib, o: lib.OneCycleLR(
            o, max_lr=0.01, total_steps=120, base_momentum=0.8, max_momentum=0.9
        ),
    ),
    (
        "one-cycle-no-momentum",
        "Adagrad",
        lambda lib, o: lib.OneCycleLR(o, max_lr=0.1, total_steps=STEPS, cycle_momentum=False),
    ),
    ("sequential", "SGD", _sequential),
    ("sequential-3", "SGD", _sequential3),
]

PLATEAU_CASES = [
    dict(),
    dict(mode="max", factor=0.5, patience=3, threshold=0.01, cooldown=2),
    dict(factor=0.3, patience=2, threshold_mode="abs", threshold=0.02, min_lr=[0.01, 0.001]),
    dict(patience=0, min_lr=0.005, eps=1e-3),
]


def _optimizers(name):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    kwargs = {"SGD": dict(momentum=0.9)}.get(name, {})
    ours = getattr(optim, name)(
        [{"params": [nn.Parameter(a)]}, {"params": [nn.Parameter(b)], "lr": 0.02}],
        lr=0.1,
        **kwargs,
    )
    theirs = getattr(torch.optim, name)(
        [{"params": [torch.tensor(a)]}, {"params": [torch.tensor(b)], "lr": 0.02}],
        lr=0.1,
        **kwargs,
    )
    return ours, theirs


def _trace(scheduler, steps, metrics=None):
    """The learning rates (and momenta) after construction and after each step."""

    def snapshot():
        groups = scheduler.optimizer.param_groups
        momenta = [g.get("momentum", g.get("betas", (None,))[0]) for g in groups]
        return list(scheduler.get_last_lr()) + [g["lr"] for g in groups] + momenta

    out = [snapshot()]
    for i in range(steps):
        scheduler.optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[i])
        out.append(snapshot())
    return out


def _assert_same(mine, torchs):
    assert len(mine) == len(torchs)
    for i, (a, b) in enumerate(zip(mine, torchs)):
        np.testing.assert_allclose(
            np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-12, atol=1e-15, err_msg=i
        )


@pytest.mark.parametrize("name, opt_name, make", CASES, ids=[c[0] for c in CASES])
def test_learning_rates_match_torch_for_100_steps(name, opt_name, make):
    o, t = _optimizers(opt_name)
    _assert_same(_trace(make(ours_lr, o), STEPS), _trace(make(theirs_lr, t), STEPS))


def _metrics(seed=0):
    rng = np.random.default_rng(seed)
    trend = np.maximum(1.0 - 0.03 * np.arange(STEPS), 0.4)
    return list(trend + 0.02 * rng.standard_normal(STEPS))


@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    o, t = _optimizers("SGD")
    metrics = _metrics()
    mine = _trace(ours_lr.ReduceLROnPlateau(o, **kwargs), STEPS, metrics)
    _assert_same(mine, _trace(theirs_lr.ReduceLROnPlateau(t, **kwargs), STEPS, metrics))
    assert mine[-1][0] < mine[0][0]  # the schedule did reduce


@pytest.mark.parametrize("name, opt_name, make", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip(name, opt_name, make):
    o, _ = _optimizers(opt_name)
    scheduler = make(ours_lr, o)
    _trace(scheduler, 37)
    saved_opt, saved = o.state_dict(), scheduler.state_dict()
    assert "optimizer" not in saved
    pickle.dumps(saved)  # no functions, no optimizer: a checkpoint can hold it
    rest = _trace(scheduler, STEPS - 37)

    o2, _ = _optimizers(opt_name)
    resumed = make(ours_lr, o2)  # created before the optimizer's state is loaded
    o2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    assert resumed.get_last_lr() == rest[0][:2]
    assert _trace(resumed, STEPS - 37) == rest


@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_lr_on_plateau_state_dict_round_trip(kwargs):
    metrics = _metrics(1)
    o, _ = _optimizers("SGD")
    scheduler = ours_lr.ReduceLROnPlateau(o, **kwargs)
    _trace(scheduler, 40, metrics)
    saved_opt, saved = o.state_dict(), scheduler.state_dict()
    rest = _trace(scheduler, 60, metrics[40:])
    o2, _ = _optimizers("SGD")
    resumed = ours_lr.ReduceLROnPlateau(o2)  # every setting comes back from the state
    o2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    assert _trace(resumed, 60, metrics[40:]) == rest


def test_lambda_lr_state_dict_leaves_functions_out_as_torch_does():
    o, t = _optimizers("SGD")
    warmup = Warmup(10)
    mine = ours_lr.LambdaLR(o, [warmup, lambda e: 1.0]).state_dict()
    theirs = theirs_lr.LambdaLR(t, [Warmup(10), lambda e: 1.0]).state_dict()
    assert mine["lr_lambdas"] == theirs["lr_lambdas"] == [{"n": 10}, None]
    o2, _ = _optimizers("SGD")
    other = Warmup(3)
    resumed = ours_lr.LambdaLR(o2, [other, lambda e: 1.0])
    resumed.load_state_dict(mine)
    assert other.n == 10 and resumed.lr_lambdas[0] is other


def test_step_with_epoch_uses_the_closed_form_like_torch():
    o, t = _optimizers("SGD")
    mine, theirs = ours_lr.MultiStepLR(o, [3, 6], gamma=0.5), theirs_lr.MultiStepLR(t, [3, 6], 0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        mine.step(7)
    with pytest.warns(UserWarning):
        theirs.step(7)
    assert mine.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)
    o, t = _optimizers("SGD")
    mine = ours_lr.CosineAnnealingWarmRestarts(o, 5, T_mult=2)
    theirs = theirs_lr.CosineAnnealingWarmRestarts(t, 5, T_mult=2)
    for epoch in (0.5, 3.25, 7.0, 17.5, 40.1):
        mine.step(epoch)
        theirs.step(epoch)
        assert mine.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


def _sgd():
    return optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1, momentum=0.9)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda o: ours_lr.StepLR(o, 0), ValueError, "step_size"),
        (lambda o: ours_lr.StepLR(o, 2, gamma=-0.5), ValueError, "gamma"),
        (lambda o: ours_lr.StepLR(o, 2, gamma="0.5"), TypeError, "gamma"),
        (lambda o: ours_lr.MultiStepLR(o, [10, 5]), ValueError, "increasing"),
        (lambda o: ours_lr.MultiStepLR(o, [-1, 5]), ValueError, "milestone"),
        (lambda o: ours_lr.MultiStepLR(o, [1.5]), ValueError, "milestone"),
        (lambda o: ours_lr.MultiStepLR(o, 10), TypeError, "milestones"),
        (lambda o: ours_lr.ExponentialLR(o, gamma=float("nan")), ValueError, "gamma"),
        (lambda o: ours_lr.LambdaLR(o, 0.5), TypeError, "callable"),
        (lambda o: ours_lr.LambdaLR(o, [abs, abs]), ValueError, "lr_lambdas"),
        (lambda o: ours_lr.LinearLR(o, start_factor=0), ValueError, "start_factor"),
        (lambda o: ours_lr.LinearLR(o, start_factor=1.5), ValueError, "start_factor"),
        (lambda o: ours_lr.LinearLR(o, end_factor=-0.1), ValueError, "end_factor"),
        (lambda o: ours_lr.LinearLR(o, total_iters=0), ValueError, "total_iters"),
        (lambda o: ours_lr.CosineAnnealingLR(o, 0), ValueError, "T_max"),
        (lambda o: ours_lr.CosineAnnealingWarmRestarts(o, 0), ValueError, "T_0"),
        (lambda o: ours_lr.CosineAnnealingWarmRestarts(o, 5, T_mult=0), ValueError, "T_mult"),
        (lambda o: ours_lr.CosineAnnealingWarmRestarts(o, 5, eta_min="a"), TypeError, "eta_min"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1), ValueError, "total_steps"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1, total_steps=0), ValueError, "total_steps"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=-1), ValueError, "steps"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1, 10, pct_start=1.5), ValueError, "pct_start"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1, 10, anneal_strategy="x"), ValueError, "anneal"),
        (lambda o: ours_lr.OneCycleLR(o, [0.1, 0.2], 10), ValueError, "max_lr"),
        (lambda o: ours_lr.OneCycleLR(o, 0.1, 10, max_momentum=1.5), ValueError, "momentum"),
        (lambda o: ours_lr.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
        (lambda o: ours_lr.ReduceLROnPlateau(o, mode="up"), ValueError, "mode"),
        (lambda o: ours_lr.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold_mode"),
        (lambda o: ours_lr.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
        (lambda o: ours_lr.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), ValueError, "min_lr"),
        (lambda o: ours_lr.ReduceLROnPlateau(o).step("low"), TypeError, "metrics"),
        (lambda o: ours_lr.SequentialLR(o, [], []), ValueError, "at least one"),
        (
            lambda o: ours_lr.SequentialLR(o, [ours_lr.StepLR(o, 2), ours_lr.StepLR(o, 3)], []),
            ValueError,
            "milestone",
        ),
        (
            lambda o: ours_lr.SequentialLR(o, [ours_lr.StepLR(_sgd(), 2)], []),
            ValueError,
            "another optimizer",
        ),
        (
            lambda o: ours_lr.SequentialLR(o, [ours_lr.ReduceLROnPlateau(o)], []),
            ValueError,
            "ReduceLROnPlateau",
        ),
        (lambda o: ours_lr.StepLR(o, 2, last_epoch=-2), ValueError, "last_epoch"),
        (lambda o: ours_lr.ExponentialLR(object(), 0.5), TypeError, "Optimizer"),
    ],
)
def test_argument_errors(make, error, message):
    with pytest.raises(error, match=message):
        make(_sgd())


def test_one_cycle_stepping_past_the_end_is_an_error():
    scheduler = ours_lr.OneCycleLR(_sgd(), 0.1, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps"):
        scheduler.step()
    with pytest.raises(ValueError, match="momentum or beta1"):
        ours_lr.OneCycleLR(optim.Adagrad([nn.Parameter(np.zeros(1))]), 0.1, total_steps=3)
