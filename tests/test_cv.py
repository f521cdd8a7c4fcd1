"""cv_logistic_path: API, glmnet's rules and guards, folds, repeats, vmap == loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jaxlasso
from helpers import synthetic
from jaxlasso.folds import make_foldid
from jaxlasso.metrics import select_lambdas, weighted_auc


@pytest.fixture(scope="module")
def data():
    # The shape of tests/test_path.py's data: the compiled executables are shared.
    return synthetic(50, 80, seed=11)


@pytest.fixture(scope="module")
def cvfit(data):
    X, y = data
    return jaxlasso.cv_logistic_path(X, y, nfolds=5, keep=True, seed=3)


def test_result_api(cvfit, data):
    X, y = data
    cv = cvfit
    L = len(cv.lambdas)
    assert cv.cv_mean.shape == cv.cv_sd.shape == (L,)
    assert cv.fold_scores.shape == (5, L)
    assert cv.foldid.shape == (1, 50)
    assert cv.prevalidated.shape == (50, L)
    assert cv.lambda_min <= cv.lambda_1se
    assert cv.lambda_min == cv.lambdas[cv.index_min]
    b0, coef = cv.coef("lambda.min")  # glmnet spelling accepted
    _, coef_min = cv.path.coef_at(cv.lambda_min)
    np.testing.assert_array_equal(coef, coef_min)
    proba = cv.predict_proba(X)
    assert proba.shape == (50,)
    labels = cv.predict(X, s="lambda_min")
    assert set(labels) <= {0, 1}
    np.testing.assert_array_equal(labels == 1, cv.predict_proba(X, s="lambda_min") > 0.5)
    frame = cv.to_frame()
    assert frame["is_lambda_min"].sum() == 1 and frame["is_lambda_1se"].sum() == 1
    assert cv.selected("lambda_min") == [f"x{j}" for j in np.nonzero(coef)[0]]
    with pytest.raises(ValueError, match="s must be"):
        cv.coef("lambda_best")


def test_lambda_rules_are_glmnets():
    lam = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    cvm = np.array([1.0, 0.74, 0.7, 0.7, 0.75])
    sd = np.array([0.1, 0.1, 0.05, 0.05, 0.1])
    i_min, i_1se = select_lambdas(lam, cvm, sd, larger_is_better=False)
    assert i_min == 2  # the largest lambda attaining the minimum (a tie at 3 and 2)
    assert i_1se == 1  # the largest lambda with cvm <= 0.7 + 0.05
    i_min, i_1se = select_lambdas(lam, -cvm, sd, larger_is_better=True)  # AUC-like
    assert (i_min, i_1se) == (2, 1)


def test_cv_equals_loop_of_paths_over_fold_weights(data):
    X, y = data
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=4, keep=True, seed=1, tol=1e-10)
    fid = cv.foldid[0]
    for f in range(4):
        w = (fid != f).astype(float)
        fit = jaxlasso.logistic_path(X, y, sample_weight=w, lambdas=cv.lambdas, tol=1e-10)
        held = fid == f
        np.testing.assert_allclose(cv.prevalidated[held], fit.predict_proba(X[held]), atol=1e-7)


@pytest.mark.slow
def test_vmap_mode_equals_map_mode(data):
    from jaxlasso._engine import configure

    X, y = data
    a = jaxlasso.cv_logistic_path(X, y, nfolds=4, seed=2, tol=1e-10)
    with configure(lane_mode="vmap"):
        b = jaxlasso.cv_logistic_path(X, y, nfolds=4, seed=2, tol=1e-10)
    np.testing.assert_allclose(a.cv_mean, b.cv_mean, rtol=1e-8)
    assert (a.index_min, a.index_1se) == (b.index_min, b.index_1se)


def test_stratified_folds_balance_classes_and_are_seeded():
    y = np.r_[np.ones(7), np.zeros(9)]
    w = np.ones(16)
    f1 = make_foldid(y, w, nfolds=7, stratified=True, n_repeats=2, seed=0)
    f2 = make_foldid(y, w, nfolds=7, stratified=True, n_repeats=2, seed=0)
    f3 = make_foldid(y, w, nfolds=7, stratified=True, n_repeats=2, seed=1)
    np.testing.assert_array_equal(f1, f2)
    assert not np.array_equal(f1, f3)
    assert not np.array_equal(f1[0], f1[1]), "repeats must differ"
    for r in range(2):
        for f in range(7):
            held = f1[r] == f
            assert y[held].sum() == 1, "each of the 7 folds holds exactly one of the 7 cases"
        sizes = np.bincount(f1[r])
        assert sizes.max() - sizes.min() <= 1


def test_glmnet_one_based_foldid_accepted(data):
    X, y = data
    fid = np.random.default_rng(0).permutation(np.resize(np.arange(1, 6), 50))
    a = jaxlasso.cv_logistic_path(X, y, foldid=fid)
    b = jaxlasso.cv_logistic_path(X, y, foldid=fid - 1)
    np.testing.assert_array_equal(a.foldid, b.foldid)
    np.testing.assert_allclose(a.cv_mean, b.cv_mean)


def test_repeated_cv_averages_curves(data):
    X, y = data
    rep = jaxlasso.cv_logistic_path(X, y, nfolds=5, n_repeats=3, seed=4, lambdas=np.geomspace(0.2, 0.01, 20))
    assert rep.fold_scores.shape == (15, 20)
    assert rep.foldid.shape == (3, 50)
    singles = []
    for r in range(3):
        one = jaxlasso.cv_logistic_path(X, y, foldid=rep.foldid[r], lambdas=rep.lambdas)
        singles.append(one)
    np.testing.assert_allclose(rep.cv_mean, np.mean([s.cv_mean for s in singles], axis=0), rtol=1e-9)
    np.testing.assert_allclose(rep.cv_sd, np.mean([s.cv_sd for s in singles], axis=0), rtol=1e-9)


def test_small_n_guards_fire_and_auc_pooled_works():
    X, y = synthetic(16, 300, seed=5)
    y = np.r_[np.ones(7), np.zeros(9)]
    with pytest.warns(jaxlasso.FewObservationsWarning) as record:
        cv = jaxlasso.cv_logistic_path(X, y, measure="auc", nfolds=7)
    messages = " | ".join(str(w.message) for w in record)
    assert "fewer than 8 observations" in messages
    assert "changed to measure='deviance'" in messages and "auc_pooled" in messages
    assert "grouped=False enforced" in messages
    assert cv.measure == "deviance" and not cv.grouped
    assert cv.fold_scores.shape == (16, len(cv.lambdas))  # per-observation raw values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        pooled = jaxlasso.cv_logistic_path(X, y, measure="auc_pooled", nfolds=7, keep=True)
    assert pooled.measure == "auc_pooled"
    expected = weighted_auc(y, pooled.prevalidated)
    np.testing.assert_allclose(pooled.cv_mean, expected)
    assert np.all(pooled.cv_sd[np.isfinite(pooled.cv_sd)] >= 0)


def test_default_nfolds_caps_at_smaller_class():
    X, _ = synthetic(16, 300, seed=6)
    y = np.r_[np.ones(7), np.zeros(9)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        cv = jaxlasso.cv_logistic_path(X, y)
    assert cv.nfolds == 7


def test_auc_is_weighted_concordance_with_half_ties():
    y = np.array([1, 1, 0, 0, 0.0])
    p = np.array([[0.9], [0.5], [0.5], [0.2], [0.95]])
    # pairs (case, control): (0.9 vs 0.5, 0.2, 0.95) -> 1+1+0; (0.5 vs 0.5, 0.2, 0.95) -> .5+1+0
    assert weighted_auc(y, p)[0] == pytest.approx(3.5 / 6)
    w = np.array([2.0, 1, 1, 1, 1])
    assert weighted_auc(y, p, w)[0] == pytest.approx((2 * 2 + 1.5) / (3 * 3))
