"""The Cox (survival) family: the datafit against autodiff and survival::coxph, the host checks,
glmnet's CV measures, and (further down) the path and CV against R glmnet(family = "cox")."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from kernels import cox
from jaxlasso import rglmnet
from jaxlasso.metrics import cox_cv_statistics, resolve_cox_grouped, select_lambdas
from jaxlasso.survival import (check_events, check_survival, concordance, cox_layout, cox_loglik,
                               coxnet_deviance)
from jaxlasso.exceptions import FewObservationsWarning

from helpers import (COX_CV_CASES, COX_PATH_CASES, OBJ_RTOL, SUPPORT_MIN, cox_case_data, cox_case_inputs,
                     cox_data_summary, cox_glmnet_args, dense_from_sparse, load_golden, support_agreement,
                     survival_data)
from jaxlasso.survival import cox_objective, cox_path, cv_cox_path


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


# --- the path and CV against R glmnet(family = "cox"): goldens and live R ---------------------
COX_FAST = ("cox_synthetic_enet_weights_pf_path", "cox_coxexample_cv_deviance")


def _params(cases):
    return [pytest.param(name, id=name, marks=() if name in COX_FAST else pytest.mark.slow) for name in cases]


def _check_data(X, time, event, gold):
    got, want = cox_data_summary(X, time, event), gold["data_summary"]
    assert got["shape"] == want["shape"] and got["y_digest"] == want["y_digest"]
    assert got["event_digest"] == want["event_digest"]
    for key in ("sum", "sum_sq", "vXu", "v2X2u2"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, err_msg="case data changed: regenerate")


def check_cox_path(X, time, event, kw, lambdas, r_coef):
    """Fit on glmnet's lambdas; objective <= glmnet's (thresh 1e-12) x (1 + 1e-6) at every lambda,
    same support at >= 90% of them, every lambda converged to tol."""
    fit = cox_path(X, time, event, lambdas=lambdas, tol=1e-9, **kw)
    assert len(fit.lambdas) == len(lambdas)
    okw = {k: kw[k] for k in ("l1_ratio", "sample_weight", "penalty_factor") if k in kw}
    ours = cox_objective(X, time, event, fit.coef, lambdas, **okw)
    theirs = cox_objective(X, time, event, r_coef, lambdas, **okw)
    worst = np.max((ours - theirs) / np.abs(theirs))
    assert worst <= OBJ_RTOL, f"objective above glmnet's by {worst:.3g} (relative)"
    agree = support_agreement(fit.coef, r_coef)
    assert agree >= SUPPORT_MIN, f"supports agree at only {agree:.0%} of lambdas"
    assert np.all(fit.kkt_gap <= fit.tol)
    assert np.all(fit.intercept == 0)
    return fit


@pytest.mark.parametrize("name", _params(COX_PATH_CASES))
def test_cox_path_matches_glmnet_golden(name):
    gold = load_golden(name)
    case = COX_PATH_CASES[name]
    X, time, event = cox_case_data(case["data"])
    _check_data(X, time, event, gold)
    kw = cox_case_inputs(case, *X.shape)
    lam = np.asarray(gold["lambdas"])
    fit = check_cox_path(X, time, event, {k: v for k, v in kw.items() if k != "lambda_min_ratio"}, lam,
                         dense_from_sparse(gold["coef"], len(lam), X.shape[1]))
    np.testing.assert_allclose(fit.deviance_ratio, gold["dev_ratio"], atol=1e-4)
    np.testing.assert_allclose(fit.null_deviance, gold["nulldev"], rtol=1e-12)
    # The default grid (glmnet's lambda_max and grid; glmnet's pf = 0 null fit is solved to its
    # default thresh only) and glmnet's Cox early stop.
    default = cox_path(X, time, event, **kw)
    assert len(default.lambdas) == gold["default_path_length"]
    np.testing.assert_allclose(default.lambdas, gold["default_lambdas"], rtol=1e-3 if "pf" in name else 1e-8)


@pytest.mark.parametrize("name", _params(COX_CV_CASES))
def test_cv_cox_matches_cv_glmnet_golden(name):
    """cv.glmnet's cvm within 1e-3 and the same lambda.min / lambda.1se given foldid."""
    gold = load_golden(name)
    case = COX_CV_CASES[name]
    X, time, event = cox_case_data(case["data"])
    _check_data(X, time, event, gold)
    kw = {k: v for k, v in cox_case_inputs(case, *X.shape).items() if k != "lambda_min_ratio"}
    cv = cv_cox_path(X, time, event, lambdas=gold["lambdas"], foldid=np.asarray(gold["foldid"]),
                     measure=case["measure"], grouped=gold["grouped"], tol=1e-9, **kw)
    np.testing.assert_allclose(cv.cv_mean, gold["cvm"], atol=1e-3)
    np.testing.assert_allclose(cv.cv_sd, gold["cvsd"], atol=1e-3)
    assert (cv.index_min, cv.index_1se) == (gold["index_min"], gold["index_1se"])
    assert cv.measure == case["measure"] and cv.grouped == gold["grouped"]


@pytest.mark.r
@pytest.mark.slow
def test_cox_path_and_cv_match_live_glmnet():
    """A case outside the goldens, run against the R installed here: weights, penalty factors and
    elastic net on a tall design with tied times."""
    X, time, event = survival_data(150, 40, seed=21, grid=3.0)
    rng = np.random.default_rng(22)
    kw = dict(l1_ratio=0.8, sample_weight=rng.uniform(0.5, 2.0, 150),
              penalty_factor=np.r_[0.0, rng.uniform(0.5, 2.0, 39)])
    r = rglmnet.run_coxnet(X, time, event, task="path", thresh=1e-12, exact_path=True, **cox_glmnet_args(kw))
    check_cox_path(X, time, event, kw, r.lambdas, r.coef)
    foldid = rng.permutation(np.resize(np.arange(1, 8), 150))
    rcv = rglmnet.run_coxnet(X, time, event, task="cv", lambdas=r.lambdas, thresh=1e-12, foldid=foldid,
                             **cox_glmnet_args(kw))
    cv = cv_cox_path(X, time, event, lambdas=r.lambdas, foldid=foldid, tol=1e-9, **kw)
    np.testing.assert_allclose(cv.cv_mean, rcv.cvm, atol=1e-3)
    assert (cv.index_min, cv.index_1se) == (rcv.index_min, rcv.index_1se)


def test_exact_gram_matches_autodiff(x64, small):
    time, event, w, eta = small
    XT = np.random.default_rng(6).normal(size=(6, len(time)))
    lay = _layout(time, event)
    for ties in cox.TIES:
        H = jax.hessian(lambda e: cox.loss(e, lay, jnp.asarray(w), ties))(jnp.asarray(eta))
        np.testing.assert_allclose(cox.gram(jnp.asarray(XT), jnp.asarray(eta), lay, jnp.asarray(w), ties),
                                   XT @ np.asarray(H) @ XT.T, atol=1e-13)


def test_padding_rows_change_nothing(x64, small):
    """The engine pads every response leaf with zeros and the rows with zero weight."""
    time, event, w, eta = small
    lay = cox_layout(time, event)
    pad = jax.tree.map(lambda a: jnp.asarray(np.pad(a, (0, 5))), lay)
    wp, ep = jnp.asarray(np.pad(w, (0, 5))), jnp.asarray(np.pad(eta, (0, 5)))
    fam = cox.COX_EFRON
    np.testing.assert_allclose(fam.loss(ep, pad, wp), fam.loss(jnp.asarray(eta), _layout(time, event), jnp.asarray(w)),
                               rtol=1e-14)
    g = fam.residual(ep, pad, wp)
    np.testing.assert_allclose(g[:-5], fam.residual(jnp.asarray(eta), _layout(time, event), jnp.asarray(w)),
                               atol=1e-15)
    assert np.all(np.asarray(g)[-5:] == 0)


def test_glmnet_cox_early_stop_rule():
    from jaxlasso.survival import glmnet_cox_length

    d = np.r_[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6002, 0.6003, 0.6004, 0.6005, 0.6006, 0.6007]
    # (d[m] - d[m - 4]) / d[m] < 1e-3 first at m = 10 (0.6005 vs 0.6), not at m = 8 (0.6003 vs 0.5);
    # the lambda that triggers the stop is kept
    assert glmnet_cox_length(d) == 11
    assert glmnet_cox_length(np.r_[0.0, 0.5, 0.8, 0.9, 0.995, 0.999]) == 5
    assert glmnet_cox_length(np.linspace(0, 0.5, 20)) == 20


def test_cox_path_errors_name_the_input():
    X, time, event = survival_data(30, 5, seed=2)
    with pytest.raises(ValueError, match=r"no sample with positive weight has an event"):
        cox_path(X, time, np.zeros(30))
    with pytest.raises(ValueError, match=r"ties must be one of breslow, efron \(got ties='exact'\)"):
        cox_path(X, time, event, ties="exact")
    with pytest.raises(ValueError, match=r"time must be >= 0"):
        cox_path(X, -time, event)
    with pytest.raises(ValueError, match=r"measure must be one of deviance, C"):
        cv_cox_path(X, time, event, measure="auc")
    with pytest.raises(ValueError, match=r"lambda_max=0"):
        cox_path(X, np.ones(30), np.ones(30))  # one risk set holding everyone: nothing to fit


def test_permutation_lanes_move_time_event_pairs_and_vmap_equals_loop():
    """Lanes with a batched response pytree (permuted (time, event) pairs) give the fits of the
    permuted data, in loop and vmap lanes alike."""
    from jaxlasso._engine import solve_lanes
    from jaxlasso.survival import CoxProblem, _cox_path_result

    X, time, event = survival_data(40, 12, seed=8, grid=3.0)
    perms = np.stack([np.random.default_rng(s).permutation(40) for s in range(3)])
    prob = CoxProblem(X, time, event, ties="efron", l1_ratio=1.0, lambdas=None, n_lambdas=12,
                      lambda_min_ratio=0.05, standardize=True, sample_weight=None, penalty_factor=None,
                      early_stop=False, tol=1e-9, max_iter=100, dtype=np.float64)
    lanes = prob.lanes(W=np.repeat(prob.w[None], 3, 0), Y=prob.permuted_responses(perms))
    looped = solve_lanes(prob, lanes, mode="loop")
    vmapped = solve_lanes(prob, lanes, mode="vmap")
    for b, perm in enumerate(perms):
        ref = cox_path(X, time[perm], event[perm], ties="efron", lambdas=prob.lambdas, tol=1e-9)
        for out in (looped, vmapped):
            got = _cox_path_result(prob, out, b, 0.0)
            np.testing.assert_allclose(got.coef, ref.coef, atol=1e-7)


def test_cox_estimators_follow_scikit_survival_conventions():
    from sklearn.base import clone

    import jaxlasso

    X, time, event = survival_data(60, 8, seed=4, grid=3.0)
    y = np.empty(60, dtype=[("event", bool), ("time", float)])
    y["event"], y["time"] = event == 1, time
    # Tighter than the default tolerance: the single-lambda fit below must reach the CV path's
    # solution to 1e-6 by another route (its own warm-start grid).
    est = jaxlasso.LassoCoxCV(nfolds=5, n_lambdas=20, ties="efron", tol=1e-8).fit(X, y)
    cv = cv_cox_path(X, time, event, nfolds=5, n_lambdas=20, ties="efron", tol=1e-8)
    np.testing.assert_allclose(est.coef_, cv.path.coef[cv.index_1se])
    np.testing.assert_allclose(est.predict(X), X @ est.coef_)
    assert est.score(X, y) == pytest.approx(concordance(X @ est.coef_, time, event))
    assert est.score(X, y) > 0.6
    single = jaxlasso.LassoCox(lambda_value=est.lambda_, ties="efron", tol=1e-8).fit(X, y)
    np.testing.assert_allclose(single.coef_, est.coef_, atol=1e-6)
    assert clone(single).get_params()["ties"] == "efron"
    # The selection is reported by name, as the other estimators do.
    assert list(est.selected_features_) == [f"x{j}" for j in np.flatnonzero(est.coef_)]
    named = jaxlasso.LassoCox(lambda_value=est.lambda_).fit(pd.DataFrame(X, columns=[f"g{j}" for j in range(8)]), y)
    assert list(named.selected_features_) == [f"g{j}" for j in np.flatnonzero(named.coef_)]
    with pytest.raises(ValueError, match=r"y must be a structured array with two fields"):
        jaxlasso.LassoCox().fit(X, time)
    bad = y.copy()
    bad["time"][0] = -1.0
    with pytest.raises(ValueError, match=r"y\['time'\] must be >= 0"):
        jaxlasso.LassoCox().fit(X, bad)


def test_cv_deviance_uses_the_weights_as_given():
    """cv.glmnet divides each fold's deviance (weights rescaled to sum to n) by the fold's
    weighted event count on the user's scale: tripling every weight divides cvm by 3 (the fits,
    hence C, are unchanged)."""
    X, time, event = survival_data(60, 6, seed=14, grid=3.0)
    w = np.random.default_rng(15).uniform(0.5, 2.0, 60)
    kw = dict(nfolds=5, n_lambdas=8, lambda_min_ratio=0.1)
    one = cv_cox_path(X, time, event, sample_weight=w, **kw)
    three = cv_cox_path(X, time, event, sample_weight=3 * w, **kw)
    np.testing.assert_allclose(three.cv_mean, one.cv_mean / 3, rtol=1e-9)


@pytest.mark.r
def test_efron_path_at_tiny_lambda_is_coxph_end_to_end():
    """cox_path(ties="efron") through the engine and solver reaches coxph's Efron fit."""
    X, time, event = survival_data(200, 5, seed=1, grid=8.0)
    w = np.random.default_rng(9).uniform(0.5, 2.0, 200)
    fit = cox_path(X, time, event, ties="efron", sample_weight=w, lambdas=[1e-10], tol=1e-12)
    r = rglmnet.run_coxnet(X, time, event, task="coxph", ties="efron", weights=w)
    np.testing.assert_allclose(fit.coef[0], r.coef[0], atol=1e-6)


def test_cox_results_record_the_family_and_predict_relative_risk():
    X, time, event = survival_data(40, 6, seed=16, grid=3.0)
    fit = cox_path(X, time, event, n_lambdas=5, lambda_min_ratio=0.1)
    assert fit.family == "cox" and fit.classes is None
    np.testing.assert_allclose(fit.predict(X), np.exp(X @ fit.coef.T))
    np.testing.assert_allclose(fit.decision_function(X), X @ fit.coef.T)
    assert len(fit.to_frame()) == len(fit.lambdas)


def test_float32_cox_path_is_accurate():
    X, time, event = survival_data(80, 300, seed=3)
    f64 = cox_path(X, time, event, n_lambdas=30)
    f32 = cox_path(X, time, event, lambdas=f64.lambdas, dtype=np.float32)
    o64 = cox_objective(X, time, event, f64.coef, f64.lambdas)
    o32 = cox_objective(X, time, event, f32.coef, f64.lambdas)
    assert np.max((o32 - o64) / np.abs(o64)) <= 1e-4
    assert f32.converged.all()
