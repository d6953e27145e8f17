"""minidl.training: fit's History, callbacks, divergence, schedules, and evaluate."""

import json

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import nn, optim
from minidl.data import DataLoader
from minidl.training import Callback, History, TrainingDiverged, evaluate, fit


def blobs(n=60, seed=0):
    """Three well-separated classes of (n, 1, 2, 2) images."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.eye(3, 4, dtype=np.float32) * 3
    X = centres[y] + rng.normal(0, 0.3, (n, 4)).astype(np.float32)
    return X.reshape(n, 1, 2, 2), y.astype(np.int64)


def tiny_model():
    minidl.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def tiny_run(epochs=3, lr=0.1, **kwargs):
    X, y = blobs()
    model = tiny_model()
    opt = optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(X, y, batch_size=20, shuffle=True, seed=0)  # 3 batches
    history = fit(model, loader, opt, epochs=epochs, **kwargs)
    return model, opt, history


def test_history_rows_columns_and_json():
    X, y = blobs(seed=1)
    _, _, history = tiny_run(epochs=4, eval_data=(X, y))
    assert len(history) == 4 and not history.stopped_early
    assert history.columns() == [
        "epoch",
        "loss",
        "train_accuracy",
        "test_accuracy",
        "lr",
        "seconds",
    ]
    assert history.epoch == [1, 2, 3, 4]
    assert history[-1] == history.rows[3]
    assert history[-1]["loss"] == history.loss[-1]
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.test_accuracy)
    assert history.lr == [0.1] * 4  # no scheduler
    assert all(s > 0 for s in history.seconds)
    columns = history.to_dict()
    assert columns["loss"] == history.loss
    assert json.loads(json.dumps(columns)) == columns
    history[-1]["loss"] = -1.0  # rows handed out are copies
    assert history.loss[-1] != -1.0
    with pytest.raises(AttributeError, match="no column 'acc'"):
        _ = history.acc


def test_fit_lowers_the_loss_and_learns_the_classes():
    X, y = blobs()
    model, _, history = tiny_run(epochs=10, eval_data=(X, y))
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.test_accuracy[-1] == 1.0  # the classes are 10 standard deviations apart
    assert evaluate(model, X, y) == 1.0


def test_train_accuracy_and_loss_match_a_recount_on_a_model_that_does_not_learn():
    X, y = blobs()
    model = tiny_model()
    logits = model(minidl.tensor(X))
    loss = F.cross_entropy(logits, y).item()
    accuracy = np.mean(logits.data.argmax(axis=1) == y)
    loader = DataLoader(X, y, batch_size=20)
    history = fit(model, loader, optim.SGD(model.parameters(), lr=0.0), epochs=1)
    assert history.loss[0] == pytest.approx(loss, rel=1e-6)
    assert history.train_accuracy[0] == pytest.approx(accuracy)


def test_scheduler_steps_per_batch_or_per_epoch():
    def run(step):
        X, y = blobs()
        model = tiny_model()
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        loader = DataLoader(X, y, batch_size=20)  # 3 batches
        return fit(model, loader, opt, epochs=3, scheduler=sched, scheduler_step=step).lr

    assert run("batch") == pytest.approx([0.1, 0.1 * 0.5**3, 0.1 * 0.5**6])
    assert run("epoch") == pytest.approx([0.1, 0.05, 0.025])


def test_a_callback_stops_training_early_and_sees_every_epoch():
    seen, ended = [], []

    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, row, model):
            seen.append((epoch, row["epoch"], isinstance(model, nn.Module)))
            return epoch == 2

        def on_train_end(self, history, model):
            ended.append(len(history))

    class OnlyEnd:  # duck-typed: a callback needs only one of the two methods
        def on_train_end(self, history, model):
            ended.append("duck")

    _, _, history = tiny_run(epochs=5, callbacks=[StopAtTwo(), OnlyEnd()])
    assert len(history) == 2 and history.stopped_early
    assert seen == [(1, 1, True), (2, 2, True)]
    assert ended == [2, "duck"]


def test_a_callback_stopping_at_the_last_epoch_is_not_an_early_stop():
    class Always:
        def on_epoch_end(self, epoch, row, model):
            return True

    _, _, history = tiny_run(epochs=1, callbacks=[Always()])
    assert len(history) == 1 and not history.stopped_early


def test_divergence_raises_before_the_step_and_keeps_the_history():
    calls = []

    def loss_fn(outputs, target):
        calls.append(1)
        loss = F.cross_entropy(outputs, target)
        return loss * float("nan") if len(calls) == 5 else loss  # epoch 2, batch 2

    X, y = blobs()
    model = tiny_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(X, y, batch_size=20)
    before = [p.data.copy() for p in model.parameters()]

    with pytest.raises(TrainingDiverged, match="epoch 2 .lr=0.1.") as info:
        fit(model, loader, opt, epochs=3, loss_fn=loss_fn)
    assert info.value.epoch == 2 and info.value.lr == 0.1
    assert len(info.value.history) == 1
    # the weights are those after exactly the four good steps, taken by hand here
    by_hand = tiny_model()
    opt = optim.SGD(by_hand.parameters(), lr=0.1)
    batches = list(loader)
    for xb, yb in batches + batches[:1]:
        opt.zero_grad()
        F.cross_entropy(by_hand(xb), yb).backward()
        opt.step()
    for p, q, b in zip(model.parameters(), by_hand.parameters(), before):
        np.testing.assert_array_equal(p.data, q.data)
        assert not np.array_equal(p.data, b)
    assert len(calls) == 5  # stopped at once


def test_regression_targets_have_no_accuracy_column():
    X, _ = blobs()
    target = X.reshape(len(X), 4)[:, :3].copy()
    model = tiny_model()
    loader = DataLoader(X, target, batch_size=20)
    history = fit(
        model, loader, optim.SGD(model.parameters(), lr=0.05), epochs=3, loss_fn=F.mse_loss
    )
    assert "train_accuracy" not in history.columns()
    assert history.loss[-1] < history.loss[0]


def test_fit_prints_only_through_log(capsys):
    lines = []
    tiny_run(epochs=2)
    assert capsys.readouterr().out == ""
    X, y = blobs()
    tiny_run(epochs=2, eval_data=(X, y), log=lines.append)
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert all("test acc" in line and "train acc" in line for line in lines)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"epochs": 0}, ValueError),
        ({"epochs": 1.5}, ValueError),
        ({"epochs": 1, "scheduler_step": "step"}, ValueError),
        ({"epochs": 1, "eval_data": (1, 2, 3)}, ValueError),
        ({"epochs": 1, "log": "print"}, TypeError),
        ({"epochs": 1, "callbacks": [object()]}, TypeError),
    ],
)
def test_bad_arguments_are_refused(kwargs, error):
    X, y = blobs()
    model = tiny_model()
    with pytest.raises(error):
        fit(model, DataLoader(X, y), optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_an_empty_loader_is_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], optim.SGD(model.parameters(), lr=0.1), epochs=1)


def test_evaluate_counts_against_hand_labels_and_restores_the_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.Dropout(0.5))
    model[1].weight.data[...] = np.eye(2, dtype=np.float32)
    X = np.array([[1, 0], [0, 1], [2, 1], [1, 3], [5, 4]], np.float32).reshape(5, 1, 1, 2)
    y = np.array([0, 1, 1, 1, 0])  # the third label is wrong: predictions are 0, 1, 0, 1, 0
    for training_mode in (True, False):
        model.train(training_mode)
        # batch_size 2 runs three batches; dropout off: the same answer every time
        assert evaluate(model, X, y, batch_size=2) == 4 / 5
        assert model.training is training_mode and model[2].training is training_mode
    assert minidl.is_grad_enabled()  # no_grad ended with evaluate


@pytest.mark.parametrize(
    "X, y, batch_size",
    [
        (np.zeros((3, 1, 1, 2), np.float32), np.zeros(2, np.int64), 2),
        (np.zeros((0, 1, 1, 2), np.float32), np.zeros(0, np.int64), 2),
        (np.zeros((3, 1, 1, 2), np.float32), np.zeros(3, np.int64), 0),
    ],
)
def test_evaluate_refuses_bad_input(X, y, batch_size):
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ValueError):
        evaluate(model, X, y, batch_size=batch_size)


def test_history_from_rows():
    history = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0, "extra": 3}])
    assert history.to_dict() == {"epoch": [1, 2], "loss": [2.0, 1.0], "extra": [None, 3]}
    assert "epochs=2" in repr(history)


def test_a_progress_bar_changes_nothing_but_the_screen(capsys):
    quiet = tiny_run(epochs=2)[2]
    capsys.readouterr()
    shown = tiny_run(epochs=2, progress=True)[2]
    assert "epoch 2/2" in capsys.readouterr().out  # tqdm's bar, on stdout
    assert shown.loss == quiet.loss and shown.train_accuracy == quiet.train_accuracy
