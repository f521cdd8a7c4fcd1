"""The Newton model held through its factor where the working set has many more slots than the
data has rows (``solver.LowRank``): the same model minimiser, predictor and Newton solution as
the k x k Gram, by coordinate descent on the factor, a direct solve on supports of at most n
features and the Woodbury identity on larger ones."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import precision_scope
from kernels import solver
from kernels.cox import COX
from kernels.families import BINOMIAL, GAUSSIAN


def _model(k, n, support, seed, a1_value=1e-3, a2_value=0.05):
    """A rank-n model ``Z^T Z`` on k slots, a point whose support has ``support`` features, and
    elastic-net strengths (a small L1 part, as where elastic nets keep thousands of genes)."""
    rng = np.random.default_rng(seed)
    ZT = rng.standard_normal((k, n)) * 0.5 / np.sqrt(n)
    slots = rng.permutation(k)[:support]
    c = np.zeros(k)
    c[slots] = rng.standard_normal(support)
    b = c + 0.01 * rng.standard_normal(k) * (c != 0)
    lin = rng.standard_normal(k) * 0.01
    return ZT, c, b, lin, np.full(k, a1_value), np.full(k, a2_value)


def _model_solves(ZT, b, lin, a1, a2, mixed):
    """The model minimised (``solver._solve_model``) through the k x k Gram and through the
    factor: ``(dense, low)``, each ``(c, dc)``."""
    k = ZT.shape[0]
    mask = jnp.ones(k, bool)
    G = ZT @ ZT.T
    h = jnp.diagonal(G)

    def solve(model, mixed=False):
        return solver._solve_model(model, lin, b, h, a1, a2, mask, jnp.asarray(k), jnp.asarray(1e-12),
                                   jnp.asarray(10000), jnp.asarray(-0.05), (k,), mixed=mixed)

    return jax.jit(solve)(G), jax.jit(lambda ZT: solve(solver.LowRank(ZT), mixed))(ZT)


@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("a1_value", [0.3, 0.2, 1e-3, 1e-5])
def test_model_solve_through_the_factor_equals_the_gram_solve(a1_value, mixed):
    """The penalised model minimised through its factor (CD on the factor; exact solves on
    supports of at most n = 24 features and, through the Woodbury identity, on larger ones) and
    through the k x k Gram: the same minimiser and path predictor. ``mixed``: the Woodbury
    system formed and factorised in float32 and the solution refined in float64 -- the same
    minimiser."""
    k, n = 128, 24
    with precision_scope(np.float64):
        ZT, c, b, lin, a1, a2 = (jnp.asarray(a) for a in _model(k, n, 60, seed=3, a1_value=a1_value))
        dense, low = _model_solves(ZT, b, lin, a1, a2, mixed)
    support = np.count_nonzero(np.asarray(low[0]))
    assert support <= n if a1_value > 0.1 else support > n  # both kinds of exact solve
    assert np.any(np.asarray(dense[1]) != 0)  # the minimiser came from an exact solve
    np.testing.assert_allclose(np.asarray(low[0]), np.asarray(dense[0]), rtol=1e-8, atol=1e-11)
    # The predictor (a warm start) comes from the float32 factor without refinement.
    np.testing.assert_allclose(np.asarray(low[1]), np.asarray(dense[1]), rtol=1e-4 if mixed else 1e-8,
                               atol=1e-8 if mixed else 1e-11)


@pytest.mark.parametrize("a2_value", [0.05, 1e-9])
def test_woodbury_solve_in_float32_is_refined_or_replaced_by_float64(a2_value):
    """A support of 100 features on n = 24 rows: the float32 Woodbury system refined in float64
    gives the float64 solution of ``(Z_A^T Z_A + a2 I) x = rhs`` to the target; with
    ``a2 = 1e-9`` (condition ~1e9, beyond float32's reach) refinement stalls and the float64
    system's result is returned -- bit for bit the unmixed solve's."""
    k, n = 128, 24
    with precision_scope(np.float64):
        ZT, c, _, _, a1, a2 = _model(k, n, 100, seed=4, a2_value=a2_value)
        active = c != 0
        rhs = np.random.default_rng(5).standard_normal(k)
        args = [jnp.asarray(x) for x in (ZT, active, a1, a2, np.sign(c), rhs)]

        def unused_direct():  # a support above n: the direct solve's branch is not taken
            return jnp.full(k, jnp.nan), jnp.full(k, jnp.nan)

        out = {mixed: jax.jit(lambda *a, mixed=mixed: solver._low_rank_solve(*a, jnp.asarray(-0.05), jnp.asarray(1e-10),
                                                                            unused_direct, mixed=mixed))(*args)
               for mixed in (False, True)}
    A = np.flatnonzero(active)
    M = ZT[A] @ ZT[A].T + a2_value * np.eye(len(A))
    for mixed in (False, True):
        sol = np.asarray(out[mixed][0])
        assert np.all(sol[~active] == 0)
        if a2_value > 1e-6:
            np.testing.assert_allclose(sol[A], np.linalg.solve(M, rhs[A]), rtol=1e-9, atol=1e-12)
        else:  # backward stable: the residual of a solution of size ~1e9 at rounding level
            assert np.max(np.abs(M @ sol[A] - rhs[A])) <= 1e-12 * np.linalg.norm(M, 2) * np.max(np.abs(sol))
    if a2_value < 1e-6:
        np.testing.assert_array_equal(np.asarray(out[True][0]), np.asarray(out[False][0]))
    else:
        assert not np.array_equal(np.asarray(out[True][0]), np.asarray(out[False][0]))  # float32 was used


@pytest.mark.parametrize("mixed", [False, True])
def test_unpenalised_features_border_the_woodbury_solve(mixed):
    """A 40-feature support on n = 16 rows with two unpenalised features (``a1 = a2 = 0``:
    covariates kept in every model) is solved through the Woodbury system bordered by their
    Schur complement: the same minimiser and predictor as the k x k Gram's solve."""
    k, n = 64, 16
    with precision_scope(np.float64):
        ZT, c, b, lin, a1, a2 = _model(k, n, 40, seed=1, a1_value=1e-5)
        free = np.flatnonzero(c)[:2]
        a1[free] = a2[free] = 0.0
        ZT, c, b, lin, a1, a2 = (jnp.asarray(x) for x in (ZT, c, b, lin, a1, a2))
        dense, low = _model_solves(ZT, b, lin, a1, a2, mixed)
        polish = jax.jit(lambda ZT: solver._polish(solver.LowRank(ZT), lin, b, low[0], a1, a2, jnp.ones(k, bool),
                                                   1e-11, -0.05, (k,), mixed=mixed))(ZT)
    assert np.count_nonzero(np.asarray(low[0])) > n and np.all(np.asarray(low[0])[free] != 0)
    assert bool(polish[2])  # the bordered solve confirms the minimiser on its support
    np.testing.assert_allclose(np.asarray(low[0]), np.asarray(dense[0]), rtol=1e-8, atol=1e-11)
    # The predictor (a warm start) comes from the float32 factor without refinement.
    np.testing.assert_allclose(np.asarray(low[1]), np.asarray(dense[1]), rtol=1e-3 if mixed else 1e-8,
                               atol=1e-8 if mixed else 1e-11)
    assert np.any(np.asarray(low[1]) != 0)  # from an exact solve


def test_too_many_unpenalised_features_are_left_to_coordinate_descent():
    """A support above n with more unpenalised features than the border takes (here n = 16) is
    not solved exactly (``valid`` False, the point returned unchanged); with as many as it
    takes, it is."""
    k, n, support = 64, 16, 40
    with precision_scope(np.float64):
        ZT, c, b, lin, a1, a2 = (jnp.asarray(a) for a in _model(k, n, support, seed=1))
        mask = jnp.ones(k, bool)
        on = np.flatnonzero(np.asarray(c))
        too_many = a2.at[on[:17]].set(0.0)
        just = a2.at[on[:16]].set(0.0)
        assert not bool(solver._low_rank_solvable(ZT, c != 0, too_many))
        assert bool(solver._low_rank_solvable(ZT, c != 0, just))
        run = jax.jit(lambda a2: solver._polish(solver.LowRank(ZT), lin, b, c, a1, a2, mask, 1e-11, -0.05, (k,)))
        sol, _, valid, dc = run(too_many)
        assert not bool(valid)
        np.testing.assert_array_equal(np.asarray(sol), np.asarray(c))
        np.testing.assert_array_equal(np.asarray(dc), 0.0)
        sol, _, _, dc = run(just)
    assert np.any(np.asarray(sol) != np.asarray(c)) and np.any(np.asarray(dc) != 0)  # a solve was made


def test_coordinate_descent_on_the_factor_equals_it_on_the_gram():
    k, n, m = 96, 20, 80
    with precision_scope(np.float64):
        ZT, c, b, lin, a1, a2 = (jnp.asarray(a) for a in _model(k, n, 50, seed=5))
        ZT = ZT.at[m:].set(0.0)
        mask = jnp.arange(k) < m
        c = jnp.where(mask, c, 0.0)
        G = ZT @ ZT.T
        q = lin + G @ (c - b)
        h = jnp.sum(ZT * ZT, axis=1) + 1e-30
        args = (q, c, h, a1, a2, mask, jnp.asarray(m), jnp.asarray(1e-10), jnp.asarray(5))
        gram = jax.jit(solver._cd)(G, *args)
        low = jax.jit(solver._cd_low_rank)(ZT, *args)
    assert int(gram[3]) == int(low[3]) == 5  # the same number of sweeps, all of them
    np.testing.assert_allclose(np.asarray(low[0]), np.asarray(gram[0]), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(np.asarray(low[1]), np.asarray(gram[1]), rtol=1e-10, atol=1e-13)
    assert np.count_nonzero(np.asarray(low[0])) > 10


@pytest.mark.parametrize("case", ["binomial", "unpenalised", "gaussian_no_intercept_zero_weights", "vmap"])
def test_newton_solve_through_the_factor_equals_the_gram(monkeypatch, case):
    """A Newton solve on 128 slots over 40 rows ends at the same solution, intercept, KKT gap and
    path predictor with its model held as a factor as with the k x k Gram: binomial; with two
    unpenalised features (``a1 = a2 = 0``: the bordered Woodbury solve); Gaussian without an
    intercept and with six zero-weight rows (zero rows of the factor); and two lanes under
    ``vmap`` (float64 Woodbury systems, the lanes' choice of solve synchronised)."""
    k, n, m = 128, 40, 120
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, k))
    X[:, 1] = X[:, 0] + 0.3 * rng.standard_normal(n)
    X = (X - X.mean(0)) / X.std(0)
    mask = np.arange(k) < m
    XT = np.where(mask[:, None], X.T, 0.0)
    eta_true = X[:, :6] @ np.array([1.5, -1.0, 0.8, 0.5, -0.7, 0.6])
    family, fit_intercept, w = BINOMIAL, True, np.full(n, 1.0 / n)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta_true))).astype(float)
    lam = 0.05
    if case == "gaussian_no_intercept_zero_weights":
        family, fit_intercept = GAUSSIAN, False
        y = eta_true + rng.standard_normal(n)
        w[:6] = 0.0
        w /= w.sum()
        lam = 0.2
    a1 = np.where(mask, 0.01 * lam, 0.0)
    a2 = np.where(mask, 0.99 * lam, 0.0)
    if case == "unpenalised":
        a1[[3, 50]] = a2[[3, 50]] = 0.0
    Y = np.stack([y, y[rng.permutation(n)]]) if case == "vmap" else y
    results = {}
    with precision_scope(np.float64):
        ws = solver.WorkingSet(jnp.asarray(XT), jnp.asarray(a1), jnp.asarray(a2), jnp.asarray(mask),
                               jnp.asarray(m, jnp.int32))
        monkeypatch.setattr(solver, "_LOW_RANK_MIN", 1)
        for ratio in (1e9, 2):
            monkeypatch.setattr(solver, "_LOW_RANK_RATIO", ratio)
            assert solver.low_rank_model(k, n, family) == (ratio == 2)

            def solve(y, sync_axes=()):
                return solver.newton_solve(
                    ws, y, jnp.asarray(w), jnp.zeros(k), jnp.zeros(()), jnp.zeros(n), jnp.asarray(1e-12),
                    jnp.asarray(100), jnp.asarray(10000), jnp.asarray(0), fit_intercept, sync_axes,
                    jnp.asarray(-0.05), family=family)

            if case == "vmap":
                if ratio == 2:  # lanes in lockstep against each lane solved alone on the Gram
                    fn = jax.jit(jax.vmap(lambda y: solve(y, ("lanes",)), axis_name="lanes"))
                    results[ratio] = fn(jnp.asarray(Y))
                else:
                    one = jax.jit(solve)
                    outs = [one(jnp.asarray(yb)) for yb in Y]
                    results[ratio] = jax.tree.map(lambda *x: jnp.stack(x), *outs)
            else:
                results[ratio] = jax.jit(solve)(jnp.asarray(Y))
    gram, low = results[1e9], results[2]
    assert np.all(np.asarray(gram.status) == 0) and np.all(np.asarray(low.status) == 0)
    assert np.all(np.asarray(low.kkt) <= 1e-12) and np.all(np.asarray(gram.kkt) <= 1e-12)
    support = np.count_nonzero(np.asarray(low.b), axis=-1)
    assert np.all(support > n)  # a support the Woodbury solve is for
    # One lane's predictor comes from the float32 Woodbury factor, unrefined: close, not equal.
    loose = case != "vmap"
    for name in ("b", "b0", "pred", "pred0"):
        pred = name.startswith("pred")
        np.testing.assert_allclose(np.asarray(getattr(low, name)), np.asarray(getattr(gram, name)),
                                   rtol=1e-4 if pred and loose else 1e-7,
                                   atol=1e-8 if pred and loose else 1e-10, err_msg=name)


def test_the_factor_is_for_wide_working_sets_of_diagonal_weight_families():
    assert solver.low_rank_model(256, 72, BINOMIAL)
    assert not solver.low_rank_model(128, 72, BINOMIAL)
    assert not solver.low_rank_model(256, 72, COX)  # Cox forms its own exact Hessian
    assert not solver.low_rank_model(96, 16, BINOMIAL)  # a small Gram: cheaper than the factor
