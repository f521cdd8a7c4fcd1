"""Right-censored survival responses on the host: checks, the kernels' layout, glmnet's measures.

* :func:`check_survival` validates ``(time, event)`` once, with errors that name the input.
* :func:`cox_layout` sorts the rows by time once and finds the blocks of equal times: the
  :class:`kernels.cox.CoxData` every Cox kernel reads (risk sets as cumulative sums).
* :func:`cox_loglik`, :func:`coxnet_deviance` and :func:`concordance` are the held-out measures
  of ``cv.glmnet(family = "cox")``: numpy on (n, L) linear predictors, computed after the kernels
  have run (an implementation independent of the kernels' jnp one, which the tests compare).

Tied times follow the convention of ``survival::coxph`` and glmnet: a row censored at time ``t``
is at risk for the events at ``t`` (glmnet achieves it by adding ``100 * eps`` to censored times,
which is lost to rounding for times above ~200; here the order is exact at every scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kernels.cox import CoxData

from ._validation import _fmt


@dataclass(frozen=True)
class Survival:
    """A validated right-censored response."""

    time: np.ndarray
    """(n,) float64 follow-up times, finite and >= 0."""
    event: np.ndarray
    """(n,) float64: 1 = event observed at ``time``, 0 = censored at ``time``."""


def _vector(values: Any, name: str, n: int | None) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector with one value per sample (got shape={arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"X and {name} have different numbers of samples; pass one {name} per row of X "
            f"(got n_rows(X)={n}, len({name})={arr.shape[0]})")
    return arr


def check_survival(time: Any, event: Any, n: int | None = None, *, time_name: str = "time",
                   event_name: str = "event") -> Survival:
    """Validate a right-censored response.

    ``time``: finite, >= 0 (only the order of the times enters the partial likelihood, so 0 is
    accepted; glmnet refuses it). ``event``: bool, or numbers 0 (censored) / 1 (event). At least
    one event is needed. ``n`` is the number of rows of X when known.
    """
    t_raw = _vector(time, time_name, n)
    e_raw = _vector(event, event_name, n)
    if t_raw.shape[0] != e_raw.shape[0]:
        raise ValueError(
            f"{time_name} and {event_name} have different lengths; pass one of each per sample "
            f"(got len({time_name})={t_raw.shape[0]}, len({event_name})={e_raw.shape[0]})")
    if t_raw.dtype.kind not in "iuf":
        try:
            t_raw = t_raw.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{time_name} must be numeric follow-up times "
                            f"(got dtype={t_raw.dtype}, values {_fmt(t_raw[:5].tolist())})") from None
    t = t_raw.astype(np.float64)
    bad = np.isnan(t)
    if bad.any():
        raise ValueError(f"{time_name} has {int(bad.sum())} missing (NaN) value(s); drop those samples first "
                         f"(got NaN at rows {_fmt(np.nonzero(bad)[0].tolist())})")
    bad = np.isinf(t)
    if bad.any():
        raise ValueError(f"{time_name} must be finite; a sample without an end of follow-up cannot be "
                         f"placed in the risk sets (got Inf at rows {_fmt(np.nonzero(bad)[0].tolist())})")
    bad = t < 0
    if bad.any():
        raise ValueError(f"{time_name} must be >= 0 (follow-up times); check the column "
                         f"(got negative times {_fmt(t[bad].tolist())} at rows {_fmt(np.nonzero(bad)[0].tolist())})")
    if e_raw.dtype == bool:
        d = e_raw.astype(np.float64)
    else:
        if e_raw.dtype.kind not in "iuf":
            try:
                e_raw = e_raw.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{event_name} must be 0/1 or bool (1 = event, 0 = censored) "
                                f"(got dtype={e_raw.dtype}, values {_fmt(pd.unique(e_raw)[:5].tolist())})") from None
        d = e_raw.astype(np.float64)
        if np.isnan(d).any():
            raise ValueError(f"{event_name} has {int(np.isnan(d).sum())} missing (NaN) value(s); drop those "
                             f"samples first (got NaN at rows {_fmt(np.nonzero(np.isnan(d))[0].tolist())})")
        other = ~np.isin(d, (0.0, 1.0))
        if other.any():
            vals = sorted(set(d[other].tolist()))
            raise ValueError(f"{event_name} must be 0 (censored) or 1 (event), or bool "
                             f"(got values {_fmt([int(v) if float(v).is_integer() else v for v in vals])})")
    return Survival(t, d)


def check_events(surv: Survival, w: np.ndarray, *, event_name: str = "event") -> None:
    """At least one event with positive weight: without one the partial likelihood is constant."""
    if not np.any((surv.event == 1) & (w > 0)):
        raise ValueError(
            f"no sample with positive weight has an event: every observation is censored, so the Cox "
            f"partial likelihood does not depend on the coefficients (got sum({event_name})="
            f"{int(surv.event[w > 0].sum())})")


def cox_layout(time: np.ndarray, event: np.ndarray) -> CoxData:
    """The kernels' :class:`CoxData` (numpy arrays): rows sorted by time (events first at equal
    times, a fixed order; nothing depends on the order inside a block) and each sorted position's
    block of equal times. A risk set is read at the first position of a block, so a row censored
    at ``t`` is in the risk set of the events at ``t``."""
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.float64)
    n = time.shape[0]
    order = np.lexsort((1.0 - event, time)).astype(np.int32)
    rank = np.empty(n, np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    ts = time[order]
    new = np.ones(n, bool)
    new[1:] = ts[1:] != ts[:-1]
    starts = np.nonzero(new)[0]
    block = np.cumsum(new) - 1
    ends = np.append(starts[1:] - 1, n - 1)
    return CoxData(order=order, rank=rank, event=event[order], first=starts[block].astype(np.int32),
                   last=ends[block].astype(np.int32))


def cox_loglik(eta: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Breslow log partial likelihood of each column of ``eta`` (n,) or (n, L), weights as given:
    what glmnet's Fortran ``loglike`` returns (rows with zero weight take no part)."""
    eta = np.asarray(eta, dtype=np.float64)
    one = eta.ndim == 1
    E = eta[:, None] if one else eta
    lay = cox_layout(time, event)
    ws = np.asarray(w, dtype=np.float64)[lay.order]
    es = E[lay.order]
    keep = ws > 0
    shift = np.max(np.where(keep[:, None], es, -np.inf), axis=0)
    cen = np.where(keep[:, None], es - shift, 0.0)
    we = np.where(keep[:, None], ws[:, None] * np.exp(cen), 0.0)
    S = np.flip(np.cumsum(np.flip(we, 0), 0), 0)[lay.first]
    wd = (ws * lay.event)[:, None]
    with np.errstate(divide="ignore"):
        logS = np.where(wd > 0, np.log(np.where(wd > 0, S, 1.0)), 0.0)
    out = np.sum(wd * (cen - logS), axis=0)
    return out[0] if one else out


def coxnet_deviance(eta: np.ndarray, time: np.ndarray, event: np.ndarray, w: np.ndarray) -> np.ndarray:
    """glmnet's ``coxnet.deviance(pred, y, weights)``: ``2 (loglik_sat - loglik)`` after the
    weights are rescaled to sum to the number of rows passed (``std.weights = TRUE``); the
    saturated log-likelihood is ``-sum_k W_k log W_k`` over the distinct event times."""
    w = np.asarray(w, dtype=np.float64)
    w = len(w) * w / w.sum()
    event = np.asarray(event, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    died = (event == 1) & (w > 0)
    _, inverse = np.unique(time[died], return_inverse=True)
    Wk = np.bincount(inverse, weights=w[died])
    Wk = Wk[Wk > 0]
    lsat = -np.sum(Wk * np.log(Wk))
    return 2.0 * (lsat - cox_loglik(eta, time, event, w))


def concordance(pred: np.ndarray, time: np.ndarray, event: np.ndarray,
                w: np.ndarray | None = None) -> np.ndarray:
    """Harrell's C of each column of ``pred`` (n,) or (n, L), as glmnet's ``Cindex``
    (``survival::concordance(Surv(time, event) ~ -pred, weights = w)``).

    A pair is comparable when the shorter time is an event (a row censored at the time of an
    event counts as surviving longer; two events at the same time are not comparable); it is
    concordant when the shorter time has the higher ``pred`` (risk), and a tie in ``pred`` counts
    one half. Pairs are weighted by ``w_i w_j``. ``nan`` without a comparable pair.
    """
    pred = np.asarray(pred, dtype=np.float64)
    one = pred.ndim == 1
    P = pred[:, None] if one else pred
    n, L = P.shape
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.float64)
    keep = w > 0
    P, time, event, w = P[keep], time[keep], event[keep], w[keep]
    cases = np.nonzero(event == 1)[0]
    num = np.zeros(L)
    den = np.zeros(L)
    # Rows: the earlier (event) member i of a pair; columns: every j with t_j > t_i, or t_j = t_i
    # and j censored. Chunked so that the (rows, n, L) comparison stays near 4e6 elements.
    step = max(1, int(4e6 // max(1, n * L)))
    for s in range(0, cases.size, step):
        i = cases[s:s + step]
        later = (time[None, :] > time[i, None]) | ((time[None, :] == time[i, None]) & (event[None, :] == 0))
        pw = w[i, None] * w[None, :] * later  # (rows, n)
        a = P[i][:, None, :]
        b = P[None, :, :]
        score = (a > b) + 0.5 * (a == b)
        num += np.einsum("ij,ijl->l", pw, score)
        den += pw.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out[0] if one else out
