"""Numerics at the edges and property tests (hypothesis) of the path and CV."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxlasso

pytestmark = pytest.mark.filterwarnings("ignore::jaxlasso.FewObservationsWarning")


# --- edges -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_separable_data_stop_and_say_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = (X[:, 0] > 0).astype(float)
    fit = jaxlasso.logistic_path(X, y)
    assert fit.early_stopped and fit.deviance_ratio[-1] > 0.999
    assert fit.stop_reason.startswith("saturated") and "separable" in fit.stop_reason
    # Explicit lambdas go on (as glmnet); the solver still converges with finite coefficients.
    deep = jaxlasso.logistic_path(X, y, lambdas=np.geomspace(fit.lambdas[0], fit.lambdas[0] * 1e-6, 40))
    assert np.all(deep.converged) and np.all(np.isfinite(deep.coef))
    assert deep.stop_reason == ""


def test_single_informative_gene_enters_first():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 30))
    y = (X[:, 7] + 0.3 * rng.normal(size=60) > 0).astype(float)
    fit = jaxlasso.logistic_path(X, y)
    first = np.nonzero(fit.n_nonzero > 0)[0][0]
    assert list(np.nonzero(fit.coef[first])[0]) == [7]


@pytest.mark.slow
def test_tiny_problems():
    rng = np.random.default_rng(2)
    X1 = rng.normal(size=(30, 1))
    y1 = (X1[:, 0] + rng.normal(size=30) > 0).astype(float)
    fit = jaxlasso.logistic_path(X1, y1)
    assert fit.coef.shape[1] == 1 and fit.coef[-1, 0] > 0 and np.all(fit.converged)
    X4 = rng.normal(size=(4, 10))
    with pytest.warns(jaxlasso.FewObservationsWarning):
        fit4 = jaxlasso.logistic_path(X4, np.array([0, 1, 0, 1.0]))
    assert np.all(np.isfinite(fit4.coef)) and np.all(fit4.converged)


@pytest.mark.slow
def test_all_zero_columns_and_extreme_scales():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 6)) * np.array([1e-100, 1e-10, 1.0, 1e10, 1e100, 1e120])
    X = np.column_stack([X, np.zeros(30)])
    y = (rng.uniform(size=30) < 0.5).astype(float)
    y[:2] = [0, 1]
    fit = jaxlasso.logistic_path(X, y)
    assert np.all(fit.converged) and np.all(np.isfinite(fit.coef))
    assert fit.excluded[6] and np.all(fit.coef[:, 6] == 0)
    # Standardisation makes the scale irrelevant: same standardised path as unit-scale columns.
    ref = jaxlasso.logistic_path(X[:, :6] / X[:, :6].std(axis=0), y, lambdas=fit.lambdas)
    np.testing.assert_allclose(fit.coef[:, :6] * fit.x_scale[:6], ref.coef * ref.x_scale, atol=1e-8)


@pytest.mark.parametrize("scale", [1e-300, 1e-320, 1e300])
def test_weights_of_any_scale(scale):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 8))
    y = (X[:, 0] + rng.normal(size=30) > 0).astype(float)
    ref = jaxlasso.logistic_path(X, y)
    fit = jaxlasso.logistic_path(X, y, sample_weight=np.full(30, scale))
    np.testing.assert_allclose(fit.coef, ref.coef, atol=1e-10)
    assert fit.null_deviance == pytest.approx(ref.null_deviance * scale, rel=1e-9)


def test_oversize_job_is_refused_with_the_estimate():
    from jaxlasso._engine import configure

    X = np.random.default_rng(5).normal(size=(50, 2000))
    y = np.r_[np.zeros(25), np.ones(25)]
    with configure(max_memory="1M"), pytest.raises(ValueError, match=r"needs about .* GiB .*JAXLASSO_MAX_MEMORY.*estimate="):
        jaxlasso.logistic_path(X, y)


# --- properties --------------------------------------------------------------------------------
@st.composite
def problems(draw):
    # A few shapes, many data: each new (n, p) compiles its own programs, which would be most of
    # these tests' time; the properties concern the data, not the shape.
    n = draw(st.sampled_from([12, 19, 28]))
    p = draw(st.sampled_from([2, 5, 10]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 5, size=p) + rng.uniform(-3, 3, size=p)
    beta = rng.normal(size=p) * (rng.uniform(size=p) < 0.5)
    eta = (X - X.mean(0)) / X.std(0) @ beta
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    y[:3], y[3:6] = 0.0, 1.0  # both classes, at least 3 each
    l1 = draw(st.sampled_from([1.0, 0.5]))
    return X, y, l1, rng


PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                 derandomize=True)


def _fit(X, y, l1, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        return jaxlasso.logistic_path(X, y, l1_ratio=l1, n_lambdas=12, tol=1e-10, **kw)


@pytest.mark.slow
@PROPS
@given(problems())
def test_property_optimal_and_kkt(prob):
    X, y, l1, rng = prob
    fit = _fit(X, y, l1)
    assert np.all(fit.kkt_gap <= 1e-10)
    for m in (len(fit.lambdas) // 2, len(fit.lambdas) - 1):
        base = jaxlasso.logistic_objective(X, y, fit.coef[m], fit.intercept[m], fit.lambdas[m], l1_ratio=l1)[0]
        for _ in range(10):
            pert = fit.coef[m] + rng.normal(scale=1e-3, size=X.shape[1])
            val = jaxlasso.logistic_objective(X, y, pert, fit.intercept[m] + rng.normal(scale=1e-3),
                                              fit.lambdas[m], l1_ratio=l1)[0]
            assert val >= base - 1e-12


@pytest.mark.slow
@PROPS
@given(problems())
def test_property_invariances(prob):
    X, y, l1, rng = prob
    fit = _fit(X, y, l1)
    rows = rng.permutation(len(y))
    cols = rng.permutation(X.shape[1])
    scale = np.exp(rng.uniform(-2, 2, X.shape[1]))
    np.testing.assert_allclose(_fit(X[rows], y[rows], l1, lambdas=fit.lambdas).coef, fit.coef, atol=1e-7)
    np.testing.assert_allclose(_fit(X[:, cols], y, l1, lambdas=fit.lambdas).coef, fit.coef[:, cols], atol=1e-7)
    np.testing.assert_allclose(_fit(X * scale, y, l1, lambdas=fit.lambdas).coef * scale, fit.coef, atol=1e-7)
    dup = rng.integers(0, len(y), size=4)
    w = np.ones(len(y))
    np.add.at(w, dup, 1.0)
    Xd, yd = np.vstack([X, X[dup]]), np.r_[y, y[dup]]
    np.testing.assert_allclose(_fit(Xd, yd, l1, lambdas=fit.lambdas).coef,
                               _fit(X, y, l1, sample_weight=w, lambdas=fit.lambdas).coef, atol=1e-7)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(problems())
def test_property_cv_independent_of_sample_order(prob):
    X, y, l1, rng = prob
    foldid = np.arange(len(y)) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        a = jaxlasso.cv_logistic_path(X, y, foldid=foldid, l1_ratio=l1, n_lambdas=12, tol=1e-10)
        perm = rng.permutation(len(y))
        b = jaxlasso.cv_logistic_path(X[perm], y[perm], foldid=foldid[perm], l1_ratio=l1, n_lambdas=12, tol=1e-10)
    np.testing.assert_allclose(a.cv_mean, b.cv_mean, rtol=1e-7)
    np.testing.assert_allclose(a.cv_sd, b.cv_sd, rtol=1e-6, atol=1e-12)
    assert (a.index_min, a.index_1se) == (b.index_min, b.index_1se)


@pytest.mark.parametrize("scale", [1e-140, 1e-100, 1e100, 1e140])
def test_column_scale_does_not_change_a_standardised_fit(scale):
    # Down to the smallest scale check_X accepts (1e-150), the spread of a column is measured
    # exactly and the coefficients scale back: coef(X * s) = coef(X) / s.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(float)
    ref = jaxlasso.logistic_path(X, y, n_lambdas=10)
    fit = jaxlasso.logistic_path(X * scale, y, lambdas=ref.lambdas)
    np.testing.assert_allclose(fit.coef * scale, ref.coef, atol=1e-12, rtol=1e-9)
    np.testing.assert_allclose(fit.intercept, ref.intercept, atol=1e-12)
