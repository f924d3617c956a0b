"""initcore.sklearn: scikit-learn's estimator checks, string labels, predict_proba, partial_fit,
sample_weight, pickling, and use in Pipeline, GridSearchCV(n_jobs=2) and cross_val_score."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import initcore as ic
from initcore.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks

# Small networks so the ~50 checks per estimator stay quick; the defaults are scikit-learn's.
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, random_state=0),
    MLPRegressor(hidden_layer_sizes=(16,), max_iter=200, random_state=0),
    MLPClassifier(
        hidden_layer_sizes=(8, 8),
        batchnorm="before",
        dropout=0.1,
        optimizer="sgd",
        learning_rate_init=0.05,
        random_state=0,
    ),
]


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_the_only_expected_failure_is_sample_weight_equivalence():
    assert set(expected_failed_checks(CHECKED[0])) == {"check_sample_weight_equivalence_on_dense_data"}


def classification(n=300, seed=0):
    x, y = make_classification(n, n_features=8, n_informative=5, n_classes=3, random_state=seed)
    return x, np.array(["cat", "dog", "emu"])[y]


def test_string_labels_proba_and_accuracy():
    x, y = classification()
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=100, random_state=0).fit(x, y)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    pred = clf.predict(x)
    assert pred.dtype == y.dtype and set(pred) <= set(y)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(x, y) > 0.85
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert isinstance(clf.model_, ic.Sequential) and clf.model_.layers[0].units == 32


def test_parameters_reach_the_network():
    x, y = classification(100)
    clf = MLPClassifier(
        (8, 4), activation="logistic", batchnorm="after", dropout=0.25, kernel_initializer="he_normal", max_iter=2
    ).fit(x, y)
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds == ["Dense", "BatchNorm", "Dropout", "Dense", "BatchNorm", "Dropout", "Dense"]
    assert clf.model_.layers[0].activation == "sigmoid"
    assert type(clf.model_.layers[0].kernel_initializer).__name__ == "HeNormal"
    assert clf.optimizer_.hyper["weight_decay"] == pytest.approx(1e-4 / 100)
    reg = MLPRegressor((4,), activation="selu", dropout=0.1, optimizer="rmsprop", batch_size=10, max_iter=1)
    reg.fit(x, x[:, 0])
    assert type(reg.optimizer_).__name__ == "RMSprop" and type(reg.model_.layers[1]).__name__ == "AlphaDropout"
    with pytest.raises(ValueError, match="batchnorm must be None, 'before' or 'after'"):
        MLPClassifier(batchnorm="middle").fit(x, y)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPClassifier(activation="swish").fit(x, y)


def test_fitted_estimators_pickle_bit_exactly():
    x, y = classification()
    for est, target in (
        (MLPClassifier((16,), max_iter=5, random_state=1), y),
        (MLPRegressor((16,), max_iter=5), x[:, 0]),
    ):
        est.fit(x, target)
        back = pickle.loads(pickle.dumps(est))
        out = est.predict_proba(x) if hasattr(est, "predict_proba") else est.predict(x)
        out2 = back.predict_proba(x) if hasattr(back, "predict_proba") else back.predict(x)
        np.testing.assert_array_equal(out2, out)
        # Training continues bit-identically too.
        est.partial_fit(x, target)
        back.partial_fit(x, target)
        np.testing.assert_array_equal(back.predict(x), est.predict(x))


def test_partial_fit_needs_classes_and_matches_fit():
    x, y = classification()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(x, y)
    wide = MLPClassifier((16,), random_state=3).partial_fit(x, y, classes=["cat", "dog", "emu", "fox"])
    assert list(wide.classes_) == ["cat", "dog", "emu", "fox"] and wide.predict_proba(x).shape == (300, 4)
    with pytest.raises(ValueError, match="not in classes_"):
        MLPClassifier().partial_fit(x, y, classes=["cat", "dog"])
    # Three partial_fit epochs are three fit epochs, bit for bit.
    a = MLPClassifier((16,), random_state=3)
    for _ in range(3):
        a.partial_fit(x, y, classes=["cat", "dog", "emu"])
    assert a.n_iter_ == 3 and a.t_ == 900
    b = MLPClassifier((16,), random_state=3, max_iter=3, tol=0.0, n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        b.fit(x, y)
    assert b.loss_curve_ == a.loss_curve_
    np.testing.assert_array_equal(b.predict_proba(x), a.predict_proba(x))


def test_sample_weight_ones_is_bit_identical_and_weights_matter():
    x, y = classification()
    base = MLPClassifier((16,), max_iter=5, random_state=0).fit(x, y)
    ones = MLPClassifier((16,), max_iter=5, random_state=0).fit(x, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(ones.predict_proba(x), base.predict_proba(x))
    # Twice the weight on every sample: the same normalized gradient, the same bits.
    twice = MLPClassifier((16,), max_iter=5, random_state=0).fit(x, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_array_equal(twice.predict_proba(x), base.predict_proba(x))
    # Only "cat" samples count: the classifier learns to say "cat".
    w = (y == "cat").astype(float)
    only = MLPClassifier((16,), learning_rate_init=0.01, max_iter=50, random_state=0).fit(x, y, sample_weight=w)
    assert np.mean(only.predict(x) == "cat") > 0.95
    with pytest.raises(ValueError, match="non-negative"):
        MLPClassifier().fit(x, y, sample_weight=-np.ones(len(y)))


def test_weighted_loss_is_the_weighted_mean():
    x, y = make_regression(64, 4, random_state=0)
    y = (y - y.mean()) / y.std()
    w = np.random.default_rng(0).uniform(0.5, 2.0, 64)
    reg = MLPRegressor((8,), max_iter=1, batch_size=64, shuffle=False, random_state=0)
    reg.fit(x, y, sample_weight=w)
    # Rebuild the untrained network and compute the weighted mean loss of its first forward.
    fresh = MLPRegressor((8,), max_iter=1, batch_size=64, shuffle=False, random_state=0)
    fresh._check_params()
    fresh._build(4, 1, 64, 0)
    fresh.scaler_ = ic.data.Standardizer().fit(x)
    out = fresh.model_.forward(np.ascontiguousarray(fresh.scaler_.transform(x), dtype=np.float32), training=True)
    expected = np.sum(w * (out[:, 0].astype(np.float64) - y.astype(np.float32)) ** 2) / w.sum()
    assert reg.loss_curve_[0] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_restores_the_best_validation_score():
    x, y = classification(400)
    clf = MLPClassifier((32,), early_stopping=True, n_iter_no_change=3, max_iter=200, random_state=0).fit(x, y)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_


def test_regressor_multioutput_and_score():
    x, y = make_regression(300, 6, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(axis=0)
    reg = MLPRegressor((32,), max_iter=300, random_state=0, learning_rate_init=0.01).fit(x, y)
    assert reg.predict(x).shape == (300, 2) and reg.score(x, y) > 0.9
    single = MLPRegressor((8,), max_iter=2).fit(x, y[:, 0])
    assert single.predict(x).shape == (300,)


def test_pipeline_grid_search_n_jobs_and_cross_val_score():
    x, y = classification(240)
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier((16,), learning_rate_init=0.01, max_iter=100, random_state=0, standardize=False)
    )
    assert cross_val_score(pipe, x, y, cv=3).mean() > 0.7
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (16,)]}, cv=2, n_jobs=2)
    grid.fit(x, y)
    assert grid.best_params_["mlpclassifier__hidden_layer_sizes"] in [(8,), (16,)]
    assert grid.score(x, y) > 0.7
    assert isinstance(clone(grid.best_estimator_)[-1], MLPClassifier)
