"""The float32 KKT pass (``kernels.path.kkt_pass``): certified, so it finds exactly the violators
of the float64 pass, whichever of its branches (all cleared / exact rechecks / full float64
redo) runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import configure, design_arrays, precision_scope
from kernels import Problem, moments
from kernels.path import KKT_RECHECK, full_gradient, kkt_pass


def _setup(n, p, seed=0):
    rng = np.random.default_rng(seed)
    # Uncentred, unequally scaled columns: the float32 rounding of X and the mean shift matter.
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3.0, p) + rng.uniform(-1.0, 1.0, p)
    X -= X.mean(axis=0)
    w = rng.uniform(0.5, 1.5, n)
    w[: n // 10] = 0.0  # a CV fold's held-out rows
    r = (w / w.sum()) * (rng.uniform(size=n) - (rng.uniform(size=n) < 0.5))
    return X, w, r


def _problems(X):
    """(exact, mixed): the float64 design, and the float32 one of a lane solved alone."""
    exact = Problem(*design_arrays(X, jnp.float64), None, None, None, None)
    mixed = Problem(*design_arrays(X, jnp.float64, kkt_float32=True), None, None, None, None)
    assert exact.X.dtype == jnp.float64 and mixed.X.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(mixed.colnorm), np.linalg.norm(X, axis=0), rtol=1e-13)
    return exact, mixed


def _passes(X, w, r, thr_from_g, tol, seed=1):
    """(exact, mixed) results of kkt_pass on thresholds placed relative to the exact gradient."""
    n, p = X.shape
    with precision_scope(np.float64):
        exact_prob, mixed_prob = _problems(X)
        wd = jnp.asarray(w / w.sum())
        pf = jnp.ones(p)
        mom = moments(exact_prob.XT, wd, pf, True, True)
        rd = jnp.asarray(r)
        g = np.asarray(full_gradient(exact_prob, rd, mom))
        thr = jnp.asarray(thr_from_g(np.abs(g), np.random.default_rng(seed)))
        outside = jnp.asarray(np.random.default_rng(seed + 1).uniform(size=p) < 0.9)
        tol = jnp.asarray(tol)
        run = jax.jit(lambda prob: kkt_pass(prob, rd, mom, thr, outside, tol))
        exact = run(exact_prob)
        mixed = run(mixed_prob)
        return [np.asarray(a) for a in exact], [np.asarray(a) for a in mixed], np.asarray(outside), np.asarray(thr), g


@pytest.mark.slow
@pytest.mark.parametrize("near", [0, 20, 3 * KKT_RECHECK])
def test_float32_kkt_pass_finds_exactly_the_float64_violators(near):
    """Thresholds within 1e-12 of |g_j| (far inside float32's error, ~1e-8 here) on ``near``
    features: none (every feature cleared by the bound), a few (rechecked in float64), more than
    the recheck capacity (the whole pass redone in float64). Violators and their excess match the
    float64 pass; a cleared feature's excess is an upper bound at or below tol."""
    n, p, tol = 300, 2000, 1e-12
    X, w, r = _setup(n, p)

    def thr(absg, rng):
        t = absg * rng.uniform(1.5, 3.0, absg.shape)  # clearly inside: |g| < thr
        t[:5] = absg[:5] * 0.5  # clear violators
        pick = rng.choice(np.arange(5, p), near, replace=False)
        t[pick] = absg[pick] + rng.choice([-1.5, 1.5], near) * tol  # violate / satisfy by 1.5 tol
        return t

    (g_e, ex_e), (g_m, ex_m), outside, t, g = _passes(X, w, r, thr, tol)
    viol_e, viol_m = ex_e > tol, ex_m > tol
    assert viol_e[outside].sum() >= 3
    np.testing.assert_array_equal(viol_m, viol_e)
    np.testing.assert_allclose(ex_m[viol_e], ex_e[viol_e], rtol=0, atol=1e-15)
    assert np.all(ex_m[outside] >= ex_e[outside] - 1e-15)  # an upper bound wherever not recomputed
    # The float32 gradient of a cleared feature is still a good estimate (it drives the strong rule).
    np.testing.assert_allclose(g_m, g, rtol=1e-4, atol=1e-6 * np.abs(g).max())


def test_float32_kkt_without_its_error_bound_would_miss_violators():
    """The same setup with the bound switched off misclassifies: the test above can fail."""
    n, p, tol = 300, 2000, 1e-12
    X, w, r = _setup(n, p)
    with precision_scope(np.float64):
        exact, mixed = _problems(X)
        mom = moments(exact.XT, jnp.asarray(w / w.sum()), jnp.ones(p), True, True)
        g = np.asarray(full_gradient(exact, jnp.asarray(r), mom))
        raw = np.asarray((jnp.asarray(r, jnp.float32) @ mixed.X).astype(jnp.float64))
    naive = (raw - np.asarray(mom.xm) * r.sum()) / np.asarray(mom.xs)
    err = np.abs(naive - g)
    assert err.max() > 100 * tol  # float32 alone cannot decide thresholds 1.5 tol away


@pytest.mark.slow
def test_cv_on_real_data_is_the_same_with_and_without_the_float32_pass(shared_data):
    """ALL BCR/ABL, 10-fold CV (loop lanes, threads): the float32 KKT pass changes nothing a user
    sees -- same supports at every lambda, coefficients and CV curve to rounding, same picks."""
    import jaxlasso

    X, y, _ = shared_data("all_bcrabl")
    foldid = np.random.default_rng(0).permutation(np.resize(np.arange(1, 11), len(y)))
    fits = {}
    for flag in ("0", "1"):
        with configure(kkt_float32=flag, lane_mode="loop"):
            fits[flag] = jaxlasso.cv_logistic_path(X, y, foldid=foldid)
    a, b = fits["0"], fits["1"]
    np.testing.assert_array_equal(a.path.coef != 0, b.path.coef != 0)
    np.testing.assert_allclose(b.path.coef, a.path.coef, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.cv_mean, a.cv_mean, rtol=1e-9)
    assert (a.index_min, a.index_1se) == (b.index_min, b.index_1se)
    assert np.all(b.path.kkt_gap <= b.path.tol)
