"""When the Newton loop stops (``solver.newton_solve``): at tol / 10, or at tol after a step whose
estimate of the objective left is negligible -- never at a warm start that merely sits within tol,
which is where a bare KKT test let a flat objective end far above its optimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlasso._engine import precision_scope
from kernels import solver
from kernels.families import BINOMIAL
from test_gram_cache import _case


def _solver(ws, y, w):
    # A new function per call: the module's stopping settings are read while it is traced.
    return jax.jit(lambda b, b0, tol, max_iter: solver.newton_solve(
        ws, y, w, b, b0, b0 + b @ ws.XT, tol, max_iter, jnp.asarray(10000), jnp.asarray(0), True, (),
        family=BINOMIAL))


def _solve(ws, y, w, b, b0, tol, max_iter=200):
    return _solver(ws, y, w)(b, b0, jnp.asarray(tol), jnp.asarray(max_iter))


def _warm_start_within(ws, y, w, ref, lo, hi):
    """A point on the segment from 0 to the solution whose KKT gap lies in (lo, hi]."""
    gap_at = _solver(ws, y, w)  # with no iterations: the starting point's gap
    for s in np.geomspace(1e-2, 1e-6, 60):
        b = (1 - s) * ref.b
        gap = float(gap_at(b, ref.b0, jnp.asarray(1.0), jnp.asarray(0)).kkt)
        if lo < gap <= hi:
            return b, gap
    raise AssertionError("no start with a gap in the band")


def test_a_warm_start_within_tol_takes_a_step(monkeypatch):
    with precision_scope(np.float64):
        ws, y, w, _ = _case()
        ref = _solve(ws, y, w, jnp.zeros(40), jnp.zeros(()), 1e-12)
        assert int(ref.status) == 0 and float(ref.kkt) <= 1e-12
        b, gap0 = _warm_start_within(ws, y, w, ref, 2e-6, 9e-6)
        out = _solve(ws, y, w, b, ref.b0, 1e-5)
        # No estimate without a step: the loop goes on below tol, where it stops at tol / 10 or
        # once a step settles the objective -- always with at least one step.
        assert int(out.it) >= 1 and float(out.kkt) < gap0 and float(out.kkt) <= 1e-5
        assert float(out.kkt) <= 1e-6 or bool(out.settled)
        # A bare KKT test (_STRICT = 1) would have stopped where it started.
        monkeypatch.setattr(solver, "_STRICT", 1.0)
        bare = _solve(ws, y, w, b, ref.b0, 1e-5)
    assert int(bare.it) == 0 and float(bare.kkt) == gap0


def test_the_estimate_ends_the_loop_within_tol_and_is_conservative(monkeypatch):
    """From a start far from the solution, the default stops once a step's estimate says less
    than 1e-8 of the loss is left -- and the objective left there is indeed below that."""
    with precision_scope(np.float64):
        ws, y, w, _ = _case()
        ref = _solve(ws, y, w, jnp.zeros(40), jnp.zeros(()), 1e-12)
        b, _ = _warm_start_within(ws, y, w, ref, 1e-4, 1e-2)
        out = _solve(ws, y, w, b, ref.b0, 1e-5)
        monkeypatch.setattr(solver, "_SUBOPT_RTOL", 0.0)
        strict = _solve(ws, y, w, b, ref.b0, 1e-5)

        def objective(s):
            return float(BINOMIAL.loss(s.eta, y, w) + jnp.sum(ws.a1 * jnp.abs(s.b)))

        excess = objective(out) - objective(ref)
        loss = float(BINOMIAL.loss(out.eta, y, w))
    assert float(strict.kkt) <= 1e-6
    # Ended by the estimate (within tol, above tol / 10), a step before the strict loop.
    assert 1e-6 < float(out.kkt) <= 1e-5 and bool(out.settled) and int(out.it) < int(strict.it)
    assert excess <= 1e-8 * loss
