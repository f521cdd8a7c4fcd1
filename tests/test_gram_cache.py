"""The Newton model's Gram kept across steps and lambdas (``solver.GramCache``): moved to a new
working set's slots, extended by the rows of new features, reused while the IRLS weights stay
close, formed anew when they drift -- and the same solution either way."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import precision_scope
from kernels import solver
from kernels.families import BINOMIAL


def test_remap_moves_rows_to_the_new_slots_and_empties_the_rest():
    k = 8
    rng = np.random.default_rng(0)
    feat_old = np.array([5, 2, 9, -1, 7, 1, -1, -1])
    A = rng.standard_normal((k, 20)) * (feat_old >= 0)[:, None]
    G_old = A @ A.T
    idx = np.array([2, 7, 4, 5, 0, 9, 3, 1])
    mask = np.array([True] * 6 + [False] * 2)  # feature 1 is held, but its new slot is unused
    with precision_scope(np.float64):
        cache = solver.GramCache(jnp.asarray(G_old), jnp.asarray(feat_old, jnp.int32), jnp.ones(20), jnp.asarray(20.0),
                                 jnp.asarray(True))
        out = solver.remap_gram(cache, jnp.asarray(idx, jnp.int32), jnp.asarray(mask))
        empty = solver.remap_gram(cache._replace(ok=jnp.asarray(False)), jnp.asarray(idx, jnp.int32), jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(out.feat), [2, 7, -1, 5, -1, 9, -1, -1])
    pos = {f: i for i, f in enumerate(feat_old) if f >= 0}
    expected = np.zeros((k, k))
    for i, fi in enumerate(np.asarray(out.feat)):
        for j, fj in enumerate(np.asarray(out.feat)):
            if fi >= 0 and fj >= 0:
                expected[i, j] = G_old[pos[fi], pos[fj]]
    np.testing.assert_array_equal(np.asarray(out.G), expected)
    assert np.all(np.asarray(empty.feat) == -1) and not np.any(np.asarray(empty.G))


def _case(seed=1, n=300, k=40, m=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    X[:, 1] = X[:, 0] + 0.5 * rng.standard_normal(n)
    X = (X - X.mean(0)) / X.std(0)
    XT = np.where(np.arange(k)[:, None] < m, X.T, 0.0)
    mask = np.arange(k) < m
    beta = np.zeros(k)
    beta[:5] = [1.0, -0.8, 0.6, 0.5, -0.4]
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    lam = 0.01
    ws = solver.WorkingSet(jnp.asarray(XT), jnp.asarray(np.where(mask, lam, 0.0)), jnp.zeros(k),
                           jnp.asarray(mask), jnp.asarray(m, jnp.int32))
    idx = jnp.asarray(rng.permutation(1000)[:k], jnp.int32)  # the slots' (arbitrary) features
    return ws, jnp.asarray(y), jnp.full(n, 1.0 / n), idx


def _gram_at(ws, v):
    sv = jnp.sum(v)
    XcT = jnp.where(ws.mask[:, None], ws.XT - ((ws.XT @ v) / sv)[:, None], 0.0)
    return (XcT * v[None, :]) @ XcT.T


def _solve(ws, y, w, b, b0, idx=None, cache=None, max_iter=200):
    eta = b0 + b @ ws.XT
    fn = jax.jit(lambda b, b0, eta, cache: solver.newton_solve(
        ws, y, w, b, b0, eta, jnp.asarray(1e-12), jnp.asarray(max_iter), jnp.asarray(10000), jnp.asarray(0), True, (),
        jnp.asarray(-0.05), family=BINOMIAL, idx=idx, cache=cache))
    return fn(b, b0, eta, cache)


def test_a_kept_gram_is_reused_extended_and_replaced_and_the_solution_stays():
    with precision_scope(np.float64):
        ws, y, w, idx = _case()
        ref = _solve(ws, y, w, jnp.zeros(40), jnp.zeros(()))
        assert int(ref.status) == 0 and float(ref.kkt) <= 1e-12 and ref.cache is None
        v_ref = BINOMIAL.irls_weights(ref.eta, y, w)
        # Start near the solution, with a Gram formed at the solution's weights that holds only
        # the first 25 of the 30 slots in use: the steps reuse it (the weights are within the
        # drift) after adding the five missing rows at those weights.
        held = jnp.arange(40) < 25
        G_held = jnp.where(held[:, None] & held[None, :], _gram_at(ws, v_ref), 0.0)
        cache = solver.GramCache(G_held, jnp.where(held, idx, -1), v_ref, jnp.sum(v_ref), jnp.asarray(True))
        near = _solve(ws, y, w, 0.97 * ref.b, ref.b0, idx, cache)
        # The same Gram, kept from weights far from these (the intercept-only fit's): replaced.
        v_far = BINOMIAL.irls_weights(jnp.full(ws.XT.shape[1], 3.0), y, w)
        far_cache = cache._replace(v=v_far, sv=jnp.sum(v_far))
        far = _solve(ws, y, w, 0.9 * ref.b, ref.b0, idx, far_cache)
        first = _solve(ws, y, w, 0.9 * ref.b, ref.b0, idx, far_cache, max_iter=1)
        v_start = BINOMIAL.irls_weights(ref.b0 + (0.9 * ref.b) @ ws.XT, y, w)
        G_full = _gram_at(ws, v_ref)
    for out in (near, far):
        assert int(out.status) == 0 and float(out.kkt) <= 1e-12
        np.testing.assert_allclose(np.asarray(out.b), np.asarray(ref.b), rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(np.asarray(out.cache.feat), np.where(np.asarray(ws.mask), np.asarray(idx), -1))
    # Reused throughout: the kept weights (with their own sum: one model), and the missing rows
    # formed at them.
    np.testing.assert_array_equal(np.asarray(near.cache.v), np.asarray(v_ref))
    assert float(near.cache.sv) == float(cache.sv)
    np.testing.assert_allclose(np.asarray(near.cache.G), np.asarray(G_full), rtol=1e-12, atol=1e-14)
    # Replaced: a Gram at the weights of an iterate (near the solution's), not the kept far ones.
    def drift(v):
        return np.max(np.abs(np.asarray(v) - np.asarray(v_ref)) / np.asarray(v_ref))

    assert drift(far.cache.v) < 0.5 * drift(v_far)
    # ... already at the first step, by the drift test (not only after a poor step on it).
    np.testing.assert_allclose(np.asarray(first.cache.v), np.asarray(v_start), rtol=1e-12)


def test_rows_added_in_float32_leave_the_kept_gram_exactly_symmetric(monkeypatch):
    """Where two entering features meet, the two float32 products round differently; the exact
    solve reads one triangle and its check the full rows, so the kept Gram must stay exactly
    symmetric or no exact solve passes below the asymmetry (~1e-8)."""
    monkeypatch.setattr(solver, "_F32_GRAM_MIN", 1)  # float32 rows at this small capacity
    with precision_scope(np.float64):
        ws, y, w, idx = _case()
        ref = _solve(ws, y, w, jnp.zeros(40), jnp.zeros(()))
        v_ref = BINOMIAL.irls_weights(ref.eta, y, w)
        held = jnp.arange(40) < 20  # ten of the thirty slots in use enter
        G_held = jnp.where(held[:, None] & held[None, :], _gram_at(ws, v_ref), 0.0)
        cache = solver.GramCache(G_held, jnp.where(held, idx, -1), v_ref, jnp.sum(v_ref), jnp.asarray(True))
        out = _solve(ws, y, w, 0.97 * ref.b, ref.b0, idx, cache)
    G = np.asarray(out.cache.G)
    np.testing.assert_array_equal(np.asarray(out.cache.v), np.asarray(v_ref))  # the rows were added
    np.testing.assert_array_equal(G, G.T)
    assert int(out.status) == 0 and float(out.kkt) <= 1e-12


def test_a_kept_gram_that_makes_poor_progress_is_replaced_at_no_iteration():
    """A kept Gram 100x too large (the weights within the drift: reused) makes a step of 1% of
    Newton's: the next step forms a new Gram, and the poor step does not count against
    ``max_iter`` -- with ``max_iter`` 1 the one counted step is the one on the new Gram."""
    with precision_scope(np.float64):
        ws, y, w, idx = _case()
        ref = _solve(ws, y, w, jnp.zeros(40), jnp.zeros(()))
        v_ref = BINOMIAL.irls_weights(ref.eta, y, w)
        G_bad = 100.0 * _gram_at(ws, v_ref)
        cache = solver.GramCache(G_bad, jnp.where(ws.mask, idx, -1), v_ref, jnp.sum(v_ref), jnp.asarray(True))
        out = _solve(ws, y, w, 0.97 * ref.b, ref.b0, idx, cache)
        one = _solve(ws, y, w, 0.97 * ref.b, ref.b0, idx, cache, max_iter=1)
        G_at_own = _gram_at(ws, out.cache.v)
    assert int(out.status) == 0 and float(out.kkt) <= 1e-12
    np.testing.assert_allclose(np.asarray(out.b), np.asarray(ref.b), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(out.cache.G), np.asarray(G_at_own), rtol=1e-10, atol=1e-14)
    assert int(one.it) == 1
    assert not np.allclose(np.asarray(one.cache.G), np.asarray(G_bad), rtol=0.5)


def _kernel_path(X, y, lam, batched):
    """Standardised coefficients (L, p) and statuses of the kernels' path, traced afresh."""
    from jaxlasso._engine import design_arrays
    from kernels import Problem, Settings, fresh_state
    from kernels.batched import lanes_solver, single_solver

    n, p = X.shape
    L = len(lam)
    settings = Settings(jnp.asarray(1e-10), jnp.asarray(200, jnp.int32), jnp.asarray(10000, jnp.int32),
                        jnp.asarray(False))
    arrays = design_arrays(X, jnp.float64)
    if batched:
        problem = Problem(*arrays, jnp.asarray(y[None]), jnp.ones((1, n)), jnp.ones(p), jnp.asarray(1.0))
        fn = lanes_solver.__wrapped__(k=p, fit_intercept=True, standardize=True, keep_eta=False, y_batched=True)
        out, _, _ = fn(problem, jnp.asarray(lam), fresh_state(p, jnp.float64, (1,)), jnp.asarray([0], jnp.int32),
                       jnp.asarray([L], jnp.int32), settings, jnp.asarray([True]))
    else:
        problem = Problem(*arrays, jnp.asarray(y), jnp.ones(n), jnp.ones(p), jnp.asarray(1.0))
        fn = single_solver.__wrapped__(k=p, fit_intercept=True, standardize=True)
        out, _, _ = fn(problem, jnp.asarray(lam), fresh_state(p, jnp.float64), jnp.asarray(0, jnp.int32),
                       jnp.asarray(L, jnp.int32), settings, jnp.asarray(True))
    coef = np.zeros((L, p))
    idx, ws_coef = np.asarray(out.ws_idx).reshape(L, -1), np.asarray(out.ws_coef).reshape(L, -1)
    for i in range(L):
        np.add.at(coef[i], idx[i], ws_coef[i])
    return coef, np.asarray(out.status).reshape(L)


@pytest.mark.parametrize("n, batched, kept", [(60, False, True), (59, False, False), (60, True, False)])
def test_the_path_keeps_the_gram_for_one_lane_where_rows_outnumber_slots_three_to_one(monkeypatch, n, batched, kept):
    """The static rule ``solver.keeps_gram`` that ``solve_path`` applies: one lane,
    k >= _GRAM_CACHE_MIN, n >= _GRAM_CACHE_ROWS k (here 20 slots: 60 rows keep it, 59 do not);
    vmapped lanes never keep it. A kept Gram gives the coefficients of a path that forms it at
    every step."""
    import kernels.path as kpath
    from helpers import synthetic

    X, y = synthetic(n, 20, seed=4)
    lam = np.geomspace(0.2, 0.002, 12)
    seen = []
    real = kpath.newton_solve

    def spy(*args, **kw):
        seen.append(kw.get("cache") is not None)
        return real(*args, **kw)

    monkeypatch.setattr(kpath, "newton_solve", spy)
    with precision_scope(np.float64):
        monkeypatch.setattr(solver, "_GRAM_CACHE_MIN", 16)
        coef, status = _kernel_path(X, y, lam, batched)
        uses = list(seen)
        monkeypatch.setattr(solver, "_GRAM_CACHE_MIN", 10**9)
        ref, ref_status = _kernel_path(X, y, lam, batched)
    assert uses and all(u == kept for u in uses)
    assert np.all(status == 0) and np.all(ref_status == 0)
    assert np.count_nonzero(coef[-1]) > 5
    np.testing.assert_allclose(coef, ref, rtol=1e-7, atol=1e-9)
