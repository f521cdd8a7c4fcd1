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

from . import _validation as V
from ._config import CV, PATH
from ._validation import _fmt
from .lambdas import default_lambda_min_ratio, lambda_grid, lambda_max
from .results import CVResult, PathResult


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
                   last=ends[block].astype(np.int32), real=np.ones(n))


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


# --- the Cox path and its cross-validation ---------------------------------------------------
# glmnet's coxnet early stop: from the MNLAM-th lambda on, stop when the deviance ratio changed
# by less than COX_FDEV (relative) over the last MNLAM - 1 lambdas, or exceeds COX_DEVMAX (its
# Fortran multiplies glmnet.control()'s fdev by 100 and devmax by 0.99 / 0.999 for Cox).
COX_FDEV = 1e-5 * 100
COX_DEVMAX = 0.999 * 0.99 / 0.999


def glmnet_cox_length(dev_ratio: np.ndarray) -> int:
    """Number of lambdas glmnet's ``coxnet`` keeps on a default grid, given the deviance ratios of
    the whole path (the lambda that triggers the stop is kept, as in glmnet)."""
    from kernels.path import MNLAM

    d = np.asarray(dev_ratio, dtype=np.float64)
    L = len(d)
    mnl = min(MNLAM, L)
    for m in range(mnl - 1, L):
        with np.errstate(invalid="ignore", divide="ignore"):
            change = (d[m] - d[m - mnl + 1]) / d[m]
        if change < COX_FDEV or d[m] > COX_DEVMAX:
            return m + 1
    return L


def _jnp_layout(layout: CoxData):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(jnp.asarray, layout)


def cox_null_linear_predictor(X: np.ndarray, layout: CoxData, w: np.ndarray, pf: np.ndarray, family) -> np.ndarray:
    """(n,) linear predictor of the fit from which features enter the path: 0, or -- when some
    features have ``penalty_factor = 0`` -- the unpenalised Cox fit of those features, which
    glmnet computes before its first lambda (Newton's method with step halving on a few columns)."""
    import jax
    import jax.numpy as jnp

    n = X.shape[0]
    wn = w / w.sum()
    free = np.nonzero(pf == 0)[0]
    if free.size:
        Z = X[:, free]
        free = free[(wn @ (Z - wn @ Z) ** 2) > 0]
    if free.size == 0:
        return np.zeros(n)
    with jax.enable_x64(True):
        lay = _jnp_layout(layout)
        Z = jnp.asarray(X[:, free])
        ww = jnp.asarray(wn)
        f = jax.jit(lambda b: family.loss(Z @ b, lay, ww))
        grad, hess = jax.jit(jax.grad(f)), jax.jit(jax.hessian(f))
        b = jnp.zeros(free.size)
        for _ in range(100):
            g = grad(b)
            step = jnp.linalg.lstsq(hess(b), g)[0]
            t, f0 = 1.0, f(b)
            while f(b - t * step) > f0 and t > 1e-10:
                t *= 0.5
            b = b - t * step
            if float(jnp.max(jnp.abs(g))) < 1e-13:
                break
        eta = np.asarray(Z @ b)
    if not np.all(np.isfinite(eta)) or np.max(np.abs(eta)) > 500:
        raise ValueError(
            "the unpenalised features (penalty_factor = 0) order the event times perfectly, so their "
            f"Cox fit has no finite solution; give them a positive penalty factor (got {free.size} "
            f"unpenalised feature(s))")
    return eta


def cox_entry_lambdas(X: np.ndarray, layout: CoxData, w: np.ndarray, pf: np.ndarray, *, standardize: bool,
                      family) -> np.ndarray:
    """(p,) ``|g_j| / pf_j`` at the null fit (as :func:`jaxlasso.lambdas.entry_lambdas`, with the
    Cox gradient): where each feature enters an L1 path. The gradient sums to zero (the partial
    likelihood is invariant to a shift of ``eta``), so centring the columns changes nothing."""
    import jax
    import jax.numpy as jnp

    from .lambdas import weighted_square_sums

    eta0 = cox_null_linear_predictor(X, layout, w, pf, family)
    wn = w / w.sum()
    with jax.enable_x64(True):
        r = np.asarray(family.residual(jnp.asarray(eta0), _jnp_layout(layout), jnp.asarray(wn)))
    xm = wn @ X
    ex2 = weighted_square_sums(X, wn)
    var = np.maximum(ex2 - xm * xm, 0.0)
    excluded = (var <= 64 * np.finfo(np.float64).eps * np.maximum(ex2, np.finfo(np.float64).tiny)) | np.isinf(pf)
    xs = np.where(excluded, 1.0, np.sqrt(var)) if standardize else np.ones_like(xm)
    grad = (r @ X) / xs
    pf_f = np.where(excluded, 1.0, pf)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(pf_f > 0, np.abs(grad) / np.where(pf_f > 0, pf_f, 1.0), np.nan)
    return np.where(excluded, -np.inf, score)


class CoxProblem:
    """A validated Cox problem ready for the engine (what :func:`jaxlasso._engine.solve_lanes`
    reads): the design, the response laid out once (:func:`cox_layout`), weights, rescaled
    penalty factors and the solve's settings. No intercept, no column shift (the partial
    likelihood ignores both)."""

    max_sweeps = PATH.max_sweeps
    fit_intercept = False
    design_shift = None  # the kernels solve X as it is

    def __init__(self, X, time, event, *, ties, l1_ratio, lambdas, n_lambdas, lambda_min_ratio, standardize,
                 sample_weight, penalty_factor, early_stop, tol, max_iter, dtype):
        from kernels.cox import COX, COX_EFRON, TIES

        if ties not in TIES:
            raise ValueError(f"ties must be one of {', '.join(TIES)} (got ties={ties!r})")
        self.family = COX if ties == "breslow" else COX_EFRON
        self.dtype = V.check_dtype(dtype)
        design = V.check_X(X)
        self.feature_names, self.sample_names = design.feature_names, design.sample_names
        self.X = design.X
        self.n, self.p = self.X.shape
        surv = check_survival(time, event, self.n)
        self.time, self.event = surv.time, surv.event
        w = V.check_sample_weight(sample_weight, self.n)
        self.weight_sum = float(w.sum())
        self.w = w / w.max()
        check_events(surv, self.w)
        self.pf = V.check_penalty_factor(penalty_factor, self.p)
        self.standardize = bool(standardize)
        self.y = cox_layout(self.time, self.event)
        self.scores = cox_entry_lambdas(self.X, self.y, self.w, self.pf, standardize=self.standardize,
                                        family=self.family)
        self.l1_ratio = V.check_l1_ratio(l1_ratio)
        self.max_iter = V.check_positive_int(max_iter, "max_iter")
        default_tol = PATH.tol if self.dtype == np.float64 else PATH.tol_float32
        self.tol = default_tol if tol is None else V.check_positive_float(tol, "tol")
        if lambdas is None:
            n_lambdas = V.check_positive_int(n_lambdas, "n_lambdas")
            if lambda_min_ratio is None:
                lambda_min_ratio = default_lambda_min_ratio(int(np.sum(self.w > 0)), self.p)
            lambda_min_ratio = V.check_positive_float(lambda_min_ratio, "lambda_min_ratio", upper=1.0)
            finite = self.scores[np.isfinite(self.scores)]
            if finite.size == 0 or finite.max() <= 0:
                raise ValueError(
                    "no penalised feature is associated with the survival outcome (every gradient is "
                    "0 at the null fit), so the lasso path is empty; this happens when X does not vary "
                    "or when every risk set holds every sample (e.g. all times tied and all events) "
                    "(got lambda_max=0)")
            self.lambda_max = lambda_max(self.scores, self.l1_ratio)
            self.lambdas = lambda_grid(self.lambda_max, n_lambdas, lambda_min_ratio)
            self.early_stop = bool(early_stop)
        else:
            self.lambdas = V.check_lambdas(lambdas)
            self.lambda_max = float(self.lambdas[0])
            self.early_stop = False

    def permuted_responses(self, perms: np.ndarray) -> CoxData:
        """The layouts of the responses ``(time[perm], event[perm])`` for each row of ``perms``
        (B, n), stacked into one :class:`CoxData` with (B, n) leaves: ``Lanes(Y=...)`` for
        permutation lanes, which move each sample's ``(time, event)`` pair as a whole onto another
        row of ``X`` (the weights stay with the rows)."""
        perms = np.atleast_2d(np.asarray(perms))
        layouts = [cox_layout(self.time[p], self.event[p]) for p in perms]
        return CoxData(*(np.stack(leaf) for leaf in zip(*layouts)))

    def lanes(self, W=None, **fields):
        from ._engine import Lanes

        if W is None:
            W = self.w[None, :]
            fields.setdefault("is_master", np.array([True]))
        return Lanes(W=W, **fields)


def _cox_path_result(prob: CoxProblem, out, lane: int, seconds: float) -> PathResult:
    from kernels import Status

    from ._engine import report_status
    from ._scaling import sparse_original_scale

    length = int(out.path_length()[lane])
    null_dev = float(out.null_deviance[lane])
    dev_ratio = 1.0 - out.deviance[lane, :length].astype(np.float64) / null_dev
    if prob.early_stop:
        length = min(length, glmnet_cox_length(dev_ratio))
        dev_ratio = dev_ratio[:length]
    lambdas = prob.lambdas[:length].copy()
    status = out.status[lane, :length]
    report_status(status[None, :], lambdas)
    _, xs, excluded = out.moments(lane)
    xs = xs.astype(np.float64)
    # Nonzeros only (results.SparseRows): no (L, p) array. No intercept and no centring: xm = 0.
    coef, _ = sparse_original_scale(*out.sparse_coef(lane, length), np.zeros(length), np.zeros(prob.p), xs,
                                    np.zeros(prob.p), prob.p)
    stopped = length < len(prob.lambdas)
    reason = ""
    if stopped:
        last = float(dev_ratio[-1])
        reason = (f"saturated: the deviance ratio reached {last:.4f} > {COX_DEVMAX:g} (glmnet's Cox devmax)"
                  if last > COX_DEVMAX else
                  f"converged: the deviance ratio changed by less than {COX_FDEV:g} (relative) over the "
                  f"last 4 lambdas (glmnet's Cox rule)")
    return PathResult(
        lambdas=lambdas, coef_sparse=coef, intercept=np.zeros(length), n_nonzero=coef.count_nonzero(),
        deviance_ratio=dev_ratio, null_deviance=null_dev * prob.weight_sum,
        n_iter=out.n_iter[lane, :length], kkt_gap=out.kkt_gap[lane, :length].astype(np.float64),
        converged=status == Status.CONVERGED, status=status, x_mean=np.zeros(prob.p), x_scale=xs,
        excluded=excluded, penalty_factor=prob.pf.copy(), l1_ratio=prob.l1_ratio, tol=prob.tol,
        fit_intercept=False, standardize=prob.standardize, early_stopped=stopped, stop_reason=reason,
        classes=None, family="cox", feature_names=prob.feature_names,
        info={"family": "cox", "ties": prob.family.ties, "working_set_capacities": out.capacities,
              "kkt_passes": int(out.n_kkt_rounds[lane, :length].sum()), "dtype": str(prob.dtype),
              "seconds": seconds},
    )


def cox_path(X: Any, time: Any, event: Any, *, ties: str = "breslow", l1_ratio: float = PATH.l1_ratio,
             lambdas: Any = None, n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
             standardize: bool = PATH.standardize, sample_weight: Any = None, penalty_factor: Any = None,
             early_stop: bool = PATH.early_stop, tol: float | None = None, max_iter: int = PATH.max_iter,
             dtype: Any = np.float64) -> PathResult:
    r"""Fit an elastic-net penalised Cox proportional-hazards path (glmnet ``family = "cox"``).

    Minimises, for each lambda,

    .. math::

        -\frac{1}{\sum_i w_i} \log PL(\beta)
        + \lambda \sum_j \mathrm{pf}_j \left(\alpha |\beta_j| + \frac{1 - \alpha}{2} \beta_j^2\right),
        \qquad \log PL = \sum_i w_i d_i \eta_i - \sum_k W_k \log \sum_{j: t_j \ge t_k} w_j e^{\eta_j},

    with ``eta = X~ beta`` on columns standardised by their weighted SD, ``W_k`` the weight of the
    events at the k-th distinct event time, and Breslow's handling of tied times (glmnet's); a row
    censored at an event time is at risk at it. There is no intercept.

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
    time : array-like, shape (n_samples,)
        Follow-up times, finite and >= 0 (only their order matters; glmnet also refuses 0).
    event : array-like, shape (n_samples,)
        1 / True = the event was observed at ``time``; 0 / False = censored at ``time``. At least
        one event with positive weight is needed. One event, or all times tied, are accepted: the
        path is defined, although the partial likelihood then carries little information.
    ties : {"breslow", "efron"}
        Handling of tied event times: Breslow (glmnet's, the default) or Efron (``survival::coxph``'s
        default, with its weighting of tied events).
    **path options
        ``l1_ratio``, ``lambdas``, ``n_lambdas``, ``lambda_min_ratio``, ``standardize``,
        ``sample_weight``, ``penalty_factor``, ``tol``, ``max_iter``, ``dtype``: as
        :func:`jaxlasso.logistic_path`. ``early_stop`` applies glmnet's Cox rule to the default
        grid: after 5 lambdas, stop when the deviance ratio changed by less than 1e-3 (relative)
        over the last 4 lambdas or exceeds 0.99.

    Returns
    -------
    PathResult
        ``intercept`` is all zeros; ``deviance_ratio`` and ``null_deviance`` are glmnet's
        (``2 (loglik_saturated - loglik)``, weights as given).
    """
    import time as _time

    from ._engine import solve_lanes

    t0 = _time.perf_counter()
    prob = CoxProblem(X, time, event, ties=ties, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                      lambda_min_ratio=lambda_min_ratio, standardize=standardize, sample_weight=sample_weight,
                      penalty_factor=penalty_factor, early_stop=early_stop, tol=tol, max_iter=max_iter,
                      dtype=dtype)
    out = solve_lanes(prob, prob.lanes())
    return _cox_path_result(prob, out, 0, _time.perf_counter() - t0)


def cv_cox_path(X: Any, time: Any, event: Any, *, nfolds: int | None = None, foldid: Any = None,
                stratified: bool = CV.stratified, n_repeats: int = CV.n_repeats, measure: str = "deviance",
                grouped: bool = True, seed: int = CV.seed, keep: bool = False, ties: str = "breslow",
                l1_ratio: float = PATH.l1_ratio, lambdas: Any = None, n_lambdas: int = PATH.n_lambdas,
                lambda_min_ratio: float | None = None, standardize: bool = PATH.standardize,
                sample_weight: Any = None, penalty_factor: Any = None, early_stop: bool = PATH.early_stop,
                tol: float | None = None, max_iter: int = PATH.max_iter, dtype: Any = np.float64) -> CVResult:
    """Cross-validate the Cox path (glmnet's ``cv.glmnet(family = "cox")``).

    Parameters
    ----------
    X, time, event
        As :func:`cox_path`.
    nfolds : int, optional
        Number of folds (default 10).
    foldid : array-like, optional
        Fold label per sample, or (n_repeats, n); overrides ``nfolds``, ``stratified``, ``seed``.
    stratified : bool
        Deal events and censored samples to folds separately (default), so that every fold holds
        out events; ``False`` gives glmnet's random folds.
    measure : {"deviance", "C"}
        glmnet's ``type.measure``: the partial-likelihood deviance or Harrell's C.
    grouped : bool
        ``deviance`` only: glmnet's grouped rule (default) scores fold ``k`` by the deviance of the
        full data minus that of the training rows at fold ``k``'s coefficients, per held-out event;
        ``False`` uses the held-out rows' own partial likelihood (needs >= 10 samples per fold, as
        cv.glmnet enforces).
    n_repeats, seed, keep
        As :func:`jaxlasso.cv_logistic_path`; ``keep`` keeps the held-out linear predictors.
    **path options
        As :func:`cox_path`.

    Returns
    -------
    CVResult
        glmnet's ``cvm`` / ``cvsd`` (fold-weighted: by held-out events for the deviance, by held-out
        weight for C), lambda_min and lambda_1se by glmnet's rule (C: larger is better).
    """
    import time as _time

    from ._engine import Lanes, report_status, solve_lanes
    from .folds import fold_weights, make_foldid, normalize_foldid
    from .metrics import COX_LARGER_IS_BETTER, COX_MEASURES, cox_cv_statistics, resolve_cox_grouped, select_lambdas

    t0 = _time.perf_counter()
    if measure not in COX_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(COX_MEASURES)} for the Cox family "
                         f"(got measure={measure!r})")
    n_repeats = V.check_positive_int(n_repeats, "n_repeats")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer (got seed={seed!r})")
    prob = CoxProblem(X, time, event, ties=ties, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                      lambda_min_ratio=lambda_min_ratio, standardize=standardize, sample_weight=sample_weight,
                      penalty_factor=penalty_factor, early_stop=early_stop, tol=tol, max_iter=max_iter,
                      dtype=dtype)
    if foldid is None:
        k = CV.nfolds if nfolds is None else V.check_positive_int(nfolds, "nfolds", minimum=2)
        fid = make_foldid(prob.event, prob.w, nfolds=k, stratified=bool(stratified), n_repeats=n_repeats,
                          seed=int(seed))
    else:
        V.check_foldid_labels(foldid)
        fid = normalize_foldid(foldid, prob.n)
    k = int(fid.max()) + 1
    died = (prob.event == 1) & (prob.w > 0)
    for r in range(fid.shape[0]):
        for f in range(k):
            if not np.any(died & (fid[r] != f)):
                raise ValueError(f"fold {f} (repeat {r}) leaves no event to train on; use fewer folds "
                                 f"(got nfolds={k}, n_events={int(died.sum())})")
    grouped = resolve_cox_grouped(prob.n, k, bool(grouped)) if measure == "deviance" else True
    W = np.vstack([prob.w[None, :], fold_weights(fid, prob.w)])
    master = np.zeros(len(W), bool)
    master[0] = True
    t1 = _time.perf_counter()
    out = solve_lanes(prob, Lanes(W=W, is_master=master, keep_eta=True))
    path = _cox_path_result(prob, out, 0, _time.perf_counter() - t1)
    L = len(path.lambdas)
    report_status(out.status[1:, :L], path.lambdas, what="cross-validation")
    R = fid.shape[0]
    eta = np.stack([np.stack([out.eta[1 + r * k + f, :L].T.astype(np.float64) for f in range(k)])
                    for r in range(R)])  # (R, F, n, L)
    # The weights as given: cv.glmnet divides each fold's deviance (computed with weights
    # rescaled to sum to n) by the fold's weighted event count on the user's weight scale.
    w_user = prob.w * (prob.weight_sum / prob.w.sum())
    stats = cox_cv_statistics(measure, grouped, prob.time, prob.event, w_user, fid, eta)
    idx_min, idx_1se = select_lambdas(path.lambdas, stats.cv_mean, stats.cv_sd, COX_LARGER_IS_BETTER[measure])
    held = np.empty((R, prob.n, L))
    for r in range(R):
        for f in range(k):
            rows = fid[r] == f
            held[r][rows] = eta[r, f][rows]
    return CVResult(
        lambdas=path.lambdas, cv_mean=stats.cv_mean, cv_sd=stats.cv_sd, fold_scores=stats.fold_scores,
        n_nonzero=path.n_nonzero, index_min=idx_min, index_1se=idx_1se, foldid=fid, measure=measure,
        grouped=grouped, path=path, prevalidated=held.mean(axis=0) if keep else None,
        prevalidated_repeats=held if keep else None,
        info={"family": "cox", "lanes": len(W), "working_set_capacities": out.capacities,
              "seconds_solve": _time.perf_counter() - t1, "seconds_total": _time.perf_counter() - t0,
              "kkt_passes": int(out.n_kkt_rounds.sum())},
        problem=prob,
    )


def cox_objective(X: Any, time: Any, event: Any, coef: Any, lambdas: Any, *, ties: str = "breslow",
                  l1_ratio: float = 1.0, sample_weight: Any = None, penalty_factor: Any = None,
                  standardize: bool = True) -> np.ndarray:
    """The objective :func:`cox_path` minimises, of given original-scale coefficients ``coef``
    (L, p) or (p,) at ``lambdas`` (L,): ``-loglik / sum(w) + lambda * penalty`` with glmnet's
    weights normalised to sum 1 (``-loglik`` of the normalised weights) and the penalty on the
    standardised scale. Used to compare solvers on equal terms (objectives, not coefficients)."""
    import jax
    import jax.numpy as jnp

    from kernels.cox import COX, COX_EFRON

    X = np.asarray(X, dtype=float)
    surv = check_survival(time, event, X.shape[0])
    w = V.check_sample_weight(sample_weight, X.shape[0])
    wn = w / w.sum()
    pf = V.check_penalty_factor(penalty_factor, X.shape[1])
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float))
    eta = X @ coef.T
    if ties == "breslow":
        loss = -cox_loglik(eta, surv.time, surv.event, wn)
    else:
        fam = COX_EFRON if ties == "efron" else COX
        with jax.enable_x64(True):
            lay = _jnp_layout(cox_layout(surv.time, surv.event))
            loss = np.array([float(fam.loss(jnp.asarray(e), lay, jnp.asarray(wn))) for e in eta.T])
    xm = wn @ X
    xs = np.sqrt(wn @ (X - xm) ** 2) if standardize else np.ones(X.shape[1])
    b = coef * xs
    pf_f = np.where(np.isinf(pf), 0.0, pf)
    pen = (np.abs(b) * pf_f).sum(axis=1) * l1_ratio + 0.5 * (1 - l1_ratio) * (b * b * pf_f).sum(axis=1)
    return loss + lambdas * pen
