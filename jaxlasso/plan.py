"""What would it take: the power of the selection workflow, estimated from the user's own data.

:func:`plan_power` runs a *plasmode* simulation. The user's matrix is preprocessed once, exactly
as :func:`jaxlasso.select_features` does (count detection, log2-CPM for counts, constant genes
dropped, optional variance filter: all unsupervised, so doing it once on the whole pool is what
``select`` does too). Then, for every grid cell (n per class, k, d) and replicate:

1. ``2 n`` samples are drawn from the pool and half of them, at random, are called "case": the
   labels are shuffled, so whatever real signal the data hold is removed, while every gene keeps
   its real distribution and its real correlations with the others;
2. ``k`` genes, drawn at random, get a shift of ``d`` standard deviations in the case group
   (that gene's population SD over the pool, on the analysis scale, random sign);
3. the same pipeline as ``select_features`` runs on it: the cross-validated lasso (glmnet's rules,
   ``n_repeats`` as ``select`` chooses them for that sample size) and the label-permutation test of
   the whole CV pipeline (one batch of ``B + 1`` label vectors on the solver's lanes) at level
   ``alpha``. "Detected" is that test rejecting: the same decision ``select`` announces.

``detection_probability`` is the share of replicates detected. Rows with ``effect_sd = 0`` plant
nothing: they measure the false-signal rate of the whole pipeline on these data.

Sample sizes beyond the pool. A study with more samples than the user has cannot be observed in
the user's data. When ``2 n`` exceeds the pool, samples are drawn *with replacement* (every sample
``2 n // pool`` times plus a subsample, so copies spread evenly) and the row says
``resampled = True``. Copies of one sample land in training folds and in held-out folds, so the
CV is scored on samples it has in effect seen: detection at those sizes is optimistic (an upper
estimate), and only the sizes within the pool are a plain subsampling estimate. Under
``effect_sd = 0`` the labels are still exchangeable, so the permutation test keeps its level in
principle; its measured rate on resampled rows is in the README.

The permutation test inside the plan uses ``B = 19`` permutations by default (p can still reach
``1 / 20 = 0.05``, so a test at ``alpha = 0.05`` can reject): ``select``'s ``B = 99`` would make
each cell five times slower for the same decision rule at that level. Enlarge ``n_permutations``,
``replicates`` and the grid when the time is there.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._config import PATH, PLAN
from .exceptions import FewObservationsWarning

POWER_COLUMNS = ("n_per_class", "k", "effect_sd", "replicates", "detection_probability", "mean_true_selected",
                 "mean_false_selected", "resampled", "estimate")
"""Columns of :meth:`PowerPlan.to_frame` (and ``power.tsv``). ``estimate`` says the same as
``resampled`` in words, so a reader of the TSV alone sees it: ``subsampled`` (a plain estimate)
or ``resampled: optimistic`` (more samples than the data hold, drawn with replacement)."""

ESTIMATE_WORDS = {False: "subsampled", True: "resampled: optimistic"}


@dataclass(frozen=True)
class PowerPlan:
    """The result of :func:`plan_power`: one row per (n per class, k, effect_sd)."""

    table: pd.DataFrame = field(repr=False)
    """Columns :data:`POWER_COLUMNS`; ``resampled``: the pool was too small, rows were drawn with
    replacement (an optimistic estimate, see the module docstring)."""
    pool_n_per_class: tuple[int, int]
    """(control, case) sizes of the user's data."""
    pool_size: int
    """Samples in the pool the simulation draws from."""
    n_features: int
    """Genes after preprocessing (what the lasso sees)."""
    n_permutations: int
    alpha: float
    rule: str
    seed: int
    seconds: float = field(default=0.0, compare=False)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def current_n_per_class(self) -> int:
        """The smaller class of the user's data (the sample size the grid starts from)."""
        return min(self.pool_n_per_class)

    def n_for_power(self, k: int, effect_sd: float, power: float = PLAN.power) -> int | None:
        """The smallest n per class of the grid at which ``k`` genes with effect ``effect_sd``
        are detected with probability >= ``power``; None when no grid point reaches it."""
        rows = self.table[(self.table["k"] == k) & np.isclose(self.table["effect_sd"], effect_sd)]
        if rows.empty:
            raise ValueError(f"(k={k}, effect_sd={effect_sd}) is not in the grid "
                             f"(k: {sorted(set(self.table['k']))}, effect_sd: {sorted(set(self.table['effect_sd']))})")
        hit = rows[rows["detection_probability"] >= power].sort_values("n_per_class")
        return None if hit.empty else int(hit["n_per_class"].iloc[0])

    def false_signal_rate(self) -> float | None:
        """Share of the ``effect_sd = 0`` replicates (all sizes) in which signal was detected."""
        null = self.table[self.table["effect_sd"] == 0]
        if null.empty:
            return None
        return float((null["detection_probability"] * null["replicates"]).sum() / null["replicates"].sum())


def default_sizes(n_per_class: int, points: int = PLAN.size_points, factor: float = PLAN.size_factor) -> tuple[int, ...]:
    """The grid's sample sizes: from the current n per class to ``factor`` times it, about evenly
    on the log scale (at least 3 per class, so that stratified CV keeps both classes per fold)."""
    lo = max(3, int(n_per_class))
    sizes = np.unique(np.round(np.geomspace(lo, lo * factor, points)).astype(int))
    return tuple(int(s) for s in sizes)


def draw_rows(rng: np.random.Generator, pool: int, m: int) -> tuple[np.ndarray, bool]:
    """``m`` row indices from a pool of ``pool``: without replacement when ``m <= pool``, else
    every row ``m // pool`` times plus a subsample (each row at most ceil(m / pool) times)."""
    if m <= pool:
        return rng.choice(pool, size=m, replace=False), False
    reps, rest = divmod(m, pool)
    rows = np.concatenate([np.tile(np.arange(pool), reps), rng.choice(pool, size=rest, replace=False)])
    return rng.permutation(rows), True


def plant(Z: np.ndarray, case: np.ndarray, genes: np.ndarray, shift: np.ndarray, *,
          copy: bool = True) -> np.ndarray:
    """``Z`` with ``shift[j]`` added to gene ``genes[j]`` in the rows where ``case`` is True
    (a float copy; ``copy=False``: ``Z`` itself, a float array, changed in place)."""
    out = np.array(Z, dtype=float, copy=True) if copy else Z
    out[np.ix_(case, genes)] += shift[None, :]
    return out


def _one_run(Z: np.ndarray, y: np.ndarray, *, opts, repeats: int, B: int, seed: int):
    """The decision of ``select_features`` on (Z, y): (detected, genes selected at the rule).
    ``Z`` is the caller's own float64 array, kept by the CV without a copy: it must not change."""
    from .cv import cv_logistic_path
    from .diagnose import permutation_test

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewObservationsWarning)
        cv = cv_logistic_path(Z, y, nfolds=opts.cv.nfolds, n_repeats=repeats, measure=opts.cv.measure, seed=seed,
                              l1_ratio=opts.path.l1_ratio, n_lambdas=opts.path.n_lambdas,
                              lambda_min_ratio=opts.path.lambda_min_ratio, tol=opts.path.tol,
                              max_iter=opts.path.max_iter, dtype=np.float64, copy_X=False)
        # Only the decision is counted: the test stops once p <= alpha is out of reach.
        test = permutation_test(Z, y, cv, n_permutations=B, seed=seed, stop_at=opts.alpha)
    coef = cv.coef(opts.rule.value)[1]
    return bool(test.p_value <= opts.alpha), np.nonzero(coef)[0]


def plan_power(X: Any, y: Any, *, n_per_class: Sequence[int] | int | None = None,
               k: Sequence[int] | int = PLAN.k, effect_sd: Sequence[float] | float = PLAN.effect_sd,
               replicates: int = PLAN.replicates, n_permutations: int = PLAN.n_permutations,
               alpha: float = PLAN.alpha, rule: str = PLAN.rule, log: str = PLAN.log, cpm: bool = PLAN.cpm,
               top_variance: float | int | None = None, l1_ratio: float = 1.0, nfolds: int | None = None,
               n_repeats: int | None = None, measure: str = "deviance", seed: int = 0,
               n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None, tol: float | None = None,
               max_iter: int = PATH.max_iter, progress=None) -> PowerPlan:
    """Estimate, from the user's own matrix, how likely ``select_features`` is to detect signal.

    Parameters
    ----------
    X, y : the user's data, as :func:`jaxlasso.select_features` takes them (two classes).
    n_per_class : int or sequence of int, optional
        Samples per class of the simulated studies. Default :func:`default_sizes`: the smaller
        class of the data up to 10 times it, 4 points.
    k : int or sequence of int
        Numbers of planted differentially expressed genes.
    effect_sd : float or sequence of float
        Planted effects in standard deviations of each gene (analysis scale). 0 plants nothing:
        those rows measure the pipeline's false-signal rate.
    replicates : int
        Simulated studies per grid cell.
    n_permutations, alpha : the permutation test of each study (default B = 19: p can reach 0.05).
    rule : the lambda whose genes are counted (``mean_true_selected`` / ``mean_false_selected``).
    log, cpm, top_variance, l1_ratio, nfolds, n_repeats, measure : as in ``select_features``
        (``n_repeats=None``: ``select``'s automatic choice for each simulated sample size).
    n_lambdas, lambda_min_ratio, tol, max_iter : the path, as :func:`jaxlasso.cv_logistic_path`.
    seed : seed of every draw (rows, labels, planted genes, folds, permutations).
    progress : callable, optional; ``progress(text)`` before each grid cell.

    Every option is checked by :class:`jaxlasso.options.PlanOptions` before any work starts.
    """
    from . import _validation as V
    from .options import PlanOptions
    from .selection.filters import preprocess
    from .workflow import default_repeats

    opts = PlanOptions.from_mapping(dict(
        n_per_class=n_per_class, k=k, effect_sd=effect_sd, replicates=replicates, n_permutations=n_permutations,
        alpha=alpha, rule=rule, log=log, cpm=cpm, top_variance=top_variance, l1_ratio=l1_ratio, nfolds=nfolds,
        n_repeats=n_repeats, measure=measure, seed=seed, n_lambdas=n_lambdas, lambda_min_ratio=lambda_min_ratio,
        tol=tol, max_iter=max_iter))
    t0 = time.perf_counter()
    say = progress or (lambda text: None)
    frame, _ = preprocess(X, log=opts.log, cpm_normalize=opts.cpm, top_variance=opts.top_variance)
    if isinstance(y, pd.Series) and isinstance(X, pd.DataFrame) and set(y.index) == set(frame.index):
        y = y.loc[frame.index]
    labels = V.check_y(y if isinstance(y, pd.Series) else np.asarray(y), frame.shape[0])
    counts = (int((labels.y == 0).sum()), int((labels.y == 1).sum()))
    Zpool = frame.to_numpy(dtype=float)
    pool, p = Zpool.shape
    too_many = [kk for kk in opts.k if kk > p]
    if too_many:
        raise ValueError(f"k must be at most the {p} genes left after preprocessing (got k={too_many[0]})")
    sd = Zpool.std(axis=0)
    sizes = opts.n_per_class or default_sizes(min(counts))
    rows = []
    for m in sizes:
        repeats = default_repeats(2 * m) if opts.cv.n_repeats is None else opts.cv.n_repeats
        for kk in opts.k:
            for d in opts.effect_sd:
                say(f"n per class {m}, k {kk}, effect {d:g} SD")
                # One stream per cell: a cell's result does not depend on the rest of the grid.
                rng = np.random.default_rng([opts.seed, m, kk, int(round(d * 1000))])
                hits, true_sel, false_sel, resampled = 0, 0, 0, False
                for r in range(opts.replicates):
                    idx, again = draw_rows(rng, pool, 2 * m)
                    resampled |= again
                    case = np.zeros(2 * m, bool)
                    case[rng.permutation(2 * m)[:m]] = True
                    genes = rng.choice(p, size=kk, replace=False)
                    shift = d * sd[genes] * rng.choice([-1.0, 1.0], size=kk)
                    # Zpool[idx] is a new array: planted in place, and the CV keeps it as is.
                    Z = plant(Zpool[idx], case, genes, shift, copy=False) if d else Zpool[idx]
                    detected, chosen = _one_run(Z, case.astype(float), opts=opts, repeats=repeats,
                                                B=opts.n_permutations, seed=int(rng.integers(2**31)))
                    hits += detected
                    planted = np.isin(chosen, genes) if d else np.zeros(len(chosen), bool)
                    true_sel += int(planted.sum())
                    false_sel += int((~planted).sum())
                R = opts.replicates
                rows.append({"n_per_class": m, "k": kk, "effect_sd": float(d), "replicates": R,
                             "detection_probability": hits / R, "mean_true_selected": true_sel / R,
                             "mean_false_selected": false_sel / R, "resampled": resampled,
                             "estimate": ESTIMATE_WORDS[resampled]})
    table = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    return PowerPlan(table=table, pool_n_per_class=counts, pool_size=pool, n_features=p,
                     n_permutations=opts.n_permutations, alpha=opts.alpha, rule=opts.rule.value, seed=opts.seed,
                     seconds=time.perf_counter() - t0)



@dataclass(frozen=True)
class QuickPlan:
    """The quick plan a "no signal detected" verdict quotes: could this study have detected
    ``k`` genes shifted by ``effect_sd`` SD, and at how many samples per class it would.

    One :func:`plan_power` cell per size, sizes from the current n per class upwards, smallest
    first, stopping at the first size whose detection probability reaches ``power`` (a larger
    size is not needed for the answer) or before the first larger size whose study would not fit
    the memory budget (:attr:`over_budget`). :attr:`plan` holds the rows that ran; a direct
    :func:`plan_power` call with the same seed and options gives the same numbers for them (each
    cell draws from its own random stream).
    """

    plan: PowerPlan
    k: int
    effect_sd: float
    replicates: int
    power: float
    sizes: tuple[int, ...]
    """The sizes the quick plan could run (the rows of :attr:`plan` are those it ran)."""
    over_budget: tuple[int, ...] = ()
    """The sizes not simulated because a study of the first of them would not fit the memory
    budget (:func:`study_bytes` above :func:`jaxlasso._engine.memory_budget`, or the engine's own
    check refused it): the plan stopped there. Empty when it did not stop for memory."""
    memory_needed: float | None = None
    """Bytes the first size of :attr:`over_budget` was estimated to need (None when empty)."""
    memory_budget: float | None = None
    """The budget it was compared with at that moment (``$JAXLASSO_MAX_MEMORY``, else 80% of the
    memory then available; None when :attr:`over_budget` is empty)."""

    @property
    def current_n_per_class(self) -> int:
        return self.plan.current_n_per_class

    @property
    def detection_at_current(self) -> float:
        """Detection probability at the current n per class (the grid's first size)."""
        t = self.plan.table
        return float(t.loc[t["n_per_class"] == self.sizes[0], "detection_probability"].iloc[0])

    @property
    def n_for_power(self) -> int | None:
        """The smallest size reaching ``power``; None when none of the sizes run did."""
        return self.plan.n_for_power(self.k, self.effect_sd, self.power)

    @property
    def resampled_beyond(self) -> int:
        """Samples the pool holds: sizes with ``2 n`` above it were drawn with replacement."""
        return self.plan.pool_size

    def as_dict(self) -> dict:
        n80 = self.n_for_power
        resampled = bool(n80 is not None and 2 * n80 > self.plan.pool_size)
        return {"k": self.k, "effect_sd": self.effect_sd, "replicates": self.replicates,
                "n_permutations": self.plan.n_permutations, "alpha": self.plan.alpha, "power": self.power,
                "current_n_per_class": self.current_n_per_class,
                "detection_at_current_n": self.detection_at_current, "n_per_class_for_power": n80,
                "n_per_class_for_power_resampled": resampled, "sizes": list(self.sizes),
                "pool_size": self.plan.pool_size, "sizes_over_memory_budget": list(self.over_budget),
                "memory_needed_bytes": None if self.memory_needed is None else int(self.memory_needed),
                "memory_budget_bytes": None if self.memory_budget is None else int(self.memory_budget),
                "seconds": self.plan.seconds,
                "rows": self.plan.table.to_dict("records")}

    def sentence(self) -> str:
        """The verdict's quote, with its resolution and the caveat on resampled sizes."""
        n0, R = self.current_n_per_class, self.replicates
        what = (f"{self.k} genes shifted by {self.effect_sd:g} SD each, planted in these data with their "
                f"labels shuffled, {R} simulated studies per size, the same test at B = "
                f"{self.plan.n_permutations}")
        head = (f"What this test could detect (quick plan: {what}): detection probability "
                f"{self.detection_at_current:.1f} at the current {n0} per class (in steps of {1 / R:.2g})")
        n80 = self.n_for_power
        if n80 is None:
            top = int(self.plan.table["n_per_class"].max())
            tail = (f"; {self.power:.0%} not reached up to {top} per class"
                    + (" (sizes beyond the data resampled: optimistic)" if 2 * top > self.plan.pool_size else ""))
            if self.over_budget:
                m = self.over_budget[0]
                tail += (f"; {m} per class and more not simulated: a study of {m} per class needs about "
                         f"{_bytes_text(self.memory_needed)}, more than the {_bytes_text(self.memory_budget)} "
                         "memory budget (JAXLASSO_MAX_MEMORY)")
        elif n80 == n0:
            tail = ""
        else:
            tail = f"; {self.power:.0%} reached at {n80} per class"
            if 2 * n80 > self.plan.pool_size:
                tail += (f" (beyond the {self.plan.pool_size} samples available: drawn with replacement, "
                         "so optimistic -- a lower bound on the n needed)")
        return head + tail + ". The command jaxlasso plan gives the full grid."


def quick_plan(X: Any, y: Any, *, seed: int = 0, alpha: float = PLAN.alpha, nfolds: int | None = None,
               measure: str = "deviance", l1_ratio: float = 1.0, n_lambdas: int = PATH.n_lambdas,
               lambda_min_ratio: float | None = None, tol: float | None = None, max_iter: int = PATH.max_iter,
               log: str = "no", cpm: bool = False, k: int = PLAN.quick_k, effect_sd: float = PLAN.quick_effect_sd,
               replicates: int = PLAN.quick_replicates, power: float = PLAN.power,
               progress=None) -> QuickPlan:
    """The quick plan of a "no signal" verdict on ``X`` (by default the matrix ``select`` analysed,
    already preprocessed: ``log="no"``).

    Sizes: :func:`default_sizes` of the smaller class (``PLAN.quick_size_points`` points up to
    ``PLAN.size_factor`` times it), run smallest first until one reaches ``power`` or until a
    study of the next size would not fit the memory budget (:attr:`QuickPlan.over_budget`: the
    sentence says so). Each
    simulated study is one CV repeat (the test's observed statistic uses one repeat whatever the
    CV's count, :data:`jaxlasso.diagnose.TEST_REPEATS`, so the detection decision is the same;
    only the CV curve that lists genes would average more) and its permutation test at
    ``B = PLAN.n_permutations`` (raised so that ``p`` can reach ``alpha``).
    """
    import math

    from . import _validation as V
    from ._engine import MemoryBudgetError, memory_budget

    labels = V.check_y(y if isinstance(y, pd.Series) else np.asarray(y), np.shape(X)[0])
    current = int(min((labels.y == 0).sum(), (labels.y == 1).sum()))
    sizes = default_sizes(current, points=PLAN.quick_size_points)
    B = max(PLAN.n_permutations, math.ceil(1 / alpha) - 1)
    common = dict(k=k, effect_sd=effect_sd, replicates=replicates, n_permutations=B, alpha=alpha, rule="lambda_1se",
                  log=log, cpm=cpm, l1_ratio=l1_ratio, nfolds=nfolds, n_repeats=1, measure=measure, seed=seed,
                  n_lambdas=n_lambdas, lambda_min_ratio=lambda_min_ratio, tol=tol, max_iter=max_iter,
                  progress=progress)
    p = int(np.shape(X)[1])
    parts, seconds, last, over, need, budget = [], 0.0, None, (), None, None
    for i, m in enumerate(sizes):
        # Larger studies are simulated only while they fit the memory budget: the plan is a
        # quote in a verdict the analysis has already reached, and a study of 10 x the samples
        # must not take the run down with it. The first size (at most the data's own n per
        # class, or 3) is not pre-checked: its studies are no larger than the analysis that ran.
        if i:
            estimate, available = study_bytes(2 * m, p, n_lambdas), memory_budget()
            if estimate > available:
                over, need, budget = sizes[i:], estimate, available
                break
        try:
            last = plan_power(X, y, n_per_class=m, **common)
        except MemoryBudgetError as exc:  # the engine's own check, on the lanes it runs at once
            if not i:
                raise
            over, need, budget = sizes[i:], exc.need, exc.budget
            break
        parts.append(last.table)
        seconds += last.seconds
        if last.table["detection_probability"].iloc[0] >= power:
            break
    table = pd.concat(parts, ignore_index=True)
    whole = PowerPlan(table=table, pool_n_per_class=last.pool_n_per_class, pool_size=last.pool_size,
                      n_features=last.n_features, n_permutations=B, alpha=alpha, rule=last.rule, seed=seed,
                      seconds=seconds)
    return QuickPlan(plan=whole, k=int(k), effect_sd=float(effect_sd), replicates=int(replicates),
                     power=float(power), sizes=sizes, over_budget=tuple(over), memory_needed=need,
                     memory_budget=budget)


def study_bytes(n_rows: int, p: int, n_lambdas: int = PATH.n_lambdas) -> int:
    """Estimated peak memory of one simulated study of ``n_rows`` x ``p``: its float64 matrix
    (a study is built in memory) plus the engine's estimate for its solves, lanes solved one at
    a time in as many threads as run at most (the CPU's strategy). Where the engine vmaps lanes
    instead (accelerators) its own check is the one that counts: a study it refuses stops the
    quick plan the same way (:class:`jaxlasso._engine.MemoryBudgetError`)."""
    from ._engine import bucket_lambdas, estimate_bytes, lane_threads

    return 8 * n_rows * p + estimate_bytes(n_rows, p, lane_threads(1 << 30), bucket_lambdas(n_lambdas))


def _bytes_text(nbytes: float) -> str:
    """A size in GiB or MiB with three significant digits (two sizes near a limit stay apart)."""
    return f"{nbytes / 2**30:.3g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.3g} MiB"
