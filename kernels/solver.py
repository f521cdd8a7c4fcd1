"""Proximal-Newton solver for one lambda on a fixed working set.

This is glmnet's own outer loop (a quadratic approximation of the log-likelihood, minimised by
coordinate descent) made safe by a line search on the true objective:

1. at the current point ``(b0, b)`` compute the loss gradient ``g`` and the IRLS weights ``v``
   (the family's Hessian diagonal in ``eta``; binomial: ``w * p * (1 - p)``);
2. minimise the penalised quadratic model
   ``g.d + g0 d0 + 1/2 ||d0 + X d||_v^2 + P(b + d)`` by cyclic coordinate descent over the
   working-set slots in use (and the unpenalised intercept), with exact solves on its support;
   the model's Hessian is the k x k Gram, or -- on a working set several times wider than the
   data has rows -- its n-row factor (:class:`LowRank`);
3. backtrack along ``d`` until the true objective decreases by a fraction of the model's
   predicted decrease (Armijo); the loss change is computed term by term without
   cancellation (the family's ``loss_change``), so the test stays meaningful at 1e-15 relative;
4. stop when the KKT gap on the working set is <= tol / 10, or <= tol once the last step's
   estimate of the objective left above the optimum is negligible (``_SUBOPT_RTOL``; in float32
   at tol).

Everything is a pure function of arrays: it runs under ``jit`` and ``vmap`` (lanes advance in
lockstep; a finished lane's state is frozen by ``while_loop``'s batching rule).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg  # noqa: F401  (cho_solve)
from jax import lax

from . import kkt, prox
from .families import BINOMIAL
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


class GramCache(NamedTuple):
    """The Newton model's Gram of one lane, kept across Newton steps, KKT rounds and lambdas.

    ``G`` is ``XcT diag(v) XcT^T`` on the standardised columns of the features ``feat`` (slot
    order), centred by the ``v``-weighted means when there is an intercept. It stays a valid
    quadratic model of the loss -- a positive semidefinite Hessian approximation -- for any
    later point: the gradient, the line search and the KKT test always use the current point,
    so a stale ``G`` changes how fast the solver converges, never where to.
    """

    G: Array
    """(k, k) the Gram (rows and columns of slots without a feature are zero)."""
    feat: Array
    """(k,) int32 the feature of each row of ``G``; -1 for none."""
    v: Array
    """(n,) the IRLS weights ``G`` was formed with."""
    sv: Array
    """() their sum."""
    ok: Array
    """() bool: ``G`` holds a Gram (False: form one at the first step)."""


def empty_gram_cache(k: int, n: int, dtype) -> GramCache:
    """A :class:`GramCache` that holds nothing (the first Newton step forms the Gram)."""
    return GramCache(jnp.zeros((k, k), dtype), jnp.full((k,), -1, jnp.int32), jnp.zeros((n,), dtype),
                     jnp.zeros((), dtype), jnp.asarray(False))


class LowRank(NamedTuple):
    """The Newton model's Hessian ``Z^T Z`` held as its factor ``ZT = Z^T`` (k, n): the centred
    working-set columns scaled by ``sqrt(v)``, rows of unused slots zero.

    Where the working set has several times more slots than the data has rows, the k x k Gram
    is a rank-n matrix that costs k^2 n to form, k^2 per coordinate-descent sweep and up to k^3
    to factorise; through its factor a sweep costs 2 k n (glmnet's "naive" updates), a product
    2 k n, and an exact solve on a support larger than n goes through an n x n system
    (:func:`_low_rank_solve`). The model is the same quadratic in the data's precision (no
    float32 Gram); only the Woodbury system of one float64 lane is factorised in float32, its
    solutions refined in float64.
    """

    ZT: Array


def _model_matvec(model, x: Array) -> Array:
    """The model Hessian times ``x``."""
    if isinstance(model, LowRank):
        return model.ZT @ (x @ model.ZT)
    return model @ x


class NewtonState(NamedTuple):
    b: Array  # (k,)
    b0: Array  # ()
    eta: Array  # (n,)
    g: Array  # (k,) loss gradient on the working set
    g0: Array  # () loss gradient for the intercept
    kkt: Array  # () KKT gap on the working set
    it: Array  # () Newton iterations so far
    status: Array  # () int32
    pred: Array  # (k,) predicted change of b for the next lambda (zero if unavailable)
    pred0: Array  # () the matching change of the intercept
    cache: GramCache | None = None  # the Gram the last step used (None: not kept)
    fresh: Array | None = None  # () bool: the next step must form a new Gram
    settled: Array | None = None  # () bool: the last step left a negligible objective to gain


# Armijo constant and the number of halvings of the step before giving up on a direction.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40


def _gradients(ws: WorkingSet, eta: Array, y: Array, w: Array, fit_intercept: bool, family):
    r = family.residual(eta, y, w)
    g = ws.XT @ r
    g0 = jnp.sum(r) if fit_intercept else jnp.zeros((), eta.dtype)
    return g, g0


def _cd(G: Array, q: Array, c: Array, h: Array, a1: Array, a2: Array, mask: Array, m: Array,
        tol: Array, max_sweeps: Array):
    """Cyclic coordinate descent on the penalised quadratic model with Gram matrix ``G``.

    ``q`` is the gradient of the model's smooth part at ``c``; each coordinate update refreshes
    it with one row of ``G`` (O(k)). Sweeps stop when the largest change of a coordinate's
    gradient, ``|delta| * (h + a2)``, is <= ``tol``, or after ``max_sweeps``.
    """

    def coordinate(j, carry):
        c, q, worst = carry
        new = prox.coordinate_update(c[j], q[j], h[j], a1[j], a2[j])
        new = jnp.where(mask[j], new, 0.0)
        delta = new - c[j]
        q = q + delta * G[j]  # G is symmetric: a row is the column, and contiguous
        worst = jnp.maximum(worst, jnp.abs(delta) * (h[j] + a2[j]))
        return c.at[j].set(new), q, worst

    return _sweeps(coordinate, c, q, m, tol, max_sweeps)


def _sweeps(coordinate, c: Array, aux: Array, m: Array, tol: Array, max_sweeps: Array):
    """Cyclic sweeps of ``coordinate(j, (c, aux, worst)) -> (c, aux, worst)`` over the slots
    ``0..m-1`` until a sweep's ``worst`` is <= ``tol`` or after ``max_sweeps``; returns
    ``(c, aux, worst, sweeps)``."""

    def sweep(carry):
        c, aux, _, s = carry
        c, aux, worst = lax.fori_loop(0, m, coordinate, (c, aux, jnp.zeros((), c.dtype)))
        return c, aux, worst, s + 1

    def not_done(carry):
        return (carry[2] > tol) & (carry[3] < max_sweeps)

    return lax.while_loop(not_done, sweep, (c, aux, jnp.asarray(jnp.inf, c.dtype), jnp.zeros((), jnp.int32)))


def _cd_low_rank(ZT: Array, q: Array, c: Array, h: Array, a1: Array, a2: Array, mask: Array, m: Array,
                 tol: Array, max_sweeps: Array):
    """:func:`_cd` on the model ``Z^T Z`` given by its factor ``ZT`` (:class:`LowRank`).

    Carries ``u = Z (c - c_entry)`` (n values) instead of the gradient: a coordinate's gradient
    is ``q_entry[j] + ZT[j] . u`` and its update moves ``u`` by ``delta * ZT[j]`` -- 2 n flops
    where a Gram row costs k. Same stopping rule and return values as :func:`_cd`.
    """
    q_in = q

    def coordinate(j, carry):
        c, u, worst = carry
        zj = ZT[j]
        new = prox.coordinate_update(c[j], q_in[j] + jnp.dot(zj, u), h[j], a1[j], a2[j])
        new = jnp.where(mask[j], new, 0.0)
        delta = new - c[j]
        worst = jnp.maximum(worst, jnp.abs(delta) * (h[j] + a2[j]))
        return c.at[j].set(new), u + delta * zj, worst

    c, u, worst, sweeps = _sweeps(coordinate, c, jnp.zeros(ZT.shape[1:], c.dtype), m, tol, max_sweeps)
    return c, q_in + ZT @ u, worst, sweeps


# Active-set corrections per exact-solve attempt, and CD sweeps between attempts.
_ACTIVE_SET_ROUNDS = 4
_SWEEPS_PER_POLISH = 8
# Singular supports (_polish): primal steps (False: active-set steps only, as under vmap), how
# many rounds they add to the active-set rounds, and the eigenvalue (relative to the support's
# largest diagonal entry) below which a singular system's direction counts as null.
_PRIMAL_STEPS = True
_PRIMAL_ROUNDS = 8
_NULL_EIGEN = 1e-11


# The exact solves' sizes below the capacity k, in eighths of k (see solve_levels).
_SOLVE_LEVELS_EIGHTHS = (2, 4, 6)


def solve_levels(k: int, batched: bool) -> tuple[int, ...]:
    """Sizes of the exact solves on a working set of ``k`` slots (static, ascending).

    A support of ``a`` features is solved on the smallest level >= ``a`` (its slots gathered to
    the front), so the Cholesky factorisation costs ``level^3`` instead of ``k^3``: right after a
    capacity grows, the support fills a fraction of the slots. Under ``vmap`` (``batched``) one
    size: a level that differs per lane would make ``lax.switch`` run every branch.
    """
    return _levels_in_eighths(k, batched, _SOLVE_LEVELS_EIGHTHS)


def _levels_in_eighths(k: int, batched: bool, eighths: tuple[int, ...]) -> tuple[int, ...]:
    """``k`` and the given eighths of it, rounded up (ascending); just ``k`` under ``vmap`` or
    below 64 slots, where one program size serves every lane or the levels would save little."""
    if batched or k < 64:
        return (k,)
    return tuple(sorted({-(-k * q // 8) for q in eighths} | {k}))


# The Gram's sizes below the capacity k, in eighths of k (see gram_levels_for).
_GRAM_LEVELS_EIGHTHS = (2, 4, 5, 6, 7)


def gram_levels_for(k: int, batched: bool) -> tuple[int, ...]:
    """Sizes the Newton model's Gram is formed on for a working set of ``k`` slots (static).

    The Gram must cover every slot in use (coordinate descent may move any of them), and the
    strong rule keeps more slots in use than the support holds -- typically 60-90% of the
    capacity -- so these levels are finer than :func:`solve_levels` near the top, where a
    level costs level^2 n. Each level is one small branch (a product and a pad); under ``vmap``
    one size, as for the solve levels.
    """
    return _levels_in_eighths(k, batched, _GRAM_LEVELS_EIGHTHS)


# Size of an exact solve's system (its level) from which one lane factorises a float64 model in
# float32 (see _mixed_solve); below it the refinement costs about what float32 saves.
_F32_FACTOR_MIN = 768

# Refinement steps of an approximate solve at most (see _refine).
_REFINE_STEPS = 10


def _refine(solve, matvec, rhs: Array, target: Array):
    """``x ~ M^-1 rhs`` by an approximate inverse ``solve`` and iterative refinement
    ``x += solve(rhs - M x)`` (``matvec``: ``M x``), stopping once every residual is <= ``target``
    or when a step no longer halves the largest one. Returns ``x`` and that residual (inf if not
    finite)."""

    def worst(r):
        e = jnp.max(jnp.abs(r))
        return jnp.where(jnp.isfinite(e), e, jnp.inf)

    def cond(st):
        _, _, e, e_prev, i = st
        return (e > target) & (e < 0.5 * e_prev) & (i < _REFINE_STEPS)

    def body(st):
        x, r, e, _, i = st
        x = x + solve(r)
        r = rhs - matvec(x)
        return x, r, worst(r), e, i + 1

    x0 = solve(rhs)
    r0 = rhs - matvec(x0)
    x, _, e, _, _ = lax.while_loop(cond, body, (x0, r0, worst(r0), jnp.asarray(jnp.inf, rhs.dtype),
                                                jnp.zeros((), jnp.int32)))
    return x, e


def _mixed_solve(M32: Array, matvec, full, rhs: Array, drhs, target: Array):
    """``M^-1 rhs`` and ``M^-1 drhs(M^-1 rhs)`` for a float64 symmetric positive definite ``M``
    (``M32``: ``M`` rounded to float32; ``matvec(x)``: ``M x`` in float64 for the vectors met
    here; ``full()``: ``M``), by a float32 Cholesky factor and iterative refinement in float64.

    The factorisation is the k^3 part of an exact solve and runs ~1.8x faster in float32; the
    refinement -- ``x += L^-T L^-1 (rhs - M x)``, k^2 each -- brings the solution to float64
    accuracy while ``cond(M)`` is well below 1/eps(float32). It stops once every residual is
    <= ``target`` (the caller's stationarity tolerance: the residual of the system on the
    support *is* the model's stationarity gap there), or when a step no longer halves it. If
    the residual is then still above ``target`` (an ill-conditioned or numerically singular
    ``M``), the system is factorised again in float64: the result meets ``target`` or is the
    float64 factorisation's (``M`` in float64 is formed only then). The second solve (the
    path predictor, a warm start) uses the float32 factor without refinement.
    """
    L = lax.linalg.cholesky(M32, symmetrize_input=False)
    dtype = rhs.dtype

    def solve32(r):
        return jax.scipy.linalg.cho_solve((L, True), r.astype(jnp.float32)).astype(dtype)

    x, e = _refine(solve32, matvec, rhs, target)

    def refined():
        return x, solve32(drhs(x))

    def exact():
        L64 = lax.linalg.cholesky(full(), symmetrize_input=False)
        x64 = jax.scipy.linalg.cho_solve((L64, True), rhs)
        return x64, jax.scipy.linalg.cho_solve((L64, True), drhs(x64))

    return lax.cond(e <= target, refined, exact)


def _polish(G: Array, lin: Array, b: Array, c: Array, a1: Array, a2: Array, mask: Array,
            tol: Array, ratio: Array, levels: tuple[int, ...], max_rounds: int = _ACTIVE_SET_ROUNDS,
            mixed: bool = False, sync_axes: tuple[str, ...] = (), with_point: bool = False,
            singular_steps: bool = True):
    """Solve the model exactly on a support, correcting the support a few times (active set).

    With the support ``A`` and signs ``s`` fixed the model is a smooth quadratic whose minimiser
    solves ``(G_AA + diag(a2_A)) c_A = (G b)_A - lin_A - a1_A s_A``. The candidate is the
    model's minimiser iff it keeps the signs on ``A`` and ``|q_j| <= a1_j`` off it. If not,
    coordinates whose sign flipped leave ``A`` and violators join it with the sign that
    decreases the model (a primal-dual active-set step), and the system is solved again.
    Starting from CD's support, this usually ends in one or two solves -- CD alone needs
    thousands of sweeps on correlated columns.

    ``G`` is the model's Gram or its :class:`LowRank` factor (then ``levels`` does not apply:
    the solve is :func:`_low_rank_solve`, with ``mixed`` for its Woodbury system and
    ``sync_axes``, the vmap axes, to skip that system when no lane needs it).

    Returns ``(c, q, valid, dc)``: the last candidate, the model gradient there, whether it is
    the model's minimiser, and the path predictor ``dc``: the change of the solution when lambda
    moves by the factor ``1 + ratio`` with the support fixed. On the support, stationarity
    ``grad + lambda * pf * (l1_ratio s + (1 - l1_ratio) c) = 0`` differentiated in lambda gives
    ``M dc = -(ratio) (a1 s + a2 c)`` with the same matrix ``M`` -- one more solve with the
    Cholesky factor already at hand.

    ``mixed`` (static): factorise systems of ``_F32_FACTOR_MIN`` or more in float32 and refine
    (:func:`_mixed_solve`).

    *Singular supports* (one lane, Gram or factor; ``_PRIMAL_STEPS``). Where columns are
    collinear -- duplicated genes, or a support as large as the rank of the data -- the system is
    singular: the factorisation gives non-finite values, the candidate shows no flips and no
    violators, and the active-set step would repeat the same solve. From the first such system
    on, the polish takes *primal* steps from a point that keeps the signs (first ``c``, CD's
    point; a polish that meets the singular system after active-set rounds restarts from it):
    move towards the candidate until the first coefficient reaches zero (the model does not rise
    on that segment: the candidate minimises it with the signs fixed) and drop that feature; when
    nothing blocks, take the candidate and let the most violating feature join. A singular
    system's candidate is the minimiser nearest the point (:func:`_nearest_minimiser`), or --
    where the model falls linearly along the null space -- the move along it past the first zero.
    The model's value never rises from step to step; drops remove dependencies until the support
    is solvable. Primal steps get ``_PRIMAL_ROUNDS`` rounds beyond ``max_rounds``. A polish that
    ends without the minimiser still hands its point to CD (``with_point``: also return that
    point -- ``c`` when no primal step was taken). Ill-conditioned supports whose factorisation
    stays finite are left to the active-set step and CD as before. A candidate from the nearest
    minimiser comes with a zero path predictor.
    """
    Gb = _model_matvec(G, b)
    k = b.shape[0]
    low_rank = isinstance(G, LowRank)

    def factor_solve(Gs, act, a1s, a2s, ss, rhs, f32=mixed):
        def system(dtype):
            return _support_system(Gs, act, a2s, dtype)

        def drhs(sol):
            return jnp.where(act, -ratio * (a1s * ss + a2s * sol), 0.0)

        # Cholesky rather than LU: the system is symmetric positive definite on the support, and
        # Cholesky costs half the flops. A singular system gives non-finite values and the
        # candidate is rejected. The factorisation reads only the lower triangle, so the default
        # symmetrisation (M + M^T) / 2 -- a k x k pass and a copy -- is skipped.
        if f32 and Gs.shape[0] >= _F32_FACTOR_MIN:
            def matvec(x):
                x = jnp.where(act, x, 0.0)
                return jnp.where(act, Gs @ x + a2s * x, x)

            # Half the stationarity tolerance: ``check`` recomputes the gap in another order.
            sol, dsol = _mixed_solve(system(jnp.float32), matvec, lambda: system(Gs.dtype),
                                     jnp.where(act, rhs, 0.0), drhs, 0.5 * tol)
            return jnp.where(act, sol, 0.0), jnp.where(act, dsol, 0.0)
        M = system(Gs.dtype)
        chol = lax.linalg.cholesky(M, symmetrize_input=False)
        sol = jnp.where(act, jax.scipy.linalg.cho_solve((chol, True), jnp.where(act, rhs, 0.0)), 0.0)
        dsol = jnp.where(act, jax.scipy.linalg.cho_solve((chol, True), drhs(sol)), 0.0)
        return sol, dsol

    def solve(active, s):
        rhs = Gb - lin - a1 * s

        def gathered(size, block, f32=mixed):
            # The support's slots first (stable), then the system of a leading block of ``size``
            # of them (``block(P)``: their Gram), solved and scattered back.
            def run():
                P = jnp.argsort(~active, stable=True)[:size]
                sol_p, dsol_p = factor_solve(block(P), active[P], a1[P], a2[P], s[P], rhs[P], f32)
                return jnp.zeros((k,), rhs.dtype).at[P].set(sol_p), jnp.zeros((k,), rhs.dtype).at[P].set(dsol_p)
            return run

        if low_rank:
            ZT = G.ZT
            # A support of at most n features: its Gram formed from the factor, in the data's
            # precision (the float32 factors are for the Gram's large levels).
            direct = gathered(min(ZT.shape), lambda P: ZT[P] @ ZT[P].T, f32=False)
            # Half the stationarity tolerance, as for the mixed solves: ``check`` recomputes the gap.
            sol, dsol = _low_rank_solve(ZT, active, a1, a2, s, rhs, ratio, 0.5 * tol, direct,
                                        mixed and _WOODBURY_F32, sync_axes)
        elif len(levels) == 1:
            sol, dsol = factor_solve(G, active, a1, a2, s, rhs)
        else:
            branch = jnp.sum(jnp.asarray(levels[:-1]) < jnp.sum(active))
            sol, dsol = lax.switch(branch, [gathered(size, lambda P: G[P[:, None], P[None, :]]) for size in levels])
        q = lin + _model_matvec(G, sol) - Gb
        return sol, q, dsol

    def check(active, s, sol, q):
        flipped = active & (sol * s <= 0)
        violating = mask & ~active & (jnp.abs(q) > a1 + tol)
        stationary = jnp.all(jnp.where(active, jnp.abs(q + a2 * sol + a1 * s) <= tol, True))
        valid = ~jnp.any(flipped) & ~jnp.any(violating) & stationary & jnp.all(jnp.isfinite(sol))
        return flipped, violating, valid

    primal_steps = _takes_primal_steps(singular_steps, sync_axes)
    if low_rank:
        # A support of at most n features, its Gram formed from the factor (as ``direct``).
        near_size, near_block = min(G.ZT.shape), lambda P: G.ZT[P] @ G.ZT[P].T
    else:
        # On the capacity, not its levels: it runs only on singular systems, and each level
        # would be one more eigendecomposition to compile.
        near_size, near_block = k, lambda P: G[P[:, None], P[None, :]]

    def cond(st):
        active, valid, r, primal = st[0], st[5], st[6], st[8]
        rounds = max_rounds + jnp.where(primal, _PRIMAL_ROUNDS, 0) if primal_steps else max_rounds
        go = ~valid & (r < rounds)
        return go & _low_rank_solvable(G.ZT, active, a2) if low_rank else go

    def body(st):
        active, s, _, _, _, _, r, point, primal = st
        sol, q, dsol = solve(active, s)
        if primal_steps:
            singular = ~jnp.all(jnp.isfinite(sol))
            # ``point`` matches the support and signs in primal mode and at the first round.
            aligned = primal | (r == 0)
            nearest = singular & aligned
            if low_rank:
                nearest = nearest & (jnp.sum(active) <= near_size)
            sol, q, dsol = lax.cond(nearest,
                                    lambda: (*_nearest_minimiser(G, Gb, lin, a1, a2, active, s, point, tol, near_size,
                                                                 near_block), jnp.zeros_like(dsol)),
                                    lambda: (sol, q, dsol))
        flipped, violating, valid = check(active, s, sol, q)
        # Active-set step.
        pd_active = jnp.where(valid, active, (active & ~flipped) | violating)
        pd_s = jnp.where(violating & ~valid, -jnp.sign(q), s)
        if not primal_steps:
            return pd_active, pd_s, sol, q, dsol, valid, r + 1, point, primal
        # Primal steps from the first singular system that a nearest minimiser covers (the
        # factor's Woodbury solves of larger supports have none: their rounds end as before).
        primal_now = primal | (singular & (nearest | ~aligned))
        # Primal step from ``point`` towards the candidate, to the first zero.
        blocking = active & (sol * s <= 0)
        gap = jnp.where(blocking, point - sol, 1.0)
        t = jnp.where(blocking, point / jnp.where(gap == 0, 1.0, gap), jnp.inf)
        tau = jnp.clip(jnp.min(t), 0.0, 1.0)
        hit = blocking & (t <= tau)
        stepped = jnp.where(hit | ~active, 0.0, point + tau * (sol - point))
        pr_active = active & ~hit
        joins = ~jnp.any(blocking) & jnp.any(violating)
        j = jnp.argmax(jnp.where(violating, jnp.abs(q) - a1, -jnp.inf))
        one = joins & (jnp.arange(k) == j)
        pr_active = pr_active | one
        pr_s = jnp.where(one, -jnp.sign(q), s)
        # Entering primal mode after active-set rounds: restart from the point's own support.
        restart = primal_now & ~aligned
        from_point = mask & (point != 0)
        new_active = jnp.where(valid | ~primal_now, pd_active, jnp.where(restart, from_point, pr_active))
        new_s = jnp.where(valid | ~primal_now, pd_s, jnp.where(restart, jnp.sign(point), pr_s))
        # (No step towards a candidate that is still not finite: a support the nearest
        # minimiser does not cover.)
        new_point = jnp.where(primal_now & ~valid & ~restart & jnp.all(jnp.isfinite(sol)), stepped, point)
        return new_active, new_s, sol, q, dsol, valid, r + 1, new_point, primal_now & ~valid

    active0 = mask & (c != 0)
    init = (active0, jnp.sign(c), c, lin + _model_matvec(G, c) - Gb, jnp.zeros_like(c), jnp.asarray(False),
            jnp.zeros((), jnp.int32), c, jnp.asarray(False))
    _, _, sol, q, dsol, valid, _, point, _ = lax.while_loop(cond, body, init)
    if with_point:
        return sol, q, valid, dsol, point
    return sol, q, valid, dsol


def _takes_primal_steps(singular_steps: bool, sync_axes: tuple[str, ...]) -> bool:
    """Whether :func:`_polish` takes primal steps (static): where they are compiled at all
    (``singular_steps``) and on one lane only -- they need a point and a branch per lane."""
    return _PRIMAL_STEPS and singular_steps and not sync_axes


def _support_system(Gs: Array, act: Array, a2s: Array, dtype=None) -> Array:
    """The model's system on the slots ``act`` of the gathered Gram ``Gs``: ``Gs + diag(a2s)``
    there, the identity on the other slots (so that it factorises); in ``dtype`` (default Gs's)."""
    dtype = Gs.dtype if dtype is None else dtype
    return (jnp.where(act[:, None] & act[None, :], Gs.astype(dtype), 0.0)
            + jnp.diag(jnp.where(act, a2s, 1.0).astype(dtype)))


def _nearest_minimiser(G, Gb: Array, lin: Array, a1: Array, a2: Array, active: Array, s: Array,
                       point: Array, tol: Array, size: int, block):
    """:func:`_polish`'s candidate on a support whose system ``M`` is singular.

    ``point`` (zero off ``active``, signs ``s`` on it) moves by ``d = M^+ r``, ``r`` the model's
    descent direction there (``rhs - M point``): the minimiser nearest ``point`` when ``r`` lies
    in the range of ``M``. Where it does not, the model decreases linearly along ``r``'s null-space
    part ``r_0`` without bound on the support, so the candidate is a point along ``r_0`` far enough
    that the move to the first zero (the caller's primal step) stops at it; none if no
    coefficient decreases in size along ``r_0``. Eigenvalues below ``_NULL_EIGEN`` of the support's
    largest diagonal entry count as zero. Solved on ``size`` slots, the support's gathered first
    (``block(P)``: the model's Gram on the slots ``P``; ``G`` the Gram or its :class:`LowRank`
    factor). Returns ``(candidate, model gradient there)``.
    """
    k = point.shape[0]
    r = jnp.where(active, Gb - lin - a1 * s - _model_matvec(G, point) - a2 * point, 0.0)

    P = jnp.argsort(~active, stable=True)[:size]
    act = active[P]
    M = _support_system(block(P), act, a2[P])
    w, V = jnp.linalg.eigh(M, symmetrize_input=False)
    # Relative to the support's own scale (the padding's unit diagonal is not).
    null = w <= _NULL_EIGEN * jnp.max(jnp.where(act, jnp.diagonal(M), 0.0))
    coef = V.T @ r[P]
    zero = jnp.zeros((k,), r.dtype)
    d = zero.at[P].set(jnp.where(act, V @ jnp.where(null, 0.0, coef / jnp.where(null, 1.0, w)), 0.0))
    d0 = zero.at[P].set(jnp.where(act, V @ jnp.where(null, coef, 0.0), 0.0))
    unbounded = jnp.max(jnp.abs(d0)) > tol
    # Twice as far along d0 as the first coefficient that shrinks to zero on it: the primal step
    # stops half way, at that zero.
    shrinks = active & (d0 * s < 0)
    reach = jnp.min(jnp.where(shrinks, jnp.abs(point) / jnp.where(shrinks, jnp.abs(d0), 1.0), jnp.inf))
    reach = jnp.where(jnp.isfinite(reach), reach, 0.0)
    cand = jnp.where(unbounded, point + 2.0 * reach * d0, point + d)
    return cand, lin + _model_matvec(G, cand) - Gb


# Unpenalised features (``a2 = 0``) a Woodbury solve takes at most, bordered (see _low_rank_solve).
_BORDER_MAX = 32


def _low_rank_solvable(ZT: Array, active: Array, a2: Array) -> Array:
    """Whether :func:`_low_rank_solve` can solve on the support ``active``: at most n features,
    or at most ``min(n, _BORDER_MAX)`` of them without a ridge term."""
    small = min(ZT.shape)
    return ((jnp.sum(active) <= small)
            | (jnp.sum(active & (a2 <= 0)) <= min(small, _BORDER_MAX)))


def _low_rank_solve(ZT: Array, active: Array, a1: Array, a2: Array, s: Array, rhs: Array,
                    ratio: Array, target: Array, direct, mixed: bool = False, sync_axes: tuple[str, ...] = ()):
    """:func:`_polish`'s exact solve of ``(Z_A^T Z_A + diag(a2_A)) x_A = rhs_A`` and its path
    predictor, for the model ``Z^T Z`` given by its factor ``ZT`` (k, n; :class:`LowRank`).

    A support of at most n features is solved by ``direct()`` (the caller's solve of those slots
    gathered to the front, their Gram formed from the factor -- n^2 per slot -- and factorised,
    n^3 / 3; it returns the solution and predictor over all k slots). A larger one -- the ridge part of an
    elastic net keeps thousands of features where n is ~100 -- goes through the n x n system of
    the Woodbury identity on its features R with a ridge term,
    ``(D + Z_R^T Z_R)^-1 = D^-1 - D^-1 Z_R^T S^-1 Z_R D^-1``, ``S = I + Z_R D^-1 Z_R^T``,
    ``D = diag(a2_R)``: k n^2 to form, n^3 / 3 to factorise, 4 k n per solve. Its features F
    without one (unpenalised: covariates kept in every model), at most ``_BORDER_MAX``
    (:func:`_low_rank_solvable`; more are left to coordinate descent), border that system: the
    block elimination of F leaves the f x f Schur complement ``Z_F^T S^-1 Z_F``. The result is
    refined on the exact system to ``target`` (:func:`_refine`), since ``S`` grows
    ill-conditioned as ``a2`` shrinks. ``mixed`` (static; one float64 lane): ``S`` is formed and
    factorised in float32 and the float64 system takes over where refinement stalls. Slots off
    the support get 0. Under ``vmap`` (``sync_axes``) the choice between the two solves is a
    select that computes both; the Woodbury system is then formed only when some lane needs it.
    """
    k, n = ZT.shape
    small = min(n, k)
    border = min(small, _BORDER_MAX)
    rhs = jnp.where(active, rhs, 0.0)

    def drhs(sol):
        return jnp.where(active, -ratio * (a1 * s + a2 * sol), 0.0)

    def woodbury(bordered: bool):
        ridge = active & (a2 > 0)
        dinv = jnp.where(ridge, 1.0 / jnp.where(ridge, a2, 1.0), 0.0)

        def inverse_by(dtype):
            """An approximate ``M^-1`` from ``S`` formed and factorised in ``dtype``."""
            Zd = ZT.astype(dtype)
            S = jnp.eye(n, dtype=dtype) + Zd.T @ (dinv.astype(dtype)[:, None] * Zd)
            L = lax.linalg.cholesky(S, symmetrize_input=False)

            def s_solve(b):
                return jax.scipy.linalg.cho_solve((L, True), b.astype(dtype)).astype(ZT.dtype)

            def a_inverse(r):  # (D + Z_R^T Z_R)^-1 on R, 0 elsewhere
                y = dinv * r
                return y - dinv * (ZT @ s_solve(y @ ZT))

            if not bordered:
                return a_inverse
            F = jnp.argsort(ridge | ~active, stable=True)[:border]
            in_f = active[F] & ~ridge[F]
            ZF = jnp.where(in_f[:, None], ZT[F], 0.0)  # (border, n)
            # Schur complement of the bordered block (identity rows where no feature of F is).
            C = ZF @ s_solve(ZF.T) + jnp.diag(jnp.where(in_f, 0.0, 1.0))
            LC = lax.linalg.cholesky(C, symmetrize_input=False)

            def inverse(r):
                y = a_inverse(r)
                t = jnp.where(in_f, r[F] - ZF @ (y @ ZT), 0.0)
                xf = jax.scipy.linalg.cho_solve((LC, True), t)
                x = y - a_inverse(ZT @ (xf @ ZF))
                return x.at[F].add(jnp.where(in_f, xf, 0.0))
            return inverse

        def matvec(x):
            x = jnp.where(active, x, 0.0)
            return jnp.where(active, ZT @ (x @ ZT) + a2 * x, x)

        def solved(inverse):
            sol, e = _refine(inverse, matvec, rhs, target)
            sol = jnp.where(active, sol, 0.0)
            return sol, jnp.where(active, inverse(drhs(sol)), 0.0), e

        if not mixed:
            return solved(inverse_by(ZT.dtype))[:2]
        sol, dsol, e = solved(inverse_by(jnp.float32))
        return lax.cond(e <= target, lambda: (sol, dsol), lambda: solved(inverse_by(ZT.dtype))[:2])

    def large():
        # Without unpenalised features on the support (the usual elastic net) no border.
        return lax.cond(jnp.any(active & (a2 <= 0)), lambda: woodbury(True), lambda: woodbury(False))

    few = jnp.sum(active) <= small
    if not sync_axes:
        return lax.cond(few, direct, large)
    any_many = lax.pmax((~few).astype(jnp.int32), sync_axes) > 0
    return lax.cond(any_many, lambda: lax.cond(few, direct, large), direct)


def _solve_model(G, lin, b, h, a1, a2, mask, m, tol, max_sweeps, ratio, levels, mixed=False, sync_axes=(),
                 singular_steps=True):
    """Minimise the penalised quadratic model: exact solves on a support that CD corrects.

    Each round first tries :func:`_polish` on the support and signs of the current point -- at
    the second Newton step of a lambda, or when a new lambda adds no feature, that is already
    the right support and the model is solved exactly without a single CD sweep. If the
    candidate is not the model's minimiser, CD sweeps until the support stops changing (CD
    identifies support and signs long before it converges on correlated columns, where it needs
    thousands of sweeps) and the next round solves on the new support. If CD itself reaches
    ``tol`` first, its point is used. One CD loop and one solve in the program keep compile
    time down.

    ``singular_steps`` (static): compile :func:`_polish`'s primal steps for singular supports.

    Returns ``(c, dc)``: the model minimiser and the path predictor of :func:`_polish` (zero when
    the minimiser did not come from an exact solve).
    """
    # Whether the polish takes primal steps (and so may hand back another point).
    steps = _takes_primal_steps(singular_steps, sync_axes)

    def cond(st):
        _, _, worst, sweeps, valid, _ = st
        return ~valid & (worst > tol) & (sweeps < max_sweeps)

    def body(st):
        c, q, worst, sweeps, _, _ = st
        pol, pol_q, valid, dpol, point = _polish(G, lin, b, c, a1, a2, mask, tol, ratio, levels, mixed=mixed,
                                                 sync_axes=sync_axes, with_point=True, singular_steps=steps)
        if steps:
            # A polish that did not reach the minimiser may still have moved to a better point
            # (primal steps on a degenerate support): CD goes on from there.
            c, q = lax.cond(jnp.any(point != c), lambda: (point, lin + _model_matvec(G, point - b)),
                            lambda: (c, q))
        # Zero sweeps (tolerance inf) when the polish succeeded.
        cd_tol = jnp.where(valid, jnp.inf, tol)
        cd = partial(_cd_low_rank, G.ZT) if isinstance(G, LowRank) else partial(_cd, G)
        c2, q2, worst2, done = cd(q, c, h, a1, a2, mask, m, cd_tol, jnp.minimum(_SWEEPS_PER_POLISH, max_sweeps - sweeps))
        c = jnp.where(valid, pol, c2)
        q = jnp.where(valid, pol_q, q2)
        return c, q, jnp.where(valid, worst, worst2), sweeps + done, valid, jnp.where(valid, dpol, 0.0)

    init = (b, lin, jnp.asarray(jnp.inf, b.dtype), jnp.zeros((), jnp.int32), jnp.asarray(False),
            jnp.zeros_like(b))
    c, _, _, _, _, dc = lax.while_loop(cond, body, init)
    return c, dc


# Form the Newton model's Gram on the smallest of ``gram_levels_for`` that holds the slots in use
# rather than on the whole capacity (False: always the capacity; ``benchmarks/ab.py`` compares the two).
_GRAM_ON_LEVEL = True

# Working-set capacity from which a float64 problem forms its Gram matrix in float32.
_F32_GRAM_MIN = 256


def _hessian(XcT: Array, v: Array, capacity: int) -> Array:
    """The working-set Gram ``XcT diag(v) XcT^T`` of the quadratic model (k^2 n flops).

    For large float64 working sets (``capacity`` slots, of which ``XcT`` may hold a leading
    block) the product runs in float32 (half the bytes and faster BLAS kernels) and is
    symmetrised. Only the Newton *model* changes: the gradient, the line search and the KKT test
    stay in float64, so the solution and its accuracy do not depend on it -- a Hessian with
    relative error ~1e-7 only makes the Newton steps marginally inexact. The choice follows the
    capacity, not the block, so that every level of one working set gets the same arithmetic.
    """
    G = _cross(XcT, v, XcT, capacity)
    return 0.5 * (G + G.T) if _gram_in_float32(XcT, capacity) else G


def _gram_in_float32(XcT: Array, capacity: int) -> bool:
    return XcT.dtype == jnp.float64 and capacity >= _F32_GRAM_MIN


def _cross(rows: Array, v: Array, XcT: Array, capacity: int) -> Array:
    """``rows diag(v) XcT^T`` in the Gram's arithmetic for ``capacity`` slots (see :func:`_hessian`):
    the rows of a Gram, or the whole of it with ``rows = XcT``."""
    if _gram_in_float32(XcT, capacity):
        A = XcT.astype(jnp.float32)
        return ((rows.astype(jnp.float32) * v.astype(jnp.float32)[None, :]) @ A.T).astype(XcT.dtype)
    return (rows * v[None, :]) @ XcT.T


# One lane keeps the Newton model's Gram across steps, KKT rounds and lambdas (a GramCache) on a
# working set of at least _GRAM_CACHE_MIN slots k and at most n / _GRAM_CACHE_ROWS of them (n rows):
# forming the Gram costs k^2 n, an exact solve k^3 / 3, and a kept Gram takes more Newton steps --
# each with its solve -- so keeping it pays only where the Gram is the larger part of a step.
_GRAM_CACHE_MIN = 256
_GRAM_CACHE_ROWS = 3

# A kept Gram is reused while every IRLS weight is within this relative distance of the weights
# it was formed with: then (1 - d) H_kept <= H <= (1 + d) H_kept, and a step on the kept model
# reduces the error of the Newton model by a factor of about d.
_GRAM_DRIFT = 0.25

# A step on a kept Gram that leaves the KKT gap above this fraction of the previous one forms a
# new Gram at the next step.
_STALE_PROGRESS = 0.25
# The Newton loop ends once the working set's KKT gap is <= _STRICT * tol, or <= tol after a
# step whose estimate of the objective left above the optimum is <= _SUBOPT_RTOL x the loss (a
# hundredth of the 1e-6 bar against glmnet's default; benchmarks/NOTES.md). Without a
# step in this call there is no estimate, and the loop goes on to _STRICT * tol: a warm start
# within tol can sit far above the optimum where the curvature is small (an n > p fit near its
# unpenalised end). Float32 stops at tol (see newton_solve).
_STRICT = 0.1
_SUBOPT_RTOL = 1e-8

# Rows of features new to the working set that are added to a kept Gram (more: form a new one).
_GRAM_NEW_ROWS = 64


# A working set of at least this many times more slots than rows, and of at least _LOW_RANK_MIN
# slots, holds the Newton model through its factor (LowRank) rather than as a k x k Gram: a CD
# sweep then costs 2 k n instead of k^2, and no k^2 n product or k^3 factorisation is left in a
# step. Below _LOW_RANK_MIN slots the Gram is small and its few operations per step cost less
# dispatch than the factor's two kinds of exact solve.
_LOW_RANK_RATIO = 2
_LOW_RANK_MIN = 128

# One lane's float64 Woodbury systems (see _low_rank_solve) are formed and factorised in float32
# and refined (False: in float64; ``benchmarks/ab.py`` compares the two).
_WOODBURY_F32 = True


def low_rank_model(k: int, n: int, family) -> bool:
    """Whether a working set of ``k`` slots on ``n`` rows holds its Newton model as a
    :class:`LowRank` factor (static): ``k >= max(_LOW_RANK_RATIO * n, _LOW_RANK_MIN)``, for a
    family whose model is the diagonal-weight Gram (Cox forms its own exact Hessian)."""
    return k >= max(_LOW_RANK_RATIO * n, _LOW_RANK_MIN) and getattr(family, "gram", None) is None


def keeps_gram(k: int, n: int, batched: bool, family) -> bool:
    """Whether a path on ``k`` working-set slots and ``n`` rows keeps its Newton model's Gram
    across steps and lambdas (static): one lane (under ``vmap`` a per-lane choice between reusing
    and forming it would run both), ``_GRAM_CACHE_MIN <= k <= n / _GRAM_CACHE_ROWS``, a family
    without its own exact Hessian (Cox forms that each step), and a model held as a Gram (not
    :func:`low_rank_model`)."""
    return (not batched and k >= _GRAM_CACHE_MIN and n >= _GRAM_CACHE_ROWS * k
            and getattr(family, "gram", None) is None and not low_rank_model(k, n, family))


def remap_gram(cache: GramCache, idx: Array, mask: Array) -> GramCache:
    """``cache`` with its rows and columns moved to the slots ``idx`` (the features of a new
    working set, ``mask`` the slots in use); features it does not hold get empty rows (``feat``
    -1). k^2 comparisons and two k^2 gathers -- no pass over the data."""
    eq = (idx[:, None] == cache.feat[None, :]) & mask[:, None]
    has = jnp.any(eq, axis=1) & cache.ok
    o = jnp.where(has, jnp.argmax(eq, axis=1), 0)
    G = jnp.where(has[:, None] & has[None, :], cache.G[o][:, o], 0.0)
    return cache._replace(G=G, feat=jnp.where(has, idx, -1).astype(jnp.int32))


def newton_solve(ws: WorkingSet, y: Array, w: Array, b: Array, b0: Array, eta: Array,
                 tol: Array, max_iter: Array, max_sweeps: Array, it0: Array,
                 fit_intercept: bool, sync_axes: tuple[str, ...] = (), ratio: Array = 0.0, *,
                 family=BINOMIAL, idx: Array | None = None, cache: GramCache | None = None) -> NewtonState:
    """Minimise the penalised loss of ``family`` (static, :mod:`kernels.families`) over the
    working set.

    ``eta`` must equal ``b0 + XT.T @ b`` on entry. ``it0`` counts iterations already spent on
    this lambda (earlier KKT rounds) against ``max_iter``.

    ``sync_axes`` names the vmap axes this call is batched over. The coordinate loop then runs to
    the largest slot count of all lanes, an *unbatched* bound: a loop bound that differs per lane
    would make vmap turn the loop counter into a batched value and every ``c[j]`` into a
    gather/scatter, several times slower. Slots past a lane's own count are masked no-ops.

    ``ratio`` is ``lambda_next / lambda - 1``: the final state's ``pred`` / ``pred0`` extrapolate
    the solution to the next lambda (a first-order path predictor that warm-starts it closer).

    ``cache`` (with ``idx``, the feature of each slot; one lane, a family without its own
    ``gram``) is a Gram kept from earlier calls: a step reuses it, adding the rows of features
    new to the working set (at most ``_GRAM_NEW_ROWS``), while the IRLS weights stay within
    ``_GRAM_DRIFT`` of those it was formed with and the last step on it made good progress
    (``_STALE_PROGRESS``), and forms a new one otherwise. Where n is several times k, forming
    the Gram (k^2 n) is most of a step, and the weights move little from one lambda to the
    next. The final state's ``cache`` is the Gram its last step used.
    """
    m_loop = lax.pmax(ws.m, sync_axes) if sync_axes else ws.m
    kcap = ws.XT.shape[0]
    levels = solve_levels(kcap, bool(sync_axes))
    # Float32 factors with refinement for one lane's large float64 systems: under vmap the
    # float64 fallback of _mixed_solve would run for every lane (a select, not a branch).
    mixed = not sync_axes and ws.XT.dtype == jnp.float64
    gram_levels = gram_levels_for(kcap, bool(sync_axes)) if _GRAM_ON_LEVEL else (kcap,)
    gram = getattr(family, "gram", None)
    low_rank = low_rank_model(kcap, ws.XT.shape[1], family)
    # A support reaches the rank of the data only where the capacity can hold n features; below
    # that only identical columns make it singular, and the primal steps' code (compile time of
    # every program it is in; benchmarks/NOTES.md) is left out: such supports go to CD as before.
    singular_steps = kcap >= ws.XT.shape[1]
    if low_rank and cache is not None:
        raise ValueError("a kept Gram and a low-rank model exclude each other (keeps_gram, low_rank_model)")
    g, g0 = _gradients(ws, eta, y, w, fit_intercept, family)
    gap0 = kkt.gap(g, b, ws.a1, ws.a2, ws.mask, g0)

    # Float32 gradients are too coarse for the estimate that ends the loop between ``tol`` and
    # ``_STRICT * tol``: there the loop stops at ``tol``.
    strict = _STRICT if ws.XT.dtype == jnp.float64 else 1.0

    def cond(s: NewtonState):
        open_ = (s.kkt > tol) | ((s.kkt > strict * tol) & ~s.settled)
        return open_ & (s.it < max_iter) & (s.status == Status.CONVERGED)

    def centred(XT, mask, v, sv):
        # Eliminate the unpenalised intercept from the model: its optimal step given d is
        # d0 = -(g0 + v'X d) / sum(v), which leaves a model in d alone on the v-centred
        # columns. This removes the intercept-coordinate coupling that slows coordinate descent.
        if fit_intercept:
            xbar = (XT @ v) / sv
            XcT = XT - xbar[:, None]
        else:
            xbar = jnp.zeros(XT.shape[:1], XT.dtype)
            XcT = XT
        return jnp.where(mask[:, None], XcT, 0.0), xbar

    def new_gram(s, v, sv):
        def model_gram(XT, mask):
            XcT, xbar = centred(XT, mask, v, sv)
            # A family whose Hessian in eta is not diagonal (Cox: the risk sets couple the rows)
            # may give the model its exact Hessian on the working set (``gram``); otherwise the
            # diagonal. Either is a product over the rows of XcT, so a leading block of rows
            # gives the leading block of the Gram.
            G = _hessian(XcT, v, kcap) if gram is None else gram(XcT, s.eta, y, w)
            return G, xbar

        if len(gram_levels) == 1:
            return model_gram(ws.XT, ws.mask)
        # Only slots 0..m-1 are in use (the WorkingSet contract) and the rest of the Gram is
        # zero: form it on the smallest level that holds them -- level^2 n flops instead of
        # k^2 n -- and pad it to the capacity for the model solve.
        def on_level(size):
            def run():
                G_l, xbar_l = model_gram(ws.XT[:size], ws.mask[:size])
                pad = kcap - size
                return jnp.pad(G_l, ((0, pad), (0, pad))), jnp.pad(xbar_l, (0, pad))
            return run

        branch = jnp.sum(jnp.asarray(gram_levels[:-1]) < ws.m)
        return lax.switch(branch, [on_level(size) for size in gram_levels])

    def kept_gram(C: GramCache, missing):
        # The kept Gram at its own weights, with the rows of the slots it does not hold yet
        # (at most ``new_rows``) formed at those weights too: one model, one set of weights.
        XcT, xbar = centred(ws.XT, ws.mask, C.v, C.sv)

        def add_rows():
            sel = jnp.nonzero(missing, size=new_rows, fill_value=kcap)[0]
            R = _cross(XcT[jnp.minimum(sel, kcap - 1)], C.v, XcT, kcap)
            G = C.G.at[sel].set(R, mode="drop").at[:, sel].set(R.T, mode="drop")
            # Where two new rows meet, G[i, j] came from R[j, i] and G[j, i] from R[i, j]: two
            # sums rounded differently (float32 from 256 slots on). The exact solve reads one
            # triangle and its check the full rows, so an asymmetry of ~1e-8 would reject every
            # exact solve below that tolerance; averaging leaves symmetric entries as they are.
            return 0.5 * (G + G.T)

        G = lax.cond(jnp.any(missing), add_rows, lambda: C.G)
        return G, xbar

    new_rows = min(_GRAM_NEW_ROWS, kcap)

    def body(s: NewtonState) -> NewtonState:
        v = family.irls_weights(s.eta, y, w)
        sv = jnp.maximum(jnp.sum(v), jnp.finfo(v.dtype).tiny)
        if low_rank:
            XcT, xbar = centred(ws.XT, ws.mask, v, sv)
            G = LowRank(XcT * jnp.sqrt(v)[None, :])
            kept, reused = None, None
        elif s.cache is None:
            G, xbar = new_gram(s, v, sv)
            kept, reused = None, None
        else:
            C = s.cache
            missing = ws.mask & (C.feat < 0)
            reused = (C.ok & ~s.fresh & (jnp.sum(missing) <= new_rows)
                      & jnp.all(jnp.abs(v - C.v) <= _GRAM_DRIFT * C.v))
            G, xbar, v_m, sv_m = lax.cond(reused, lambda: (*kept_gram(C, missing), C.v, C.sv),
                                          lambda: (*new_gram(s, v, sv), v, sv))
            v, sv = v_m, sv_m
            kept = GramCache(G, jnp.where(ws.mask, idx, -1).astype(jnp.int32), v, sv, jnp.asarray(True))
        lin = s.g - s.g0 * xbar if fit_intercept else s.g
        h = jnp.sum(G.ZT * G.ZT, axis=1) if low_rank else jnp.diagonal(G)
        h = jnp.maximum(h, 1e-30 * jnp.max(h, initial=0.0) + jnp.finfo(h.dtype).tiny)
        # Solve the model to an accuracy that tracks the outer KKT gap (inexact Newton):
        # loose far from the optimum, quadratic-rate tight close to it.
        inner_tol = jnp.maximum(0.1 * tol, jnp.minimum(0.1 * s.kkt, s.kkt * s.kkt))
        c, dc = _solve_model(G, lin, s.b, h, ws.a1, ws.a2, ws.mask, m_loop, inner_tol, max_sweeps, ratio, levels,
                             mixed, sync_axes, singular_steps)
        d = c - s.b
        if fit_intercept:
            d0 = -(s.g0 / sv) - jnp.dot(xbar, d)
            dc0 = -jnp.dot(xbar, dc)
        else:
            d0 = jnp.zeros((), d.dtype)
            dc0 = jnp.zeros((), d.dtype)
        u = d0 + d @ ws.XT
        predicted = jnp.dot(s.g, d) + s.g0 * d0 + prox.penalty_change(s.b, c, ws.a1, ws.a2)

        def change_at(t):
            return (family.loss_change(s.eta, t * u, y, w)
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
        ng, ng0 = _gradients(ws, neta, y, w, fit_intercept, family)
        gap = kkt.gap(ng, nb, ws.a1, ws.a2, ws.mask, ng0)
        finite = jnp.isfinite(gap) & jnp.all(jnp.isfinite(neta))
        status = jnp.where(finite, Status.CONVERGED, Status.NONFINITE).astype(jnp.int32)
        # Stalled (no acceptable step and no progress): stop rather than spin to max_iter.
        # (Not after a step on a kept Gram: the next step forms a new one.)
        # (Nor within tol, where the loop only goes on for accuracy it may not need: see below.)
        band = gap <= tol
        stalled = (~ok) & (gap >= s.kkt) & ~band
        if kept is not None:
            stalled = stalled & ~reused
        it = jnp.where(stalled, max_iter, s.it + 1)
        # A kept Gram that no longer makes good progress is replaced at the next step, and that
        # step on it does not count against max_iter (each such step is followed by a counted
        # one on a new Gram, so the loop stays bounded by 2 max_iter).
        fresh = None if kept is None else reused & ((gap > _STALE_PROGRESS * s.kkt) | ~ok)
        if kept is not None:
            it = jnp.where(fresh & ~stalled, s.it, it)
        # What this step leaves above the optimum, estimated: a (proximal) Newton step gains
        # ~ g' H^-1 g, so the next one -- about all that is left once steps converge
        # quadratically -- gains this step's predicted decrease (about twice its actual one near
        # the optimum: a conservative estimate) times the square of the gap's contraction. It is
        # an estimate, not a bound (the contraction measures the curvature along the old
        # gradient, not the new one): measured against glmnet at every lambda of the benchmark
        # workloads and goldens (benchmarks/NOTES.md). The scale is half the deviance: the loss
        # (binomial, Gaussian), or for Cox the loss above the saturated model's, which is
        # smaller -- a stricter test.
        left = -t * predicted * jnp.square(gap / jnp.maximum(s.kkt, jnp.finfo(gap.dtype).tiny))
        settled = ok & (left <= _SUBOPT_RTOL * 0.5 * family.deviance(neta, y, w))
        # No acceptable step within tol: the point is as good as this model can make it (a step
        # on a kept Gram is not: the next one forms a new Gram).
        flat = (~ok) & band
        if kept is not None:
            flat = flat & ~reused
        settled = settled | flat
        return NewtonState(nb, nb0, neta, ng, ng0, gap, it, status, dc, dc0, kept, fresh, settled)

    if cache is not None:
        cache = remap_gram(cache, idx, ws.mask)
    init = NewtonState(b, b0, eta, g, g0, gap0, it0, jnp.asarray(Status.CONVERGED, jnp.int32),
                       jnp.zeros_like(b), jnp.zeros((), b.dtype), cache,
                       None if cache is None else jnp.asarray(False), jnp.asarray(False))
    return lax.while_loop(cond, body, init)
