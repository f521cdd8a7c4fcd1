"""Pytrees and status codes shared by the kernels.

Everything here is a ``NamedTuple`` of arrays so that it flows through ``jit``, ``vmap`` and
``lax.scan`` unchanged. Shapes use ``n`` (rows), ``p`` (features), ``k`` (working-set capacity)
and ``L`` (number of lambdas).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax

Array = jax.Array


class Status(enum.IntEnum):
    """Per-lambda outcome of the path solver (an int32 in the kernel outputs)."""

    CONVERGED = 0
    """KKT gap <= tol over every feature."""
    MAX_ITER = 1
    """The Newton iteration cap was reached before the KKT gap fell below tol."""
    OVERFLOW = 2
    """The active set plus KKT violators did not fit the working-set capacity ``k``; the
    host re-runs from this lambda with a larger capacity (never reported to users)."""
    SKIPPED = 3
    """The lambda was not solved: the path stopped early before it (glmnet's rule) or the
    lambda lies before the segment's start index."""
    NONFINITE = 4
    """A non-finite value appeared in the linear predictor or the gradient."""

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "converged: KKT gap <= tol",
    Status.MAX_ITER: (
        "did not converge within max_iter Newton iterations; increase max_iter or tol "
        "(near-separable data converges slowly at small lambdas)"
    ),
    Status.OVERFLOW: "working set overflow (internal; the solver retries with a larger working set)",
    Status.SKIPPED: "not solved: the path stopped early before this lambda",
    Status.NONFINITE: (
        "non-finite values in the fit; check X for extreme values (|x| > 1e150) and the weights"
    ),
}


class Problem(NamedTuple):
    """One penalised problem (its family is a static argument) on the *raw* (unstandardised) design.

    The kernel standardises internally with weighted moments so that CV folds and bootstrap
    resamples (which only change ``w``) share one ``X``.
    """

    X: Array
    """(n, p) design for the full-gradient (KKT) passes ``r @ X``: in the problem's dtype, or
    for a float64 problem solved lane by lane a float32 copy (its dtype then differs from
    ``XT``'s). The float32 product reads half the bytes and is certified instead of trusted: the few features its error bound cannot clear are recomputed exactly from ``XT``
    (``path.kkt_pass``). Under ``vmap`` pass the exact design (the exact fallback would become a
    select that always runs). The API layer shifts columns by their unweighted means when an
    intercept is fitted (this changes nothing in the fit and avoids cancellation in the
    moments)."""
    XT: Array
    """(p, n) the design transposed (contiguous), in the problem's dtype: every exact column
    value comes from it. A working set's columns are rows of it (contiguous reads, where the
    columns of a row-major ``X`` are strided); the lane's moments are ``XT @ w`` and a row sum of
    ``XT * XT * w`` (no stored ``X * X`` copy)."""
    colnorm: Array
    """(p,) column norms ``||x_j||_2`` (float64 problem dtype) for the error bound of a float32
    KKT pass; unused (zeros) when ``X`` is exact. A property of the design, computed once on the
    host."""
    y: Array
    """The family's response (:mod:`kernels.families`): (n,) labels in {0, 1} for binomial, (n,)
    outcomes for Gaussian, or a pytree whose leaves carry the rows on their last axis."""
    w: Array
    """(n,) non-negative observation weights (any scale; a CV fold has zeros on held-out rows)."""
    pf: Array
    """(p,) penalty factors, already rescaled to sum to p as glmnet does; ``inf`` excludes a feature."""
    l1_ratio: Array
    """() the elastic-net mixing parameter (glmnet's ``alpha``)."""


class Settings(NamedTuple):
    """Traced (vmappable) solver settings."""

    tol: Array
    """() KKT-gap tolerance on the standardised scale."""
    max_iter: Array
    """() cap on Newton iterations per lambda (all KKT rounds together)."""
    max_sweeps: Array
    """() cap on coordinate-descent sweeps per Newton step."""
    early_stop: Array
    """() bool: apply glmnet's early stop of the path (master lanes decide, see solve_path)."""


class PathOut(NamedTuple):
    """Per-lambda outputs of one path, stacked along a leading axis of length L (the grid, padded).

    Coefficients are returned sparsely: every nonzero lies in the working set ``ws_idx``.
    """

    ws_idx: Array
    """(L, k) int32 feature index of each working-set slot."""
    ws_coef: Array
    """(L, k) coefficient of each slot on the standardised scale (0 for unused slots)."""
    intercept: Array
    """(L,) intercept on the standardised scale (columns centred with the lane's weights)."""
    n_iter: Array
    """(L,) Newton iterations used."""
    n_kkt_rounds: Array
    """(L,) full-gradient KKT passes used."""
    ws_needed: Array
    """(L,) working-set slots the lambda needed (active features + KKT violators)."""
    kkt_gap: Array
    """(L,) max subgradient distance over all features and the intercept."""
    deviance: Array
    """(L,) 2 * weighted mean log-loss on the training weights."""
    status: Array
    """(L,) int32 :class:`Status`."""
    eta: Array
    """(L, n) linear predictor for every row (held-out rows included), or (L, 0) if not kept."""


class Moments(NamedTuple):
    """Weighted column moments of one lane (what glmnet's standardisation uses)."""

    xm: Array
    """(p,) weighted means (0 without intercept)."""
    xs: Array
    """(p,) weighted population SDs (1 when not standardising; 1 for excluded columns)."""
    excluded: Array
    """(p,) bool: infinite penalty factor or zero weighted variance."""


class PathState(NamedTuple):
    """Where a path stands before its next lambda: what a segment needs to resume a lane.

    ``solve_path`` takes one and returns the state after its last solved lambda, so a lane that
    overflowed its working set at lambda ``m`` resumes (with a larger capacity) exactly as an
    uninterrupted path would continue: from the warm start that lambda ``m`` would have used,
    with the gradient and moments already computed (no pass over ``X`` to restart). With
    ``resume`` False the path starts afresh at the intercept-only fit and the other fields are
    ignored (see :func:`kernels.path.fresh_state`).
    """

    beta: Array
    """(p,) warm start: standardised coefficients (moved along the path predictor)."""
    b0: Array
    """() warm-start intercept."""
    grad: Array
    """(p,) full loss gradient at the last solution (the next lambda's strong rule)."""
    lam_prev: Array
    """() the last solved lambda."""
    dev_prev: Array
    """() deviance ratio there."""
    mom: Moments
    """The lane's column moments."""
    resume: Array
    """() bool: resume from this state (else start afresh)."""
