"""The Gaussian family against R glmnet 4.1.6 (family = "gaussian") and its own contracts.

Goldens: tests/golden/gaussian_*.json, made by tests/golden/make_golden_gaussian.py from the
cases of tests/gaussian_cases.py (synthetic n = 100, p = 5,000 and glmnet's QuickStartExample).
Bars as for binomial: objective <= glmnet's (thresh 1e-12) x (1 + 1e-6) at every lambda, the same
nonzero set at >= 90% of the lambdas, glmnet's lambda grid, dev.ratio and nulldev; cv.glmnet's
cvm / cvsd within 1e-3 relative and the same lambda.min / lambda.1se given ``foldid``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import jaxlasso
from gaussian_cases import CV_CASES, GOLDEN, PATH_CASES, case_data, case_inputs, synthetic_regression
from helpers import OBJ_RTOL, SUPPORT_MIN, check_case_data, dense_from_sparse, support_agreement

CV_RTOL = 1e-3
FAST = ("gaussian_quickstart_lasso", "gaussian_quickstart_cv_mse")


def _params(cases):
    return [pytest.param(n, id=n, marks=() if n in FAST else pytest.mark.slow) for n in cases]


def _gold(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def check_gaussian_path(X, y, kw, lambdas, r_coef, r_intercept):
    fit = jaxlasso.gaussian_path(X, y, lambdas=lambdas, tol=1e-9, **kw)
    assert len(fit.lambdas) == len(lambdas)
    obj_kw = {k: kw[k] for k in ("l1_ratio", "sample_weight", "penalty_factor", "standardize", "fit_intercept")
              if k in kw}
    ours = jaxlasso.gaussian_objective(X, y, fit.coef, fit.intercept, fit.lambdas, **obj_kw)
    theirs = jaxlasso.gaussian_objective(X, y, r_coef, r_intercept, lambdas, **obj_kw)
    worst = np.max((ours - theirs) / np.abs(theirs))
    assert worst <= OBJ_RTOL, f"objective above glmnet's by {worst:.3g} (relative)"
    agree = support_agreement(fit.coef, r_coef)
    assert agree >= SUPPORT_MIN, f"supports agree at only {agree:.0%} of lambdas"
    assert np.all(fit.kkt_gap <= fit.tol)
    return fit


@pytest.mark.parametrize("name", _params(PATH_CASES))
def test_gaussian_path_matches_glmnet_golden(name):
    case, gold = PATH_CASES[name], _gold(name)
    X, y = case_data(case["data"])
    check_case_data(X, y, gold)
    kw = case_inputs(case, X)
    lambdas = np.asarray(gold["lambdas"])
    r_coef = dense_from_sparse(gold["coef"], len(lambdas), X.shape[1])
    fit = check_gaussian_path(X, y, kw, lambdas, r_coef, np.asarray(gold["intercept"]))
    assert fit.family == "gaussian" and fit.classes is None
    np.testing.assert_allclose(fit.deviance_ratio, gold["dev_ratio"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fit.null_deviance, gold["nulldev"], rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PATH_CASES))
def test_gaussian_kept_gram_keeps_glmnet_parity(name, kernel_settings):
    # The Newton model's Gram kept across steps and lambdas on every working set (normally only
    # where n >= 3k and k >= 256). The Gaussian family's weights never change, so the kept Gram
    # is only ever extended by the rows of entering features.
    # Its rows in float32, as on the working sets that keep it by default (256+ slots).
    kernel_settings(**{"solver._GRAM_CACHE_MIN": 1, "solver._GRAM_CACHE_ROWS": 0, "solver._F32_GRAM_MIN": 1})
    case, gold = PATH_CASES[name], _gold(name)
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    lambdas = np.asarray(gold["lambdas"])
    r_coef = dense_from_sparse(gold["coef"], len(lambdas), X.shape[1])
    check_gaussian_path(X, y, kw, lambdas, r_coef, np.asarray(gold["intercept"]))


@pytest.mark.parametrize("name", _params(PATH_CASES))
def test_gaussian_default_grid_and_early_stop_match_glmnet(name):
    case, gold = PATH_CASES[name], _gold(name)
    X, y = case_data(case["data"])
    fit = jaxlasso.gaussian_path(X, y, **case_inputs(case, X))
    # glmnet's grid on the original scale of y (lambda_max from the standardised response, with
    # the unpenalised features fitted first), cut by elnet's relative fdev rule where glmnet
    # solved to thresh 1e-12 cuts it.
    assert len(fit.lambdas) == gold["default_path_length_thresh_1e-12"]
    # (glmnet's default thresh 1e-7 may stop a lambda earlier or later: compare the common part.)
    L = min(len(fit.lambdas), len(gold["default_lambdas"]))
    np.testing.assert_allclose(fit.lambdas[:L], gold["default_lambdas"][:L], rtol=1e-9)


@pytest.mark.parametrize("name", _params(CV_CASES))
def test_gaussian_cv_matches_glmnet_golden(name):
    case, gold = CV_CASES[name], _gold(name)
    X, y = case_data(case["data"])
    check_case_data(X, y, gold)
    cv = jaxlasso.cv_gaussian_path(X, y, lambdas=np.asarray(gold["lambdas"]), foldid=np.asarray(gold["foldid"]),
                                   measure=case["measure"], tol=1e-9, **case_inputs(case, X))
    np.testing.assert_allclose(cv.cv_mean, gold["cvm"], rtol=CV_RTOL)
    np.testing.assert_allclose(cv.cv_sd, gold["cvsd"], rtol=CV_RTOL)
    assert (cv.index_min, cv.index_1se) == (gold["index_min"], gold["index_1se"])
    # (At lambda_max itself glmnet's full fit may hold one coefficient of rounding size.)
    np.testing.assert_array_equal(cv.n_nonzero[1:], gold["nzero"][1:])


def test_response_scale_is_glmnets_convention():
    # glmnet solves on the standardised y: scaling y scales lambdas, coefficients and intercept
    # and leaves the deviance ratio and the support unchanged (tol means the same on any scale).
    X, y = synthetic_regression(40, 60, seed=3)
    a = jaxlasso.gaussian_path(X, y, n_lambdas=20)
    b = jaxlasso.gaussian_path(X, 1e4 * y - 7.0, n_lambdas=20)
    np.testing.assert_allclose(b.lambdas, 1e4 * a.lambdas, rtol=1e-12)
    np.testing.assert_allclose(b.coef, 1e4 * a.coef, rtol=1e-6, atol=1e-9 * np.abs(b.coef).max())
    np.testing.assert_allclose(b.intercept, 1e4 * a.intercept - 7.0, rtol=1e-9)
    np.testing.assert_allclose(b.deviance_ratio, a.deviance_ratio, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(b.coef != 0, a.coef != 0)
    # predict is the fitted outcome (link = response); decision_function the same numbers.
    np.testing.assert_allclose(b.predict(X), X @ b.coef.T + b.intercept)
    with pytest.raises(AttributeError, match="predict_proba is for binomial fits"):
        b.predict_proba(X)


def test_gaussian_cv_result_fields_and_predict():
    X, y = synthetic_regression(50, 80, seed=4)
    cv = jaxlasso.cv_gaussian_path(X, y, nfolds=5, keep=True, n_lambdas=30)
    assert cv.measure == "mse" and cv.path.family == "gaussian"
    assert cv.prevalidated.shape == (50, len(cv.lambdas))
    # The held-out predictions are on y's scale: their MSE per lambda is the grouped cvm's scale.
    assert np.isclose(np.mean((y - cv.prevalidated[:, 0]) ** 2), cv.cv_mean[0], rtol=0.2)
    b0, coef = cv.coef("lambda.min")
    np.testing.assert_allclose(cv.predict(X, "lambda.min"), X @ coef + b0)
    assert cv.index_1se <= cv.index_min


@pytest.mark.parametrize("bad, message", [
    (np.full(30, 2.5), "y is constant within the weighted samples"),
    (np.r_[np.nan, np.ones(29)], "y has 1 missing or infinite value"),
    (np.array(["a"] * 30), "y must be numeric for family='gaussian'"),
])
def test_gaussian_bad_response_is_a_clear_error(bad, message):
    X = np.random.default_rng(0).normal(size=(30, 5))
    with pytest.raises((ValueError, TypeError), match=message):
        jaxlasso.gaussian_path(X, bad)


def test_gaussian_measures_are_glmnets():
    X, y = synthetic_regression(30, 10, seed=5)
    with pytest.raises(ValueError, match="measure must be one of mse, mae, deviance for family='gaussian'"):
        jaxlasso.cv_gaussian_path(X, y, measure="auc")
    with pytest.raises(ValueError, match="family must be one of"):
        jaxlasso.fit_path(X, y, family="poisson")
    # "deviance" is the mean squared error, as in cv.glmnet.
    fid = np.resize(np.arange(5), 30)
    a = jaxlasso.cv_gaussian_path(X, y, foldid=fid, measure="deviance", n_lambdas=10)
    b = jaxlasso.cv_gaussian_path(X, y, foldid=fid, measure="mse", n_lambdas=10)
    np.testing.assert_array_equal(a.cv_mean, b.cv_mean)


@pytest.mark.r
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gaussian_live_glmnet_enet_weights(fit_intercept):
    from jaxlasso import rglmnet

    X, y = synthetic_regression(70, 300, seed=9)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.3, 2.0, len(y))
    kw = dict(l1_ratio=0.8, sample_weight=w, fit_intercept=fit_intercept)
    args = dict(family="gaussian", alpha=0.8, weights=w, intercept=fit_intercept, thresh=1e-12)
    r = rglmnet.run_glmnet(X, y, exact_path=True, **args)
    fit = check_gaussian_path(X, y, kw, r.lambdas, r.coef, r.intercept)
    np.testing.assert_allclose(fit.deviance_ratio, r.dev_ratio, rtol=1e-5, atol=1e-7)
    default = jaxlasso.gaussian_path(X, y, **kw)
    np.testing.assert_allclose(default.lambdas[0], r.lambdas[0], rtol=1e-9)
    foldid = rng.permutation(np.resize(np.arange(1, 8), len(y)))
    # cv.glmnet standardises y per fold, which with l1_ratio < 1 scales each fold's ridge term by
    # that fold's SD of y (the family's ridge_scale reproduces it). cv.glmnet at thresh 1e-15, as
    # the CV goldens.
    rc = rglmnet.run_glmnet(X, y, task="cv", lambdas=r.lambdas, foldid=foldid, type_measure="mae",
                            **{**args, "thresh": 1e-15})
    cv = jaxlasso.cv_gaussian_path(X, y, lambdas=r.lambdas, foldid=foldid, measure="mae", tol=1e-9, **kw)
    np.testing.assert_allclose(cv.cv_mean, rc.cvm, rtol=CV_RTOL)
    np.testing.assert_allclose(cv.cv_sd, rc.cvsd, rtol=CV_RTOL)
    assert (cv.index_min, cv.index_1se) == (rc.index_min, rc.index_1se)


# --- scikit-learn regressors ----------------------------------------------------------------

def _regressor_xfails(estimator):
    from jaxlasso.estimator import LassoRegressionCV

    if not isinstance(estimator, LassoRegressionCV):
        return {}
    reason = ("the internal CV deals folds per row (there is no `cv` parameter for the check to pin "
              "the splits with), so a row of weight 3 and three copies of it land in different "
              "folds and the chosen lambda differs")
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


def _sklearn_checks():
    from sklearn.utils.estimator_checks import parametrize_with_checks

    from jaxlasso.estimator import LassoRegression, LassoRegressionCV

    return parametrize_with_checks([LassoRegression(), LassoRegressionCV()],
                                   expected_failed_checks=_regressor_xfails)


# scikit-learn's checks use tiny data: cv.glmnet's ungrouped-SE warning (< 3 samples per fold) is
# expected there.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::jaxlasso.FewObservationsWarning")
@_sklearn_checks()
def test_regressors_sklearn_compatible(estimator, check):
    check(estimator)


def test_regressors_agree_with_the_functional_api():
    from jaxlasso.estimator import LassoRegression, LassoRegressionCV

    X, y = synthetic_regression(50, 80, seed=4)
    fid = np.resize(np.arange(5), 50)
    est = LassoRegressionCV(foldid=fid, n_lambdas=30).fit(X, y)
    cv = jaxlasso.cv_gaussian_path(X, y, foldid=fid, n_lambdas=30)
    b0, coef = cv.coef("lambda.1se")
    np.testing.assert_array_equal(est.coef_, coef)
    assert est.intercept_ == b0 and est.lambda_ == cv.lambda_1se
    np.testing.assert_allclose(est.predict(X), X @ coef + b0)
    one = LassoRegression(lambda_value=cv.lambda_min).fit(X, y)
    np.testing.assert_allclose(one.coef_, cv.coef("lambda.min")[1], rtol=1e-5, atol=1e-8 * np.abs(y).max())
    assert 0.0 < one.score(X, y) <= 1.0
