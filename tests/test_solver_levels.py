"""Exact model solves on the smallest static level that holds the support (``solver.solve_levels``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import precision_scope
from kernels import solver


def test_levels_are_static_and_cover_the_capacity():
    assert solver.solve_levels(32, False) == (32,)
    assert solver.solve_levels(768, False) == (192, 384, 576, 768)
    assert solver.solve_levels(96, False) == (24, 48, 72, 96)
    assert solver.solve_levels(768, True) == (768,)  # vmapped lanes: one size


@pytest.mark.parametrize("support", [5, 40, 100, 128])
def test_polish_on_a_level_equals_the_full_solve(support):
    """A support scattered over the slots (not a prefix) is gathered, solved on the smallest
    level and scattered back: the same model minimiser and path predictor as the full k x k solve."""
    k, n = 128, 300
    rng = np.random.default_rng(support)
    with precision_scope(np.float64):
        A = rng.standard_normal((k, n)) / np.sqrt(n)
        G = jnp.asarray(A @ A.T + 0.05 * np.eye(k))
        slots = rng.permutation(k)[:support]
        c = np.zeros(k)
        c[slots] = rng.standard_normal(support)
        b = jnp.asarray(c + 0.01 * rng.standard_normal(k) * (c != 0))
        lin = jnp.asarray(rng.standard_normal(k) * 0.05)
        a1 = jnp.full(k, 0.02)
        a2 = jnp.full(k, 0.001)
        mask = jnp.ones(k, bool)
        run = {levels: jax.jit(lambda c, levels=levels: solver._polish(G, lin, b, c, a1, a2, mask, 1e-10, -0.05, levels))
               for levels in [(k,), solver.solve_levels(k, False)]}
        full, lev = (run[key](jnp.asarray(c)) for key in run)
    for x, y in zip(full, lev):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(np.asarray(lev[0])) > 0


def test_gram_levels_hold_every_slot_count():
    assert solver.gram_levels_for(768, False) == (192, 384, 480, 576, 672, 768)
    assert solver.gram_levels_for(32, False) == (32,)
    assert solver.gram_levels_for(768, True) == (768,)  # vmapped lanes: one size


def _working_set(k, n, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    X[:, 1] = X[:, 0] + 0.3 * rng.standard_normal(n)  # correlated columns: CD alone is slow
    X = (X - X.mean(0)) / X.std(0)
    XT = np.where(np.arange(k)[:, None] < m, X.T, 0.0)
    mask = np.arange(k) < m
    beta = np.zeros(k)
    beta[:6] = [1.5, -1.0, 0.8, 0.5, -0.7, 0.6]
    eta = X @ beta
    lam = 0.02
    ws = solver.WorkingSet(jnp.asarray(XT), jnp.asarray(np.where(mask, lam, 0.0)),
                           jnp.asarray(np.where(mask, 1e-4, 0.0)), jnp.asarray(mask), jnp.asarray(m, jnp.int32))
    return ws, eta, rng


@pytest.mark.parametrize("family_name", ["binomial", "cox"])
@pytest.mark.parametrize("m", [40, 70, 128])
def test_gram_on_a_level_equals_the_full_gram(monkeypatch, family_name, m):
    """The Newton solve with the model's Gram formed on the smallest level holding the slots in
    use (then padded) reaches the same solution, intercept, gap and path predictor as with the
    Gram over all k slots -- for the diagonal Hessian and for the Cox family's exact ``gram``."""
    from kernels import cox
    from kernels.families import BINOMIAL

    k, n = 128, 160
    with precision_scope(np.float64):
        ws, eta_true, rng = _working_set(k, n, m, seed=m)
        w = jnp.full(n, 1.0 / n)
        if family_name == "binomial":
            family = BINOMIAL
            y = jnp.asarray((rng.random(n) < 1 / (1 + np.exp(-eta_true))).astype(float))
            fit_intercept = True
        else:
            family = cox.COX
            time = rng.exponential(np.exp(-eta_true))
            event = (rng.random(n) < 0.8).astype(float)
            from jaxlasso.survival import cox_layout
            y = jax.tree.map(jnp.asarray, cox_layout(time, event))
            fit_intercept = False
        b = jnp.zeros(k)
        b0 = jnp.zeros(())
        eta = jnp.zeros(n)
        results = {}
        for on_level in (False, True):
            monkeypatch.setattr(solver, "_GRAM_ON_LEVEL", on_level)
            fn = jax.jit(lambda ws, y, w, b, b0, eta: solver.newton_solve(
                ws, y, w, b, b0, eta, jnp.asarray(1e-12), jnp.asarray(100), jnp.asarray(10000),
                jnp.asarray(0), fit_intercept, (), jnp.asarray(-0.05), family=family))
            results[on_level] = fn(ws, y, w, b, b0, eta)
    full, lev = results[False], results[True]
    assert int(full.status) == 0 and int(lev.status) == 0
    assert float(lev.kkt) <= 1e-12 and float(full.kkt) <= 1e-12
    assert np.count_nonzero(np.asarray(lev.b)) >= 3
    for name in ("b", "b0", "pred", "pred0"):
        np.testing.assert_allclose(np.asarray(getattr(lev, name)), np.asarray(getattr(full, name)),
                                   rtol=1e-8, atol=1e-10, err_msg=name)


def _spd(k, n, seed, ridge):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((k, n)) / np.sqrt(n)
    return A @ A.T + ridge * np.eye(k), rng


@pytest.mark.parametrize("support", [40, 100, 128])
def test_polish_with_float32_factors_equals_the_float64_solve(support, monkeypatch):
    """``mixed``: the float32 factor refined in float64 gives the float64 factorisation's model
    minimiser (to float64 rounding, not float32's) and the same path predictor to float32's."""
    k, n = 128, 300
    monkeypatch.setattr(solver, "_F32_FACTOR_MIN", 1)  # every level of this small case
    with precision_scope(np.float64):
        G_np, rng = _spd(k, n, support, 0.05)
        G = jnp.asarray(G_np)
        slots = rng.permutation(k)[:support]
        c = np.zeros(k)
        c[slots] = rng.standard_normal(support)
        b = jnp.asarray(c + 0.01 * rng.standard_normal(k) * (c != 0))
        lin = jnp.asarray(rng.standard_normal(k) * 0.05)
        a1, a2, mask = jnp.full(k, 0.02), jnp.full(k, 0.001), jnp.ones(k, bool)
        levels = solver.solve_levels(k, False)
        out = {mixed: jax.jit(lambda c, mixed=mixed: solver._polish(G, lin, b, c, a1, a2, mask, 1e-12, -0.05, levels,
                                                                    mixed=mixed))(jnp.asarray(c))
               for mixed in (False, True)}
    exact, mixed = out[False], out[True]
    assert bool(exact[2]) and bool(mixed[2])  # both the model's minimiser
    np.testing.assert_allclose(np.asarray(mixed[0]), np.asarray(exact[0]), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(np.asarray(mixed[3]), np.asarray(exact[3]), rtol=1e-4, atol=1e-8)
    # ... and it came from the float32 factor (the predictor is not refined), not the fallback.
    assert not np.allclose(np.asarray(mixed[3]), np.asarray(exact[3]), rtol=1e-12, atol=0)
    # The float32 factor alone is ~1e-7 off: the refinement is what makes the two agree.
    M32 = (G_np + 0.001 * np.eye(k)).astype(np.float32)
    assert np.max(np.abs(np.linalg.solve(M32, np.ones(k, np.float32)) - np.linalg.solve(G_np + 0.001 * np.eye(k),
                                                                                         np.ones(k)))) > 1e-9


def test_a_system_float32_cannot_refine_is_factorised_in_float64():
    """cond(M) ~ 1e10, beyond float32's reach: refinement stalls, and ``_mixed_solve`` returns
    the float64 factorisation's solution rather than the stalled one."""
    k = 64
    with precision_scope(np.float64):
        rng = np.random.default_rng(3)
        Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
        M = (Q * np.logspace(0, -10, k)) @ Q.T
        M = 0.5 * (M + M.T)
        rhs = rng.standard_normal(k)
        target = 1e-9

        def run(M, rhs):
            Mj = jnp.asarray(M)
            return solver._mixed_solve(Mj.astype(jnp.float32), lambda x: Mj @ x, lambda: Mj, rhs,
                                       lambda x: jnp.zeros_like(x), target)

        x, _ = jax.jit(run)(M, jnp.asarray(rhs))
        x64 = np.asarray(jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(jnp.asarray(M)), True), jnp.asarray(rhs)))
        x32 = np.linalg.solve(M.astype(np.float32), rhs.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(x), x64)
    assert np.max(np.abs(x32 - x64)) > 1e-3 * np.max(np.abs(x64))  # float32 alone is far off here
