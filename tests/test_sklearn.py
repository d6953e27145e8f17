"""CNNClassifier / CNNRegressor: scikit-learn's estimator checks, parallel jobs, pipelines."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder
from sklearn.utils.estimator_checks import parametrize_with_checks

import minidl
from minidl.models import LeNet
from minidl.sklearn import (
    EXPECTED_FAILED_CHECKS,
    CNNClassifier,
    CNNRegressor,
    default_n_threads,
    limit_threads,
)


def _fast(cls, **params):
    # Adam converges in fewer epochs on the checks' tiny problems than SGD's 30
    # (the defaults pass the checks too, in about twice the time).
    return cls(max_epochs=8, optimizer="adam", lr=0.01, n_threads=1, random_state=0, **params)


@parametrize_with_checks(
    [_fast(CNNClassifier), _fast(CNNRegressor)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failed_checks_are_at_most_three_with_reasons():
    assert len(EXPECTED_FAILED_CHECKS) <= 3
    assert all(isinstance(r, str) and r for r in EXPECTED_FAILED_CHECKS.values())


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


# ---- parallel jobs ----------------------------------------------------------------------
def _thread_probe(**kwargs):
    """A LeNet factory that records the thread counts seen while the estimator builds it
    (inside fit's thread limits)."""
    from threadpoolctl import threadpool_info

    model = LeNet(**kwargs)
    model.seen_threads = (
        minidl.get_num_threads(),
        {(p["user_api"], p["filepath"]): p["num_threads"] for p in threadpool_info()},
    )
    return model


def test_cross_val_score_two_jobs_equals_one_job_and_caps_threads(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    params = dict(max_epochs=3, optimizer="adam", lr=3e-3, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    # alone on one thread (the results do not depend on the thread count, and one thread
    # keeps this test quick on a busy machine) ...
    alone = cross_val_score(CNNClassifier(n_threads=1, **params), X, y, cv=cv, n_jobs=1)
    # ... and in two jobs at the default n_threads: each job's share of the cores
    est = CNNClassifier(_thread_probe, **params)
    parallel = cross_validate(est, X, y, cv=cv, n_jobs=2, return_estimator=True)
    np.testing.assert_array_equal(parallel["test_score"], alone)
    assert alone.mean() > 0.3  # chance is 0.1
    share = max(1, _cores() // 2)
    for fitted in parallel["estimator"]:
        kernels, pools = fitted.module_.seen_threads
        assert kernels == share, (kernels, share)
        assert all(n <= share for n in pools.values()), pools


def _cores():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_default_n_threads_in_joblib_workers_is_the_share_of_the_cores():
    from joblib import Parallel, delayed

    seen = Parallel(n_jobs=2)(delayed(default_n_threads)() for _ in range(4))
    assert seen == [max(1, _cores() // 2)] * 4


def test_grid_search_two_jobs_equals_one_job(digits):
    X, y = digits
    X, y = X[:400], y[:400]
    grid = {"lr": [0.02, 0.1], "module__widths": [(4, 8, 16), (8, 8, 16)]}
    est = CNNClassifier(max_epochs=2, random_state=0)
    one = GridSearchCV(est.set_params(n_threads=1), grid, cv=2, n_jobs=1).fit(X, y)
    two = GridSearchCV(clone(est).set_params(n_threads=None), grid, cv=2, n_jobs=2).fit(X, y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(one.cv_results_[key], two.cv_results_[key])
    assert one.best_params_ == two.best_params_
    assert two.best_estimator_.module_.state_dict()["features.0.weight"].shape[0] in (4, 8)


def test_fit_restores_thread_settings(digits):
    from threadpoolctl import threadpool_info

    X, y = digits
    before = (minidl.get_num_threads(), [p["num_threads"] for p in threadpool_info()])
    est = CNNClassifier(_thread_probe, max_epochs=1, n_threads=1, random_state=0).fit(X, y)
    kernels, pools = est.module_.seen_threads
    assert kernels == 1 and all(n == 1 for n in pools.values())
    est.predict(X[:5])
    assert (minidl.get_num_threads(), [p["num_threads"] for p in threadpool_info()]) == before


def test_limit_threads_caps_and_restores():
    from threadpoolctl import threadpool_info

    before = [p["num_threads"] for p in threadpool_info()]
    previous = minidl.get_num_threads()
    with limit_threads(1):
        assert minidl.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert minidl.get_num_threads() == previous
    assert [p["num_threads"] for p in threadpool_info()] == before


def test_default_n_threads_follows_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_n_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_n_threads() >= 1


def test_pipeline_with_function_transformer(digits):
    X, y = digits
    raw = X * 16  # 0..16 pixels, scaled back by the first step
    pipe = Pipeline(
        [
            ("scale", FunctionTransformer(lambda a: a / 16.0)),
            ("cnn", CNNClassifier(max_epochs=5, n_threads=1, random_state=0)),
        ]
    )
    pipe.fit(raw[:1400], y[:1400])
    direct = CNNClassifier(max_epochs=5, n_threads=1, random_state=0).fit(X[:1400], y[:1400])
    np.testing.assert_array_equal(pipe.predict(raw[1400:]), direct.predict(X[1400:]))
    assert pipe.score(raw[1400:], y[1400:]) > 0.85


# ---- inputs, labels, parameters --------------------------------------------------------
def test_images_in_three_layouts_train_the_same_network(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    params = dict(max_epochs=2, n_threads=1, random_state=0)
    rows = CNNClassifier(**params).fit(X, y)
    images = CNNClassifier(**params).fit(X.reshape(-1, 1, 8, 8), y)
    plain = CNNClassifier(**params).fit(X.reshape(-1, 8, 8), y)
    for est in (rows, images, plain):
        assert est.n_features_in_ == 64 and est.image_shape_ == (1, 8, 8)
        assert est.history_.loss == rows.history_.loss
    p = rows.predict_proba(X)
    np.testing.assert_array_equal(images.predict_proba(X.reshape(-1, 1, 8, 8)), p)
    np.testing.assert_array_equal(plain.predict_proba(X), p)  # rows accepted after images
    assert p.shape == (300, 10) and np.allclose(p.sum(axis=1), 1)
    strip = CNNClassifier(image_shape=(2, 4, 8), **params).fit(X, y)
    assert (
        strip.image_shape_ == (2, 4, 8)
        and strip.module_.state_dict()["features.0.weight"].shape[1] == 2
    )


def test_classes_are_label_encoder_classes(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four"] * 2)
    labels = names[y[:500]]
    est = CNNClassifier(max_epochs=3, n_threads=1, random_state=0).fit(X[:500], labels)
    np.testing.assert_array_equal(est.classes_, LabelEncoder().fit(labels).classes_)
    pred = est.predict(X[:500])
    assert pred.dtype == labels.dtype and set(pred) <= set(labels)
    proba = est.predict_proba(X[:500])
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], pred)
    assert est.score(X[:500], labels) == np.mean(pred == labels)


def test_partial_fit_one_epoch_per_call(digits):
    X, y = digits
    est = CNNClassifier(n_threads=1, random_state=0)
    est.partial_fit(X[:200], y[:200], classes=np.arange(10))
    est.partial_fit(X[200:400], y[200:400])
    assert len(est.history_) == 2 and est.n_iter_ == 2 and est.history_.epoch == [1, 2]
    np.testing.assert_array_equal(est.classes_, np.arange(10))
    with pytest.raises(ValueError, match="not fitted on"):
        est.partial_fit(X[:10], y[:10] + 20)
    with pytest.raises(ValueError, match="differs from the earlier partial_fit"):
        est.partial_fit(X[:10], y[:10], classes=[0, 1])
    with pytest.raises(ValueError, match="X has 63 features, but CNNClassifier is expecting 64"):
        est.partial_fit(X[:10, :63], y[:10])
    with pytest.raises(ValueError, match=r"not in classes="):
        CNNClassifier().partial_fit(X[:10], y[:10], classes=[0, 1])


def test_warm_start_continues_and_cold_start_restarts(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    cold = CNNClassifier(max_epochs=2, n_threads=1, random_state=0).fit(X, y)
    first_weights = cold.module_.state_dict()["features.0.weight"].copy()
    cold.fit(X, y)
    assert len(cold.history_) == 2 and cold.n_iter_ == 2
    np.testing.assert_array_equal(cold.module_.state_dict()["features.0.weight"], first_weights)
    warm = CNNClassifier(max_epochs=2, warm_start=True, n_threads=1, random_state=0).fit(X, y)
    module = warm.module_
    warm.fit(X, y)
    assert warm.module_ is module and len(warm.history_) == 4 and warm.n_iter_ == 4
    assert warm.history_.epoch == [1, 2, 3, 4]
    assert warm.history_.loss[3] < warm.history_.loss[0]


def test_module_params_route_through_get_set_params_and_clone(digits):
    X, y = digits
    est = CNNClassifier(module__widths=(4, 6, 12), max_epochs=1, n_threads=1, random_state=0)
    assert est.get_params()["module__widths"] == (4, 6, 12)
    assert est.module__widths == (4, 6, 12)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and "module__widths=(4, 6, 12)" in repr(copy)
    est.fit(X[:100], y[:100])
    assert est.module_.state_dict()["features.0.weight"].shape == (4, 1, 3, 3)
    est.set_params(module__widths=(5, 7), lr=0.01)
    assert est.lr == 0.01 and est.get_params()["module__widths"] == (5, 7)
    est.fit(X[:100], y[:100])
    assert est.module_.state_dict()["features.3.weight"].shape == (7, 5, 3, 3)
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        est.set_params(nope=1)


def test_module_factory_without_size_arguments(digits):
    from minidl import nn

    X, y = digits

    def tiny():  # no num_classes / in_channels / input_size: none is passed
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    est = CNNClassifier(tiny, max_epochs=2, n_threads=1, random_state=0).fit(X[:300], y[:300])
    assert est.score(X[:300], y[:300]) > 0.5


def test_validation_fraction_and_early_stopping(digits):
    X, y = digits
    X, y = X[:400], y[:400]
    est = CNNClassifier(max_epochs=3, validation_fraction=0.25, n_threads=1, random_state=0)
    est.fit(X, y)
    assert len(est.history_.val_score) == 3 and all(0 <= s <= 1 for s in est.history_.val_score)
    # a learning rate too small to change the validation accuracy: stops after
    # n_iter_no_change epochs without a better score
    stuck = CNNClassifier(
        max_epochs=20,
        lr=1e-12,
        validation_fraction=0.25,
        early_stopping=True,
        n_iter_no_change=2,
        n_threads=1,
        random_state=0,
    ).fit(X, y)
    assert len(stuck.history_) == 3 and stuck.history_.stopped_early


def test_augment_and_verbose(digits, capsys):
    X, y = digits
    est = CNNClassifier(max_epochs=2, augment=1, verbose=1, n_threads=1, random_state=0)
    est.fit(X[:200], y[:200])
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out
    seen = []

    def flip(batch):
        seen.append(batch.shape)
        return batch[:, :, :, ::-1].copy()

    CNNClassifier(max_epochs=1, augment=flip, batch_size=50, n_threads=1).fit(X[:200], y[:200])
    assert seen == [(50, 1, 8, 8)] * 4


def test_fitted_estimator_pickles(digits):
    X, y = digits
    est = CNNClassifier(max_epochs=2, warm_start=True, n_threads=1, random_state=0)
    est.fit(X[:300], y[:300])
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X[:50]), est.predict_proba(X[:50]))
    state = est.optimizer_.state_dict()
    restored = again.optimizer_.state_dict()
    for index, values in state["state"].items():
        for name, value in values.items():
            np.testing.assert_array_equal(restored["state"][index][name], value)
    again.fit(X[:300], y[:300])  # warm start continues from the restored momentum
    assert len(again.history_) == 4


def test_regressor_multi_output_and_units(digits):
    X, _ = digits
    images = X.reshape(-1, 1, 8, 8)[:600]
    # targets in large units: mean brightness of the top and bottom halves, x 1000
    y = 1000 * np.stack([images[:, 0, :4].mean(axis=(1, 2)), images[:, 0, 4:].mean(axis=(1, 2))], 1)
    est = CNNRegressor(max_epochs=10, n_threads=1, random_state=0).fit(images[:500], y[:500])
    pred = est.predict(images[500:])
    assert pred.shape == (100, 2) and pred.dtype == np.float64
    assert est.score(images[500:], y[500:]) > 0.8
    single = CNNRegressor(max_epochs=2, n_threads=1, random_state=0).fit(images, y[:, 0])
    assert single.predict(images[:7]).shape == (7,)
    assert "train_accuracy" not in single.history_.columns()


# ---- bad inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, error, pattern",
    [
        ({"module": LeNet()}, TypeError, r"Module class or a factory .*pass LeNet, not LeNet\(\)"),
        ({"module": 3}, TypeError, "Module class or a factory"),
        ({"modul__widths": (4, 8)}, TypeError, "unexpected keyword argument 'modul__widths'"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be an int >= 1"),
        ({"batch_size": 2.5}, ValueError, "batch_size must be an int >= 1"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"lr": -0.1}, ValueError, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, ValueError, "lr must be a finite number > 0"),
        ({"momentum": -1}, ValueError, "momentum must be a finite number >= 0"),
        ({"lr_schedule": "step"}, ValueError, "lr_schedule must be one of"),
        ({"augment": "yes"}, ValueError, "augment"),
        ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be in \[0, 1\)"),
        ({"early_stopping": "yes"}, ValueError, "early_stopping must be True or False"),
        ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change must be an int >= 1"),
        ({"n_threads": 0}, ValueError, "n_threads must be an int >= 1 or None"),
        ({"image_shape": (1, 0, 8)}, ValueError, r"image_shape must be \(C, H, W\)"),
        ({"image_shape": (1, 4, 8)}, ValueError, "holds 32 pixels but X has 64 features"),
        ({"module": lambda **kw: "not a module"}, TypeError, "returned str, not a minidl Module"),
    ],
)
def test_bad_parameters_raise_at_fit(digits, params, error, pattern):
    X, y = digits
    est = CNNClassifier(**{"max_epochs": 1, **params})  # scikit-learn style: no check in init
    with pytest.raises(error, match=pattern):
        est.fit(X[:50], y[:50])


def test_bad_data(digits):
    X, y = digits
    est = CNNClassifier(max_epochs=1, n_threads=1)
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(X[:20], None)
    with pytest.raises(ValueError, match="at least two classes in y; got one class"):
        est.fit(X[:20], np.zeros(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        est.fit(X[:20], np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X[:20], y[:19])
    with pytest.raises(ValueError, match="got 5 dimensions"):
        est.fit(np.zeros((4, 1, 1, 8, 8)), y[:4])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.fit(np.full((4, 64), np.nan), y[:4])
    with pytest.raises(ValueError, match="image_shape=.* but X holds"):
        CNNClassifier(image_shape=(1, 4, 4)).fit(X[:20].reshape(-1, 1, 8, 8), y[:20])
    with pytest.raises(ValueError, match="validation_fraction=0.5 cannot hold out"):
        CNNClassifier(validation_fraction=0.5, n_threads=1).fit(X[:12], y[:12])
    est.fit(X[:100].reshape(-1, 1, 8, 8), y[:100])
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 16\), but CNNClassifier"):
        est.predict(np.zeros((2, 1, 4, 16)))
    with pytest.raises(ValueError, match="X has 63 features, but CNNClassifier is expecting 64"):
        est.predict(np.zeros((2, 63)))
    with pytest.raises(ValueError, match="y has 2 outputs, but CNNRegressor was fitted on 1"):
        CNNRegressor(n_threads=1).partial_fit(X[:10], np.zeros(10)).partial_fit(
            X[:10], np.zeros((10, 2))
        )


def test_unfitted_estimator_says_so(digits):
    from sklearn.exceptions import NotFittedError

    X, _ = digits
    with pytest.raises(NotFittedError):
        CNNClassifier().predict(X[:2])
    with pytest.raises(NotFittedError):
        CNNRegressor().predict(X[:2])
