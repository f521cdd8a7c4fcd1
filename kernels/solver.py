"""Proximal-Newton solver for one lambda on a fixed working set.

This is glmnet's own outer loop (a quadratic approximation of the log-likelihood, minimised by
coordinate descent) made safe by a line search on the true objective:

1. at the current point ``(b0, b)`` compute the loss gradient ``g`` and the IRLS weights
   ``v = w * p * (1 - p)``;
2. minimise the penalised quadratic model
   ``g.d + g0 d0 + 1/2 ||d0 + X d||_v^2 + P(b + d)`` by cyclic coordinate descent over the
   working-set slots in use (and the unpenalised intercept);
3. backtrack along ``d`` until the true objective decreases by a fraction of the model's
   predicted decrease (Armijo); the loss change is computed term by term without
   cancellation (``losses.loss_change``), so the test stays meaningful at 1e-15 relative;
4. stop when the KKT gap on the working set is <= tol.

Everything is a pure function of arrays: it runs under ``jit`` and ``vmap`` (lanes advance in
lockstep; a finished lane's state is frozen by ``while_loop``'s batching rule).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from . import kkt, losses, prox
from ._types import Array, Status


class WorkingSet(NamedTuple):
    """The standardised columns of the working set and their penalty strengths."""

    XT: Array
    """(k, n) standardised columns, transposed (rows of unused slots are zero)."""
    a1: Array
    """(k,) L1 strengths ``lambda * pf * l1_ratio`` (0 for unused slots)."""
    a2: Array
    """(k,) L2 strengths ``lambda * pf * (1 - l1_ratio)``."""
    mask: Array
    """(k,) bool: the slot holds a feature."""
    m: Array
    """() int32: slots ``0..m-1`` are in use (they come first)."""


class NewtonState(NamedTuple):
    b: Array  # (k,)
    b0: Array  # ()
    eta: Array  # (n,)
    g: Array  # (k,) loss gradient on the working set
    g0: Array  # () loss gradient for the intercept
    kkt: Array  # () KKT gap on the working set
    it: Array  # () Newton iterations so far
    status: Array  # () int32


# Armijo constant and the number of halvings of the step before giving up on a direction.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40


def _gradients(ws: WorkingSet, eta: Array, y: Array, w: Array, fit_intercept: bool):
    r = losses.residual(eta, y, w)
    g = ws.XT @ r
    g0 = jnp.sum(r) if fit_intercept else jnp.zeros((), eta.dtype)
    return g, g0


def _cd(G: Array, q: Array, c: Array, h: Array, a1: Array, a2: Array, mask: Array, m: Array,
        tol: Array, max_sweeps: Array):
    """Cyclic coordinate descent on ``1/2 c'Gc - ... `` given its gradient ``q`` at ``c``.

    ``q`` is the gradient of the smooth part of the model at ``c``; each coordinate update
    refreshes it with one column of ``G`` (O(k)). Sweeps stop when the largest change of a
    coordinate's gradient, ``|delta| * (h + a2)``, is <= ``tol``.
    """

    def coordinate(j, carry):
        c, q, worst = carry
        new = prox.coordinate_update(c[j], q[j], h[j], a1[j], a2[j])
        new = jnp.where(mask[j], new, 0.0)
        delta = new - c[j]
        q = q + delta * G[:, j]
        worst = jnp.maximum(worst, jnp.abs(delta) * (h[j] + a2[j]))
        return c.at[j].set(new), q, worst

    def sweep(carry):
        c, q, _, s = carry
        c, q, worst = lax.fori_loop(0, m, coordinate, (c, q, jnp.zeros((), c.dtype)))
        return c, q, worst, s + 1

    def not_done(carry):
        return (carry[2] > tol) & (carry[3] < max_sweeps)

    init = (c, q, jnp.asarray(jnp.inf, c.dtype), jnp.zeros((), jnp.int32))
    c, q, _, sweeps = lax.while_loop(not_done, sweep, init)
    return c, q, sweeps


def _polish(G: Array, lin: Array, b: Array, c: Array, a1: Array, a2: Array, mask: Array,
            tol: Array):
    """Solve the model exactly on the support and signs of ``c`` (one linear solve).

    With the support ``A`` and signs ``s`` fixed the model is a smooth quadratic whose
    minimiser solves ``(G_AA + diag(a2_A)) c_A = (G b)_A - lin_A - a1_A s_A``. The candidate is
    kept only if it is the model's minimiser: same signs on ``A`` and ``|q_j| <= a1_j + tol``
    off it. Coordinate descent then needs only to find the support, not to converge on it.
    """
    active = mask & (c != 0)
    s = jnp.sign(c)
    both = active[:, None] & active[None, :]
    M = jnp.where(both, G, 0.0) + jnp.diag(jnp.where(active, a2, 1.0))
    rhs = jnp.where(active, G @ b - lin - a1 * s, 0.0)
    # LU rather than Cholesky + two triangular solves: same answer on this small SPD system and
    # about 0.3 s less XLA compile time per executable. A singular system gives non-finite
    # values and the candidate is rejected below.
    sol = jnp.where(active, jnp.linalg.solve(M, rhs), 0.0)
    q = lin + G @ (sol - b)
    signs_ok = jnp.all(jnp.where(active, sol * s > 0, True))
    off_ok = jnp.all(jnp.where(mask & ~active, jnp.abs(q) <= a1 + tol, True))
    on_ok = jnp.all(jnp.where(active, jnp.abs(q + a2 * sol + a1 * s) <= tol, True))
    valid = signs_ok & off_ok & on_ok & jnp.all(jnp.isfinite(sol))
    return sol, q, valid


def newton_solve(ws: WorkingSet, y: Array, w: Array, b: Array, b0: Array, eta: Array,
                 tol: Array, max_iter: Array, max_sweeps: Array, it0: Array,
                 fit_intercept: bool, sync_axes: tuple[str, ...] = ()) -> NewtonState:
    """Minimise the penalised weighted logistic loss over the working set.

    ``eta`` must equal ``b0 + XT.T @ b`` on entry. ``it0`` counts iterations already spent on
    this lambda (earlier KKT rounds) against ``max_iter``.

    ``sync_axes`` names the vmap axes this call is batched over. The coordinate loop then runs to
    the largest slot count of all lanes, an *unbatched* bound: a loop bound that differs per lane
    would make vmap turn the loop counter into a batched value and every ``c[j]`` into a
    gather/scatter, several times slower. Slots past a lane's own count are masked no-ops.
    """
    m_loop = lax.pmax(ws.m, sync_axes) if sync_axes else ws.m
    g, g0 = _gradients(ws, eta, y, w, fit_intercept)
    gap0 = kkt.gap(g, b, ws.a1, ws.a2, ws.mask, g0)

    def cond(s: NewtonState):
        return (s.kkt > tol) & (s.it < max_iter) & (s.status == Status.CONVERGED)

    def body(s: NewtonState) -> NewtonState:
        v = losses.irls_weights(s.eta, w)
        sv = jnp.maximum(jnp.sum(v), jnp.finfo(v.dtype).tiny)
        # Eliminate the unpenalised intercept from the model: its optimal step given d is
        # d0 = -(g0 + v'X d) / sum(v), which leaves a model in d alone on the v-centred
        # columns. This removes the intercept-coordinate coupling that slows coordinate descent.
        if fit_intercept:
            xbar = (ws.XT @ v) / sv
            XcT = ws.XT - xbar[:, None]
            lin = s.g - s.g0 * xbar
        else:
            XcT = ws.XT
            lin = s.g
        XcT = jnp.where(ws.mask[:, None], XcT, 0.0)
        G = (XcT * v[None, :]) @ XcT.T
        h = jnp.diagonal(G)
        h = jnp.maximum(h, 1e-30 * jnp.max(h, initial=0.0) + jnp.finfo(h.dtype).tiny)
        # Solve the model to an accuracy that tracks the outer KKT gap (inexact Newton):
        # loose far from the optimum, quadratic-rate tight close to it.
        inner_tol = jnp.maximum(0.1 * tol, jnp.minimum(0.1 * s.kkt, s.kkt * s.kkt))
        loose = jnp.maximum(inner_tol, 0.1 * s.kkt)
        c, q, _ = _cd(G, lin, s.b, h, ws.a1, ws.a2, ws.mask, m_loop, loose, max_sweeps)
        pol, _, valid = _polish(G, lin, s.b, c, ws.a1, ws.a2, ws.mask, inner_tol)

        # If the polished point is not the model's minimiser, finish with coordinate descent.
        # (A tolerance of inf makes the loop run zero sweeps: unlike lax.cond, this costs
        # nothing under vmap, where both branches of a cond would execute.)
        refine_tol = jnp.where(valid, jnp.inf, inner_tol)
        c2, _, _ = _cd(G, q, c, h, ws.a1, ws.a2, ws.mask, m_loop, refine_tol, max_sweeps)
        c = jnp.where(valid, pol, c2)
        d = c - s.b
        if fit_intercept:
            d0 = -(s.g0 / sv) - jnp.dot(xbar, d)
        else:
            d0 = jnp.zeros((), d.dtype)
        u = d0 + d @ ws.XT
        predicted = jnp.dot(s.g, d) + s.g0 * d0 + prox.penalty_change(s.b, c, ws.a1, ws.a2)

        def change_at(t):
            return (losses.loss_change(s.eta, t * u, y, w)
                    + prox.penalty_change(s.b, s.b + t * d, ws.a1, ws.a2))

        def ls_cond(carry):
            t, k, ok = carry
            return (~ok) & (k < _MAX_HALVINGS)

        def ls_body(carry):
            t, k, _ = carry
            t = 0.5 * t
            return t, k + 1, change_at(t) <= _ARMIJO * t * predicted

        ok1 = change_at(jnp.ones((), b.dtype)) <= _ARMIJO * predicted
        t, _, ok = lax.while_loop(ls_cond, ls_body, (jnp.ones((), b.dtype), jnp.zeros((), jnp.int32), ok1))
        # A direction along which nothing decreases means the model is already solved to
        # rounding error: keep the point (t = 0) and let the KKT test decide.
        t = jnp.where(ok, t, 0.0)
        nb = s.b + t * d
        nb0 = s.b0 + t * d0
        neta = s.eta + t * u
        ng, ng0 = _gradients(ws, neta, y, w, fit_intercept)
        gap = kkt.gap(ng, nb, ws.a1, ws.a2, ws.mask, ng0)
        finite = jnp.isfinite(gap) & jnp.all(jnp.isfinite(neta))
        status = jnp.where(finite, Status.CONVERGED, Status.NONFINITE).astype(jnp.int32)
        # Stalled (no acceptable step and no progress): stop rather than spin to max_iter.
        stalled = (~ok) & (gap >= s.kkt)
        it = jnp.where(stalled, max_iter, s.it + 1)
        return NewtonState(nb, nb0, neta, ng, ng0, gap, it, status)

    init = NewtonState(b, b0, eta, g, g0, gap0, it0, jnp.asarray(Status.CONVERGED, jnp.int32))
    return lax.while_loop(cond, body, init)
