"""The scikit-learn facade: check_estimator, agreement with the functional API, labels and feature
names, Pipeline / GridSearchCV."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import jaxlasso
from helpers import real_data_path, synthetic
from jaxlasso.estimator import LassoLogistic, LassoLogisticCV


_WEIGHT_XFAIL = (
    "the check's weighted data leaves a single class-0 row with positive weight (weight > 1) where "
    "the repeated data has several copies of it; jaxlasso, like glmnet, refuses a class backed by "
    "fewer than 2 observations, so the weighted fit raises. Equivalence on data that passes the "
    "guard is tested in test_sample_weight_equivalence")
_WEIGHT_XFAIL_CV = (
    "the check's weighted data leaves a single class-0 row with positive weight (weight > 1) where "
    "the repeated data has several copies of it; jaxlasso, like glmnet, refuses a class backed by "
    "fewer than 2 observations, so the weighted fit raises. Beyond that, the internal CV deals "
    "folds per row (there is no `cv` parameter for the check to pin the splits with), so a row of "
    "weight 3 and three copies of it land in different folds and the chosen lambda differs")


def _expected_failed_checks(estimator):
    if isinstance(estimator, LassoLogisticCV):
        reason = _WEIGHT_XFAIL_CV
    else:
        reason = _WEIGHT_XFAIL
    return {
        "check_sample_weight_equivalence_on_dense_data": reason,
        "check_sample_weight_equivalence_on_sparse_data": reason,
    }


# scikit-learn's checks use tiny data: jaxlasso's glmnet warning about classes with fewer than 8
# observations is expected there.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::jaxlasso.FewObservationsWarning")
@parametrize_with_checks([LassoLogistic(), LassoLogisticCV()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- agreement with the functional API ------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    # The shape of tests/test_path.py's data: the compiled executables are shared.
    return synthetic(50, 80, seed=11)


@pytest.fixture(scope="module")
def cv_est(data):
    X, y = data
    return LassoLogisticCV(nfolds=5, seed=3).fit(X, y)


@pytest.mark.slow
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_matches_logistic_path(data, l1_ratio):
    X, y = data
    lam_max = jaxlasso.logistic_path(X, y, l1_ratio=l1_ratio, n_lambdas=1).lambdas[0]
    lam = 0.1 * lam_max
    # Tighter than the default tolerance, so that the two grids' optima agree to ~1e-6.
    tol = 1e-7
    est = LassoLogistic(lambda_value=lam, l1_ratio=l1_ratio, tol=tol).fit(X, y)
    assert est.coef_.shape == (1, X.shape[1])
    assert est.intercept_.shape == (1,)
    # The functional API on the estimator's warm-start grid: the same computation.
    b0, coef = jaxlasso.logistic_path(X, y, l1_ratio=l1_ratio, lambdas=est.path_.lambdas, tol=tol).coef_at(lam)
    np.testing.assert_allclose(est.coef_[0], coef, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(est.intercept_[0], b0, rtol=1e-12)
    # On another grid holding lambda_value: the same optimum, to the solver's KKT tolerance.
    grid = np.append(np.geomspace(lam_max, lam, 30)[:-1], lam)
    b0, coef = jaxlasso.logistic_path(X, y, l1_ratio=l1_ratio, lambdas=grid, tol=tol).coef_at(lam)
    np.testing.assert_allclose(est.coef_[0], coef, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(est.coef_[0] != 0, coef != 0)
    obj = jaxlasso.logistic_objective(X, y, np.vstack([est.coef_[0], coef]),
                                      [est.intercept_[0], b0], lam, l1_ratio=l1_ratio)
    assert obj[0] == pytest.approx(obj[1], rel=1e-10)
    assert est.lambda_ == lam
    assert est.path_.lambdas[-1] == lam and est.path_.lambdas[0] == pytest.approx(lam_max)
    np.testing.assert_array_equal(est.classes_, [0.0, 1.0])
    assert est.n_features_in_ == X.shape[1]
    assert est.n_iter_ >= 1
    np.testing.assert_array_equal(est.selected_features_,
                                  [f"x{j}" for j in np.flatnonzero(est.coef_[0])])
    # Predictions are the path's.
    np.testing.assert_allclose(est.decision_function(X), est.path_.decision_function(X, lam), rtol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], est.path_.predict_proba(X, lam), atol=1e-14)


def test_above_lambda_max_is_intercept_only(data):
    X, y = data
    est = LassoLogistic(lambda_value=1e3).fit(X, y)
    assert not est.coef_.any()
    assert len(est.path_.lambdas) == 1
    assert len(est.selected_features_) == 0
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], np.mean(y), rtol=1e-8)


def test_predict_proba_and_predict(data):
    X, y = data
    est = LassoLogistic(lambda_value=0.02).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert np.all((proba >= 0) & (proba <= 1))
    eta = est.decision_function(X)
    assert eta.shape == (len(y),)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(proba[:, 1] > 0.5).astype(int)])
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), proba, rtol=1e-12)
    assert est.score(X, y) == np.mean(est.predict(X) == y)


@pytest.mark.slow
def test_float32_sparse_and_warnings(data):
    X, y = data
    ref = LassoLogistic(lambda_value=0.05).fit(X, y)
    f32 = LassoLogistic(lambda_value=0.05, dtype="float32").fit(X, y)
    assert f32.path_.info["dtype"] == "float32" and f32.coef_.dtype == np.float64
    np.testing.assert_allclose(f32.coef_, ref.coef_, atol=1e-3)
    sp = pytest.importorskip("scipy.sparse")
    sparse = LassoLogistic(lambda_value=0.05).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.coef_, ref.coef_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse.decision_function(sp.csc_array(X)), ref.decision_function(X),
                               rtol=1e-12)
    # jaxlasso's warnings pass through fit.
    with pytest.warns(jaxlasso.FewObservationsWarning, match="fewer than 8"):
        LassoLogistic(lambda_value=0.05).fit(X[:12], np.r_[np.zeros(6), np.ones(6)])


@pytest.mark.slow
def test_sample_weight_equivalence():
    # Integer weights == repeated rows (the warm-start grid depends only on lambda_max).
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 12))
    y = (X[:, 0] + 0.5 * rng.normal(size=30) > 0).astype(int)
    sw = rng.integers(0, 4, size=30)
    sw[:4] = [1, 2, 1, 2]  # both classes keep >= 2 weighted rows
    weighted = LassoLogistic(lambda_value=0.03).fit(X, y, sample_weight=sw)
    repeated = LassoLogistic(lambda_value=0.03).fit(X.repeat(sw, axis=0), y.repeat(sw))
    np.testing.assert_allclose(weighted.decision_function(X), repeated.decision_function(X),
                               rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_c_mapping_matches_sklearn():
    """C = 1 / (n * lambda) with the penalty on the same scale (standardize=False)."""
    rng = np.random.default_rng(0)
    n, p = 120, 6
    X = rng.normal(size=(n, p))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=n) > 0).astype(int)
    lam = 0.03
    ours = LassoLogistic(lambda_value=lam, standardize=False).fit(X, y)
    sk = LogisticRegression(C=1.0 / (n * lam), l1_ratio=1.0, solver="saga", tol=1e-12,
                            max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, atol=1e-5)


def test_cv_estimator_matches_cv_path(cv_est, data):
    X, y = data
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=3)
    est = cv_est
    np.testing.assert_array_equal(est.cv_result_.lambdas, cv.lambdas)
    np.testing.assert_array_equal(est.cv_result_.cv_mean, cv.cv_mean)
    assert est.lambda_ == est.cv_result_.lambda_1se == est.lambda_1se_
    assert est.lambda_min_ == est.cv_result_.lambda_min
    b0, coef = cv.coef("lambda_1se")
    np.testing.assert_array_equal(est.coef_[0], coef)
    assert est.intercept_[0] == b0
    assert list(est.selected_features_) == cv.selected("lambda_1se")
    assert est.path_ is est.cv_result_.path
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], cv.predict_proba(X), atol=1e-14)
    np.testing.assert_array_equal(est.predict(X), cv.predict(X))


def test_cv_rule_lambda_min(cv_est, data):
    X, y = data
    est = clone(cv_est).set_params(rule="lambda_min").fit(X, y)
    assert est.lambda_ == est.cv_result_.lambda_min == est.lambda_min_
    _, coef = est.cv_result_.coef("lambda_min")
    np.testing.assert_array_equal(est.coef_[0], coef)
    assert est.lambda_min_ <= est.lambda_1se_
    # glmnet's spelling is accepted.
    dotted = clone(cv_est).set_params(rule="lambda.min").fit(X, y)
    assert dotted.lambda_ == est.lambda_


def test_cv_passes_options(data):
    X, y = data
    foldid = np.arange(len(y)) % 4
    est = LassoLogisticCV(foldid=foldid, measure="class", l1_ratio=0.7, n_lambdas=30).fit(X, y)
    assert est.cv_result_.nfolds == 4
    assert est.cv_result_.measure == "class"
    assert est.path_.l1_ratio == 0.7
    assert len(est.cv_result_.lambdas) <= 30


# --- labels and feature names ---------------------------------------------------------------

def test_string_labels_and_dataframe_names(data):
    X, y = data
    genes = [f"GENE{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=genes)
    labels = np.where(y == 1, "tumour", "normal")
    est = LassoLogistic(lambda_value=0.05).fit(df, labels)
    np.testing.assert_array_equal(est.classes_, ["normal", "tumour"])  # sorted: case = "tumour"
    np.testing.assert_array_equal(est.feature_names_in_, genes)
    assert est.path_.classes == ("normal", "tumour")
    assert est.path_.feature_names == tuple(genes)
    nz = np.flatnonzero(est.coef_[0])
    assert len(nz) > 0
    np.testing.assert_array_equal(est.selected_features_, [genes[j] for j in nz])
    # Same model as 0/1 labels: "tumour" is the case, coded 1.
    ref = LassoLogistic(lambda_value=0.05).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
    pred = est.predict(df)
    assert set(pred) <= {"normal", "tumour"}
    np.testing.assert_array_equal(pred == "tumour", ref.predict(X) == 1)
    # predict on the fitted DataFrame is silent (no feature-name warning); a Series y works too.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict_proba(df)
    cv = LassoLogisticCV(nfolds=5, seed=3).fit(df, pd.Series(labels))
    np.testing.assert_array_equal(cv.classes_, ["normal", "tumour"])
    assert set(cv.selected_features_) <= set(genes)
    assert list(cv.selected_features_) == cv.cv_result_.selected()


def test_bool_and_pm1_labels(data):
    X, y = data
    ref = LassoLogistic(lambda_value=0.05).fit(X, y)
    for labels, classes in [(y.astype(bool), [False, True]), (2 * y - 1, [-1, 1])]:
        est = LassoLogistic(lambda_value=0.05).fit(X, labels)
        np.testing.assert_array_equal(est.classes_, classes)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
        assert est.predict(X).dtype == np.asarray(labels).dtype


def test_multiclass_and_one_class_errors(data):
    X, y = data
    y3 = y.copy()
    y3[:5] = 2
    for est in (LassoLogistic(), LassoLogisticCV()):
        with pytest.raises(ValueError, match="Only binary classification is supported"):
            est.fit(X, y3)
        with pytest.raises(ValueError, match="only one class"):
            est.fit(X, np.ones(len(y)))


def test_parameter_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="lambda_value"):
        LassoLogistic(lambda_value=0.0).fit(X, y)
    with pytest.raises(ValueError, match="lambda_value"):
        LassoLogistic(lambda_value="big").fit(X, y)
    with pytest.raises(ValueError, match="rule"):
        LassoLogisticCV(rule="lambda_best").fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio"):
        LassoLogistic(l1_ratio=2.0).fit(X, y)


def test_pickle_roundtrip(cv_est, data):
    X, _ = data
    again = pickle.loads(pickle.dumps(cv_est))
    np.testing.assert_array_equal(again.predict_proba(X), cv_est.predict_proba(X))
    assert again.lambda_ == cv_est.lambda_


# --- scikit-learn composition ---------------------------------------------------------------

def test_pipeline_and_cross_val_score(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), LassoLogistic(lambda_value=0.05))
    pipe.fit(X, y)
    assert pipe.predict_proba(X).shape == (len(y), 2)
    # StandardScaler uses the population SD, as glmnet's standardisation: same coefficients on
    # the scaled data as the direct fit's coefficients times the SDs.
    direct = LassoLogistic(lambda_value=0.05).fit(X, y)
    np.testing.assert_allclose(pipe[-1].coef_[0], direct.coef_[0] * X.std(axis=0), rtol=1e-5, atol=1e-7)
    scores = cross_val_score(pipe, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


@pytest.fixture(scope="module")
def tissue_data():
    d = np.load(real_data_path("tissue_cerebellum_vs_hippocampus"), allow_pickle=False)
    return d["X"].astype(np.float64), d["y"]


@pytest.mark.slow
def test_pipeline_gridsearch_tissue(tissue_data):
    X, y = tissue_data
    assert X.shape == (69, 500)
    pipe = Pipeline([("filter", VarianceThreshold(0.0)), ("scale", StandardScaler()),
                     ("lasso", LassoLogistic())])
    grid = GridSearchCV(pipe, {"lasso__lambda_value": [0.02, 0.1], "lasso__l1_ratio": [1.0, 0.5]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0), scoring="roc_auc")
    grid.fit(X, y)
    assert set(grid.best_params_) == {"lasso__lambda_value", "lasso__l1_ratio"}
    assert grid.best_score_ > 0.9  # cerebellum vs hippocampus separates easily
    best = grid.best_estimator_[-1]
    assert 0 < len(best.selected_features_) < X.shape[1]
    assert grid.predict(X).shape == (69,)

    cv = make_pipeline(StandardScaler(), LassoLogisticCV(nfolds=5)).fit(X, y)
    est = cv[-1]
    assert est.lambda_ == est.cv_result_.lambda_1se
    assert cv.score(X, y) > 0.9


def test_bad_X_is_named(data):
    X, y = data
    est = LassoLogisticCV(n_lambdas=8).fit(X, y)
    ragged = [list(r) for r in X[:5]] + [list(X[5, :2])]
    with pytest.raises(ValueError, match=r"X is not a rectangular matrix"):
        est.predict(ragged)
    with pytest.raises(ValueError, match=r"X is not a rectangular matrix"):
        LassoLogistic().fit(ragged, y[:6])
    with pytest.raises(ValueError, match=r"X must be real-valued \(Complex data not supported\)"):
        est.predict_proba(X + 1j)
    Xn = np.array(X, dtype=float)
    Xn[2, 1] = np.nan
    for method in (est.predict_proba, est.predict, est.decision_function):
        with pytest.raises(ValueError, match=r"Input X contains NaN"):
            method(Xn)
    with pytest.raises(ValueError, match=r"smaller than 1e-150 in magnitude"):
        LassoLogisticCV(n_lambdas=8).fit(np.asarray(X) * 1e-300, y)
