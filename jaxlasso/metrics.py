"""Held-out performance measures and cv.glmnet's way of summarising them over folds.

Everything here works on the held-out predictions (probabilities of the case class) after the
kernels have run; it is cheap numpy on (n, L) arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._config import CV
from .exceptions import FewObservationsWarning


def sigmoid(eta):
    """The logistic function ``1 / (1 + exp(-eta))``, written with tanh so that it neither
    overflows nor loses the small tail probabilities for large ``|eta|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * eta))

LARGER_IS_BETTER = {"auc": True, "auc_pooled": True, "deviance": False, "class": False, "mse": False,
                    "mae": False}
NAMES = {
    "deviance": "Binomial Deviance",
    "class": "Misclassification Error",
    "auc": "AUC",
    "auc_pooled": "AUC (pooled pre-validated)",
    "mse": "Mean-Squared Error",
    "mae": "Mean Absolute Error",
}


def pointwise_loss(measure: str, y: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Per-observation loss, exactly as ``cv.lognet`` computes it. ``y`` (m,), ``prob`` (m, L).

    deviance: ``-2 [y log p + (1-y) log(1-p)]`` with p clipped to [1e-5, 1 - 1e-5];
    class: 1 if the predicted class (p > 0.5 -> case) is wrong; mse: glmnet's binomial
    mean-squared error ``(y - p)^2 + ((1 - y) - (1 - p))^2 = 2 (y - p)^2``.
    """
    y = y[:, None]
    if measure == "deviance":
        p = np.clip(prob, CV.prob_clip, 1.0 - CV.prob_clip)
        return -2.0 * (y * np.log(p) + (1.0 - y) * np.log1p(-p))
    if measure == "class":
        return np.where(y == 1.0, prob <= 0.5, prob > 0.5).astype(float)
    if measure == "mse":
        return 2.0 * (y - prob) ** 2
    raise ValueError(f"unknown pointwise measure {measure!r}")


def weighted_auc(y: np.ndarray, prob: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted AUC (concordance) per column of ``prob`` (m, L); ties count one half.

    ``sum_{i case, j control} w_i w_j [1(p_i > p_j) + 1/2 1(p_i = p_j)] / (W_case W_control)``;
    ``nan`` when a class is absent. Matches ``survival::concordance`` used by glmnet's ``auc``.
    """
    prob = np.asarray(prob, dtype=float)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    case = (y == 1.0) & (w > 0)
    ctrl = (y == 0.0) & (w > 0)
    L = prob.shape[1]
    if not case.any() or not ctrl.any():
        return np.full(L, np.nan)
    pc, pn = prob[case], prob[ctrl]
    wc, wn = w[case], w[ctrl]
    out = np.empty(L)
    chunk = max(1, int(4e6 // max(1, len(pc) * len(pn))))
    for s in range(0, L, chunk):
        a = pc[:, None, s:s + chunk]
        b = pn[None, :, s:s + chunk]
        score = (a > b) + 0.5 * (a == b)
        out[s:s + chunk] = np.einsum("i,j,ijl->l", wc, wn, score)
    return out / (wc.sum() * wn.sum())


def hanley_mcneil_se(auc: np.ndarray, n_case: int, n_ctrl: int) -> np.ndarray:
    """Standard error of an AUC (Hanley & McNeil 1982)."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc ** 2 / (1.0 + auc)
    var = (auc * (1 - auc) + (n_case - 1) * (q1 - auc ** 2) + (n_ctrl - 1) * (q2 - auc ** 2)) / (n_case * n_ctrl)
    return np.sqrt(np.maximum(var, 0.0))


def _weighted_summary(raw: np.ndarray, weights: np.ndarray, N) -> tuple[np.ndarray, np.ndarray]:
    """cv.glmnet's ``cvstats``: weighted mean over rows and the SE ``sqrt(var / (N - 1))``."""
    ok = np.isfinite(raw)
    wts = np.where(ok, weights[:, None], 0.0)
    vals = np.where(ok, raw, 0.0)
    tot = wts.sum(axis=0)
    cvm = (wts * vals).sum(axis=0) / np.where(tot > 0, tot, np.nan)
    var = (wts * (vals - cvm) ** 2).sum(axis=0) / np.where(tot > 0, tot, np.nan)
    denom = np.maximum(np.asarray(N) - 1, 1)
    return cvm, np.sqrt(var / denom)


@dataclass(frozen=True)
class CVStats:
    cv_mean: np.ndarray  # (L,)
    cv_sd: np.ndarray  # (L,)
    fold_scores: np.ndarray  # (R*F, L) or (R, L) for auc_pooled / (R*n, L) ungrouped
    measure: str  # the measure actually used (after glmnet's fallbacks)
    grouped: bool


def resolve_measure(measure: str, n: int, nfolds: int, grouped: bool = True) -> tuple[str, bool]:
    """cv.glmnet's guards: AUC needs >= 10 held-out observations per fold, grouped SE >= 3."""
    if measure == "auc" and n / nfolds < CV.auc_min_per_fold:
        warnings.warn(
            f"Too few (< {CV.auc_min_per_fold}) observations per fold for measure='auc' "
            f"(glmnet's rule); changed to measure='deviance'. For an AUC that works at small n use "
            f"measure='auc_pooled' (AUC of the pooled pre-validated predictions) "
            f"(got n={n}, nfolds={nfolds})",
            FewObservationsWarning, stacklevel=3)
        measure = "deviance"
    if grouped and measure in ("deviance", "class", "mse", "mae") and n / nfolds < CV.grouped_min_per_fold:
        warnings.warn(
            f"Option grouped=False enforced (glmnet's rule), since < {CV.grouped_min_per_fold} "
            f"observations per fold: the standard error is computed over observations, not folds "
            f"(got n={n}, nfolds={nfolds})",
            FewObservationsWarning, stacklevel=3)
        grouped = False
    return measure, grouped


def cv_statistics(measure: str, grouped: bool, y: np.ndarray, w: np.ndarray, foldid: np.ndarray,
                  prob: np.ndarray, pointwise=None) -> CVStats:
    """Summarise held-out predictions ``prob`` (R, n, L) over folds (and repeats).

    Each repeat is summarised as cv.glmnet does; the repeats' curves and SEs are then averaged.
    ``pointwise(measure, y, pred)``: the family's per-observation loss (default binomial's
    :func:`pointwise_loss`; a Gaussian fit passes its own, with ``y`` the outcome and ``prob``
    the held-out fitted values).
    """
    pointwise = pointwise_loss if pointwise is None else pointwise
    R, n, L = prob.shape
    nfolds = int(foldid.max()) + 1
    means, sds, scores = [], [], []
    for r in range(R):
        fid = foldid[r]
        if measure == "auc_pooled":
            auc = weighted_auc(y, prob[r], w)
            n_case = int(np.sum((y == 1) & (w > 0)))
            n_ctrl = int(np.sum((y == 0) & (w > 0)))
            means.append(auc)
            sds.append(hanley_mcneil_se(auc, n_case, n_ctrl))
            scores.append(auc[None, :])
            continue
        if measure == "auc":
            raw = np.stack([weighted_auc(y[fid == f], prob[r][fid == f], w[fid == f]) for f in range(nfolds)])
            fw = np.array([w[fid == f].sum() for f in range(nfolds)])
            cvm, cvsd = _weighted_summary(raw, fw, nfolds)
        else:
            obs = pointwise(measure, y, prob[r])
            if grouped:
                fw = np.array([w[fid == f].sum() for f in range(nfolds)])
                raw = np.stack([
                    (w[fid == f] @ obs[fid == f]) / fw[f] if fw[f] > 0 else np.full(L, np.nan)
                    for f in range(nfolds)])
                cvm, cvsd = _weighted_summary(raw, fw, nfolds)
            else:
                raw = obs
                cvm, cvsd = _weighted_summary(raw, w, int(np.sum(w > 0)))
        means.append(cvm)
        sds.append(cvsd)
        scores.append(raw)
    return CVStats(np.mean(means, axis=0), np.mean(sds, axis=0), np.concatenate(scores, axis=0),
                   measure, grouped)


def select_lambdas(lambdas: np.ndarray, cv_mean: np.ndarray, cv_sd: np.ndarray,
                   larger_is_better: bool) -> tuple[int, int]:
    """glmnet's ``getOptcv.glmnet``: (index_min, index_1se).

    lambda.min is the largest lambda attaining the minimum of ``cv_mean`` (AUC is negated);
    lambda.1se the largest lambda whose ``cv_mean`` is within one SE of that minimum.
    """
    cvm = -cv_mean if larger_is_better else cv_mean
    ok = np.isfinite(cvm)
    if not ok.any():
        raise ValueError("every CV value is undefined (nan); check that each fold holds both classes")
    cvmin = np.min(cvm[ok])
    idx_min = int(np.nonzero(ok & (cvm <= cvmin))[0][0])  # lambdas decrease: first = largest
    bound = cvm[idx_min] + cv_sd[idx_min]
    idx_1se = int(np.nonzero(ok & (cvm <= bound))[0][0])
    return idx_min, idx_1se


# --- Cox (survival) measures: cv.glmnet(family = "cox") ------------------------------------
COX_MEASURES = ("deviance", "C")
"""cv.glmnet's ``type.measure`` for ``family = "cox"``: the partial-likelihood deviance and
Harrell's C (larger is better)."""
COX_NAMES = {"deviance": "Partial Likelihood Deviance", "C": "C-index"}
COX_LARGER_IS_BETTER = {"deviance": False, "C": True}
COX_UNGROUPED_MIN_PER_FOLD = 10
"""cv.coxnet enforces grouped=TRUE below 10 observations per fold."""


def resolve_cox_grouped(n: int, nfolds: int, grouped: bool) -> bool:
    """cv.coxnet's guard: the ungrouped deviance needs >= 10 observations per fold."""
    if not grouped and n / nfolds < COX_UNGROUPED_MIN_PER_FOLD:
        warnings.warn(
            f"Option grouped=True enforced (cv.coxnet's rule), since < {COX_UNGROUPED_MIN_PER_FOLD} "
            f"observations per fold (got n={n}, nfolds={nfolds})",
            FewObservationsWarning, stacklevel=3)
        return True
    return grouped


def cox_fold_scores(measure: str, grouped: bool, time: np.ndarray, event: np.ndarray, w: np.ndarray,
                    fid: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One CV repeat's per-fold scores (F, L) and fold weights (F,), as ``cv.coxnet``.

    ``eta`` (F, n, L): fold ``f``'s linear predictor on *every* row. ``deviance``, grouped
    (glmnet's default): ``(D(all rows) - D(training rows)) / W_f`` with ``D`` glmnet's
    ``coxnet.deviance`` at the fold's coefficients and ``W_f`` the weighted number of events held
    out -- the held-out rows' contribution to the partial likelihood, with the training rows in
    their risk sets (a fold of a few rows has too few events for a partial likelihood of its own).
    Ungrouped: ``D(held-out rows) / W_f``. ``C``: Harrell's C on the held-out rows, weighted by
    the fold's total weight.
    """
    from .survival import concordance, coxnet_deviance

    F, _, L = eta.shape
    raw = np.full((F, L), np.nan)
    fw = np.zeros(F)
    for f in range(F):
        out = fid == f
        if measure == "C":
            raw[f] = concordance(eta[f][out], time[out], event[out], w[out])
            fw[f] = w[out].sum()
            continue
        fw[f] = float(w[out] @ event[out])
        if grouped:
            dev = (coxnet_deviance(eta[f], time, event, w)
                   - coxnet_deviance(eta[f][~out], time[~out], event[~out], w[~out]))
        else:
            dev = coxnet_deviance(eta[f][out], time[out], event[out], w[out])
        if fw[f] > 0:
            raw[f] = dev / fw[f]
    return raw, fw


def cox_cv_statistics(measure: str, grouped: bool, time: np.ndarray, event: np.ndarray, w: np.ndarray,
                      foldid: np.ndarray, eta: np.ndarray) -> CVStats:
    """Summarise Cox CV lanes over folds (and repeats) as ``cv.glmnet(family = "cox")``.

    ``foldid`` (R, n) 0-based; ``eta`` (R, F, n, L): each fold's linear predictor on every row.
    Per repeat: ``cvm`` the fold-weighted mean of :func:`cox_fold_scores`, ``cvsd`` its weighted
    SD over ``sqrt(N - 1)`` folds (``N`` counting the folds with a defined score); the repeats'
    curves and SEs are then averaged. A fold without held-out events has no deviance score
    (cv.glmnet would divide by zero and return NaN for the whole curve).
    """
    if measure not in COX_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(COX_MEASURES)} for the Cox family "
                         f"(got measure={measure!r})")
    R = foldid.shape[0]
    means, sds, scores = [], [], []
    for r in range(R):
        raw, fw = cox_fold_scores(measure, grouped, time, event, w, foldid[r], eta[r])
        N = raw.shape[0] if measure == "C" else np.sum(np.isfinite(raw), axis=0)
        cvm, cvsd = _weighted_summary(raw, fw, N)
        means.append(cvm)
        sds.append(cvsd)
        scores.append(raw)
    return CVStats(np.mean(means, axis=0), np.mean(sds, axis=0), np.concatenate(scores, axis=0),
                   measure, grouped)
