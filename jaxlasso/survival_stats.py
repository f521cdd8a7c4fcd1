"""Host-side statistics for the non-binomial families: Kaplan-Meier, the log-rank test, the
per-gene Cox score test and the per-gene Pearson correlation (the univariate rankings).

Everything here is numpy / scipy on the host: these are summaries and one-gene-at-a-time tests,
vectorised over genes, never inside a solver. Each function states which R function it
reproduces; ``tests/test_survival_stats.py`` checks them against R (``survival::survfit``,
``survival::survdiff``, ``survival::coxph(ties = "breslow")``'s score test, ``cor.test``).

Survival data are right-censored ``(time, event)`` pairs: ``time >= 0`` finite, ``event`` 1 for
an observed event and 0 for a censored time. At a tied time, events happen before censorings
(the convention of ``survival``): a sample censored at ``t`` is still at risk at ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KaplanMeier", "LogRank", "RiskGroups", "check_survival", "cox_score_test", "kaplan_meier",
           "logrank_test", "pearson_test", "prediction_r2", "risk_groups"]


def check_survival(time: Any, event: Any, *, time_name: str = "time", event_name: str = "event",
                   n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(time, event)`` as float64 and 0/1 float64 arrays, after the checks every survival input
    gets: the same length (``n`` when given), finite times >= 0, events 0/1 (``True``/``False``
    accepted) and at least one event. Errors name the inputs as ``time_name`` / ``event_name``."""
    t = np.asarray(time)
    e = np.asarray(event)
    if t.ndim != 1 or e.ndim != 1 or len(t) != len(e) or (n is not None and len(t) != n):
        raise ValueError(f"{time_name} and {event_name} must be 1-D with one value per sample "
                         f"(got {len(np.atleast_1d(t))} times, {len(np.atleast_1d(e))} events"
                         + (f", {n} samples)" if n is not None else ")"))
    try:
        t = t.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{time_name} must be numbers (got {time_name}={t[:3].tolist()!r}...)") from None
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f"{time_name} must be finite and >= 0 for every sample; {int(bad.sum())} "
                         f"are not (got {time_name}={t[i]!r} at position {i})")
    if e.dtype == bool:
        e = e.astype(np.float64)
    else:
        try:
            e = e.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{event_name} must be 0/1 or TRUE/FALSE (got {event_name}={e[:3].tolist()!r}...)") from None
    if not np.all((e == 0) | (e == 1)):
        i = int(np.nonzero(~((e == 0) | (e == 1)))[0][0])
        raise ValueError(f"{event_name} must be 0 (censored) or 1 (event) for every sample "
                         f"(got {event_name}={e[i]!r} at position {i})")
    if not e.any():
        raise ValueError(f"{event_name} has no events (every sample is censored): a survival model "
                         f"needs at least one (got events=0 of {len(e)})")
    return t, e


# --- Kaplan-Meier ------------------------------------------------------------------------------
@dataclass(frozen=True)
class KaplanMeier:
    """The Kaplan-Meier estimate at every distinct time (``survival::survfit`` without strata)."""

    time: np.ndarray
    """(m,) distinct times, ascending (event and censoring times, as survfit reports them)."""
    n_risk: np.ndarray
    """(m,) samples at risk just before each time."""
    n_event: np.ndarray
    """(m,) events at each time."""
    n_censor: np.ndarray
    """(m,) censorings at each time."""
    survival: np.ndarray
    """(m,) S(t): the product of ``1 - n_event / n_risk`` up to and including each time."""
    std_err: np.ndarray
    """(m,) Greenwood's standard error of ``log S(t)`` (survfit's ``std.err``)."""

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"time": self.time, "n_risk": self.n_risk, "n_event": self.n_event,
                             "n_censor": self.n_censor, "survival": self.survival, "std_err": self.std_err})

    def median(self) -> float:
        """The median survival time (survfit's: the first time S(t) <= 0.5; NaN if never)."""
        below = np.nonzero(self.survival <= 0.5 + 1e-12)[0]
        if not below.size:
            return float("nan")
        i = below[0]
        # survfit averages the two times when S(t) is exactly 0.5 over an interval.
        if abs(self.survival[i] - 0.5) < 1e-12 and i + 1 < len(self.time):
            return float((self.time[i] + self.time[i + 1]) / 2)
        return float(self.time[i])


def kaplan_meier(time: Any, event: Any) -> KaplanMeier:
    """Kaplan-Meier estimate of the survival function with Greenwood's variance
    (``survival::survfit(Surv(time, event) ~ 1)``)."""
    t, e = check_survival(time, event)
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=e, minlength=len(ut))
    total = np.bincount(inv, minlength=len(ut)).astype(float)
    at_risk = total[::-1].cumsum()[::-1]
    hazard = np.where(at_risk > 0, d / np.where(at_risk > 0, at_risk, 1), 0.0)
    surv = np.cumprod(1.0 - hazard)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Greenwood: sum d / (r (r - d)); survfit reports Inf once S reaches 0.
        term = np.where(d > 0, d / (at_risk * (at_risk - d)), 0.0)
    se = np.sqrt(np.cumsum(term))
    return KaplanMeier(ut, at_risk, d, total - d, surv, se)


# --- log-rank ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogRank:
    """The log-rank test of equal survival across groups (``survival::survdiff``, rho = 0)."""

    groups: tuple[Any, ...]
    """The groups in sorted order."""
    n: np.ndarray
    """(G,) samples per group."""
    observed: np.ndarray
    """(G,) events per group."""
    expected: np.ndarray
    """(G,) events expected under equal hazards."""
    chisq: float
    """``(O - E)' V^- (O - E)`` on ``G - 1`` degrees of freedom."""
    df: int
    p_value: float


def logrank_test(time: Any, event: Any, group: Any) -> LogRank:
    """The log-rank (Mantel-Haenszel) test, ``survival::survdiff(Surv(time, event) ~ group)``.

    At each distinct event time with ``d`` events among ``r`` at risk, a group with ``r_g`` at risk
    expects ``d r_g / r`` events, with the hypergeometric covariance
    ``d (r - d) / (r - 1) * (r_g / r) (delta_gh - r_h / r)``.
    """
    from scipy import stats

    t, e = check_survival(time, event)
    g = np.asarray(group)
    if len(g) != len(t):
        raise ValueError(f"group must have one value per sample (got {len(g)} for {len(t)} samples)")
    levels, gi = np.unique(g, return_inverse=True)
    if len(levels) < 2:
        raise ValueError(f"the log-rank test needs at least two groups (got groups={levels.tolist()!r})")
    G = len(levels)
    ut, inv = np.unique(t, return_inverse=True)
    m = len(ut)
    # counts[time, group]: samples and events at each distinct time.
    total = np.zeros((m, G))
    np.add.at(total, (inv, gi), 1.0)
    died = np.zeros((m, G))
    np.add.at(died, (inv, gi), e)
    risk_g = total[::-1].cumsum(axis=0)[::-1]
    risk = risk_g.sum(axis=1)
    d = died.sum(axis=1)
    keep = d > 0
    risk_g, risk, d, died = risk_g[keep], risk[keep], d[keep], died[keep]
    frac = risk_g / risk[:, None]
    expected = (d[:, None] * frac).sum(axis=0)
    observed = died.sum(axis=0)
    scale = np.where(risk > 1, d * (risk - d) / np.where(risk > 1, risk - 1, 1), 0.0)
    V = (np.einsum("t,tg,th->gh", scale, frac, -frac) + np.diag((scale[:, None] * frac).sum(axis=0)))
    diff = observed - expected
    # survdiff drops the last group and inverts the rest (a generalised inverse of V).
    Vs = V[:-1, :-1]
    chisq = float(diff[:-1] @ np.linalg.solve(Vs, diff[:-1])) if G > 1 else 0.0
    df = G - 1
    return LogRank(tuple(levels.tolist()), np.bincount(gi, minlength=G), observed, expected, chisq, df,
                   float(stats.chi2.sf(chisq, df)))


# --- per-gene tests ----------------------------------------------------------------------------
def cox_score_test(X: Any, time: Any, event: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The score (log-rank) test of each column of ``X`` alone in a Cox model, Breslow ties:
    ``survival::coxph(Surv(time, event) ~ x, ties = "breslow")``'s score test, for every gene in one
    pass.

    At beta = 0 each distinct event time with ``d`` events contributes ``sum_{events} x - d xbar_R``
    to the score U and ``d var_R(x)`` to the information I (``xbar_R``, ``var_R``: the mean and
    population variance of ``x`` over the risk set); the statistic ``U^2 / I`` is chi-squared with
    one degree of freedom. Risk-set sums are cumulative sums over samples sorted by time.

    Returns ``(z, p_value, information)``: ``z = U / sqrt(I)`` (positive: higher ``x``, higher
    hazard), its two-sided p-value, and I (0 for a gene constant on every risk set: z = 0, p = 1).
    """
    from scipy import stats

    X = np.asarray(X, dtype=np.float64)
    t, e = check_survival(time, event, n=X.shape[0])
    ut, inv = np.unique(t, return_inverse=True)
    m = len(ut)
    # Per distinct time: sums of x, x^2, counts and events, then sums over {time >= t}.
    Sx = np.zeros((m, X.shape[1]))
    np.add.at(Sx, inv, X)
    Sxx = np.zeros((m, X.shape[1]))
    np.add.at(Sxx, inv, X * X)
    Ex = np.zeros((m, X.shape[1]))
    np.add.at(Ex, inv, X * e[:, None])
    cnt = np.bincount(inv, minlength=m).astype(float)
    d = np.bincount(inv, weights=e, minlength=m)
    Rx = Sx[::-1].cumsum(axis=0)[::-1]
    Rxx = Sxx[::-1].cumsum(axis=0)[::-1]
    r = cnt[::-1].cumsum()[::-1]
    ev = d > 0
    mean = Rx[ev] / r[ev, None]
    var = np.maximum(Rxx[ev] / r[ev, None] - mean * mean, 0.0)
    U = (Ex[ev] - d[ev, None] * mean).sum(axis=0)
    info = (d[ev, None] * var).sum(axis=0)
    # A gene constant on every risk set carries no information: a score of exactly 0 and p = 1
    # (the threshold is relative to the gene's scale, so rounding noise is not a signal).
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300) ** 2
    ok = info > 1e-12 * scale * d.sum()
    z = np.where(ok, U / np.sqrt(np.where(ok, info, 1.0)), 0.0)
    p = np.where(ok, 2 * stats.norm.sf(np.abs(z)), 1.0)
    return z, p, np.where(ok, info, 0.0)


def pearson_test(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pearson's correlation of each column of ``X`` with ``y`` and its two-sided t-test p-value
    (``cor.test(x, y)``: ``t = r sqrt((n - 2) / (1 - r^2))`` on ``n - 2`` degrees of freedom).
    A constant column has r = 0 and p = 1."""
    from scipy import stats

    X = np.asarray(X, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    n = X.shape[0]
    if yv.shape != (n,):
        raise ValueError(f"y must have one value per sample (got {yv.shape} for {n} samples)")
    if n < 3:
        raise ValueError(f"a correlation test needs at least 3 samples (got n={n})")
    Xc = X - X.mean(axis=0)
    yc = yv - yv.mean()
    sx = np.sqrt((Xc * Xc).sum(axis=0))
    sy = float(np.sqrt(yc @ yc))
    if sy == 0:
        raise ValueError("y is constant: no correlation can be computed (got one distinct value)")
    ok = sx > 1e-12 * np.maximum(np.abs(X).max(axis=0), 1e-300) * np.sqrt(n)
    r = np.where(ok, (yc @ Xc) / (np.where(ok, sx, 1.0) * sy), 0.0)
    r = np.clip(r, -1.0, 1.0)
    with np.errstate(divide="ignore"):
        tstat = r * np.sqrt((n - 2) / np.maximum(1 - r * r, 1e-300))
    p = np.where(ok, 2 * stats.t.sf(np.abs(tstat), n - 2), 1.0)
    return r, p


# --- pre-validated risk groups -----------------------------------------------------------------
@dataclass(frozen=True)
class RiskGroups:
    """Samples split at the median of a **pre-validated** risk score: each sample's score comes
    from the cross-validation model that did not see it, so the split and its log-rank test are
    an honest check of the model (risk groups fitted on the same samples would separate by
    construction)."""

    high: np.ndarray
    """(n,) bool: risk above the median."""
    low_km: KaplanMeier
    high_km: KaplanMeier
    logrank: LogRank
    threshold: float
    """The median of the pre-validated risk."""


def risk_groups(time: Any, event: Any, risk: Any) -> RiskGroups:
    """Kaplan-Meier curves and the log-rank test of the two halves of ``risk`` (split at its
    median; a sample at the median goes to the low group)."""
    t, e = check_survival(time, event)
    r = np.asarray(risk, dtype=np.float64)
    if r.shape != t.shape or not np.all(np.isfinite(r)):
        raise ValueError(f"risk must hold one finite score per sample (got shape {r.shape} for {len(t)} samples)")
    thr = float(np.median(r))
    high = r > thr
    if high.all() or not high.any():
        raise ValueError("the pre-validated risk is constant: it cannot split the samples into two groups "
                         "(the model at this lambda keeps no gene)")
    lr = logrank_test(t, e, high.astype(int))
    low_km = kaplan_meier(t[~high], e[~high]) if e[~high].any() else None
    high_km = kaplan_meier(t[high], e[high]) if e[high].any() else None
    return RiskGroups(high, low_km, high_km, lr, thr)


def prediction_r2(observed: Any, predicted: Any) -> tuple[float, float]:
    """(R², MSE) of predictions: ``1 - SSE / SST`` and ``SSE / n``. On pre-validated predictions
    this is the cross-validated R² (it can be negative: worse than predicting the mean)."""
    y = np.asarray(observed, dtype=np.float64)
    f = np.asarray(predicted, dtype=np.float64)
    sse = float(np.sum((y - f) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    return (1.0 - sse / sst if sst > 0 else float("nan")), sse / len(y)
