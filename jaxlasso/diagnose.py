"""Why did the lasso select nothing (or something shaky)? Findings with evidence and advice.

:func:`diagnose` inspects the data, the preprocessing and a cross-validated path and returns
findings, each with a stable ``code``, a ``severity``, a plain-language ``message``, the
``evidence`` (numbers) and a recommended ``action``:

``SMALL_N``         n vs p and events per variable
``FEW_PER_CLASS``   fewer than 8 samples in a class (glmnet's "dangerous ground")
``UNLOGGED_COUNTS`` raw counts were fitted without a log transform
``CONSTANT_GENES``  features that do not vary were dropped
``LAMBDA_RULE``     lambda.min keeps genes while lambda.1se keeps none
``SEPARABLE``       the training data become perfectly separable early in the path
``NO_SIGNAL``       no predictive signal: the best CV deviance is within one SE of the
                    intercept-only model *and* a label-permutation test gives p >= 0.05
``SIGNAL``          the CV curve beats the intercept-only model beyond one SE or the
                    permutation test is significant (reported so the verdict is explicit)

The permutation test refits the whole cross-validation on ``B`` label permutations; all
permutations x folds are lanes of one batched kernel call (each lane has its own ``y`` and fold
weights, and all share ``X``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._config import PATH
from ._engine import report_status, solve_lanes
from .folds import fold_weights, make_foldid
from .metrics import cv_statistics
from .path import PreparedProblem
from .results import CVResult

SEVERITIES = ("info", "warning", "critical")


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


@dataclass(frozen=True)
class PermutationTest:
    """Label-permutation test of the CV improvement over the intercept-only model."""

    statistic: float
    """Observed ``cv_mean[intercept-only] - min(cv_mean)`` (deviance units; larger = better)."""
    null_statistics: np.ndarray
    """(B,) the same statistic on each label permutation."""
    p_value: float
    """``(1 + #{null >= observed}) / (B + 1)``."""
    n_permutations: int
    lambda_stride: int
    """The test uses every ``lambda_stride``-th lambda of the CV grid (observed and permuted alike)."""
    seconds: float


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    no_signal: bool
    permutation: PermutationTest | None = None
    info: dict = field(default_factory=dict, compare=False)

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


def permutation_test(X: Any, y: Any, cv: CVResult, *, n_permutations: int = 50, seed: int = 0,
                     lambda_stride: int | None = None, sample_weight: Any = None,
                     mode: str | None = None) -> PermutationTest:
    """Refit the CV on ``n_permutations`` label permutations and compare CV improvements.

    The statistic is the CV deviance (or the CV's measure, sign-adjusted) gained over the
    intercept-only model at the best lambda. Each permutation uses fresh stratified folds of
    the same size; the grid is the observed CV's grid thinned by ``lambda_stride`` (default:
    about 25 lambdas), for the observed statistic as well.
    """
    t0 = time.perf_counter()
    path = cv.path
    prob = PreparedProblem(X, y, l1_ratio=path.l1_ratio, lambdas=cv.lambdas, n_lambdas=len(cv.lambdas),
                           lambda_min_ratio=None, standardize=path.standardize,
                           fit_intercept=path.fit_intercept, sample_weight=sample_weight,
                           penalty_factor=path.penalty_factor, early_stop=False, tol=path.tol,
                           max_iter=PATH.max_iter, dtype=np.float64, check_classes=False)
    stride = lambda_stride or max(1, len(cv.lambdas) // 25)
    sub = np.arange(0, len(cv.lambdas), stride)
    lam = cv.lambdas[sub]
    larger = cv.measure in ("auc", "auc_pooled")

    def improvement(curve):
        """How much the best lambda beats the intercept-only end of the path (>= 0 is better)."""
        return float(np.nanmax(curve) - curve[0]) if larger else float(curve[0] - np.nanmin(curve))

    observed = improvement(cv.cv_mean[sub])
    nfolds = cv.nfolds
    rng = np.random.default_rng([seed, 17])
    ys, Ws, fids = [], [], []
    for b in range(n_permutations):
        yb = prob.y[rng.permutation(prob.n)]
        fid = make_foldid(yb, prob.w, nfolds=nfolds, stratified=True, n_repeats=1, seed=seed + 1000 + b)
        fids.append(fid)
        ys.append(np.repeat(yb[None, :], nfolds, axis=0))
        Ws.append(fold_weights(fid, prob.w))
    # solve_lanes returns each lane's standardisation moments, 2 x lanes x p floats: for p >> n,
    # 500 lanes of them dwarf the design itself (16 x 200,000: 1.6 GB for a 26 MB X). Only the
    # held-out linear predictors are kept, so permutations are solved in groups whose moments
    # stay within about the size of X (all at once when n is large enough), and at least 16
    # lanes, a vmapped chunk, per call.
    per_call = max(1, max(16, prob.n // 2) // nfolds)
    etas = []
    for b0 in range(0, n_permutations, per_call):
        Y = np.concatenate(ys[b0:b0 + per_call])
        W = np.concatenate(Ws[b0:b0 + per_call])
        out = solve_lanes(prob.X, Y, W, prob.pf, prob.l1_ratio, lam, fit_intercept=prob.fit_intercept,
                          standardize=prob.standardize, early_stop=False, keep_eta=True,
                          is_master=np.zeros(len(W), bool), tol=prob.tol, max_iter=prob.max_iter,
                          max_sweeps=PATH.max_sweeps, dtype=np.float64, mode=mode)
        report_status(out.status, lam, what="permutation test")
        etas.append(out.eta)
    all_eta = np.concatenate(etas)
    null = np.empty(n_permutations)
    for b in range(n_permutations):
        fid = fids[b]
        preval = np.empty((1, prob.n, len(lam)))
        for f in range(nfolds):
            rows = fid[0] == f
            eta = all_eta[b * nfolds + f][:, rows].T
            preval[0][rows] = 0.5 * (1.0 + np.tanh(0.5 * eta))
        null[b] = improvement(cv_statistics(cv.measure, cv.grouped, ys[b][0], prob.w, fid, preval).cv_mean)
    p_value = float((1 + np.sum(null >= observed - 1e-12)) / (n_permutations + 1))
    return PermutationTest(float(observed), null, p_value, n_permutations, stride, time.perf_counter() - t0)


def diagnose(X: Any, y: Any, cv: CVResult, *, preprocess_report=None, n_permutations: int = 50,
             seed: int = 0, sample_weight: Any = None, mode: str | None = None) -> Diagnosis:
    """Findings about a cross-validated lasso fit: see the module docstring for the codes.

    ``X`` and ``y`` must be what ``cv`` was fitted on (after preprocessing). Set
    ``n_permutations=0`` to skip the permutation test (NO_SIGNAL then rests on the CV curve
    alone and says so).
    """
    path = cv.path
    n = len(np.asarray(y))
    y01 = (pd.Series(np.asarray(y)) == path.classes[1]).to_numpy()
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n_case = int(np.sum(y01 & (w > 0)))
    n_ctrl = int(np.sum(~y01 & (w > 0)))
    minority = min(n_case, n_ctrl)
    p_eff = int(np.sum(~path.excluded))
    findings: list[Finding] = []

    if p_eff > n:
        findings.append(Finding(
            "SMALL_N", "warning" if n < 50 else "info",
            f"{n} samples for {p_eff} features: the lasso can select at most about {n - 1} features, "
            f"and with {minority} samples in the smaller class every CV estimate is noisy.",
            {"n": n, "p": p_eff, "events_per_variable": minority / p_eff, "n_minority": minority},
            "Treat any gene list as a hypothesis; prefer stability selection and a univariate ranking "
            "with FDR control, and validate on independent samples."))
    if minority < PATH.few_per_class:
        findings.append(Finding(
            "FEW_PER_CLASS", "warning",
            f"The smaller class has {minority} samples (< 8): glmnet's 'dangerous ground'. "
            f"Folds hold one or two of them, so held-out deviance and lambda choices vary a lot.",
            {"n_case": n_case, "n_control": n_ctrl},
            "Use stratified, repeated CV (n_repeats >= 5) and report the spread; avoid per-fold AUC."))
    if preprocess_report is not None:
        chk = preprocess_report.counts
        if chk.looks_like_counts and not preprocess_report.log_applied:
            findings.append(Finding(
                "UNLOGGED_COUNTS", "critical",
                "The data look like raw counts and were fitted without a log transform: a few "
                "very highly expressed genes dominate the standardised fit.",
                {"max_value": chk.max_value, "dynamic_range": chk.dynamic_range,
                 "integer_fraction": chk.integer_fraction},
                "Re-run with log='auto' (log2(x + 1)), optionally with CPM normalisation."))
        if preprocess_report.n_constant_dropped:
            findings.append(Finding(
                "CONSTANT_GENES", "info",
                f"{preprocess_report.n_constant_dropped} features were constant (e.g. all-zero genes) "
                f"and were dropped.",
                {"n_constant": preprocess_report.n_constant_dropped},
                "Nothing to do; consider filtering lowly expressed genes before the analysis."))

    k_min = int(np.count_nonzero(cv.coef("lambda_min")[1]))
    k_1se = int(np.count_nonzero(cv.coef("lambda_1se")[1]))
    null_cv = float(cv.cv_mean[0])
    best = float(cv.cv_mean[cv.index_min])
    se = float(cv.cv_sd[cv.index_min])
    larger = cv.measure in ("auc", "auc_pooled")
    gain = (best - null_cv) if larger else (null_cv - best)
    if k_min > 0 and k_1se == 0:
        findings.append(Finding(
            "LAMBDA_RULE", "warning",
            f"lambda.min keeps {k_min} genes but lambda.1se keeps none: the CV curve's minimum is "
            f"within one standard error of the intercept-only end of the path.",
            {"lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se, "genes_at_lambda_min": k_min,
             "cv_at_lambda_min": best, "cv_intercept_only": null_cv, "se_at_lambda_min": se},
            "Do not read lambda.min's genes as validated: check them with stability selection and "
            "the permutation test below; lambda.1se is the conservative answer."))
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
        perm = permutation_test(X, y, cv, n_permutations=n_permutations, seed=seed,
                                sample_weight=sample_weight, mode=mode)
    within_se = gain <= se
    no_signal = within_se and (perm is None or perm.p_value >= 0.05)
    evidence = {"cv_intercept_only": null_cv, "cv_best": best, "gain": gain, "se_at_best": se,
                "measure": cv.measure}
    if perm is not None:
        evidence.update({"permutation_p": perm.p_value, "n_permutations": perm.n_permutations})
    if no_signal:
        how = (f"and a label-permutation test gives p = {perm.p_value:.2f}" if perm is not None
               else "(no permutation test was run)")
        findings.append(Finding(
            "NO_SIGNAL", "critical",
            f"The data show no predictive signal: the best cross-validated {cv.measure} "
            f"({best:.3f}) is within one standard error ({se:.3f}) of the intercept-only model "
            f"({null_cv:.3f}) {how}. Forcing genes out of this data -- a smaller lambda, the top "
            f"30 of a random forest -- yields noise, not markers.",
            evidence,
            "Report that no predictive signal was found. More samples, a cleaner contrast, or "
            "prior knowledge (penalty factors, a pre-specified gene set) are the ways forward."))
    else:
        reason = []
        if not within_se:
            reason.append(f"the best CV {cv.measure} beats the intercept-only model by {gain:.3f} "
                          f"(> 1 SE = {se:.3f})")
        if perm is not None and perm.p_value < 0.05:
            reason.append(f"the permutation test gives p = {perm.p_value:.3f}")
        findings.append(Finding(
            "SIGNAL", "info",
            "There is evidence of predictive signal: " + " and ".join(reason) + ".",
            evidence,
            "Report the CV error with its SE; check the stability of the selected genes."))
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return Diagnosis(tuple(findings), bool(no_signal), perm)
