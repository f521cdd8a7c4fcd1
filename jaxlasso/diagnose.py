"""Why did the lasso select nothing (or something shaky)? Findings with evidence and advice.

:func:`diagnose` inspects the data, the preprocessing and a cross-validated path and returns
findings, each with a stable ``code``, a ``severity``, a plain-language ``message``, the
``evidence`` (numbers) and a recommended ``action``:

``SMALL_N``         n vs p and events per variable
``FEW_PER_CLASS``   fewer than 8 samples in a class (glmnet's "dangerous ground")
``UNLOGGED_COUNTS`` raw counts were fitted without a log transform
``CONSTANT_GENES``  features that do not vary were dropped
``LAMBDA_RULE``     lambda.min keeps genes while lambda.1se keeps none
``LAMBDA_MIN_AT_EDGE`` the CV minimum sits at the smallest lambda of the grid
``SEPARABLE``       the training data become perfectly separable early in the path
``STABILITY_UNREACHABLE`` the half-samples are too small for stability selection to reach its
                    target q: it is not recommended, and an empty stable set is no evidence
``SIGNAL``          the label-permutation test rejects at level ``alpha``: predictive signal detected
``NO_SIGNAL``       the permutation test does not reject: no predictive signal *detectable* with
                    these samples by this test (which is not evidence that there is none)
``NOT_TESTED``      no permutation test was run, so signal was neither detected nor ruled out

One decision, one test: "signal detected" means that the label-permutation test of the whole
cross-validation pipeline gives ``p <= alpha`` (default 0.05). Its size is exact under
exchangeable labels (``(1 + #{null >= observed}) / (B + 1)`` with the observed statistic computed
by the same pipeline as the null ones); the comparison of the CV gain with one standard error is
shown beside it as evidence and never decides (it is not a test: on permuted labels it claims
signal far more often than 5%).

The permutation test refits the whole cross-validation on ``B`` label permutations; all
permutations x repeats x folds are lanes of one batched kernel call (each lane has its own ``y``
and fold weights, and all share ``X``). A Gaussian or Cox outcome is tested the same way
(:func:`permutation_test_family`: the permuted responses are the family's, e.g. Cox's risk-set
layouts of the permuted ``(time, event)`` pairs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _validation as V
from ._config import PATH, SELECT
from ._engine import Lanes, initial_capacity, report_status, solve_lanes
from ._engine.shapes import reached_capacity
from .folds import fold_weights, make_foldid
from .lambdas import default_lambda_min_ratio, entry_lambda_max, lambda_grid
from .metrics import cv_statistics, sigmoid
from .path import PreparedProblem
from .results import CVResult

SEVERITIES = ("info", "warning", "critical")


# A permutation test's engine calls after the first take up to this many times the first's
# labellings, within this many bytes of held-out predictions per call (see _solve_labellings).
_LATER_CALL_FACTOR = 4
_ETA_BYTES = 4 << 20


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    evidence: dict
    action: str

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": self.evidence, "action": self.action}


ALPHA = SELECT.alpha
"""Default level of the permutation test behind "signal detected"."""

N_PERMUTATIONS = SELECT.n_permutations
"""Default number of label permutations: the smallest p-value is 1 / (B + 1) = 0.01."""


@dataclass(frozen=True)
class PermutationTest:
    """Label-permutation test of the CV improvement over the intercept-only model."""

    statistic: float
    """Observed ``cv_mean[intercept-only] - min(cv_mean)`` (deviance units; larger = better)."""
    null_statistics: np.ndarray
    """(B,) the same statistic on each label permutation (the first ones only when
    :attr:`completed` is False)."""
    p_value: float
    """``(1 + #{null >= observed}) / (B + 1)``."""
    n_permutations: int
    lambda_stride: int
    """The test's grid has about ``len(cv.lambdas) / lambda_stride`` lambdas (observed and permuted
    alike; see :func:`permutation_test`)."""
    seconds: float
    n_repeats: int = 1
    """CV repeats behind every statistic, the observed one and each permuted one."""
    nfolds: int = 0
    """Folds of every CV inside the test, the observed labels' included (the CV's, unless
    ``permutation_test(n_folds=...)``)."""
    completed: bool = True
    """False when the test stopped as soon as ``p <= alpha`` could no longer hold (``stop_at``
    of :func:`permutation_test`): ``null_statistics`` then holds the permutations that ran (the
    first ones of the full test, in its order), and ``p_value`` is the full test's lower bound
    ``(1 + exceedances so far) / (B + 1)``, already above ``alpha``. The decision at that
    ``alpha`` is the full test's."""

    @property
    def resolution(self) -> float:
        """The smallest p-value the test can give, ``1 / (B + 1)``."""
        return 1.0 / (self.n_permutations + 1)


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    signal_detected: bool | None
    """True when the permutation test rejects at ``alpha``, False when it does not, None when
    no test was run (signal not tested)."""
    permutation: PermutationTest | None = None
    alpha: float = ALPHA
    info: dict = field(default_factory=dict, compare=False)

    @property
    def no_signal(self) -> bool:
        """The test ran and did not reject (no signal *detectable* with these samples)."""
        return self.signal_detected is False

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def get(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**f.as_dict(), "evidence": _fmt_evidence(f.evidence)} for f in self.findings],
                            columns=["code", "severity", "message", "evidence", "action"])


def _fmt_evidence(ev: dict) -> str:
    parts = []
    for k, v in ev.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        else:
            parts.append(f"{k}={v}")
    return "; ".join(parts)


def test_repeats(cv_repeats: int) -> int:
    """CV repeats inside the permutation test for a CV of ``cv_repeats`` repeats.

    The observed statistic must come from the same pipeline as the permuted ones, so both use
    ``min(cv_repeats, TEST_REPEATS)`` repeats: the observed statistic is computed on the CV's
    first repeats (lambda.min, lambda.1se and the gene list still use them all), each permutation
    on as many fresh repeats. A permutation costs ``repeats x nfolds`` lanes, so the test of
    10 repeats would cost 10 times that of one; more repeats make the statistic less noisy and
    the test more powerful at that cost (``diagnose(test_repeats=...)``).
    """
    return int(min(cv_repeats, TEST_REPEATS))


TEST_REPEATS = 1
"""At most this many CV repeats per permutation (see :func:`test_repeats`)."""


def _cv_problem(X: Any, y: Any, cv: CVResult, sample_weight: Any):
    """The CV's prepared problem when ``X, y`` (and ``sample_weight``) are what it was prepared
    from and its penalty factors are the ones the test would prepare; else None."""
    prob = cv.problem
    if prob is None or not prob.reusable_for(X, y, sample_weight, prob.source[3],
                                             fit_intercept=cv.path.fit_intercept,
                                             standardize=cv.path.standardize):
        return None
    # The test prepares the path's (rescaled) penalty factors again: reuse only when that
    # gives the very same factors, so the entry scores and the grid are the same.
    if not np.array_equal(V.check_penalty_factor(cv.path.penalty_factor, prob.p), prob.pf):
        return None
    return prob


def nominal_grid(cv: CVResult, n: int, p: int) -> np.ndarray:
    """The CV's lambda grid as prepared, before glmnet's early stop shortened it (the defaults'
    grid when the CV kept no prepared problem). A permutation test takes its grid's range and
    length from here, never from where the observed outcome's path happened to stop: a grid cut
    where the observed fit saturates would make the statistic a different function for the
    observed outcome than for the permuted ones, and the p-value would no longer be exact."""
    nominal = cv.problem.lambdas if getattr(cv, "problem", None) is not None else None
    if nominal is None or len(nominal) < len(cv.lambdas):
        nominal = lambda_grid(1.0, PATH.n_lambdas, default_lambda_min_ratio(n, p))
    return np.asarray(nominal, float)


def _solve_labellings(prob, responses, fids: list, lam: np.ndarray, statistic, *,
                      mode: str | None = None, settled=None, lambda_bucket: int | None = None) -> np.ndarray:
    """The CV lanes of every labelling of a permutation test, solved as lanes of few engine calls,
    each labelling reduced to its statistic as soon as its lanes are solved.

    ``responses``: the kernel's response of each labelling, a pytree (any family's: labels, a
    standardised outcome, Cox's :class:`kernels.cox.CoxData`) whose leaves carry the labelling
    axis first, (n_labellings, n); ``fids`` the (R, n) folds of each labelling (all with the same
    R and number of folds). Every labelling x repeat x fold is one lane on ``prob``'s design, with
    its own response and training weights, all on the one grid ``lam``. ``statistic(b, eta)``
    gets labelling ``b``'s linear predictors on every row, ``eta`` (R, nfolds, L, n) on the
    kernel's scale; returns the statistics, (n_labellings,). ``settled(stats)``, when given, is
    asked after each engine call with the statistics so far (the observed labelling's first):
    True stops, and only those statistics are returned. ``lambda_bucket``: the length of the CV's
    nominal grid (its prepared one, before any early stop), so that looped lanes run the CV's
    compiled programs (:class:`~jaxlasso._engine.Lanes`).
    """
    import jax

    R, nfolds = fids[0].shape[0], int(fids[0].max()) + 1
    lanes = R * nfolds
    # Only the held-out linear predictors are used: no lane's standardisation moments are kept
    # (2 x lanes x p floats: 1.6 GB for a 26 MB X at 16 x 200,000 and 500 lanes), the labellings
    # are solved in groups -- the first of about n / 8 lanes (at least 16, a vmapped chunk), the
    # later ones up to _LATER_CALL_FACTOR times that within _ETA_BYTES of predictions -- and each
    # group's predictions are reduced to statistics before the next group is solved: the
    # predictions of every lane (lanes x lambdas x n: 102 MB at n = 1000 and 500 lanes) and
    # working-set outputs are never held at once. Lanes are independent: the grouping changes no
    # statistic (with ``settled`` it sets after how many labellings the test can stop).
    first = -(-max(16, prob.n // 8) // lanes)  # labellings in the first call, rounded up
    # The first call finds the capacity the lanes need (``k0``); the later ones take more
    # labellings each (fewer calls: each rebuilds the design's buffers and ends with idle lane
    # threads), within a budget for their predictions.
    later = max(first, min(_LATER_CALL_FACTOR * first, _ETA_BYTES // (8 * len(lam) * prob.n * lanes)))
    stats = np.empty(len(fids))
    k0 = None
    compiled: set = set()  # capacities this test's lanes have run at (their programs exist)
    b0 = 0
    while b0 < len(fids):
        per_call = first if k0 is None else later
        Y = jax.tree.map(lambda a: np.repeat(np.asarray(a)[b0:b0 + per_call], lanes, axis=0), responses)
        W = np.concatenate([fold_weights(fid, prob.w) for fid in fids[b0:b0 + per_call]])
        out = solve_lanes(prob, Lanes(W=W, Y=Y, lambdas=lam, keep_eta=True, keep_moments=False, k0=k0,
                                      lambda_bucket=lambda_bucket), mode=mode)
        report_status(out.status, lam, what="permutation test")
        # The next labellings start at a working-set capacity that holds this call's typical
        # lane (every labelling runs the same grid on the same design): without it each lane
        # grows through the small capacities again, one resumed segment per level.
        compiled.update(out.capacities)
        k0 = _typical_capacity(out.ws_needed, prob, compiled)
        eta = out.eta[:, :len(lam)]
        eta = eta.reshape(-1, R, nfolds, *eta.shape[1:])
        del out
        for i in range(eta.shape[0]):
            stats[b0 + i] = statistic(b0 + i, eta[i].astype(np.float64, copy=False))
        del eta
        done = min(b0 + per_call, len(fids))
        if settled is not None and done < len(fids) and settled(stats[:done]):
            return stats[:done]
        b0 = done
    return stats


def _typical_capacity(ws_needed: np.ndarray, prob, compiled=()) -> int:
    """A capacity that holds the median lane's largest working set (``ws_needed``: (lanes,
    lambdas) slots): the smallest of the capacities ``compiled`` (those the test's lanes ran at:
    their programs exist) that does, else the one a lane started without a hint grows to
    (:func:`~jaxlasso._engine.shapes.reached_capacity` from
    :func:`~jaxlasso._engine.initial_capacity`) -- not any other level, which would be one more
    program to compile."""
    need = int(np.median(ws_needed.max(axis=1))) if ws_needed.size else 0
    start = initial_capacity(prob.n, prob.p, prob.l1_ratio)
    held = [k for k in compiled if k >= max(need, start)]
    return min(held) if held else reached_capacity(need, start, prob.p)


def _improvement(curve, larger: bool) -> float:
    """How much the best lambda of a CV curve beats its intercept-only end (>= 0 is better)."""
    return float(np.nanmax(curve) - curve[0]) if larger else float(curve[0] - np.nanmin(curve))


def _exceedances(stats: np.ndarray) -> int:
    """How many permutations (``stats[1:]``) reach the observed statistic (``stats[0]``), ties
    within 1e-12 counted."""
    return int(np.sum(stats[1:] >= stats[0] - 1e-12))


def _permutation_p(stats: np.ndarray, n_permutations: int | None = None) -> tuple[float, np.ndarray, float]:
    """``(observed, null, p)`` from the statistics of the observed labelling (first) and the
    permutations: ``p = (1 + #{null >= observed}) / (B + 1)``, with ``B = n_permutations``
    (default: all of ``stats[1:]``; more when the test stopped early, which makes ``p`` the full
    test's lower bound)."""
    B = len(stats) - 1 if n_permutations is None else n_permutations
    return float(stats[0]), stats[1:], float((1 + _exceedances(stats)) / (B + 1))


def _settled_above(alpha: float | None, n_permutations: int):
    """The ``settled`` rule of :func:`_solve_labellings` for a test at level ``alpha`` with ``B``
    permutations: stop once the exceedances so far already make ``(1 + e) / (B + 1) > alpha``,
    since more permutations can only add exceedances (None: never stop)."""
    if alpha is None:
        return None
    return lambda stats: (1 + _exceedances(stats)) / (n_permutations + 1) > alpha


def permutation_test(X: Any, y: Any, cv: CVResult, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                     lambda_stride: int | None = None, sample_weight: Any = None,
                     mode: str | None = None, n_repeats: int | None = None, n_folds: int | None = None,
                     stop_at: float | None = None) -> PermutationTest:
    """Refit the CV on ``n_permutations`` label permutations and compare CV improvements.

    The statistic is the CV deviance (or the CV's measure, sign-adjusted) gained over the
    intercept-only end of the path at the best lambda. The observed labels and every permuted
    label vector go through one function in one batch, so that under exchangeable labels the
    observed statistic is one more draw of the null and ``p = (1 + #{null >= observed}) / (B + 1)``
    is exact (it cannot go below ``1 / (B + 1)``):

    * one lambda grid for all of them, from the largest lambda_max among the ``B + 1`` label
      vectors down by the CV grid's ratio, with about ``len(cv.lambdas) / lambda_stride`` values
      (default: about 25): a grid taken from the observed labels alone would start exactly where
      the observed path leaves the intercept-only model and nowhere else;
    * ``n_repeats`` repeats of ``n_folds`` stratified folds for each (defaults
      :func:`test_repeats` of the CV's repeats and the CV's number of folds): with the CV's own
      number of folds the observed labels use the CV's first repeats, else folds dealt as every
      permutation's; each permutation gets fresh ones. Fewer folds keep the p-value exact (one
      function for all labellings) at fewer lanes, but cost power: on planted signal a 5-fold
      test detected less than one with the CV's 8 or 10 folds in paired studies
      (``benchmarks/fold_power.py``: 0.53 vs 0.58 of 250 studies; ``benchmarks/NOTES.md``), at
      half the time.

    The CV itself (its curve, lambda.min, the genes) is not changed by the test.

    ``stop_at``: a level ``alpha`` for a caller that needs only the decision ``p <= alpha``
    (the power plan): the permutations, solved a few at a time in their fixed order, stop as soon
    as their exceedances make ``p <= alpha`` impossible -- the full test's decision, at a fraction
    of its cost when the observed labels do not stand out (``completed`` False; see
    :class:`PermutationTest`).
    """
    t0 = time.perf_counter()
    nfolds = cv.nfolds if n_folds is None else V.check_positive_int(n_folds, "n_folds", minimum=2)
    if nfolds > cv.nfolds:
        raise ValueError(f"n_folds must be between 2 and the CV's {cv.nfolds} folds (got n_folds={n_folds})")
    path = cv.path
    settings = dict(l1_ratio=path.l1_ratio, lambdas=cv.lambdas, n_lambdas=len(cv.lambdas),
                    lambda_min_ratio=None, early_stop=False, tol=path.tol, max_iter=PATH.max_iter,
                    dtype=np.float64)
    prob = _cv_problem(X, y, cv, sample_weight)
    if prob is not None:
        prob = prob.derive(**settings)
    else:
        prob = PreparedProblem(X, y, standardize=path.standardize, fit_intercept=path.fit_intercept,
                               sample_weight=sample_weight, penalty_factor=path.penalty_factor,
                               check_classes=False, **settings)
    # Range and length from the CV's nominal grid, not where the observed path stopped (nominal_grid).
    nominal = nominal_grid(cv, prob.n, prob.p)
    stride = lambda_stride or max(1, len(nominal) // 25)
    n_grid = len(range(0, len(nominal), stride))
    larger = _larger_is_better(cv.measure)
    R = test_repeats(cv.n_repeats) if n_repeats is None else int(n_repeats)
    if not 1 <= R <= cv.n_repeats:
        raise ValueError(f"n_repeats must be between 1 and the CV's {cv.n_repeats} repeats "
                         f"(got n_repeats={n_repeats})")

    rng = np.random.default_rng([seed, 17])
    labels = [prob.y] + [prob.y[rng.permutation(prob.n)] for _ in range(n_permutations)]
    # The observed labels keep the CV's own folds when the test uses as many; else they are dealt
    # as every permutation's are (stratified, a seed of their own).
    observed = cv.foldid[:R] if nfolds == cv.nfolds else make_foldid(
        prob.y, prob.w, nfolds=nfolds, stratified=True, n_repeats=R, seed=seed + 999)
    fids = [observed] + [make_foldid(yb, prob.w, nfolds=nfolds, stratified=True, n_repeats=R,
                                     seed=seed + 1000 + b) for b, yb in enumerate(labels[1:])]
    top = float(np.max(entry_lambda_max(prob.X, np.stack(labels), prob.w, prob.pf, l1_ratio=prob.l1_ratio,
                                        fit_intercept=prob.fit_intercept, standardize=prob.standardize,
                                        shift=prob.design_shift)))
    ratio = float(nominal[-1] / nominal[0]) if len(nominal) > 1 else 1.0
    lam = lambda_grid(top, n_grid, ratio)

    def statistic(b, eta):
        fid = fids[b]
        preval = np.empty((R, prob.n, len(lam)))
        for r in range(R):
            for f in range(nfolds):
                rows = fid[r] == f
                preval[r][rows] = sigmoid(eta[r, f][:, rows].T)
        return _improvement(cv_statistics(cv.measure, cv.grouped, labels[b], prob.w, fid, preval).cv_mean, larger)

    stats = _solve_labellings(prob, np.stack(labels), fids, lam, statistic, mode=mode,
                              settled=_settled_above(stop_at, n_permutations), lambda_bucket=len(nominal))
    observed, null, p_value = _permutation_p(stats, n_permutations)
    return PermutationTest(observed, null, p_value, n_permutations, stride, time.perf_counter() - t0,
                           n_repeats=R, nfolds=nfolds, completed=len(null) == n_permutations)


def _stability_outlook(n_case: int, n_ctrl: int, p: int) -> tuple[bool, Finding | None]:
    """Whether stability selection (complementary pairs, default cutoff and PFER) can reach its
    target q at these class sizes, and the finding that says so when it cannot."""
    from .selection.stability import DEFAULT_CUTOFF, DEFAULT_PFER, REACHABLE_FRACTION, stability_reachable

    try:
        ok, q_target, capacity = stability_reachable(n_case, n_ctrl, p)
    except ValueError:        # too few features for the default error control: nothing to say
        return True, None
    if ok:
        return True, None
    half = n_case // 2 + n_ctrl // 2
    need = 2 * (math.ceil(REACHABLE_FRACTION * q_target) + 1)
    return False, Finding(
        "STABILITY_UNREACHABLE", "warning",
        f"Stability selection cannot work here: each half-sample holds {half} samples, so its "
        f"lasso keeps at most about {capacity} genes, while the error control (cutoff "
        f"{DEFAULT_CUTOFF:g}, at most {DEFAULT_PFER:g} expected false selection among {p} genes) "
        f"is set up for q = {q_target:.0f} per subsample. With so few selections per half, which "
        f"genes a half picks is close to arbitrary and hardly any can reach the cutoff: an empty "
        f"stable set is no evidence about the genes.",
        {"samples_per_half": half, "max_selectable_per_half": capacity, "q_target": q_target,
         "reachable_fraction": REACHABLE_FRACTION},
        f"Do not rely on stability selection at this sample size; use the univariate ranking "
        f"with FDR control. Its half-samples reach a quarter of the target from about {need} "
        f"samples in all.")


def _preprocessing_findings(preprocess_report) -> list[Finding]:
    """What the preprocessing report says about the input (any family): raw counts fitted without
    a log, constant features dropped."""
    findings = []
    if preprocess_report is None:
        return findings
    chk = preprocess_report.counts
    if chk.looks_like_counts and not preprocess_report.log_applied:
        findings.append(Finding(
            "UNLOGGED_COUNTS", "critical",
            "The data look like raw counts and were fitted without a log transform: a few "
            "very highly expressed genes dominate the standardised fit.",
            {"max_value": chk.max_value, "dynamic_range": chk.dynamic_range,
             "integer_fraction": chk.integer_fraction},
            "Re-run with log='auto' (edgeR's log2-CPM for counts)."))
    if preprocess_report.n_constant_dropped:
        findings.append(Finding(
            "CONSTANT_GENES", "info",
            f"{preprocess_report.n_constant_dropped} features were constant (e.g. all-zero genes) "
            f"and were dropped.",
            {"n_constant": preprocess_report.n_constant_dropped},
            "Nothing to do; consider filtering lowly expressed genes before the analysis."))
    return findings


def diagnose(X: Any, y: Any, cv: CVResult, *, preprocess_report=None, n_permutations: int = N_PERMUTATIONS,
             alpha: float = ALPHA, seed: int = 0, sample_weight: Any = None, mode: str | None = None,
             test_repeats: int | None = None) -> Diagnosis:
    """Findings about a cross-validated lasso fit: see the module docstring for the codes.

    ``X`` and ``y`` must be what ``cv`` was fitted on (after preprocessing). "Signal detected"
    is the permutation test's ``p <= alpha`` and nothing else. ``n_permutations=0`` skips the
    test: ``signal_detected`` is then None and a NOT_TESTED finding says so.
    ``test_repeats``: CV repeats per permutation (default :func:`test_repeats`).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a level in (0, 1), e.g. 0.05 (got alpha={alpha!r})")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise ValueError(f"n_permutations must be a whole number >= 0 (0 = no test) "
                         f"(got n_permutations={n_permutations!r})")
    path = cv.path
    n = len(np.asarray(y))
    y01 = (pd.Series(np.asarray(y)) == path.classes[1]).to_numpy()
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n_case = int(np.sum(y01 & (w > 0)))
    n_ctrl = int(np.sum(~y01 & (w > 0)))
    minority = min(n_case, n_ctrl)
    p_eff = int(np.sum(~path.excluded))
    findings: list[Finding] = []
    stab_ok, stab_finding = _stability_outlook(n_case, n_ctrl, p_eff)
    # Recommend stability selection only where its half-samples can reach the target q.
    checks = ("stability selection and a univariate ranking with FDR control" if stab_ok
              else "a univariate ranking with FDR control (stability selection cannot work at this "
                   "sample size: see STABILITY_UNREACHABLE)")

    if p_eff > n:
        findings.append(Finding(
            "SMALL_N", "warning" if n < 50 else "info",
            f"{n} samples for {p_eff} features: the lasso can select at most about {n - 1} features, "
            f"and with {minority} samples in the smaller class every CV estimate is noisy.",
            {"n": n, "p": p_eff, "events_per_variable": minority / p_eff, "n_minority": minority},
            f"Treat any gene list as a hypothesis; prefer {checks}, and validate on independent "
            "samples."))
    if stab_finding is not None:
        findings.append(stab_finding)
    if minority < PATH.few_per_class:
        findings.append(Finding(
            "FEW_PER_CLASS", "warning",
            f"The smaller class has {minority} samples (< 8): glmnet's 'dangerous ground'. "
            f"Folds hold one or two of them, so held-out deviance and lambda choices vary a lot.",
            {"n_case": n_case, "n_control": n_ctrl},
            (f"This run averaged {cv.n_repeats} CV repeats; report the spread and avoid per-fold AUC."
             if cv.n_repeats >= 5 else
             "Use stratified, repeated CV (n_repeats >= 5, the default below 100 samples) and report "
             "the spread; avoid per-fold AUC.")))
    findings.extend(_preprocessing_findings(preprocess_report))

    k_min = int(np.count_nonzero(cv.coef("lambda_min")[1]))
    k_1se = int(np.count_nonzero(cv.coef("lambda_1se")[1]))
    null_cv = float(cv.cv_mean[0])
    best = float(cv.cv_mean[cv.index_min])
    se = float(cv.cv_sd[cv.index_min])
    larger = _larger_is_better(cv.measure)
    gain = (best - null_cv) if larger else (null_cv - best)
    if k_min > 0 and k_1se == 0:
        findings.append(Finding(
            "LAMBDA_RULE", "warning",
            f"lambda.min keeps {k_min} genes but lambda.1se keeps none: the CV curve's minimum is "
            f"within one standard error of the intercept-only end of the path.",
            {"lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se, "genes_at_lambda_min": k_min,
             "cv_at_lambda_min": best, "cv_intercept_only": null_cv, "se_at_lambda_min": se},
            "lambda.min's genes are listed as exploratory (column lambda_min of selected.tsv): "
            "hypotheses to check on independent samples"
            + ("; stability selection can check them" if stab_ok else "")
            + "; lambda.1se is the conservative answer."))
    if cv.index_min == len(cv.lambdas) - 1 and len(cv.lambdas) > 1:
        findings.append(Finding(
            "LAMBDA_MIN_AT_EDGE", "warning",
            f"The CV minimum is at the smallest lambda of the grid (lambda = {cv.lambda_min:.4g}, "
            f"{int(cv.n_nonzero[cv.index_min])} genes): the curve may still fall beyond it, so "
            f"lambda.min is a bound, not a minimum.",
            {"lambda_min": cv.lambda_min, "index_min": int(cv.index_min), "n_lambdas": len(cv.lambdas),
             "smallest_lambda": float(cv.lambdas[-1])},
            "Extend the grid (a smaller lambda_min_ratio, or early_stop=False) and re-run; with "
            "p >> n a minimum at the grid's end often means the fit interpolates the training data."))
    dr = path.deviance_ratio
    sat = np.nonzero(dr > 0.99)[0]
    if sat.size and sat[0] < len(dr) - 1:
        findings.append(Finding(
            "SEPARABLE", "info" if n > 2 * p_eff else "warning",
            f"The training data are (almost) perfectly separable from lambda index {int(sat[0])} on "
            f"(deviance ratio > 0.99 with {int(path.n_nonzero[sat[0]])} genes): with p >> n any "
            f"labels can be separated, so a perfect training fit is no evidence of signal.",
            {"first_index": int(sat[0]), "lambda": float(path.lambdas[sat[0]]),
             "genes": int(path.n_nonzero[sat[0]]), "deviance_ratio": float(dr[sat[0]])},
            "Judge the model by cross-validated error only."))

    perm = None
    if n_permutations:
        perm = permutation_test(X, y, cv, n_permutations=int(n_permutations), seed=seed,
                                sample_weight=sample_weight, mode=mode, n_repeats=test_repeats)
    signal = None if perm is None else bool(perm.p_value <= alpha)
    cvtxt = (f"cross-validated {cv.measure} {best:.3f} ± {se:.3f} (1 SE) at lambda.min vs {null_cv:.3f} "
             f"for the intercept-only model")
    se_txt = (f"the CV gain {gain:.3f} is {'more' if gain > se else 'less'} than 1 SE ({se:.3f}); "
              f"shown as evidence, it does not decide")
    evidence = {"cv_intercept_only": null_cv, "cv_best": best, "gain": gain, "se_at_best": se,
                "measure": cv.measure, "alpha": alpha}
    if perm is not None:
        evidence.update({"permutation_p": perm.p_value, "n_permutations": perm.n_permutations,
                         "p_resolution": perm.resolution, "test_repeats": perm.n_repeats,
                         "test_folds": perm.nfolds})
        ptxt = (f"the label-permutation test of the cross-validated lasso gives p = {perm.p_value:.3g} "
                f"(B = {perm.n_permutations} permutations, each a {perm.nfolds}-fold CV as is the observed "
                f"labels'; smallest possible p = {perm.resolution:.2g})")
    if signal is True:
        findings.append(Finding(
            "SIGNAL", "info",
            f"Predictive signal detected: {ptxt} <= alpha = {alpha:g}; {cvtxt}; {se_txt}.",
            evidence,
            "Report the CV error with its SE and the permutation p; the test is about prediction: "
            "the selected genes' identities still need independent validation."))
    elif signal is False:
        findings.append(Finding(
            # A warning, not a critical finding: nothing is wrong with the run or the data; the
            # answer is "not detectable with these samples", which the quick plan then sizes.
            "NO_SIGNAL", "warning",
            f"No predictive signal detectable with n = {n} by this test: {ptxt}, above alpha = "
            f"{alpha:g}; {cvtxt}; {se_txt}. This is not evidence that the outcome has no molecular "
            f"correlate: a modest signal can go undetected with {minority} samples in the smaller class.",
            evidence,
            "Treat every gene list here as exploratory (lambda.min's genes and the rankings are "
            "hypotheses, not markers). More samples, a cleaner contrast, or prior knowledge (penalty "
            "factors, a pre-specified gene set) give the test more power."))
    else:
        findings.append(Finding(
            "NOT_TESTED", "warning",
            f"Signal was not tested (no label permutations were run): {cvtxt}; {se_txt}. The 1-SE "
            f"comparison is not a calibrated test.",
            evidence,
            f"Re-run with permutations (e.g. {N_PERMUTATIONS}, so that p can reach 0.01) to test "
            f"for predictive signal."))
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return Diagnosis(tuple(findings), signal, perm, float(alpha))


# --- Gaussian and Cox ----------------------------------------------------------------------------
FEW_EVENTS = 10
"""Fewer events than this make a Cox model's CV estimates very noisy (the survival analogue of
glmnet's fewer than 8 samples in a class)."""

_FAMILY_WORDS = {"gaussian": ("the outcome", "values of the outcome"),
                 "cox": ("survival", "(time, event) pairs")}


def _larger_is_better(measure: str) -> bool:
    return measure in ("auc", "auc_pooled", "C")


def permutation_test_family(X: Any, outcome, cv: CVResult, *, n_permutations: int = N_PERMUTATIONS,
                            seed: int = 0, n_grid: int = 25, mode: str | None = None) -> PermutationTest:
    """The permutation test of :func:`permutation_test` for a Gaussian or Cox outcome (``outcome``:
    a :class:`jaxlasso.outcomes.Outcome`).

    The whole CV is redone on ``n_permutations`` relabellings (:meth:`Outcome.permuted
    <jaxlasso.outcomes.Outcome.permuted>`: survival permutes ``(time, event)`` pairs jointly),
    each with its own folds drawn by the outcome's rule (seed ``seed + 1000 + b``, the observed
    outcome included), on one lambda grid of about ``n_grid`` values from the largest lambda_max
    among all ``B + 1`` outcomes down by the CV grid's ratio: the observed statistic is one more
    draw of the null, so ``p = (1 + #{null >= observed}) / (B + 1)`` is exact under
    exchangeability. The statistic is the CV measure's gain over the null end of the path, as
    cv.glmnet scores each labelling's folds.

    All labellings x folds are lanes of one batch on one prepared problem (as the binomial test,
    :func:`_solve_labellings`): only the response moves with a permutation. Each lane solves
    exactly the fold fit that cv.glmnet solves on that labelling: Gaussian's kernel response is
    the outcome standardised once on all samples, which a permutation leaves unchanged up to
    rounding (the same mean and SD), so a permuted labelling is the standardised outcome
    permuted, on the same kernel lambdas; each fold's own SD of y enters through the family's
    per-lane ``ridge_scale``, as in the CV. Cox's lanes carry each labelling's risk-set layout
    (:meth:`jaxlasso.survival.CoxProblem.permuted_responses`). The CV's full-data lane is not
    solved: without an early stop it does not change the folds' fits.
    """
    from .metrics import cox_cv_statistics, resolve_cox_grouped, resolve_measure
    from .outcomes import _family_measure, standardize

    family = outcome.family
    if family not in ("gaussian", "cox"):
        raise ValueError(f"permutation_test_family is for gaussian or cox outcomes; a binary outcome has "
                         f"permutation_test (got family={family!r})")
    t0 = time.perf_counter()
    n = outcome.n
    rng = np.random.default_rng([seed, 17])
    perms = [np.arange(n)] + [rng.permutation(n) for _ in range(n_permutations)]
    outcomes = [outcome] + [outcome.take(idx) for idx in perms[1:]]
    l1 = float(getattr(cv.path, "l1_ratio", 1.0))
    Xs = standardize(X)
    top = max(o.lambda_max(Xs) for o in outcomes) / max(l1, 1e-3)
    del Xs
    # Range and length from the CV's nominal grid, not from where the observed path stopped
    # (see nominal_grid): the statistic must be one function of the outcome for every labelling.
    nominal = nominal_grid(cv, n, np.shape(X)[1])
    ratio = float(nominal[-1] / nominal[0]) if len(nominal) > 1 else 1e-2
    lam = lambda_grid(top, min(n_grid, len(nominal)), ratio)
    fids = [o.folds(cv.nfolds, 1, seed + 1000 + b) for b, o in enumerate(outcomes)]
    nfolds = int(fids[0].max()) + 1
    settings = dict(l1_ratio=l1, lambdas=lam, n_lambdas=len(lam), lambda_min_ratio=None, standardize=PATH.standardize,
                    sample_weight=None, penalty_factor=None, early_stop=False, tol=None, max_iter=PATH.max_iter,
                    dtype=np.float64)
    if family == "gaussian":
        prob = PreparedProblem(X, outcome.y, family="gaussian", fit_intercept=PATH.fit_intercept, **settings)
        responses = np.stack([np.asarray(prob.y)[idx] for idx in perms])
        measure, grouped = resolve_measure(_family_measure(cv.measure, family), n, nfolds)
        host = prob.host_family
    else:
        from .survival import CoxProblem

        prob = CoxProblem(X, outcome.time, outcome.event, ties="breslow", **settings)
        responses = prob.permuted_responses(np.stack(perms))
        measure = cv.measure
        grouped = resolve_cox_grouped(n, nfolds, True) if measure == "deviance" else True
        w_user = prob.w * (prob.weight_sum / prob.w.sum())
    larger = _larger_is_better(cv.measure)

    def statistic(b, eta):  # eta (1, F, L, n)
        fid = fids[b]
        if family == "gaussian":
            preval = np.empty((1, n, len(lam)))
            for f in range(nfolds):
                rows = fid[0] == f
                preval[0][rows] = host.predict(prob.y_center + prob.y_scale * eta[0, f][:, rows].T)
            curve = cv_statistics(measure, grouped, np.asarray(prob.response)[perms[b]], prob.w, fid, preval,
                                  pointwise=host.pointwise_loss).cv_mean
        else:
            o = outcomes[b]
            curve = cox_cv_statistics(measure, grouped, o.time, o.event, w_user, fid,
                                      np.swapaxes(eta, -1, -2)).cv_mean
        return _improvement(np.asarray(curve, float), larger)

    observed, null, p_value = _permutation_p(_solve_labellings(prob, responses, fids, lam, statistic, mode=mode,
                                                               lambda_bucket=len(nominal)))
    return PermutationTest(observed, null, p_value, n_permutations, max(1, len(cv.lambdas) // len(lam)),
                           time.perf_counter() - t0, n_repeats=1, nfolds=nfolds)


def diagnose_family(X: Any, outcome, cv: CVResult, *, preprocess_report=None,
                    n_permutations: int = N_PERMUTATIONS, alpha: float = ALPHA, seed: int = 0) -> Diagnosis:
    """:func:`diagnose` for a Gaussian or Cox outcome (``outcome``: a
    :class:`jaxlasso.outcomes.Outcome`). The findings are those of the binomial diagnosis, worded
    for the family: sample size as n (Gaussian) or events and events per variable (Cox, FEW_EVENTS
    below :data:`FEW_EVENTS` events), and the permutation test of :func:`permutation_test_family`."""
    from .outcomes import measure_label

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a level in (0, 1), e.g. 0.05 (got alpha={alpha!r})")
    family = outcome.family
    what, units = _FAMILY_WORDS[family]
    n = outcome.n
    p_eff = int(np.sum(~np.asarray(cv.path.excluded))) if getattr(cv.path, "excluded", None) is not None \
        else int(cv.path.coef.shape[1])
    findings: list[Finding] = []
    events = outcome.n_events if family == "cox" else n
    if family == "cox":
        n_case, n_ctrl = events, n - events
    else:
        n_case, n_ctrl = n, 0
    stab_ok, stab_finding = _stability_outlook(n_case, n_ctrl, p_eff)
    checks = ("stability selection and a univariate ranking with FDR control" if stab_ok
              else "a univariate ranking with FDR control (stability selection cannot work at this "
                   "sample size: see STABILITY_UNREACHABLE)")
    if p_eff > n:
        size = (f"{events} events among {n} samples ({events / p_eff:.2g} events per variable)"
                if family == "cox" else f"{n} samples")
        findings.append(Finding(
            "SMALL_N", "warning" if events < 50 else "info",
            f"{size} for {p_eff} features: the lasso can select at most about {min(n, events) - 1} "
            f"features, and every CV estimate is noisy.",
            {"n": n, "p": p_eff, "events": events, "events_per_variable": events / p_eff},
            f"Treat any gene list as a hypothesis; prefer {checks}, and validate on independent samples."))
    if stab_finding is not None:
        findings.append(stab_finding)
    if family == "cox" and events < FEW_EVENTS:
        findings.append(Finding(
            "FEW_EVENTS", "warning",
            f"Only {events} events (< {FEW_EVENTS}): the partial likelihood rests on them alone, so "
            f"folds hold one or two events each and the CV curve and lambda choices vary a lot.",
            {"events": events, "censored": n - events},
            "Report the spread over CV repeats; longer follow-up (more events) adds power, more "
            "censored samples do not."))
    findings.extend(_preprocessing_findings(preprocess_report))
    k_min = int(np.count_nonzero(cv.coef("lambda_min")[1]))
    k_1se = int(np.count_nonzero(cv.coef("lambda_1se")[1]))
    null_cv, best = float(cv.cv_mean[0]), float(cv.cv_mean[cv.index_min])
    se = float(cv.cv_sd[cv.index_min])
    gain = (best - null_cv) if _larger_is_better(cv.measure) else (null_cv - best)
    label = measure_label(cv.measure, family)
    if k_min > 0 and k_1se == 0:
        findings.append(Finding(
            "LAMBDA_RULE", "warning",
            f"lambda.min keeps {k_min} genes but lambda.1se keeps none: the CV curve's minimum is "
            f"within one standard error of the null end of the path.",
            {"lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se, "genes_at_lambda_min": k_min,
             "cv_at_lambda_min": best, "cv_null": null_cv, "se_at_lambda_min": se},
            "lambda.min's genes are listed as exploratory (column lambda_min of selected.tsv); "
            "lambda.1se is the conservative answer."))
    if cv.index_min == len(cv.lambdas) - 1 and len(cv.lambdas) > 1:
        findings.append(Finding(
            "LAMBDA_MIN_AT_EDGE", "warning",
            f"The CV optimum is at the smallest lambda of the grid (lambda = {cv.lambda_min:.4g}): the "
            f"curve may still improve beyond it, so lambda.min is a bound, not an optimum.",
            {"lambda_min": cv.lambda_min, "index_min": int(cv.index_min), "n_lambdas": len(cv.lambdas)},
            "Extend the grid (a smaller lambda_min_ratio) and re-run."))
    perm = None
    if n_permutations:
        perm = permutation_test_family(X, outcome, cv, n_permutations=int(n_permutations), seed=seed)
    signal = None if perm is None else bool(perm.p_value <= alpha)
    null_name = "the null model (no genes)"
    cvtxt = (f"cross-validated {label} {best:.4g} ± {se:.3g} (1 SE) at lambda.min vs {null_cv:.4g} for "
             f"{null_name}")
    se_txt = (f"the CV gain {gain:.3g} is {'more' if gain > se else 'less'} than 1 SE ({se:.3g}); "
              f"shown as evidence, it does not decide")
    evidence = {"cv_null": null_cv, "cv_best": best, "gain": gain, "se_at_best": se, "measure": cv.measure,
                "alpha": alpha}
    if perm is not None:
        evidence.update({"permutation_p": perm.p_value, "n_permutations": perm.n_permutations,
                         "p_resolution": perm.resolution})
        ptxt = (f"the permutation test of the cross-validated lasso (the {units} permuted across samples) "
                f"gives p = {perm.p_value:.3g} (B = {perm.n_permutations}, smallest possible p = "
                f"{perm.resolution:.2g})")
    if signal is True:
        findings.append(Finding(
            "SIGNAL", "info", f"Predictive signal for {what} detected: {ptxt} <= alpha = {alpha:g}; {cvtxt}; "
                              f"{se_txt}.", evidence,
            "Report the CV measure with its SE and the permutation p; the test is about prediction: the "
            "selected genes' identities still need independent validation."))
    elif signal is False:
        size = f"{events} events" if family == "cox" else f"n = {n}"
        findings.append(Finding(
            "NO_SIGNAL", "critical",
            f"No predictive signal for {what} detectable with {size} by this test: {ptxt}, above alpha = "
            f"{alpha:g}; {cvtxt}; {se_txt}. This is not evidence that {what} has no molecular correlate.",
            evidence,
            "Treat every gene list here as exploratory; more samples"
            + (" and events" if family == "cox" else "") + " give the test more power."))
    else:
        findings.append(Finding(
            "NOT_TESTED", "warning",
            f"Signal was not tested (no permutations were run): {cvtxt}; {se_txt}.", evidence,
            f"Re-run with permutations (e.g. {N_PERMUTATIONS}) to test for predictive signal."))
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return Diagnosis(tuple(findings), signal, perm, float(alpha))
