"""The Cox (survival) family: the datafit against autodiff and survival::coxph, the host checks,
glmnet's CV measures, and (further down) the path and CV against R glmnet(family = "cox")."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kernels import cox
from jaxlasso import rglmnet
from jaxlasso.metrics import cox_cv_statistics, resolve_cox_grouped, select_lambdas
from jaxlasso.survival import (check_events, check_survival, concordance, cox_layout, cox_loglik,
                               coxnet_deviance)
from jaxlasso.exceptions import FewObservationsWarning

from helpers import survival_data


def _layout(time, event):
    return jax.tree.map(jnp.asarray, cox_layout(time, event))


@pytest.fixture(scope="module")
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    n = 40
    time = rng.integers(1, 10, n).astype(float)
    event = (rng.random(n) < 0.6).astype(float)
    w = rng.uniform(0.2, 2.0, n)
    w[[3, 7]] = 0.0
    eta = rng.normal(size=n)
    return time, event, w, eta


# --- the datafit ----------------------------------------------------------------------------

@pytest.mark.parametrize("ties", cox.TIES)
def test_gradient_and_hessian_diagonal_match_autodiff(x64, small, ties):
    time, event, w, eta = small
    lay = _layout(time, event)
    f = lambda e: cox.loss(e, lay, jnp.asarray(w), ties)  # noqa: E731
    e = jnp.asarray(eta)
    np.testing.assert_allclose(cox.residual(e, lay, jnp.asarray(w), ties), jax.grad(f)(e), atol=1e-14)
    np.testing.assert_allclose(cox.irls_weights(e, lay, jnp.asarray(w), ties), jnp.diagonal(jax.hessian(f)(e)),
                               atol=1e-14)


@pytest.mark.parametrize("ties", cox.TIES)
def test_loss_change_is_accurate_for_tiny_steps(x64, small, ties):
    """``loss(eta + delta) - loss(eta)`` keeps its relative accuracy where the difference of two
    losses has none (delta ~ 1e-11: the naive difference is off by ~1e-5 relative)."""
    time, event, w, eta = small
    lay = _layout(time, event)
    e, ww = jnp.asarray(eta), jnp.asarray(w)
    delta = 1e-11 * np.random.default_rng(1).normal(size=eta.shape)
    g = cox.residual(e, lay, ww, ties)
    H = jax.hessian(lambda v: cox.loss(v, lay, ww, ties))(e)
    expected = float(g @ delta + 0.5 * delta @ H @ delta)
    got = float(cox.loss_change(e, jnp.asarray(delta), lay, ww, ties))
    assert abs(got - expected) <= 1e-9 * abs(expected)
    big = 0.3 * np.random.default_rng(2).normal(size=eta.shape)
    np.testing.assert_allclose(cox.loss_change(e, jnp.asarray(big), lay, ww, ties),
                               cox.loss(e + big, lay, ww, ties) - cox.loss(e, lay, ww, ties), rtol=1e-12)


@pytest.mark.parametrize("ties", cox.TIES)
def test_shift_invariance_and_no_overflow(x64, small, ties):
    time, event, w, eta = small
    lay = _layout(time, event)
    ww = jnp.asarray(w)
    base = cox.loss(jnp.asarray(eta), lay, ww, ties)
    for shift in (1000.0, -1000.0):
        np.testing.assert_allclose(cox.loss(jnp.asarray(eta + shift), lay, ww, ties), base, rtol=1e-12)
        g = cox.residual(jnp.asarray(eta + shift), lay, ww, ties)
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("ties", cox.TIES)
def test_zero_weight_is_a_dropped_row(x64, small, ties):
    time, event, w, eta = small
    keep = w > 0
    full = cox.loss(jnp.asarray(eta), _layout(time, event), jnp.asarray(w), ties)
    dropped = cox.loss(jnp.asarray(eta[keep]), _layout(time[keep], event[keep]), jnp.asarray(w[keep]), ties)
    np.testing.assert_allclose(full, dropped, rtol=1e-13)
    g = cox.residual(jnp.asarray(eta), _layout(time, event), jnp.asarray(w), ties)
    assert np.all(np.asarray(g)[~keep] == 0)


def test_efron_equals_breslow_without_tied_events(x64):
    rng = np.random.default_rng(5)
    n = 30
    time = rng.permutation(n).astype(float) + 1.0
    time[:5] = time[5]  # ties, but between censored rows and at most one event
    event = np.ones(n)
    event[:5] = 0.0
    w, eta = rng.uniform(0.5, 2, n), rng.normal(size=n)
    lay = _layout(time, event)
    np.testing.assert_allclose(cox.loss(jnp.asarray(eta), lay, jnp.asarray(w), "efron"),
                               cox.loss(jnp.asarray(eta), lay, jnp.asarray(w), "breslow"), rtol=1e-14)


def test_kernel_loss_matches_host_loglik(x64, small):
    """The jnp datafit and the numpy log-likelihood the CV measures use are independent codes."""
    time, event, w, eta = small
    E = np.random.default_rng(3).normal(size=(len(time), 4))
    host = cox_loglik(E, time, event, w)
    lay = _layout(time, event)
    kern = [-float(cox.loss(jnp.asarray(E[:, j]), lay, jnp.asarray(w))) for j in range(4)]
    np.testing.assert_allclose(host, kern, rtol=1e-13)


def test_censored_row_tied_with_an_event_is_at_risk(x64):
    """A row censored at the time of an event is in that event's risk set (coxph, glmnet)."""
    time = np.array([2.0, 2.0, 3.0])
    event = np.array([0.0, 1.0, 1.0])
    eta = np.array([0.5, -0.2, 0.1])
    got = -float(cox.loss(jnp.asarray(eta), _layout(time, event), jnp.ones(3)))
    want = (eta[1] - np.log(np.exp(eta).sum())) + (eta[2] - eta[2])
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_deviance_is_glmnets(x64, small):
    time, event, w, eta = small
    lay = _layout(time, event)
    wn = w / w.sum()
    # glmnet rescales weights to sum to n; deviance scales with the weights' total.
    np.testing.assert_allclose(float(cox.deviance(jnp.asarray(eta), lay, jnp.asarray(wn))) * len(w),
                               coxnet_deviance(eta, time, event, w), rtol=1e-12)


def _newton_fit(X, time, event, w, ties):
    lay = _layout(time, event)
    f = jax.jit(lambda b: cox.loss(jnp.asarray(X) @ b, lay, jnp.asarray(w), ties))
    b = jnp.zeros(X.shape[1])
    for _ in range(25):
        b = b - jnp.linalg.solve(jax.hessian(f)(b), jax.grad(f)(b))
    return np.asarray(b), -float(f(b)), -float(f(jnp.zeros_like(b)))


@pytest.mark.r
@pytest.mark.parametrize("ties", cox.TIES)
def test_unpenalised_fit_matches_coxph(x64, ties):
    """lambda = 0 on n = 200, p = 5 with tied times and weights: the datafit's minimiser and
    log partial likelihood are survival::coxph's (Breslow, and Efron with coxph's weighting)."""
    X, time, event = survival_data(200, 5, seed=1, grid=8.0)
    assert len(np.unique(time[event == 1])) < event.sum() / 2  # many tied events
    w = np.random.default_rng(9).uniform(0.5, 2.0, 200)
    b, ll, ll0 = _newton_fit(X, time, event, w, ties)
    r = rglmnet.run_coxnet(X, time, event, task="coxph", ties=ties, weights=w)
    np.testing.assert_allclose(b, r.coef[0], atol=1e-9)
    np.testing.assert_allclose([ll0, ll], r.extra["loglik"], rtol=1e-12)


# --- input checks ---------------------------------------------------------------------------

def test_check_survival_accepts_bool_and_01():
    s = check_survival([1.0, 2.0, 0.0], [True, False, True], 3)
    np.testing.assert_array_equal(s.event, [1.0, 0.0, 1.0])
    s = check_survival(np.array([3, 1, 2]), np.array([1, 0, 1]))
    assert s.time.dtype == np.float64


@pytest.mark.parametrize("time, event, n, match", [
    ([1.0, -2.0, 3.0], [1, 0, 1], 3, r"time must be >= 0 .*got negative times \[-2.0\] at rows \[1\]"),
    ([1.0, np.nan, 3.0], [1, 0, 1], 3, r"time has 1 missing \(NaN\).*rows \[1\]"),
    ([1.0, np.inf, 3.0], [1, 0, 1], 3, r"time must be finite.*Inf at rows \[1\]"),
    ([1.0, 2.0, 3.0], [1, 2, 1], 3, r"event must be 0 \(censored\) or 1 \(event\), or bool \(got values \[2\]\)"),
    ([1.0, 2.0, 3.0], [1, np.nan, 1], 3, r"event has 1 missing"),
    ([1.0, 2.0, 3.0], [1, 0], 3, r"X and event have different numbers of samples.*len\(event\)=2"),
    ([1.0, 2.0], [1, 0], 3, r"X and time have different numbers.*n_rows\(X\)=3, len\(time\)=2"),
    ([1.0, 2.0, 3.0], [1, 0], None, r"time and event have different lengths"),
    (["a", "b"], [1, 0], None, r"time must be numeric"),
])
def test_check_survival_errors_name_the_input(time, event, n, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_survival(time, event, n)


def test_all_censored_is_an_error():
    s = check_survival([1.0, 2.0, 3.0], [0, 0, 1])
    with pytest.raises(ValueError, match=r"no sample with positive weight has an event.*sum\(event\)=0"):
        check_events(s, np.array([1.0, 1.0, 0.0]))
    check_events(s, np.ones(3))


# --- CV measures: cv.glmnet(family = "cox") --------------------------------------------------

@pytest.mark.r
def test_deviance_and_cindex_match_r():
    rng = np.random.default_rng(2)
    n = 60
    time = np.ceil(rng.exponential(2, n) * 4) / 4 + 0.25
    event = (rng.random(n) < 0.6).astype(float)
    w = rng.uniform(0.5, 2, n)
    w[:3] = 0
    P = rng.normal(size=(n, 3))
    P[:, 2] = np.round(P[:, 2])  # tied predictions count one half
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        np.savetxt(Path(d) / "a.txt", np.column_stack([time, event, w, P]))
        script = f"""suppressMessages(library(glmnet)); a <- as.matrix(read.table('{d}/a.txt'))
        y <- cbind(time = a[, 1], status = a[, 2]); w <- a[, 3]; P <- a[, 4:6]
        out <- c(coxnet.deviance(pred = P, y = y, weights = w), coxnet.deviance(pred = P, y = y),
                 sapply(1:3, function(j) Cindex(P[, j], y, w)), sapply(1:3, function(j) Cindex(P[, j], y)))
        cat(sprintf('%.17g', out))"""
        res = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    r = np.array(res.stdout.split(), float).reshape(4, 3)
    np.testing.assert_allclose(coxnet_deviance(P, time, event, w), r[0], rtol=1e-13)
    np.testing.assert_allclose(coxnet_deviance(P, time, event, np.ones(n)), r[1], rtol=1e-13)
    np.testing.assert_allclose(concordance(P, time, event, w), r[2], rtol=1e-13)
    np.testing.assert_allclose(concordance(P, time, event), r[3], rtol=1e-13)


@pytest.mark.r
@pytest.mark.parametrize("measure, grouped", [("deviance", True), ("deviance", False), ("C", True)])
def test_cv_measures_match_cv_glmnet_given_fold_fits(measure, grouped):
    """cv.glmnet's cvm, cvsd and lambda.min / lambda.1se from R's own fold fits: the measures
    alone, apart from any solver difference."""
    X, time, event = survival_data(120, 30, seed=3, grid=6.0)
    rng = np.random.default_rng(4)
    w = rng.uniform(0.5, 2, 120)
    foldid = rng.permutation(np.resize(np.arange(1, 7), 120))
    lam = rglmnet.run_coxnet(X, time, event, weights=w, thresh=1e-12).lambdas
    r = rglmnet.run_coxnet(X, time, event, task="cv", foldid=foldid, type_measure=measure, grouped=grouped,
                           weights=w, thresh=1e-12, fold_coef=True, lambdas=lam)
    eta = np.einsum("np,flp->fnl", X, r.extra["fold_coef"])[None]
    st = cox_cv_statistics(measure, grouped, time, event, w, (foldid - 1)[None], eta)
    np.testing.assert_allclose(st.cv_mean, r.cvm, rtol=1e-12)
    np.testing.assert_allclose(st.cv_sd, r.cvsd, rtol=1e-10)
    assert select_lambdas(r.lambdas, st.cv_mean, st.cv_sd, measure == "C") == (r.index_min, r.index_1se)


def test_ungrouped_needs_ten_per_fold():
    with pytest.warns(FewObservationsWarning, match="grouped=True enforced"):
        assert resolve_cox_grouped(50, 10, False) is True
    assert resolve_cox_grouped(100, 10, False) is False
