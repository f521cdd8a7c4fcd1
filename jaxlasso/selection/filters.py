"""Preprocessing and pre-filters: count detection, log2(x + 1), CPM, constant genes, variance
and supervised filters.

Unsupervised vs supervised filters
----------------------------------
* The **variance filter** (keep the most variable genes) never looks at the labels, so applying
  it once to all samples before cross-validation leaks nothing.
* A **supervised filter** (keep the genes with the largest |t| between classes) looks at the
  labels: applied to all samples before CV, it lets the held-out samples choose the genes and the
  CV error becomes optimistic -- on pure noise it can look like a perfect classifier. It must be
  re-run inside every CV fold / resample on the training rows only (glmnet's vignette does this
  with ``exclude=``). :func:`t_filter` is written to be called that way (see
  :func:`jaxlasso.selection.pipeline.rank_then_lasso`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import DataWarning

LOG_MODES = ("auto", "yes", "no")


@dataclass(frozen=True)
class CountsCheck:
    """Does a matrix look like raw (unlogged) sequencing counts?"""

    looks_like_counts: bool
    non_negative: bool
    integer_fraction: float
    """Fraction of values that are whole numbers."""
    max_value: float
    dynamic_range: float
    """99.9th percentile / median of the positive values."""
    skewness: float
    """Median over genes of the sample skewness (right tail of raw counts: large)."""
    reason: str


def detect_counts(X) -> CountsCheck:
    """Raw counts are non-negative, integer-valued and span orders of magnitude.

    Log-scale expression (RMA, log2 CPM) is at most ~20 and fractional; raw counts reach
    thousands with a right-skewed distribution. The call is "counts" when values are
    non-negative, >= 99% whole numbers, and either the maximum exceeds 1000 or the dynamic range
    (99.9th percentile over median of positive values) exceeds 100.
    """
    A = np.asarray(X, dtype=np.float64)
    non_neg = bool(np.all(A >= 0))
    flat = A.ravel()
    sample = flat if flat.size <= 2_000_000 else flat[:: flat.size // 2_000_000 + 1]
    integer_fraction = float(np.mean(sample == np.round(sample))) if sample.size else 0.0
    positive = sample[sample > 0]
    max_value = float(A.max()) if A.size else 0.0
    if positive.size:
        dynamic_range = float(np.quantile(positive, 0.999) / max(np.median(positive), 1e-12))
    else:
        dynamic_range = 0.0
    centered = A - A.mean(axis=0)
    sd = A.std(axis=0)
    ok = sd > 0
    skew = float(np.median((centered[:, ok] ** 3).mean(axis=0) / sd[ok] ** 3)) if ok.any() else 0.0
    wide = max_value > 1000 or dynamic_range > 100
    looks = non_neg and integer_fraction >= 0.99 and wide
    if looks:
        reason = (f"non-negative, {integer_fraction:.0%} whole numbers, max {max_value:.4g}, "
                  f"dynamic range {dynamic_range:.3g}: looks like raw counts")
    elif not non_neg:
        reason = "has negative values: already on a log or centred scale"
    elif integer_fraction < 0.99:
        reason = f"only {integer_fraction:.0%} whole numbers: not raw counts"
    else:
        reason = f"max {max_value:.4g}, dynamic range {dynamic_range:.3g}: too narrow for raw counts"
    return CountsCheck(looks, non_neg, integer_fraction, max_value, dynamic_range, skew, reason)


def looks_unlogged(check: CountsCheck) -> bool:
    """Large, right-skewed positive values (raw counts or intensities) that a log would tame."""
    return check.non_negative and check.max_value > 100 and (check.dynamic_range > 100 or check.skewness > 2)


@dataclass(frozen=True)
class PreprocessReport:
    """What :func:`preprocess` did, in order, with counts."""

    steps: tuple[str, ...]
    n_features_in: int
    n_features_out: int
    n_constant_dropped: int
    log_applied: bool
    cpm_applied: bool
    counts: CountsCheck
    variance_kept: int | None = None
    dropped_constant: tuple[str, ...] = field(default=(), repr=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"step": list(self.steps)})


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.astype(np.float64)
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix of samples x features (got shape={A.shape})")
    return pd.DataFrame(A, columns=[f"x{j}" for j in range(A.shape[1])])


def cpm(X: pd.DataFrame) -> pd.DataFrame:
    """Counts per million: each sample (row) scaled to a library size of 1e6."""
    lib = X.sum(axis=1)
    if (lib <= 0).any():
        bad = list(lib.index[lib <= 0][:5])
        raise ValueError(f"CPM needs a positive library size for every sample; drop empty "
                         f"samples first (got zero total counts for samples {bad})")
    return X.div(lib, axis=0) * 1e6


def drop_constant(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop features that do not vary (all-zero genes included)."""
    # max == min: exact, and without the (X - mean)^2 temporaries of a standard deviation.
    A = X.to_numpy()
    constant = A.max(axis=0) == A.min(axis=0) if A.shape[0] else np.ones(A.shape[1], bool)
    if not constant.any():
        return X, []  # no copy
    return X.loc[:, ~constant], [str(c) for c in X.columns[constant]]


def variance_filter(X: pd.DataFrame, top: float | int) -> pd.DataFrame:
    """Keep the most variable features: a fraction in (0, 1] or a count >= 1 (unsupervised)."""
    p = X.shape[1]
    if isinstance(top, (bool, np.bool_)):
        raise TypeError(f"top must be a fraction in (0, 1] or a count >= 1 (got top={top!r})")
    if isinstance(top, (int, np.integer)) or (isinstance(top, float) and top > 1 and float(top).is_integer()):
        k = int(top)
        if k < 1:
            raise ValueError(f"top must be a fraction in (0, 1] or a count >= 1 (got top={top})")
    elif isinstance(top, float) and 0 < top <= 1:
        k = int(np.ceil(top * p))
    else:
        raise ValueError(f"top must be a fraction in (0, 1] or a whole count >= 1 (got top={top!r})")
    k = min(k, p)
    sd = X.std(axis=0, ddof=0).to_numpy()
    keep = np.sort(np.argsort(-sd, kind="stable")[:k])
    return X.iloc[:, keep]


def t_filter(X: np.ndarray, y: np.ndarray, top: int, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``top`` features with the largest |Welch t| between classes.

    Supervised: call it on the training rows of each fold / resample only (see module docs).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    stats = []
    for c in (1.0, 0.0):
        wc = w * (y == c)
        n_c = wc.sum()
        mean = (wc @ X) / n_c
        var = (wc @ (X - mean) ** 2) / max(n_c - 1, 1)
        stats.append((mean, var, n_c))
    (m1, v1, n1), (m0, v0, n0) = stats
    se = np.sqrt(v1 / n1 + v0 / n0)
    t = np.where(se > 0, (m1 - m0) / np.where(se > 0, se, 1.0), 0.0)
    k = min(int(top), X.shape[1])
    return np.sort(np.argsort(-np.abs(t), kind="stable")[:k])


def preprocess(X, *, log: str = "auto", cpm_normalize: bool = False,
               top_variance: float | int | None = None) -> tuple[pd.DataFrame, PreprocessReport]:
    """Count detection -> (CPM) -> log2(x + 1) -> drop constant genes -> variance filter.

    Parameters
    ----------
    X : array-like or DataFrame, samples x features.
    log : {"auto", "yes", "no"}
        ``auto`` applies log2(x + 1) when the data look like raw counts (:func:`detect_counts`)
        and says so; ``no`` leaves the data alone but warns (``DataWarning``) when they look
        unlogged; ``yes`` always logs (negative values are an error).
    cpm_normalize : bool
        Scale each sample to counts per million before the log (library-size normalisation).
    top_variance : float or int, optional
        Keep this fraction (0, 1] or number of the most variable genes (after the log).
    """
    if log not in LOG_MODES:
        raise ValueError(f"log must be one of {LOG_MODES} (got log={log!r})")
    frame = _as_frame(X)
    steps: list[str] = []
    check = detect_counts(frame.to_numpy())
    steps.append(f"input {frame.shape[0]} samples x {frame.shape[1]} features; {check.reason}")
    do_log = log == "yes" or (log == "auto" and check.looks_like_counts)
    did_cpm = False
    if cpm_normalize:
        if not check.non_negative:
            raise ValueError("CPM normalisation needs non-negative counts; this matrix has negative "
                             f"values (got min={frame.to_numpy().min():.4g})")
        frame = cpm(frame)
        did_cpm = True
        steps.append("scaled each sample to counts per million (CPM)")
    if do_log:
        if not check.non_negative:
            raise ValueError("log2(x + 1) needs non-negative values; this matrix has negative values "
                             f"(is it already logged?) (got min={frame.to_numpy().min():.4g})")
        # One copy, logged in place (frame + 1 then log2 made two, each the size of X).
        values = frame.to_numpy(dtype=np.float64, copy=True)
        np.add(values, 1.0, out=values)
        np.log2(values, out=values)
        frame = pd.DataFrame(values, index=frame.index, columns=frame.columns, copy=False)
        why = "requested" if log == "yes" else "the data look like raw counts"
        steps.append(f"applied log2(x + 1) ({why})")
    elif log == "no" and looks_unlogged(check):
        warnings.warn(
            f"the data look unlogged ({check.reason}); the lasso on raw counts is dominated by a "
            f"few huge genes -- consider log='auto' or log='yes' (got log='no')",
            DataWarning, stacklevel=2)
        steps.append("data look unlogged but log='no' was requested: left as is (warned)")
    n_in = frame.shape[1]
    frame, dropped = drop_constant(frame)
    if dropped:
        steps.append(f"dropped {len(dropped)} constant (or all-zero) features")
    if frame.shape[1] == 0:
        raise ValueError(f"every feature is constant across samples; nothing can predict the outcome "
                         f"(got {n_in} constant features)")
    kept = None
    if top_variance is not None:
        before = frame.shape[1]
        frame = variance_filter(frame, top_variance)
        kept = frame.shape[1]
        steps.append(f"kept the {kept} most variable of {before} features (unsupervised variance "
                     f"filter, top={top_variance})")
    report = PreprocessReport(tuple(steps), n_in, frame.shape[1], len(dropped), do_log, did_cpm, check,
                              kept, tuple(dropped))
    return frame, report
