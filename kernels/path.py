"""The regularisation path over decreasing lambdas, with warm starts and screening: a
``lax.scan`` over the grid under ``vmap``, a loop over the lambdas it solves for one lane.

For each lambda (glmnet's strategy, with static shapes so that jit compiles once per capacity):

1. **Working set.** Score every feature by the lambda at which it would enter,
   ``|g_j| / (l1_ratio * pf_j)`` from the full gradient at the previous solution; active
   features (nonzero) and unpenalised ones score ``inf``. The ``k`` best (``lax.top_k`` on a
   float32 copy: an order, not a value, is needed) fill the working set; the slots in use are the
   active features plus the *sequential strong set* ``score >= 2 lambda - lambda_prev``.
2. **Solve** on the working set with proximal Newton (``solver.newton_solve``).
3. **KKT check over all features**: one pass over ``X`` gives the full gradient. A feature
   outside the working set with ``|g_j| > l1_ratio pf_j lambda + tol`` violates optimality: the
   violators join the working set (the best-scoring ones, as many as fit) and step 2 repeats.
   The same pass feeds the next lambda's strong rule.
   A float64 problem solved lane by lane makes this pass in float32 with a certified error
   bound and exact rechecks (:func:`kkt_pass`).
4. If the active features plus the violators do not fit in ``k`` slots and the active features
   fill more than ``OVERFLOW_ACTIVE_SHARE`` of them (or a round made no progress), the lane stops
   with ``Status.OVERFLOW`` and the host resumes from that lambda with a larger capacity, passing
   back the :class:`PathState` the lane stopped in (no pass over ``X`` to restart).

Columns are standardised implicitly with the lane's weighted moments: ``x~ = (x - xm) / xs``,
so a CV fold (zero weights on its held-out rows) standardises on its own training rows and
``X`` is never copied per lane.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import kkt, prox
from .families import BINOMIAL
from ._types import Array, Moments, PathOut, PathState, Problem, Settings, Status
from .solver import GramCache, WorkingSet, empty_gram_cache, keeps_gram, newton_solve

# glmnet.control() factory defaults used by the early stop of the path.
MNLAM = 5
DEVMAX = 0.999
FDEV = 1e-5


def moments(XT: Array, w: Array, pf: Array, fit_intercept: bool, standardize: bool) -> Moments:
    """glmnet's weighted standardisation: mean and population SD with weights summing to 1.

    Without an intercept glmnet does not centre the columns in the linear predictor (``xm = 0``)
    but still scales them by their weighted SD about the weighted mean (checked against R glmnet
    4.1: the KKT conditions of its fits hold for this scale, not for the root mean square).
    A column whose weighted variance is zero (relative to its magnitude) is excluded.

    From ``XT`` (p, n): ``XT @ w`` and a row sum of ``XT * XT * w``. (XLA:CPU fuses the square
    into that row sum; a column sum of ``X * X`` or two row sums in one fusion ran 6-10x slower.)
    """
    wn = w / jnp.sum(w)
    xm = XT @ wn
    ex2 = jnp.sum(XT * XT * wn, axis=1)
    var = jnp.maximum(ex2 - xm * xm, 0.0)
    if not fit_intercept:
        xm = jnp.zeros_like(xm)
    # Zero variance up to rounding of the moments: relative to the column's second moment.
    eps = jnp.finfo(XT.dtype).eps
    constant = var <= (64 * eps) * jnp.maximum(ex2, jnp.finfo(XT.dtype).tiny)
    excluded = constant | ~jnp.isfinite(pf)
    if standardize:
        xs = jnp.where(excluded, 1.0, jnp.sqrt(var))
    else:
        xs = jnp.ones_like(xm)
    return Moments(xm, xs, excluded)


def full_gradient(problem: Problem, r: Array, mom: Moments) -> Array:
    """Exact loss gradient for every standardised column: ``(r @ X - xm * sum(r)) / xs`` (0 if
    excluded).

    ``r @ X`` (the fast orientation on XLA:CPU) when ``X`` is exact, else ``XT @ r``.
    """
    X, XT = problem.X, problem.XT
    raw = r @ X if X.dtype == XT.dtype else XT @ r
    g = standardised(raw, jnp.sum(r), mom.xm, mom.xs)
    return jnp.where(mom.excluded, 0.0, g)


def standardised(raw: Array, rsum: Array, xm: Array, xs: Array) -> Array:
    """``r . x~_j`` for the implicitly standardised columns ``x~ = (x - xm) / xs`` from the raw
    products ``raw = r . x_j`` and ``rsum = sum(r)`` (any subset of columns)."""
    return (raw - xm * rsum) / xs


# A lane whose active features and KKT violators do not fit its working set overflows only once
# the active features fill more than this share of the slots (see the KKT rounds of solve_path).
OVERFLOW_ACTIVE_SHARE = 0.5

# Candidates of a float32 KKT pass that are recomputed exactly (more: one exact float64 pass).
KKT_RECHECK = 64


def kkt_pass(problem: Problem, r: Array, mom: Moments, thr: Array, outside: Array,
             tol: Array) -> tuple[Array, Array]:
    """Full gradient and KKT excess ``|g_j| - thr_j`` of the features ``outside`` the working set.

    Returns ``(grad, excess)``; ``excess > tol`` marks exactly the violators of an exact float64
    pass. With ``problem.X`` in float32 (a float64 problem solved lane by lane) the product
    ``r @ X`` runs in float32 -- half the bytes of ``X`` to read -- and is certified instead of
    trusted: for any summation order (Higham, *Accuracy and Stability*, 3.1) the float32 result
    differs from ``r @ x_j`` by at most ``gamma_{n+2} ||r||_2 ||x_j||_2`` (``gamma_m = m u / (1 - m
    u)``, u = 2^-24; the two extra terms cover rounding ``r`` and ``X`` to float32), plus an
    absolute term for values below float32's normal range (the engine makes no float32 copy of
    an ``X`` with entries near float32's overflow). A feature
    whose excess cannot exceed ``tol`` even at that bound is cleared; the others (a handful per
    lambda: at most 7 on Gaussian 1000 x 20,000, 0-1 on the other benchmark workloads) are
    recomputed in float64 from rows of ``XT``. If more than ``KKT_RECHECK`` need it, the whole
    pass is redone in float64. So the violators, the KKT gap and every solution are those of the
    exact pass; only the gradient of cleared features -- used for the next lambda's strong
    rule, a heuristic -- carries float32 error. For cleared features ``excess`` is the upper
    bound, so the reported KKT gap stays an upper bound.
    """
    X, XT, colnorm = problem.X, problem.XT, problem.colnorm

    def exact():
        g = full_gradient(problem, r, mom)
        return g, jnp.where(outside, jnp.abs(g) - thr, 0.0)

    if X.dtype == XT.dtype:
        return exact()
    n, p = X.shape
    dtype = XT.dtype
    u = float(jnp.finfo(X.dtype).eps) / 2
    gamma = (n + 2) * u / (1 - (n + 2) * u)
    sr = jnp.sum(r)
    raw = (r.astype(X.dtype) @ X).astype(dtype)
    shift = mom.xm * sr
    approx = jnp.where(mom.excluded, 0.0, standardised(raw, sr, mom.xm, mom.xs))
    # Relative rounding (gamma); values below float32's normal range lose up to 2^-126 each
    # (flushed to zero or subnormal: in r, in X, in a product or a partial sum -- at most
    # ||r||_1 + ||x_j||_1 + 2n such losses, with ||v||_1 <= sqrt(n) ||v||_2); the float64
    # operations after the product add a few ulps of their operands.
    rnorm = jnp.sqrt(r @ r)
    tiny = float(jnp.finfo(X.dtype).tiny)
    bound = (gamma * rnorm * colnorm + tiny * (n ** 0.5 * (rnorm + colnorm) + 2 * n)
             + 8 * jnp.finfo(dtype).eps * (jnp.abs(raw) + jnp.abs(shift))) / mom.xs
    upper = jnp.where(outside, jnp.abs(approx) + bound - thr, 0.0)
    cand = upper > tol
    C = min(p, KKT_RECHECK)

    def cleared():
        return approx, upper

    def recheck():
        # top_k rather than nonzero(size=C): the faster of the two static-size gathers on CPU
        # (benchmarks/NOTES.md).
        _, idx = lax.top_k(jnp.where(cand, upper, -jnp.inf).astype(jnp.float32), C)
        g_c = standardised(XT[idx] @ r, sr, mom.xm[idx], mom.xs[idx])
        g = approx.at[jnp.where(cand[idx], idx, p)].set(g_c, mode="drop")
        return g, jnp.where(cand, jnp.abs(g) - thr, upper)

    count = jnp.sum(cand)
    return lax.switch(jnp.where(count == 0, 0, jnp.where(count <= C, 1, 2)), (cleared, recheck, exact))


class _Carry(NamedTuple):
    beta: Array  # (p,) standardised coefficients
    b0: Array  # () intercept
    grad: Array  # (p,) full loss gradient at (b0, beta)
    lam_prev: Array  # ()
    dev_prev: Array  # () deviance ratio at the previous lambda
    stopped: Array  # () bool: early stop / overflow / non-finite ended this lane
    gram: GramCache | None  # the Newton model's Gram kept for the next lambda (None: not kept)


class _Round(NamedTuple):
    beta: Array
    b0: Array
    grad: Array
    eta: Array
    idx: Array  # (k,) working-set indices
    coef: Array  # (k,)
    it: Array
    rounds: Array
    gap: Array
    status: Array
    needed: Array  # () active features + KKT violators at the last round
    pred: Array  # (k,) predicted change of the working-set coefficients at the next lambda
    pred0: Array  # () and of the intercept
    done: Array
    gram: GramCache | None


def _entry_scores(grad: Array, beta: Array, pf_l1: Array, excluded: Array) -> Array:
    """The lambda at which each feature enters; ``inf`` for active / unpenalised, ``-inf`` excluded."""
    free = (beta != 0) | (pf_l1 <= 0)
    score = jnp.abs(grad) / jnp.where(pf_l1 > 0, pf_l1, 1.0)
    score = jnp.where(free, jnp.inf, score)
    return jnp.where(excluded, -jnp.inf, score)


def fresh_state(p: int, dtype, batch: tuple[int, ...] = ()) -> PathState:
    """A :class:`PathState` that starts a path afresh (``resume`` False; the values are unused)."""
    z = jnp.zeros(batch + (p,), dtype)
    zs = jnp.zeros(batch, dtype)
    return PathState(z, zs, z, zs, zs, Moments(z, jnp.ones(batch + (p,), dtype), jnp.zeros(batch + (p,), bool)),
                     jnp.zeros(batch, bool))


# One lane (no vmap axis) steps only through the lambdas it solves (_solved_range); False: the
# scan over the whole grid, as under vmap (kept for the A/B tool and the equivalence test).
_RANGE_LOOP = True


def _solved_range(lambda_step, carry0: _Carry, lam: Array, lam_next: Array, start: Array, stop: Array, *,
                  k: int, n: int, dtype, keep_eta: bool):
    """``lax.scan(lambda_step, carry0, (lam, lam_next, arange(L)))`` for one lane, stepping only
    through the lambdas it solves: from ``start`` until ``stop`` or until a step stops the lane.

    The scan would also step through every lambda it skips -- the grid's padding to its bucket,
    the lambdas before a resumed segment's start, those after an early stop -- each a loop trip
    of the runtime's own cost (microseconds on a CPU, where a lane is thousands of small
    operations). The skipped lambdas' outputs are what ``lambda_step`` returns for them: zero
    slots, status ``SKIPPED``, deviance NaN, and the intercept of the carry at that point (the
    initial one before ``start``, the last one after the lane ended). Under ``vmap`` the lanes
    share one trip count, so the scan is kept there.
    """
    L = lam.shape[0]
    stop = jnp.minimum(stop, L)
    outs = PathOut(
        ws_idx=jnp.zeros((L, k), jnp.int32), ws_coef=jnp.zeros((L, k), dtype),
        intercept=jnp.full((L,), carry0.b0, dtype), n_iter=jnp.zeros((L,), jnp.int32),
        n_kkt_rounds=jnp.zeros((L,), jnp.int32), ws_needed=jnp.zeros((L,), jnp.int32),
        kkt_gap=jnp.zeros((L,), dtype), deviance=jnp.full((L,), jnp.nan, dtype),
        status=jnp.full((L,), Status.SKIPPED, jnp.int32),
        eta=jnp.zeros((L, n) if keep_eta else (L, 0), dtype))

    def more(state):
        m, carry, _ = state
        return (m < stop) & ~carry.stopped

    def one(state):
        m, carry, outs = state
        carry, out = lambda_step(carry, (lam[m], lam_next[m], m))
        outs = jax.tree.map(lambda buf, o: lax.dynamic_update_index_in_dim(buf, o.astype(buf.dtype), m, 0),
                            outs, out)
        return m + 1, carry, outs

    m_end, last, outs = lax.while_loop(more, one, (jnp.maximum(start, 0).astype(jnp.int32), carry0, outs))
    after = jnp.arange(L) >= m_end
    return last, outs._replace(intercept=jnp.where(after, last.b0, outs.intercept))


def solve_path(problem: Problem, lambdas: Array, state: PathState, start: Array, stop: Array,
               settings: Settings, *, k: int, fit_intercept: bool, standardize: bool, keep_eta: bool,
               family=BINOMIAL, is_master: Array | None = None, axis_name: str | None = None,
               sync_axes: tuple[str, ...] = ()) -> tuple[PathOut, Array, PathState]:
    """Solve the path for ``lambdas[start:stop]``, from the intercept-only fit or from ``state``.

    Parameters
    ----------
    problem : Problem
    lambdas : (L,) decreasing penalty strengths.
    state : PathState
        ``state.resume`` False (:func:`fresh_state`): start at the intercept-only fit, computing
        the lane's moments and first gradient (three passes over the design). True: continue from a
        state this function returned -- a lane resumed after a working-set overflow needs no
        pass over ``X`` to restart. (Vmapped lanes, ``sync_axes`` given, compute the fresh state
        and select per lane.)
    start, stop : () int32: lambdas outside ``[start, stop)`` are skipped (``Status.SKIPPED``);
        traced, so resuming a path or truncating it to another dataset's length never recompiles.
    settings : Settings
        ``settings.early_stop`` applies glmnet's stopping rule (after ``MNLAM`` lambdas,
        deviance ratio > 0.999 or the family's ``stop_rule`` on its change) to the lanes with
        ``is_master``.
    k : static working-set capacity.
    family : static; the datafit (:mod:`kernels.families`), whose ``y`` pytree ``problem.y`` is.
    keep_eta : static; return the linear predictor of every row at every lambda.
    is_master, axis_name : under ``vmap(axis_name=...)`` the stop decision of the master lanes
        is shared by all lanes (a CV fold stops where the full-data path stops).
    sync_axes : static; every vmap axis this call is batched over (see ``newton_solve``).

    Returns
    -------
    (PathOut, null_deviance, PathState after the last solved lambda -- its ``mom`` holds the
    lane's column moments)
    """
    X, XT_all, _, y, w, pf, l1_ratio = problem
    n, p = X.shape
    k = min(k, p)
    dtype = XT_all.dtype
    wsum = jnp.sum(w)
    wn = w / wsum

    b0_null, eta_null = family.null_fit(y, wn, fit_intercept)
    ridge = family.ridge_scale(y, wn, fit_intercept)
    null_dev = family.deviance(eta_null, y, wn)

    def l1_weights(mom):
        pf_f = jnp.where(mom.excluded, 1.0, pf)  # finite stand-in; excluded features are masked
        return pf_f, jnp.where(mom.excluded, 0.0, pf_f * l1_ratio)

    def afresh():
        mom = moments(XT_all, wn, pf, fit_intercept, standardize)
        grad = full_gradient(problem, family.residual(eta_null, y, wn), mom)
        scores = _entry_scores(grad, jnp.zeros((p,), dtype), l1_weights(mom)[1], mom.excluded)
        lam_max = jnp.max(jnp.where(jnp.isfinite(scores), scores, 0.0))
        lam_prev = jnp.where(start > 0, lambdas[jnp.maximum(start - 1, 0)], jnp.maximum(lam_max, lambdas[0]))
        # The deviance ratio of the intercept-only fit is 0 by definition.
        return PathState(jnp.zeros((p,), dtype), b0_null, grad, lam_prev.astype(dtype), jnp.zeros((), dtype),
                         mom, jnp.asarray(True))

    if sync_axes:
        # Vmapped lanes: ``lax.cond`` on a per-lane flag becomes a select that first broadcasts
        # every operand of both branches to the lane axis -- the closed-over design too: B copies
        # of X (130 MB for 16 lanes of 200 x 5,000) and a batched product over them. Computing the
        # fresh state (cheap next to a segment) and selecting it per lane touches X once.
        fresh = afresh()
        state = jax.tree.map(lambda resumed, new: jnp.where(state.resume, resumed, new), state, fresh)
    else:
        state = lax.cond(state.resume, lambda: state, afresh)
    mom = state.mom
    pf_f, pf_l1 = l1_weights(mom)

    master = jnp.asarray(True) if is_master is None else is_master
    # The Newton model's Gram kept from lambda to lambda (``solver.newton_solve``), where it pays.
    keep_gram = keeps_gram(k, n, bool(sync_axes), family)

    def build_ws(beta, grad, lam, lam_prev):
        scores = _entry_scores(grad, beta, pf_l1, mom.excluded)
        _, idx = lax.top_k(scores.astype(jnp.float32), k)
        strong = scores >= 2.0 * lam - lam_prev
        m = jnp.minimum(jnp.sum(strong), k).astype(jnp.int32)
        slot = jnp.arange(k)
        mask = (slot < m) & ~mom.excluded[idx]
        rows = (XT_all[idx] - mom.xm[idx][:, None]) / mom.xs[idx][:, None]
        XT = jnp.where(mask[:, None], rows, 0.0)
        a1, a2 = prox.strengths(lam, pf_f[idx], l1_ratio)
        if ridge is not None:
            a2 = a2 * ridge
        ws = WorkingSet(XT, jnp.where(mask, a1, 0.0), jnp.where(mask, a2, 0.0), mask, m)
        return idx, ws

    def lambda_step(carry: _Carry, inputs):
        lam, lam_next, m_index = inputs
        ratio = jnp.where(m_index + 1 < stop, lam_next / lam - 1.0, 0.0)
        skip = carry.stopped | (m_index < start) | (m_index >= stop)

        def round_cond(rs: _Round):
            return ~rs.done

        def round_body(rs: _Round) -> _Round:
            idx, ws = build_ws(rs.beta, rs.grad, lam, carry.lam_prev)
            b = jnp.where(ws.mask, rs.beta[idx], 0.0)
            eta = rs.b0 + b @ ws.XT
            # Under vmap this body also runs for lanes whose rounds are over (or that skip this
            # lambda); their results are discarded, but their Newton loops would still run, on a
            # stale state, and hold every other lane in lockstep: give them no iterations.
            max_iter = jnp.where(rs.done, 0, settings.max_iter)
            ns = newton_solve(ws, y, wn, b, rs.b0, eta, settings.tol, max_iter,
                              settings.max_sweeps, rs.it, fit_intercept, sync_axes, ratio, family=family,
                              idx=idx if keep_gram else None, cache=rs.gram)
            beta = rs.beta.at[idx].set(jnp.where(ws.mask, ns.b, rs.beta[idx]))
            in_ws = jnp.zeros((p,), bool).at[idx].set(ws.mask)
            outside = ~in_ws & ~mom.excluded
            grad, excess = kkt_pass(problem, family.residual(ns.eta, y, wn), mom, lam * pf_l1,
                                    outside, settings.tol)
            violators = excess > settings.tol
            gap = jnp.maximum(ns.kkt, jnp.max(excess, initial=0.0))
            finite = ns.status == Status.CONVERGED
            out_of_iters = ns.it >= settings.max_iter
            n_active = jnp.sum(beta != 0)
            n_needed = n_active + jnp.sum(violators)
            # Violators that do not all fit join a slot-full at a time -- the next round's
            # working set is the active features and the best-scoring violators -- while the
            # active set fills at most OVERFLOW_ACTIVE_SHARE of the slots (at 0.5 each round adds
            # k / 2 or more; the objective falls every round, so the rounds end). Then the lane
            # overflows: after a large step down the grid thousands of features violate at the
            # old solution, of which the new one keeps a few dozen, and a capacity sized to hold
            # them all (the k x k model, its Gram) would cost more than these rounds. A round
            # that ran out of Newton iterations, or made none (its slots went to features that
            # rank above the violators by score but do not violate: uneven penalty factors),
            # overflows too: the host retries the lambda at a larger capacity with a fresh budget.
            stuck = out_of_iters | (ns.it == rs.it)
            overflow = (n_needed > k) & ((n_active > OVERFLOW_ACTIVE_SHARE * k) | stuck)
            done = ~jnp.any(violators) | overflow | ~finite | out_of_iters
            status = jnp.where(
                ~finite, Status.NONFINITE,
                jnp.where(gap <= settings.tol, Status.CONVERGED,
                          jnp.where(overflow & jnp.any(violators), Status.OVERFLOW, Status.MAX_ITER)))
            return _Round(beta, ns.b0, grad, ns.eta, idx, jnp.where(ws.mask, ns.b, 0.0), ns.it,
                          rs.rounds + 1, gap, status.astype(jnp.int32), n_needed.astype(jnp.int32),
                          jnp.where(ws.mask, ns.pred, 0.0), ns.pred0, done, ns.cache)

        init_idx = jnp.zeros((k,), jnp.int32)
        init = _Round(carry.beta, carry.b0, carry.grad, jnp.zeros((n,), dtype), init_idx,
                      jnp.zeros((k,), dtype), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                      jnp.zeros((), dtype), jnp.asarray(Status.SKIPPED, jnp.int32),
                      jnp.zeros((), jnp.int32), jnp.zeros((k,), dtype), jnp.zeros((), dtype), skip, carry.gram)
        rs = lax.while_loop(round_cond, round_body, init)

        solved = ~skip
        dev = family.deviance(rs.eta, y, wn)
        dev_ratio = 1.0 - dev / null_dev
        failed = solved & ((rs.status == Status.OVERFLOW) | (rs.status == Status.NONFINITE))
        rule = (m_index >= MNLAM - 1) & (
            (dev_ratio > DEVMAX) | family.stop_rule(dev_ratio, carry.dev_prev, FDEV))
        rule = settings.early_stop & solved & rule & master
        if axis_name is not None:
            rule = lax.psum(rule.astype(jnp.int32), axis_name) > 0
        # Warm start of the next lambda: this solution moved along the path predictor (a
        # coefficient the predictor would push through zero starts at zero instead).
        b_ws = rs.beta[rs.idx]
        moved = b_ws + rs.pred
        moved = jnp.where(moved * b_ws < 0, 0.0, moved)
        start_beta = rs.beta.at[rs.idx].set(jnp.where(rs.pred != 0, moved, b_ws))
        keep = solved & ~failed
        new_carry = _Carry(
            beta=jnp.where(keep, start_beta, carry.beta),
            b0=jnp.where(keep, rs.b0 + rs.pred0, carry.b0),
            grad=jnp.where(keep, rs.grad, carry.grad),
            # A failed lambda (overflow: resumed later from this carry) leaves the carry as it was.
            lam_prev=jnp.where(keep, lam, carry.lam_prev),
            dev_prev=jnp.where(keep, dev_ratio, carry.dev_prev),
            stopped=carry.stopped | failed | rule,
            # A lambda that failed ends the lane; one skipped left the Gram as it was.
            gram=rs.gram,
        )
        out = PathOut(
            ws_idx=rs.idx,
            ws_coef=rs.coef,
            intercept=rs.b0,
            n_iter=rs.it,
            n_kkt_rounds=rs.rounds,
            ws_needed=rs.needed,
            kkt_gap=rs.gap,
            deviance=jnp.where(solved, dev, jnp.nan),
            status=rs.status,
            eta=rs.eta if keep_eta else jnp.zeros((0,), dtype),
        )
        return new_carry, out

    carry0 = _Carry(state.beta, state.b0, state.grad, state.lam_prev, state.dev_prev, jnp.asarray(False),
                    empty_gram_cache(k, n, dtype) if keep_gram else None)
    L = lambdas.shape[0]
    lam = lambdas.astype(dtype)
    lam_next = jnp.concatenate([lam[1:], lam[-1:]])
    if sync_axes or axis_name is not None or not _RANGE_LOOP:
        last, outs = lax.scan(lambda_step, carry0, (lam, lam_next, jnp.arange(L)))
    else:
        last, outs = _solved_range(lambda_step, carry0, lam, lam_next, start, stop, k=k, n=n, dtype=dtype,
                                   keep_eta=keep_eta)
    # A lane that stopped (overflow, early stop) kept the carry of its last solved lambda.
    end = PathState(last.beta, last.b0, last.grad, last.lam_prev, last.dev_prev, mom, jnp.asarray(True))
    return outs, null_dev, end
