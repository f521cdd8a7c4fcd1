"""Exact model solves on degenerate supports (``solver._polish``'s primal steps): duplicated
columns, whose systems are singular, and a path through them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlasso
from jaxlasso._engine import executables, precision_scope
from kernels import solver

# Features j and j + K/2 identical; the 32 distinct ones have full rank; N >= K, so that the
# factor's exact solve takes every support directly (no Woodbury system: there is no ridge).
K, N, A1 = 64, 80, 0.01


@pytest.fixture
def fresh_programs():
    """Compiled solvers forgotten before and after the test: a kernel setting is read when a
    solver is traced, and ``fit_path`` keeps its traced programs."""
    def forget():
        for clear in executables._RELEASER.caches:
            clear()
        jax.clear_caches()

    forget()
    yield forget
    forget()


def _duplicated(seed: int):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((K, N)) / np.sqrt(N)
    Z[K // 2:] = Z[:K // 2]
    lin = Z @ (0.3 * rng.standard_normal(N))  # a data gradient: equal on each duplicated pair
    return Z, lin


def _model_gap(G, lin, sol, a1):
    """The lasso model's KKT gap at ``sol`` (``b = 0``): stationarity on the support, the excess of
    ``|q|`` over ``a1`` off it."""
    q = lin + G @ sol
    return float(np.max(np.where(sol != 0, np.abs(q + a1 * np.sign(sol)), np.maximum(np.abs(q) - a1, 0.0))))


def _objective(G, lin, sol, a1):
    return float(lin @ sol + 0.5 * sol @ G @ sol + a1 * np.abs(sol).sum())


def _split_start(Z, lin, opposite: bool):
    """CD's solution with each pair's coefficient split over both copies -- a point whose support
    has both copies of every feature in it, as coordinate descent can leave it -- at the same model
    value, or (``opposite``) with three pairs' copies of opposite signs (a larger L1 norm)."""
    G = jnp.asarray(Z @ Z.T)
    h = jnp.diagonal(G)
    zeros = jnp.zeros(K)
    c, _, worst, _ = solver._cd(G, jnp.asarray(lin), zeros, h, jnp.full(K, A1), zeros, jnp.ones(K, bool),
                                jnp.asarray(K), jnp.asarray(1e-14), jnp.asarray(100000))
    c = np.asarray(c)
    assert float(worst) <= 1e-14
    both = c[:K // 2] + c[K // 2:]  # what the model sees of each pair
    assert np.count_nonzero(both) >= 8
    first, second = 0.7 * both, 0.3 * both
    if opposite:  # three pairs
        flip = np.flatnonzero(both)[:3]
        first[flip], second[flip] = both[flip] + 0.2 * np.sign(both[flip]), -0.2 * np.sign(both[flip])
    return G, c, np.concatenate([first, second])


@pytest.mark.parametrize("model", ["gram", "gram-levels", "factor"])
@pytest.mark.parametrize("opposite", [False, True])
def test_a_singular_support_is_solved_exactly(model, opposite, monkeypatch):
    """Both copies of a duplicated feature on the support make the system singular. The polish
    reaches the model's minimiser from there -- the minimiser nearest the point, or (copies of
    opposite signs: the model falls along the null direction) the move to the first zero -- where
    the active-set step alone repeats the singular solve and gives up."""
    with precision_scope(np.float64):
        Z, lin = _duplicated(3)
        G, cd, start = _split_start(Z, lin, opposite)
        M = solver.LowRank(jnp.asarray(Z)) if model == "factor" else G
        # "gram-levels": the support's slots gathered onto the smallest static level holding it.
        levels = solver.solve_levels(K, False) if model == "gram-levels" else (K,)
        a1, a2, mask = jnp.full(K, A1), jnp.zeros(K), jnp.ones(K, bool)

        def polish():
            return jax.jit(lambda c: solver._polish(M, jnp.asarray(lin), jnp.zeros(K), c, a1, a2, mask,
                                                    jnp.asarray(1e-11), jnp.asarray(-0.05), levels,
                                                    with_point=True))(jnp.asarray(start))

        sol, _, valid, _, _ = polish()
        monkeypatch.setattr(solver, "_PRIMAL_STEPS", False)
        valid_before = polish()[2]
    sol, Gn = np.asarray(sol), np.asarray(G)
    assert bool(valid) and not bool(valid_before)
    assert _model_gap(Gn, lin, sol, A1) <= 1e-10
    assert _objective(Gn, lin, sol, A1) <= _objective(Gn, lin, np.asarray(cd), A1) + 1e-14
    if opposite:  # along the null direction the copy that reaches zero first leaves the support
        assert np.all(sol[:K // 2] * sol[K // 2:] >= 0)
        assert _objective(Gn, lin, sol, A1) < _objective(Gn, lin, start, A1) - 0.01


def test_a_singular_system_met_after_active_set_rounds(monkeypatch):
    """On 20 rows, a start on 16 of the 20 genes CD selects is solved exactly, and the active-set
    step then takes in every violator at once -- a support of ~60 on a rank-20 design, singular.
    The primal steps go on from the start's point (its own support: the restart) and reach the
    lasso solution, where the active-set step alone gives up."""
    k, n, a1 = 64, 20, 0.002
    rng = np.random.default_rng(0)
    with precision_scope(np.float64):
        Z = rng.standard_normal((k, n)) / np.sqrt(n)
        lin = Z @ (0.5 * rng.standard_normal(n))
        G, zeros, ones = jnp.asarray(Z @ Z.T), jnp.zeros(k), jnp.ones(k, bool)
        cd, _, worst, _ = solver._cd(G, jnp.asarray(lin), zeros, jnp.diagonal(G), jnp.full(k, a1), zeros, ones,
                                     jnp.asarray(k), jnp.asarray(1e-13), jnp.asarray(200000))
        cd = np.asarray(cd)
        start = np.where(np.isin(np.arange(k), np.argsort(-np.abs(cd))[:n - 4]), cd, 0.0)

        def polish():
            return jax.jit(lambda c: solver._polish(G, jnp.asarray(lin), zeros, c, jnp.full(k, a1), zeros, ones,
                                                    jnp.asarray(1e-11), jnp.asarray(-0.05), (k,)))(jnp.asarray(start))

        sol, _, valid, _ = polish()
        monkeypatch.setattr(solver, "_PRIMAL_STEPS", False)
        sol_before, _, valid_before, _ = polish()
    assert float(worst) <= 1e-13 and np.count_nonzero(cd) == n
    assert bool(valid) and not bool(valid_before)
    assert np.count_nonzero(np.asarray(sol_before)) > 2 * n  # the active-set step's candidate
    assert _model_gap(np.asarray(G), lin, np.asarray(sol), a1) <= 1e-10
    np.testing.assert_allclose(np.asarray(sol), cd, atol=1e-9)


def test_primal_steps_hand_a_better_point_to_coordinate_descent(monkeypatch):
    """A polish that runs out of rounds before the minimiser still returns the point its primal
    steps reached: never above the starting point's model value, and on a smaller support."""
    monkeypatch.setattr(solver, "_PRIMAL_ROUNDS", 1)
    with precision_scope(np.float64):
        Z, lin = _duplicated(5)
        G, _, start = _split_start(Z, lin, opposite=True)
        out = jax.jit(lambda c: solver._polish(G, jnp.asarray(lin), jnp.zeros(K), c, jnp.full(K, A1), jnp.zeros(K),
                                               jnp.ones(K, bool), jnp.asarray(1e-11), jnp.asarray(-0.05), (K,),
                                               max_rounds=1, with_point=True))(jnp.asarray(start))
    valid, point, Gn = bool(out[2]), np.asarray(out[4]), np.asarray(G)
    assert not valid
    assert np.count_nonzero(point) < np.count_nonzero(start)
    assert np.all(point * start >= 0)  # signs kept: coefficients only reach zero
    assert _objective(Gn, lin, point, A1) < _objective(Gn, lin, start, A1)


@pytest.mark.slow  # compiles the path solver twice
def test_a_path_through_duplicated_columns(monkeypatch, fresh_programs):
    """Gaussian lasso path on 24 samples where every gene has an identical twin, down to lambda_max
    x 1e-4 (supports at the rank of the data): every lambda converges, the objective is never above
    the active-set-only solver's, and it takes far fewer Newton steps (that solver leaves the
    singular supports to coordinate descent, which stops short and tries again). (24 samples: every
    capacity, from 32 slots, can hold n features, so every program has the primal steps.)"""
    rng = np.random.default_rng(0)
    n, p = 24, 300
    X = rng.standard_normal((n, p))
    X[:, p // 2:] = X[:, :p // 2]
    y = X[:, :5] @ np.ones(5) + rng.standard_normal(n)
    lam = np.geomspace(1.0, 1e-4, 100) * np.abs(X.T @ (y - y.mean())).max() / n / y.std()

    def fit():
        # Tighter than the default tolerance, so that the objectives compare to 1e-12.
        r = jaxlasso.fit_path(X, y, family="gaussian", lambdas=lam, tol=1e-7)
        B, b0, sd = np.asarray(r.coef), np.asarray(r.intercept), X.std(0)
        obj = np.array([0.5 * np.mean((y - b0[i] - X @ B[i]) ** 2) + lam[i] * np.sum(np.abs(B[i]) * sd)
                        for i in range(len(lam))])
        return r, obj

    new, obj_new = fit()
    monkeypatch.setattr(solver, "_PRIMAL_STEPS", False)
    fresh_programs()
    old, obj_old = fit()
    assert np.all(new.converged) and np.all(old.converged)
    assert np.all(obj_new <= obj_old * (1 + 1e-12))
    assert int(np.sum(new.n_iter)) < 0.75 * int(np.sum(old.n_iter))


def test_primal_steps_are_compiled_where_a_capacity_can_hold_n_features(monkeypatch, fresh_programs):
    """Below n slots a support cannot reach the rank of the data, and the primal steps' code (a
    quarter more XLA compile time per program) is left out; from n slots on it is in."""
    traced = []
    real = solver._nearest_minimiser

    def spy(G, *args, **kwargs):
        traced.append(args[5].shape[0])  # the point: one entry per slot
        return real(G, *args, **kwargs)

    monkeypatch.setattr(solver, "_nearest_minimiser", spy)
    rng = np.random.default_rng(1)
    n, p = 40, 300
    X = rng.standard_normal((n, p))
    y = X[:, :5] @ np.ones(5) + rng.standard_normal(n)
    lam = np.geomspace(1.0, 1e-3, 30) * np.abs(X.T @ (y - y.mean())).max() / n / y.std()
    r = jaxlasso.fit_path(X, y, family="gaussian", lambdas=lam)
    assert r.info["working_set_capacities"] == (32, 96)
    assert 96 in traced and 32 not in traced
