r"""Stability selection (Meinshausen & Bühlmann 2010; complementary pairs, Shah & Samworth 2013).

The lasso path is fitted on many subsamples of half the data; a feature is *stable* when it is
selected in a large fraction of them. With ``q`` the average number of features each subsample
selects over the lambda region and ``pi`` the cutoff on the selection probability, the expected
number of falsely selected features (PFER) obeys

.. math:: E[V] \le \frac{q^2}{(2\pi - 1)\, p}, \qquad \pi \in (1/2, 1]

(Meinshausen & Bühlmann's bound; Shah & Samworth show it holds for complementary pairs without
the exchangeability assumption). As in R's ``stabs``, two of {cutoff, q, PFER} determine the
third. The region is ``lambdas[0..m]``, where ``m`` is the largest index at which the subsamples
select at most ``q`` features on average (``q`` counts the union of a subsample's selections
over the region, Meinshausen & Bühlmann's :math:`q_\Lambda`), and a feature's selection
probability is Meinshausen & Bühlmann's :math:`\max_{\lambda \in \Lambda} \hat\Pi^\lambda`: the
largest, over the region, of the fraction of subsamples that select it at that lambda.

When the subsamples are small the target ``q`` can be out of reach: a lasso on ``m`` samples
keeps at most about ``m - 1`` features, and with 7 vs 9 samples (7 per half) the paths select
2-5 features each against a target of about 90 for 16,000 genes. The bound then holds trivially
while at most ``q / cutoff`` features could reach the cutoff, and which few genes a half-sample
picks among thousands is close to arbitrary: an empty stable set says nothing about the genes.
:func:`stability_reachable` predicts this from the class sizes and ``StabilityResult`` reports
it from the realised ``q`` (``target_reachable``).

Every subsample is a weight vector (a 0/1 mask, stratified by class so that each half keeps the
case fraction), so all resamples share ``X`` and are solved as lanes of one batched kernel call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import _validation as V
from .._config import PATH
from .._engine import Lanes, report_status, solve_lanes
from ..path import PreparedProblem
from ..results import SparseRows

DEFAULT_CUTOFF = 0.75
DEFAULT_PFER = 1.0
REACHABLE_FRACTION = 0.25
"""The target q counts as out of reach when the subsamples can select (or realised) fewer than
this fraction of it: the PFER bound is then 1/16 of the target or less -- an error control far
stricter than asked, bought with power -- and at most ``q / cutoff`` features can pass."""


def error_control(p: int, *, cutoff: float | None = None, q: float | None = None,
                  pfer: float | None = None) -> tuple[float, float, float]:
    """Complete two of (cutoff, q, PFER) to all three with the Meinshausen–Bühlmann bound.

    With none or one given, the defaults cutoff = 0.75 and PFER = 1 fill in (stabs' usage).
    Returns ``(cutoff, q, pfer)``; ``q`` from (cutoff, PFER) is rounded down (conservative).
    """
    given = sum(v is not None for v in (cutoff, q, pfer))
    if given == 3:
        raise ValueError("give at most two of cutoff, q and pfer: the third follows from the bound "
                         f"(got cutoff={cutoff}, q={q}, pfer={pfer})")
    if cutoff is not None and not (0.5 < cutoff <= 1.0):
        raise ValueError(f"cutoff must lie in (0.5, 1] for the error bound to hold (got cutoff={cutoff})")
    if q is not None and not (0 < q <= p):
        raise ValueError(f"q must lie in (0, p] (got q={q}, p={p})")
    if pfer is not None and not pfer > 0:
        raise ValueError(f"pfer must be > 0 (got pfer={pfer})")
    if given <= 1:
        if cutoff is None:
            cutoff = DEFAULT_CUTOFF
        if q is None and pfer is None:
            pfer = DEFAULT_PFER
    if q is None:
        q = math.floor(math.sqrt(pfer * (2 * cutoff - 1) * p))
        if q < 1:
            raise ValueError(
                f"with cutoff={cutoff} and pfer={pfer} the bound allows fewer than one selected "
                f"feature per subsample on p={p} features; raise pfer or lower the cutoff "
                f"(got q={q})")
    elif cutoff is None:
        cutoff = min(1.0, 0.5 * (q * q / (p * pfer) + 1.0))
    if pfer is None:
        pfer = q * q / ((2 * cutoff - 1) * p)
    return float(cutoff), float(q), float(pfer)


def stability_reachable(n_case: int, n_control: int, p: int, *, cutoff: float | None = None,
                        q: float | None = None, pfer: float | None = None) -> tuple[bool, float, int]:
    """Can complementary-pair stability selection reach its target ``q`` at this sample size?

    Each half keeps ``n_case // 2 + n_control // 2`` samples, and a lasso on ``m`` samples (with
    an intercept) keeps at most ``m - 1`` features at any lambda, so ``m - 1`` bounds what a
    subsample can select. Returns ``(reachable, q_target, capacity)``; reachable means the
    capacity is at least :data:`REACHABLE_FRACTION` of the target (the realised q is usually
    well below the capacity, so this is the optimistic side of the prediction).
    """
    _, q_target, _ = error_control(p, cutoff=cutoff, q=q, pfer=pfer)
    capacity = max(int(n_case) // 2 + int(n_control) // 2 - 1, 0)
    return capacity >= REACHABLE_FRACTION * q_target, q_target, capacity


def subsample_weights(y01: np.ndarray, w: np.ndarray, *, n_resamples: int, fraction: float,
                      complementary_pairs: bool, stratified: bool, seed: int) -> np.ndarray:
    """(n_resamples, n) 0/1 subsample masks times ``w``.

    With complementary pairs, resample ``2i + 1`` is the complement of resample ``2i`` (both of
    size ``floor(n / 2)`` within each class when stratified).
    """
    rng = np.random.default_rng(seed)
    n = len(y01)
    groups = [np.nonzero(y01 == c)[0] for c in (1.0, 0.0)] if stratified else [np.arange(n)]
    masks = np.zeros((n_resamples, n))
    r = 0
    while r < n_resamples:
        mask = np.zeros(n)
        for g in groups:
            size = int(math.floor(fraction * len(g))) if not complementary_pairs else len(g) // 2
            mask[rng.choice(g, size=size, replace=False)] = 1.0
        masks[r] = mask
        r += 1
        if complementary_pairs and r < n_resamples:
            comp = np.zeros(n)
            for g in groups:
                rest = g[mask[g] == 0]
                take = len(g) // 2
                comp[rest[:take] if len(rest) == take else rng.choice(rest, size=take, replace=False)] = 1.0
            masks[r] = comp
            r += 1
    return masks * w[None, :]


@dataclass(frozen=True)
class StabilityResult:
    """Stability selection over the lasso path (see the module docstring for the error control)."""

    lambdas: np.ndarray
    """(L,) lambda grid of the full data."""
    probabilities_sparse: SparseRows
    """(L, p) fraction of subsamples in which each feature is nonzero at each lambda, nonzeros
    only (``probabilities`` is the dense array, made on each access)."""
    max_probability: np.ndarray
    """(p,) selection probability: the maximum of ``probabilities`` over the region
    ``lambdas[0..region_index]`` (Meinshausen & Bühlmann's definition); the table and the plot
    show this number."""
    max_probability_path_sparse: SparseRows
    """(L, p) running maximum of ``probabilities`` over ``lambdas[0..l]``: the selection
    probability the region ending at ``l`` would give (row ``region_index`` is
    ``max_probability``); what the stability plot draws. Nonzeros only
    (``max_probability_path`` is the dense array, made on each access)."""
    selected: tuple[str, ...]
    """Features with ``max_probability >= cutoff``, strongest first."""
    cutoff: float
    q: float
    """Realised q: the average number of features a subsample selects over the region (the
    union of its selections at ``lambdas[0..region_index]``); the error bound uses it."""
    q_target: float
    """The q the error control asked for (from cutoff and PFER); the region is the longest
    prefix of the grid whose realised q stays at or below it."""
    pfer_bound: float
    """Meinshausen–Bühlmann bound on the expected number of false selections, ``q^2/((2 cutoff - 1) p)``."""
    region_index: int
    n_resamples: int
    sample_fraction: float
    complementary_pairs: bool
    randomized_weakness: float | None
    seed: int
    feature_names: tuple[str, ...]
    n_selected_per_resample: np.ndarray
    """(n_resamples,) features each subsample selected over the region."""
    info: dict = field(default_factory=dict, compare=False)

    @property
    def probabilities(self) -> np.ndarray:
        """(L, p) dense ``probabilities_sparse`` (a new array on every access, not kept)."""
        return self.probabilities_sparse.toarray()

    @property
    def max_probability_path(self) -> np.ndarray:
        """(L, p) dense ``max_probability_path_sparse`` (a new array on every access, not kept)."""
        return self.max_probability_path_sparse.toarray()

    @property
    def target_reachable(self) -> bool:
        """Whether the realised q reached :data:`REACHABLE_FRACTION` of the target: when it did
        not, the subsamples were too small for stability selection to select anything but by
        chance (see the module docstring), and an empty stable set is no evidence."""
        return self.q >= REACHABLE_FRACTION * self.q_target

    def to_frame(self) -> pd.DataFrame:
        """One row per feature with a nonzero selection probability, strongest first."""
        order = np.argsort(-self.max_probability, kind="stable")
        order = order[self.max_probability[order] > 0]
        names = np.asarray(self.feature_names, dtype=object)
        return pd.DataFrame({
            "feature": names[order],
            "selection_probability": self.max_probability[order],
            "selected": self.max_probability[order] >= self.cutoff,
            "rank": np.arange(1, len(order) + 1),
        })


def stability_selection(X: Any, y: Any, *, n_resamples: int = 100, sample_fraction: float = 0.5,
                        complementary_pairs: bool = True, cutoff: float | None = None,
                        pfer: float | None = None, q: float | None = None,
                        l1_ratio: float = PATH.l1_ratio, lambdas: Any = None,
                        n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
                        randomized_weakness: float | None = None, stratified: bool = True,
                        seed: int = 0, standardize: bool = True, sample_weight: Any = None,
                        penalty_factor: Any = None, tol: float | None = None,
                        max_iter: int = PATH.max_iter, dtype: Any = np.float64,
                        mode: str | None = None, problem: Any = None) -> StabilityResult:
    """Stability selection with the lasso / elastic net (all subsamples in one batched solve).

    Parameters
    ----------
    X, y
        As :func:`jaxlasso.logistic_path`.
    n_resamples : int
        Number of subsamples (an even number with complementary pairs).
    sample_fraction : float
        Subsample size as a fraction of n (0.5 with complementary pairs, which split each class
        in two halves).
    complementary_pairs : bool
        Shah & Samworth's scheme: subsamples come in disjoint pairs.
    cutoff, pfer, q
        Give at most two (default: cutoff 0.75 and PFER 1, as R's ``stabs`` is often used);
        the third follows from the Meinshausen–Bühlmann bound.
    randomized_weakness : float in (0, 1), optional
        Randomised lasso: each subsample's penalty factors are drawn uniformly from
        ``[weakness, 1]`` (Meinshausen & Bühlmann's "weakness").
    stratified : bool
        Subsample within each class (keeps both classes in every half; essential at n = 16).
    seed : int
    mode : {"vmap", "loop"}, optional
        How the subsample lanes run (default: vmap on accelerators, loop on CPU).
    problem : PreparedProblem or CVResult, optional
        A problem already prepared from these very ``X`` and ``y`` objects (or the CV result
        that holds one, ``CVResult.problem``): its validated data are reused instead
        of preparing ``X`` again, when ``sample_weight``, ``penalty_factor`` and
        ``standardize`` are those it was prepared with; otherwise it is ignored. The result is
        the same either way.

    Returns
    -------
    StabilityResult
    """
    t0 = time.perf_counter()
    n_resamples = V.check_positive_int(n_resamples, "n_resamples", minimum=2)
    if not (0 < sample_fraction < 1):
        raise ValueError(f"sample_fraction must lie in (0, 1) (got sample_fraction={sample_fraction})")
    if complementary_pairs and n_resamples % 2:
        raise ValueError("with complementary pairs n_resamples must be even (pairs of disjoint halves) "
                         f"(got n_resamples={n_resamples})")
    if randomized_weakness is not None and not (0 < randomized_weakness <= 1):
        raise ValueError(f"randomized_weakness must lie in (0, 1] (got randomized_weakness={randomized_weakness})")
    settings = dict(l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                    lambda_min_ratio=lambda_min_ratio, early_stop=False, tol=tol, max_iter=max_iter,
                    dtype=dtype)
    given = getattr(problem, "problem", problem)  # a CVResult holds its problem
    if given is not None and given.reusable_for(X, y, sample_weight, penalty_factor, fit_intercept=True,
                                                standardize=standardize):
        prob = given.derive(**settings)
    else:
        prob = PreparedProblem(X, y, standardize=standardize, fit_intercept=True,
                               sample_weight=sample_weight, penalty_factor=penalty_factor, **settings)
    cutoff, q_target, _ = error_control(prob.p, cutoff=cutoff, q=q, pfer=pfer)
    W = subsample_weights(prob.y, prob.w, n_resamples=n_resamples, fraction=sample_fraction,
                          complementary_pairs=complementary_pairs, stratified=stratified, seed=seed)
    for r, row in enumerate(W):
        present = row > 0
        if len(np.unique(prob.y[present])) < 2:
            raise ValueError(
                f"subsample {r} holds only one class; use stratified=True or a larger "
                f"sample_fraction (got n_case={int(prob.y[present].sum())}, n={int(present.sum())})")
    pf = prob.pf
    if randomized_weakness is not None:
        rng = np.random.default_rng([seed, 1])
        pf = rng.uniform(randomized_weakness, 1.0, size=(n_resamples, prob.p)) * np.where(
            np.isinf(prob.pf), np.inf, prob.pf)[None, :]
    L, p = len(prob.lambdas), prob.p
    # Entry index of every feature in every subsample's path (L if it never enters); the
    # smallest integer type that holds L, as this is n_resamples x p.
    entry = np.full((n_resamples, p), L, dtype=np.min_scalar_type(L))
    # (lambda, feature) of every selection, as li * p + feature: the counts are kept sparse, as a
    # dense (L, p) table is 160 MB at p = 200,000 and almost all zero.
    hits: list[np.ndarray] = []
    # Only the selections of each lane are used: no lane's standardisation moments are kept
    # (keep_moments=False), and resamples are solved in groups of about n / 8 lanes (at least
    # 16, a vmapped chunk) so that their working-set outputs stay small.
    per_call = max(16, prob.n // 8)
    capacities: list[int] = []
    for r0 in range(0, n_resamples, per_call):
        part = slice(r0, min(r0 + per_call, n_resamples))
        out = solve_lanes(prob, Lanes(W=W[part], pf=pf[part] if pf.ndim == 2 else None, keep_moments=False),
                          mode=mode)
        report_status(out.status, prob.lambdas, what="stability selection")
        capacities.extend(c for c in out.capacities if c not in capacities)
        for i, r in enumerate(range(part.start, part.stop)):
            li, slot = np.nonzero(out.coef[i] != 0)
            feat = out.idx[i][li, slot]
            np.minimum.at(entry[r], feat, li.astype(entry.dtype))
            hits.append(li.astype(np.int64) * p + feat)
        del out
    cell, count = np.unique(np.concatenate(hits) if hits else np.zeros(0, np.int64), return_counts=True)
    probabilities = SparseRows.from_entries(cell // p, cell % p, count.astype(np.float64) / n_resamples, (L, p))
    # Region: the longest prefix of the grid whose union selections average <= q_target.
    sizes = np.stack([np.bincount(np.minimum(entry[r], L), minlength=L + 1)[:L].cumsum()
                      for r in range(n_resamples)])  # (R, L): |union over lambdas[0..m]|
    mean_size = sizes.mean(axis=0)
    ok = np.nonzero(mean_size <= q_target)[0]
    m = int(ok[-1]) if ok.size else 0
    selected_in_region = entry <= m
    # The running maximum over the path, on the features ever selected only.
    active = probabilities.active()
    run = np.maximum.accumulate(probabilities.columns(active), axis=0)
    li, k = np.nonzero(run)
    running_max = SparseRows.from_entries(li, active[k], run[li, k], (L, p))
    max_prob = running_max.row(m)
    q_real = float(mean_size[m])
    pfer_bound = q_real ** 2 / ((2 * cutoff - 1) * p)
    names = tuple(prob.feature_names) if prob.feature_names else tuple(f"x{j}" for j in range(p))
    order = np.argsort(-max_prob, kind="stable")
    chosen = tuple(names[j] for j in order if max_prob[j] >= cutoff)
    return StabilityResult(
        lambdas=prob.lambdas, probabilities_sparse=probabilities, max_probability=max_prob,
        max_probability_path_sparse=running_max, selected=chosen,
        cutoff=cutoff, q=q_real, q_target=q_target, pfer_bound=pfer_bound, region_index=m,
        n_resamples=n_resamples, sample_fraction=sample_fraction,
        complementary_pairs=complementary_pairs, randomized_weakness=randomized_weakness,
        seed=seed, feature_names=names, n_selected_per_resample=selected_in_region.sum(axis=1),
        info={"seconds": time.perf_counter() - t0, "working_set_capacities": tuple(capacities),
              "lanes": n_resamples},
    )
