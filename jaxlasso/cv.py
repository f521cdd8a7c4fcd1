"""Cross-validation in one compiled call: the full-data path and every fold of every repeat are
lanes of one vmapped kernel call.

A fold is a weight vector with zeros on its held-out rows, so ``X`` is shared by all lanes and
never sliced; each fold is standardised on its own training rows through weighted moments and
uses the full-data lambda grid. The full-data lane is the *master*: when glmnet's early stop ends
its path, every fold stops at the same lambda (cv.glmnet runs the folds on the full fit's
possibly shortened grid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validation as V
from ._config import CV, MEASURES, PATH
from ._engine import Lanes, report_status, solve_lanes
from .families import get as get_family
from .folds import check_folds, default_nfolds, fold_weights, make_foldid, normalize_foldid
from .metrics import LARGER_IS_BETTER, cv_statistics, resolve_measure, select_lambdas, sigmoid
from .path import PreparedProblem, path_result_from_lane
from .results import CVResult


def cv_logistic_path(X: Any, y: Any, *, nfolds: int | None = None, foldid: Any = None,
                     stratified: bool = CV.stratified, n_repeats: int = CV.n_repeats,
                     measure: str = CV.measure, seed: int = CV.seed, keep: bool = False,
                     l1_ratio: float = PATH.l1_ratio, lambdas: Any = None,
                     n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
                     standardize: bool = PATH.standardize, fit_intercept: bool = PATH.fit_intercept,
                     sample_weight: Any = None, penalty_factor: Any = None,
                     early_stop: bool = PATH.early_stop, tol: float | None = None,
                     max_iter: int = PATH.max_iter, dtype: Any = np.float64,
                     copy_X: bool = True) -> CVResult:
    """Cross-validate the elastic-net logistic path (glmnet's ``cv.glmnet``).

    Parameters
    ----------
    X, y
        As :func:`jaxlasso.logistic_path`.
    nfolds : int, optional
        Number of folds. Default: 10, reduced to the size of the smaller class when that is
        smaller (so that each stratified fold holds out both classes).
    foldid : array-like, optional
        Fold number per sample (integers >= 0; glmnet's 1-based ``foldid`` works as is; a
        negative label such as -1 is an error, not an extra fold), or an
        (n_repeats, n) array for repeated CV. Overrides ``nfolds``, ``stratified`` and ``seed``.
    stratified : bool
        Deal samples to folds class by class (default) — unlike glmnet's purely random folds,
        which with 7 cases and 9 controls often leave a fold without any case.
        ``stratified=False`` reproduces glmnet's ``sample(rep(seq(nfolds), length = n))``.
    n_repeats : int
        Repeat CV with independent fold assignments and average the curves (glmnet's
        documentation suggests this to reduce the variance of lambda.min; users do it by hand).
    measure : {"deviance", "class", "auc", "mse", "auc_pooled"}
        glmnet's ``type.measure``. ``auc`` needs >= 10 held-out samples per fold (else glmnet
        falls back to deviance, with a warning); ``auc_pooled`` is the AUC of the pooled
        pre-validated predictions, which stays meaningful at n = 16.
    seed : int
        Seed of the fold assignment.
    keep : bool
        Keep the pre-validated (held-out) predictions.
    **path options
        ``l1_ratio``, ``lambdas``, ``n_lambdas``, ``lambda_min_ratio``, ``standardize``,
        ``fit_intercept``, ``sample_weight``, ``penalty_factor``, ``early_stop``, ``tol``,
        ``max_iter``, ``dtype``: as :func:`jaxlasso.logistic_path`.
    copy_X : bool
        The result keeps the data for its permutation test and stability selection: a copy of
        ``X`` (default), or with ``False`` ``X`` itself when it is already a float64 array (one
        copy of the matrix less); ``X`` must then not be changed while the result is in use.

    Returns
    -------
    CVResult
        With ``lambda_min`` (largest lambda attaining the minimum CV error) and ``lambda_1se``
        (largest lambda within one SE of it), chosen by glmnet's rule.
    """
    t0 = time.perf_counter()
    plan = plan_cv(X, y, nfolds=nfolds, foldid=foldid, stratified=stratified, n_repeats=n_repeats,
                   measure=measure, seed=seed, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                   lambda_min_ratio=lambda_min_ratio, standardize=standardize,
                   fit_intercept=fit_intercept, sample_weight=sample_weight,
                   penalty_factor=penalty_factor, early_stop=early_stop, tol=tol, max_iter=max_iter,
                   dtype=dtype, copy_X=copy_X)
    prob = plan.prob
    t1 = time.perf_counter()
    out = solve_lanes(prob, plan.lanes())
    return finish_cv(plan, out, keep=keep, seconds_solve=time.perf_counter() - t1,
                     seconds_total=time.perf_counter() - t0)


def cv_path(X: Any, y: Any, *, family: Any = "binomial", nfolds: int | None = None, foldid: Any = None,
            stratified: bool = CV.stratified, n_repeats: int = CV.n_repeats, measure: str | None = None,
            seed: int = CV.seed, keep: bool = False, l1_ratio: float = PATH.l1_ratio, lambdas: Any = None,
            n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
            standardize: bool = PATH.standardize, fit_intercept: bool = PATH.fit_intercept,
            sample_weight: Any = None, penalty_factor: Any = None, early_stop: bool = PATH.early_stop,
            tol: float | None = None, max_iter: int = PATH.max_iter, dtype: Any = np.float64,
            copy_X: bool = True) -> CVResult:
    """Cross-validate the path of any family (glmnet's ``cv.glmnet(x, y, family = ...)``).

    ``family``: as :func:`jaxlasso.path.fit_path` (``"binomial"``, ``"gaussian"``, a registered
    name or a :class:`jaxlasso.families.HostFamily`); ``y`` what that family takes. ``measure``
    defaults to the family's first (binomial ``"deviance"``, Gaussian ``"mse"``). Families
    without classes draw glmnet's random folds (``stratified`` ignored). Every other keyword is
    :func:`cv_logistic_path`'s; the result's ``prevalidated`` holds held-out predictions on the
    response scale.
    """
    t0 = time.perf_counter()
    host = get_family(family)
    if measure is None:
        measure = CV.measure if host.has_classes else host.measures[0]
    plan = plan_cv(X, y, nfolds=nfolds, foldid=foldid, stratified=stratified, n_repeats=n_repeats,
                   measure=measure, seed=seed, family=host, l1_ratio=l1_ratio, lambdas=lambdas,
                   n_lambdas=n_lambdas, lambda_min_ratio=lambda_min_ratio, standardize=standardize,
                   fit_intercept=fit_intercept, sample_weight=sample_weight,
                   penalty_factor=penalty_factor, early_stop=early_stop, tol=tol, max_iter=max_iter,
                   dtype=dtype, copy_X=copy_X)
    t1 = time.perf_counter()
    out = solve_lanes(plan.prob, plan.lanes())
    return finish_cv(plan, out, keep=keep, seconds_solve=time.perf_counter() - t1,
                     seconds_total=time.perf_counter() - t0)


def cv_gaussian_path(X: Any, y: Any, *, measure: str = "mse", **kw) -> CVResult:
    """Cross-validate the Gaussian (least-squares) elastic-net path (glmnet's
    ``cv.glmnet(x, y, family = "gaussian")``).

    ``measure``: ``"mse"`` (default; ``"deviance"`` is the same number, as in glmnet) or
    ``"mae"``; grouped / ungrouped SE and lambda.min / lambda.1se by cv.glmnet's rules. Folds
    are glmnet's random ones (``nfolds`` default 10, or ``foldid``). Keywords and result as
    :func:`cv_logistic_path`, with ``prevalidated`` the held-out fitted values.
    """
    return cv_path(X, y, family="gaussian", measure=measure, **kw)


@dataclass
class CVPlan:
    """A validated CV problem: the prepared data, the folds and the lanes to solve.

    Lane 0 is the full-data fit (the master of glmnet's early stop); lane ``1 + r * nfolds + f``
    is fold ``f`` of repeat ``r`` (zero weights on its held-out rows).
    """

    prob: PreparedProblem
    foldid: np.ndarray  # (R, n)
    W: np.ndarray  # (1 + R * F, n)
    master: np.ndarray  # (1 + R * F,) bool
    measure: str  # after glmnet's fallbacks
    grouped: bool

    @property
    def nfolds(self) -> int:
        return int(self.foldid.max()) + 1

    def lanes(self) -> Lanes:
        """The full-data lane (the master) and every fold's, held-out predictions kept; only the
        master's coefficients go back to the original scale, so only its moments are kept."""
        return Lanes(W=self.W, is_master=self.master, keep_eta=True, keep_moments=self.master)


def plan_cv(X: Any, y: Any, *, nfolds=None, foldid=None, stratified=CV.stratified, n_repeats=CV.n_repeats,
            measure=CV.measure, seed=CV.seed, **path_args) -> CVPlan:
    """Validate a CV problem and lay out its lanes (shared by cv_path and screen).

    ``path_args`` may hold ``family`` (default binomial); families without classes (Gaussian)
    use glmnet's random folds (``stratified`` is ignored) and their own measures.
    """
    host = get_family(path_args.get("family", "binomial"))
    measures = MEASURES if host.has_classes else host.measures
    if measure not in measures:
        raise ValueError(f"measure must be one of {', '.join(measures)} for family={host.name!r} "
                         f"(got measure={measure!r})")
    n_repeats = V.check_positive_int(n_repeats, "n_repeats")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer (got seed={seed!r})")
    prob = PreparedProblem(X, y, **path_args)
    if foldid is None:
        if host.has_classes:
            k = default_nfolds(prob.y, prob.w, nfolds, bool(stratified))
        else:
            stratified = False
            k = (min(CV.nfolds, int(np.sum(prob.w > 0))) if nfolds is None
                 else V.check_positive_int(nfolds, "nfolds", minimum=2))
        fid = make_foldid(prob.y if host.has_classes else np.zeros(prob.n), prob.w, nfolds=k,
                          stratified=bool(stratified), n_repeats=n_repeats, seed=int(seed))
    else:
        V.check_foldid_labels(foldid)
        fid = normalize_foldid(foldid, prob.n)
    if host.has_classes:
        check_folds(fid, prob.y, prob.w, prob.classes)
    k = int(fid.max()) + 1
    measure_used, grouped = resolve_measure(measure, int(np.sum(prob.w > 0)), k)
    W = np.vstack([prob.w[None, :], fold_weights(fid, prob.w)])
    master = np.zeros(len(W), bool)
    master[0] = True
    return CVPlan(prob, fid, W, master, measure_used, grouped)


def finish_cv(plan: CVPlan, out, *, keep: bool = False, seconds_solve: float = 0.0,
              seconds_total: float = 0.0) -> CVResult:
    """Turn the lanes' kernel outputs into a :class:`CVResult` (glmnet's statistics and rules)."""
    prob, fid = plan.prob, plan.foldid
    path = path_result_from_lane(prob, out, 0, seconds_solve)
    L = len(path.lambdas)
    report_status(out.status[1:, :L], path.lambdas, what="cross-validation")
    k = plan.nfolds
    # Held-out predictions: lane 1 + r * k + f predicts the rows of fold f in repeat r.
    R = fid.shape[0]
    host = prob.host_family
    binomial = host.name == "binomial"
    prevalidated = np.empty((R, prob.n, L))
    for r in range(R):
        for f in range(k):
            rows = fid[r] == f
            eta = out.eta[1 + r * k + f, :L][:, rows].T.astype(np.float64)
            if binomial:
                prevalidated[r][rows] = sigmoid(eta)
            else:
                # The kernel's linear predictor is on the standardised response's scale.
                prevalidated[r][rows] = host.predict(prob.y_center + prob.y_scale * eta)
    stats = cv_statistics(plan.measure, plan.grouped, prob.response, prob.w, fid, prevalidated,
                          pointwise=None if binomial else host.pointwise_loss)
    larger = LARGER_IS_BETTER[stats.measure] if binomial else host.larger_is_better[stats.measure]
    idx_min, idx_1se = select_lambdas(path.lambdas, stats.cv_mean, stats.cv_sd, larger)
    return CVResult(
        lambdas=path.lambdas,
        cv_mean=stats.cv_mean,
        cv_sd=stats.cv_sd,
        fold_scores=stats.fold_scores,
        n_nonzero=path.n_nonzero,
        index_min=idx_min,
        index_1se=idx_1se,
        foldid=fid,
        measure=stats.measure,
        grouped=stats.grouped,
        path=path,
        prevalidated=prevalidated.mean(axis=0) if keep else None,
        prevalidated_repeats=prevalidated if keep else None,
        info={
            "lanes": len(plan.W),
            "working_set_capacities": out.capacities,
            "seconds_solve": seconds_solve,
            "seconds_total": seconds_total,
            "kkt_passes": int(out.n_kkt_rounds.sum()),
        },
        problem=prob,
    )
