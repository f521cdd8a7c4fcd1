"""Preprocessing and pre-filters: count detection, log2-CPM (edgeR's), log2(x + 1), CPM, constant
genes, variance and supervised filters.

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
    """Does a matrix look like raw (unlogged) sequencing counts?

    The call is made on the cells that *are* non-negative whole numbers, so that a handful of
    corrupt cells (a negative value, a fraction) neither hides a count matrix nor silently
    changes how it is transformed: they are counted and named in ``bad_cells`` instead, and
    :func:`preprocess` refuses to transform such a matrix.
    """

    looks_like_counts: bool
    non_negative: bool
    integer_fraction: float
    """Fraction of cells that are non-negative whole numbers (the cells the call is made on)."""
    max_value: float
    """Largest non-negative whole-number cell."""
    dynamic_range: float
    """99.9th percentile / median of the positive whole-number cells."""
    skewness: float
    """Median over genes of the sample skewness (right tail of raw counts: large)."""
    reason: str
    n_negative: int = 0
    """Cells below zero."""
    n_non_integer: int = 0
    """Non-negative cells that are not whole numbers (or not finite)."""
    bad_cells: tuple[str, ...] = ()
    """Up to five offending cells of a matrix that looks like counts, as
    ``"gene G in sample S = v"`` (row / column numbers when the matrix has no names); empty when
    the matrix does not look like counts."""

    @property
    def n_bad(self) -> int:
        """Cells that are not non-negative whole numbers."""
        return self.n_negative + self.n_non_integer


# Raw counts: at least this fraction of cells are non-negative whole numbers. Below it the matrix
# is taken for a log / normalised scale, where negative and fractional values are expected.
_COUNT_CELL_FRACTION = 0.99


def _bad_cell_names(frame: pd.DataFrame | None, A: np.ndarray, cells, limit: int = 5) -> tuple[str, ...]:
    out = []
    for i, j in cells[:limit]:
        if frame is not None:
            out.append(f"gene {frame.columns[j]} in sample {frame.index[i]} = {A[i, j]:.6g}")
        else:
            out.append(f"column {j} in row {i} = {A[i, j]:.6g}")
    return tuple(out)


# Cells per block of the passes of detect_counts: its temporaries (rounding, masks, cubes) are a
# few times a block, not a few times the matrix.
_BLOCK_CELLS = 1 << 18


def _good_cells(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(good, negative) masks of a block: finite non-negative whole numbers; finite negatives."""
    finite = np.isfinite(B)
    negative = finite & (B < 0)
    return finite & ~negative & (B == np.round(B)), negative


def detect_counts(X) -> CountsCheck:
    """Raw counts are non-negative, integer-valued and span orders of magnitude.

    Log-scale expression (RMA, log2 CPM) is at most ~20 and fractional; raw counts reach
    thousands with a right-skewed distribution. The call is "counts" when >= 99% of the cells are
    non-negative whole numbers and, on those cells, either the maximum exceeds 1000 or the
    dynamic range (99.9th percentile over median of positive values) exceeds 100. The remaining
    cells of such a matrix (negative, fractional or non-finite) are counted and the first five
    named (``bad_cells``): they are corrupt counts, not a sign that the matrix is logged.

    The matrix is read in blocks of rows (then of columns, for the per-gene skewness), without a
    copy of it: the numbers are those of the whole-matrix computation (the same cells, sampled
    in the same row-major order; each column's moments from the same reductions).
    """
    frame = X if isinstance(X, pd.DataFrame) else None
    A = np.asarray(X, dtype=np.float64)
    n_cells = A.size
    n_rows, n_cols = A.shape if A.ndim == 2 else (A.shape[0] if A.ndim else 1, 1)
    if A.ndim != 2:
        A = A.reshape(n_rows, n_cols)
    rows_per = max(1, _BLOCK_CELLS // max(n_cols, 1))
    row_blocks = [slice(i, min(i + rows_per, n_rows)) for i in range(0, n_rows, rows_per)]
    # Pass 1 (rows): counts of good / negative / other cells, the largest good value, the first
    # cells that are not counts (row-major order), and the number of good cells per block.
    n_good = n_negative = 0
    max_value = -np.inf
    bad: list[tuple[int, int]] = []
    good_per_block = []
    all_finite = True
    for rows in row_blocks:
        B = A[rows]
        good, negative = _good_cells(B)
        k = int(good.sum())
        good_per_block.append(k)
        n_good += k
        n_negative += int(negative.sum())
        all_finite = all_finite and bool(np.isfinite(B).all())
        if k:
            max_value = max(max_value, float(B[good].max()))
        if len(bad) < 5 and k < B.size:
            bi, bj = np.nonzero(~good)
            bad.extend((rows.start + int(i), int(j)) for i, j in zip(bi[:5], bj[:5]))
    integer_fraction = float(n_good / n_cells) if n_cells else 0.0
    max_value = max_value if n_good else 0.0
    # Pass 2 (rows): the positive ones of every s-th good cell in row-major order, as
    # ``A[good][::s]`` takes them, written into one buffer.
    step = 1 if n_good <= 2_000_000 else n_good // 2_000_000 + 1
    positive = np.empty(-(-n_good // step))
    before = filled = 0
    for rows, k in zip(row_blocks, good_per_block):
        if k:
            B = A[rows]
            values = B[_good_cells(B)[0]][(-before) % step::step]
            values = values[values > 0]
            positive[filled:filled + len(values)] = values
            filled += len(values)
            before += k
    positive = positive[:filled]
    if positive.size:
        # In place: the quantile and the median are the same numbers in any order of the cells.
        q999 = np.quantile(positive, 0.999, overwrite_input=True)
        dynamic_range = float(q999 / max(np.median(positive, overwrite_input=True), 1e-12))
    else:
        dynamic_range = 0.0
    del positive
    # Pass 3 (columns): each gene's skewness (non-finite cells as 0). Blocks of at least two
    # columns: numpy sums a single column of a row-major matrix in another order (pairwise)
    # than the columns of a wider block (row by row), which the whole matrix gets.
    cols_per = max(2, _BLOCK_CELLS // max(n_rows, 1))
    starts = list(range(0, n_cols, cols_per))
    if len(starts) > 1 and n_cols - starts[-1] < 2:
        starts.pop()  # the last column joins the block before it
    skews = []
    for j, stop in zip(starts, starts[1:] + [n_cols]):
        B = A[:, j:stop]
        if not all_finite:
            B = np.where(np.isfinite(B), B, 0.0)
        centered = B - B.mean(axis=0)
        sd = B.std(axis=0)
        ok = sd > 0
        if ok.any():
            # Through the fancy-indexed copy even when every column is kept: its memory layout
            # (column-major) sets the summation order of the mean, as in the whole-matrix form.
            cubed = centered[:, ok]
            np.power(cubed, 3, out=cubed)
            skews.append(cubed.mean(axis=0) / sd[ok] ** 3)
    skew = float(np.median(np.concatenate(skews))) if skews else 0.0
    n_non_integer = n_cells - n_good - n_negative
    non_neg = n_negative == 0
    wide = max_value > 1000 or dynamic_range > 100
    looks = integer_fraction >= _COUNT_CELL_FRACTION and wide
    bad_cells: tuple[str, ...] = ()
    if looks:
        reason = (f"{integer_fraction:.2%} of cells are non-negative whole numbers, max {max_value:.4g}, "
                  f"dynamic range {dynamic_range:.3g}: looks like raw counts")
        if n_negative or n_non_integer:
            bad_cells = _bad_cell_names(frame, A, bad)
            reason += f" with {n_negative + n_non_integer} cells that are not counts"
    elif integer_fraction < _COUNT_CELL_FRACTION and not non_neg:
        reason = "has negative values: already on a log or centred scale"
    elif integer_fraction < _COUNT_CELL_FRACTION:
        reason = f"only {integer_fraction:.0%} whole numbers: not raw counts"
    else:
        reason = f"max {max_value:.4g}, dynamic range {dynamic_range:.3g}: too narrow for raw counts"
    return CountsCheck(looks, non_neg, integer_fraction, max_value, dynamic_range, skew, reason,
                       n_negative, n_non_integer, bad_cells)


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
        # No copy of a float64 frame: every step after this one makes its own new matrix (or
        # returns the frame unchanged), none writes into it.
        return X.astype(np.float64, copy=False)
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix of samples x features (got shape={A.shape})")
    return pd.DataFrame(A, columns=[f"x{j}" for j in range(A.shape[1])])


def cpm(X: pd.DataFrame) -> pd.DataFrame:
    """Counts per million: each sample (row) scaled to a library size of 1e6."""
    return X.div(_library_sizes(X), axis=0) * 1e6


PRIOR_COUNT = 2.0
"""edgeR's default ``prior.count`` for ``cpm(log = TRUE)``."""


def log_cpm(X: pd.DataFrame, prior_count: float = PRIOR_COUNT, *, overwrite: bool = False) -> pd.DataFrame:
    r"""log2 counts per million with a prior count: edgeR's ``cpm(y, log = TRUE, prior.count)``.

    For sample ``i`` with library size :math:`L_i` (its total count) the prior count is scaled
    by the library size relative to the mean, :math:`c_i = \text{prior} \cdot L_i / \bar L`, and

    .. math:: \text{logCPM}_{ij} = \log_2 \frac{x_{ij} + c_i}{L_i + 2 c_i} \cdot 10^6 .

    Scaling the prior with the library keeps a zero count at the same logCPM in every sample
    (``c_i / (L_i + 2 c_i)`` does not depend on ``L_i``), so zeros carry no library-size
    signal; the ``2 c_i`` in the denominator is edgeR's. Library sizes are the raw totals, as
    ``edgeR::cpm`` uses on a plain matrix (no TMM factors).

    One new matrix, transformed in place (the same operations, in the same order, as
    ``log2(X.add(c).div(L + 2c) * 1e6)``, which made four); ``overwrite=True`` transforms ``X``'s
    own float64 values instead (a frame the caller no longer needs).
    """
    lib = _library_sizes(X)
    prior = prior_count * lib / lib.mean()
    values = X.to_numpy(dtype=np.float64, copy=not overwrite)
    np.add(values, prior.to_numpy()[:, None], out=values)
    np.divide(values, (lib + 2.0 * prior).to_numpy()[:, None], out=values)
    np.multiply(values, 1e6, out=values)
    np.log2(values, out=values)
    return pd.DataFrame(values, index=X.index, columns=X.columns, copy=False)


_COMPACT_BLOCK = 4096
"""Features moved per step by :func:`_drop_columns_in_place` (its temporary: n x this many)."""


def _drop_columns_in_place(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame.loc[:, keep]`` built in ``frame``'s own buffer: the kept features' columns moved
    down in order, a block at a time, and a frame over the first ones returned (``frame`` is
    left with undefined values). A feature is a contiguous run of the buffer when the frame is
    one float64 block in column-major order (how the readers build it); any other layout gets
    the ordinary copy."""
    A = frame.to_numpy(copy=False)
    if A.dtype != np.float64 or not A.flags.f_contiguous or not A.flags.writeable:
        return frame.loc[:, keep]
    T = A.T  # features x samples, C-contiguous: row j is feature j
    kept = np.flatnonzero(keep)
    # Destination i <= source kept[i], and a block's rows are gathered before any is written, so
    # no source is overwritten before it is read.
    for start in range(0, len(kept), _COMPACT_BLOCK):
        src = kept[start:start + _COMPACT_BLOCK]
        T[start:start + len(src)] = T[src]
    return pd.DataFrame(T[:len(kept)].T, index=frame.index, columns=frame.columns[kept], copy=False)


def _library_sizes(X: pd.DataFrame) -> pd.Series:
    lib = X.sum(axis=1)
    if (lib <= 0).any():
        bad = list(lib.index[lib <= 0][:5])
        raise ValueError(f"CPM needs a positive library size for every sample; drop empty "
                         f"samples first (got zero total counts for samples {bad})")
    return lib


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


def _refuse_bad_counts(check: CountsCheck) -> None:
    shown = "; ".join(check.bad_cells)
    more = f" (first {len(check.bad_cells)}: {shown})" if shown else ""
    raise ValueError(
        f"the matrix looks like raw counts ({check.integer_fraction:.2%} of cells are non-negative "
        f"whole numbers, max {check.max_value:.4g}) but {_not_counts(check.n_bad)}: "
        f"{check.n_negative} negative, {check.n_non_integer} fractional or not finite{more}. "
        f"Fix or remove those cells, or declare the matrix already on its final scale with "
        f"log='no' (--log no) (got n_bad_cells={check.n_bad})")


def _not_counts(n: int) -> str:
    return "1 cell is not a count" if n == 1 else f"{n} cells are not counts"


def preprocess(X, *, log: str = "auto", cpm_normalize: bool = False,
               top_variance: float | int | None = None,
               overwrite: bool = False) -> tuple[pd.DataFrame, PreprocessReport]:
    """Count detection -> transform (log2-CPM for counts) -> drop constant genes -> variance filter.

    Parameters
    ----------
    X : array-like or DataFrame, samples x features.
    log : {"auto", "yes", "no"}
        ``auto`` (default): when the data look like raw counts (:func:`detect_counts`) they get
        edgeR's log2-CPM with a prior count of 2 (:func:`log_cpm`, library-size normalised),
        and the step says so; other data are left alone. ``yes``: always log2(x + 1), without
        library-size normalisation unless ``cpm_normalize`` (negative values are an error).
        ``no``: leave the data alone, with a ``DataWarning`` when they look unlogged.
    cpm_normalize : bool
        Scale each sample to counts per million first; with ``log='auto'`` on counts or
        ``log='yes'`` the result is then log2(CPM + 1), with ``log='no'`` plain CPM.
    top_variance : float or int, optional
        Keep this fraction (0, 1] or number of the most variable genes (after the transform).
    overwrite : bool
        The log transforms may write into ``X``'s own float64 values (and all-zero genes be
        dropped by moving the other genes' columns down in its buffer) instead of a copy: for a
        caller that no longer needs ``X`` (the command line's freshly read matrix), whose raw
        counts would otherwise stay in memory beside their logCPM for the whole run. ``X``'s
        values are undefined afterwards. The result's numbers are the same either way.

    Raises
    ------
    ValueError
        When the matrix looks like counts but some cells are negative, fractional or not finite
        (named in the message) and a transform would apply: whether to log must not hinge on
        a few corrupt cells.
    """
    if log not in LOG_MODES:
        raise ValueError(f"log must be one of {LOG_MODES} (got log={log!r})")
    frame = _as_frame(X)
    steps: list[str] = []
    check = detect_counts(frame)
    steps.append(f"input {frame.shape[0]} samples x {frame.shape[1]} features; {check.reason}")
    if check.looks_like_counts and check.n_bad:
        if log != "no" or cpm_normalize:
            _refuse_bad_counts(check)
        warnings.warn(
            f"the matrix looks like raw counts but {_not_counts(check.n_bad)} "
            f"({'; '.join(check.bad_cells)}); left as is because log='no' was requested",
            DataWarning, stacklevel=2)
        steps.append(f"{check.n_bad} cells are not counts (negative or fractional): left as is "
                     "because log='no' was requested (warned)")
    default_counts = log == "auto" and not cpm_normalize and check.looks_like_counts
    do_log = log == "yes" or (log == "auto" and check.looks_like_counts)
    did_cpm = False
    zero_genes: list[str] = []
    if default_counts:
        # All-zero genes are constant in logCPM only up to rounding (c_i / (L_i + 2 c_i) is
        # computed per sample); drop them first so that no rounding noise gets standardised.
        # They add nothing to the library sizes, so the other genes' values are unchanged.
        zero = (frame == 0).all(axis=0).to_numpy()
        zero_genes = [str(c) for c in frame.columns[zero]]
        if zero.any():  # a new matrix (or X's own buffer, compacted): transformed in place
            frame = _drop_columns_in_place(frame, ~zero) if overwrite else frame.loc[:, ~zero]
            frame = log_cpm(frame, overwrite=True) if frame.shape[1] else frame
        else:
            frame = log_cpm(frame, overwrite=overwrite)
        did_cpm = True
        steps.append(f"applied log2-CPM with prior count {PRIOR_COUNT:g} (edgeR's "
                     f"cpm(log = TRUE); raw library sizes): the data look like raw counts")
    else:
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
            values = frame.to_numpy(dtype=np.float64, copy=not overwrite)
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
    n_in = frame.shape[1] + len(zero_genes)
    frame, dropped = drop_constant(frame)
    dropped = zero_genes + dropped
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
