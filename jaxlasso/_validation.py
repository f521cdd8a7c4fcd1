"""Every input check of the public API and its message, run once at the boundary.

Messages say what is wrong, how to fix it, and end with the offending value as
``(got name=value)``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._config import PATH
from .exceptions import FewObservationsWarning


MAX_ABS_VALUE = 1e150
"""Largest |x| accepted in a design: beyond it squares and cross-products overflow float64."""

MIN_SPREAD_SCALE = 1e-150
"""Columns whose values are all smaller than this in magnitude, yet not constant, are refused:
their squared deviations underflow float64, so standardisation would measure a zero spread and
silently drop them as constant."""


def _fmt(values: Sequence[Any], limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"


@dataclass(frozen=True)
class Design:
    """A validated design matrix."""

    X: np.ndarray
    """(n, p) float array."""
    feature_names: tuple[str, ...] | None
    sample_names: tuple[str, ...] | None


@dataclass(frozen=True)
class Labels:
    """Validated binary labels."""

    y: np.ndarray
    """(n,) float 0/1; 1 = the case (second) class."""
    classes: tuple[Any, Any]
    """(control, case): the class coded 0 and the class coded 1."""


def decoded_names(values: Any, bad_utf8) -> list[str]:
    """Names as ``str``, bytes decoded as UTF-8: HDF5 / R exports store names as ``dtype S``, and
    ``str(b'KCTD2')`` would be ``"b'KCTD2'"`` in every output. Bytes that are not UTF-8 raise
    ``bad_utf8(index, raw bytes, UnicodeDecodeError)``, the caller's error naming its input."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (bytes, np.bytes_)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError as e:
                raise bad_utf8(i, bytes(v), e) from None
        out.append(str(v))
    return out


def _names(values: Any, name: str, what: str) -> tuple[str, ...]:
    """Names as ``str`` (:func:`decoded_names`); a name that is not UTF-8 or holds a NUL byte is
    an error naming ``what`` and the entry."""
    def bad(i, raw, e):
        return ValueError(f"{name} {what} {i} is bytes that are not valid UTF-8 ({e.reason}); decode "
                          f"the names with their real encoding first (got {raw!r})")

    out = []
    for i, v in enumerate(decoded_names(values, bad)):
        if "\x00" in v:
            raise ValueError(f"{name} {what} {i} holds a NUL byte, which is never part of a name; "
                             f"fix the name (got {v!r})")
        out.append(v)
    return tuple(out)


def _as_matrix(X: Any, name: str) -> tuple[np.ndarray, tuple[str, ...] | None, tuple[str, ...] | None]:
    """A numpy/pandas/sparse/list design -> (2-D float64 array, feature names, sample names)."""
    feature_names = sample_names = None
    if isinstance(X, pd.DataFrame):
        names = list(_names(X.columns, name, "column name"))
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
        if dup:
            raise ValueError(
                f"{name} has duplicated column (feature) names; make them unique, e.g. by "
                f"appending a suffix (got duplicates {_fmt(dup)})")
        non_numeric = [c for c, dt in zip(names, X.dtypes) if not pd.api.types.is_numeric_dtype(dt)]
        if non_numeric:
            raise TypeError(
                f"{name} has non-numeric columns; convert them to numbers or drop them "
                f"(got columns {_fmt(non_numeric)})")
        complex_cols = [c for c, dt in zip(names, X.dtypes) if pd.api.types.is_complex_dtype(dt)]
        if complex_cols:
            raise TypeError(
                f"{name} has complex-valued columns; the values must be real: keep the real part "
                f"or the modulus yourself (got columns {_fmt(complex_cols)})")
        feature_names = tuple(names)
        sample_names = _names(X.index, name, "index entry")
        arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
            X = X.toarray()  # scipy.sparse: densified (the kernels are dense)
        try:
            arr = np.asarray(X)
        except ValueError as e:
            # numpy's "inhomogeneous shape" for a list of rows of different lengths
            lengths = sorted({len(r) for r in X if hasattr(r, "__len__")}) if isinstance(
                X, (list, tuple)) else []
            raise ValueError(
                f"{name} is not a rectangular matrix: its rows have different lengths; give every "
                f"sample the same number of features "
                f"(got row lengths {_fmt(lengths) if lengths else str(e)})") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(
                f"{name} must be numeric; convert strings/objects to numbers first "
                f"(got dtype={arr.dtype})")
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real-valued; keep the real part or the modulus "
                            f"yourself (got dtype={arr.dtype})")
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix of samples x features; reshape a single feature with "
            f"X.reshape(-1, 1) (got shape={arr.shape})")
    return arr, feature_names, sample_names


def check_rectangular_real(X: Any, name: str = "X") -> None:
    """The two checks whose numpy / scikit-learn messages do not name ``X``: a ragged list of
    rows, and complex values (scikit-learn prints the whole array). The rest of the validation
    is the caller's (scikit-learn's ``validate_data`` in the estimators)."""
    if isinstance(X, (list, tuple)):
        _as_matrix(X, name)  # raises the ragged / non-numeric / complex errors that name X
        return
    dtypes = list(X.dtypes) if isinstance(X, pd.DataFrame) else [getattr(X, "dtype", None)]
    if any(dt is not None and pd.api.types.is_complex_dtype(dt) for dt in dtypes):
        # ValueError with scikit-learn's wording, which its estimator checks expect
        raise ValueError(f"{name} must be real-valued (Complex data not supported); keep the real "
                         f"part or the modulus yourself (got a complex dtype)")


def check_X(X: Any, *, dtype=np.float64, name: str = "X") -> Design:
    """Validate a 2-D numeric design (numpy array or pandas DataFrame)."""
    arr, feature_names, sample_names = _as_matrix(X, name)
    n, p = arr.shape
    if p == 0:
        raise ValueError(f"{name} has no features (columns); pass at least one (got shape={arr.shape})")
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples (rows) (got shape={arr.shape})")
    # Per-column max / min (two passes, no temporary the size of X) serve both checks.
    col_hi, col_lo = arr.max(axis=0), arr.min(axis=0)
    check_finite(arr, name, feature_names, bounds=(float(col_hi.max()), float(col_lo.min())))
    check_column_scale(arr, name, feature_names, bounds=(col_hi, col_lo))
    return Design(arr.astype(dtype, copy=False), feature_names, sample_names)


def _column(c: int, feature_names) -> str:
    return repr(feature_names[c]) if feature_names else str(c)


def check_finite(arr: np.ndarray, name: str = "X", feature_names=None,
                 bounds: tuple[float, float] | None = None) -> None:
    """Refuse NaN, Inf and values beyond :data:`MAX_ABS_VALUE`, naming row and column.

    ``bounds`` = (max, min) of ``arr`` when the caller has them already.
    """
    # max / min propagate NaN and see every Inf: two passes with no temporary (a 1000 x 20,000
    # matrix: 0.03 s, where isfinite and abs made 180 MB of temporaries in 0.1-0.15 s).
    if arr.size == 0:
        return
    hi, lo = (float(arr.max()), float(arr.min())) if bounds is None else bounds
    if not (np.isfinite(hi) and np.isfinite(lo)):
        bad = ~np.isfinite(arr)
        rows, cols = np.nonzero(bad)
        where = [f"(row {r}, column {_column(c, feature_names)})" for r, c in zip(rows[:3], cols[:3])]
        kind = "NaN" if np.isnan(arr[rows[0], cols[0]]) else "Inf"
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (first is {kind}); impute or drop "
            f"them first (got non-finite at {', '.join(where)})")
    big = max(hi, -lo)
    if big > MAX_ABS_VALUE:
        rows, cols = np.nonzero((arr > MAX_ABS_VALUE) | (arr < -MAX_ABS_VALUE))
        where = [f"(row {r}, column {_column(c, feature_names)})" for r, c in zip(rows[:3], cols[:3])]
        raise ValueError(
            f"{name} has {len(rows)} value(s) too large to fit safely (beyond {MAX_ABS_VALUE:.0e}, "
            f"squares overflow float64); rescale or log-transform the data "
            f"(got max |x|={big:.3g} at {', '.join(where)})")


def check_column_scale(arr: np.ndarray, name: str = "X", feature_names=None,
                       bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Refuse non-constant columns too small for their spread to be measured in float64.

    Standardisation squares deviations from the mean; below ~1e-154 those squares underflow to
    zero, so such a column would be dropped as constant and the fit would say that no feature
    is associated with y. Rescaling X changes nothing in a standardised fit, so the fix is the
    user's one multiplication.
    """
    col_hi, col_lo = (arr.max(axis=0), arr.min(axis=0)) if bounds is None else bounds
    tiny = (np.maximum(col_hi, -col_lo) < MIN_SPREAD_SCALE) & (col_hi > col_lo)
    if tiny.any():
        cols = np.nonzero(tiny)[0]
        scale = float(np.maximum(col_hi, -col_lo)[cols].max())
        raise ValueError(
            f"{name} has {len(cols)} non-constant column(s) whose values are all smaller than "
            f"{MIN_SPREAD_SCALE:.0e} in magnitude (first: column {_column(cols[0], feature_names)}); "
            f"their spread underflows float64 and standardisation would drop them as constant. "
            f"Multiply X by a large factor (e.g. 1 / max|X|): a standardised lasso does not "
            f"depend on the scale of a column (got max |x|={scale:.3g} in those columns)")


def check_predict_X(X: Any, n_features: int, feature_names: Sequence[str] | None = None,
                    name: str = "X") -> np.ndarray:
    """Validate new data for prediction as the fits validate theirs: 2-D, numeric, finite, with
    the fitted number of features. A DataFrame whose columns are the fitted feature names (in
    any order) is put in the fitted order; other column names are an error."""
    if isinstance(X, pd.DataFrame) and feature_names is not None:
        cols = list(_names(X.columns, name, "column name"))
        if cols != list(feature_names):
            missing = [f for f in feature_names if f not in set(cols)]
            if missing or len(cols) != len(feature_names):
                extra = [c for c in cols if c not in set(feature_names)]
                raise ValueError(
                    f"{name}'s columns are not the features the model was fitted on; pass the "
                    f"same columns (any order) (got missing {_fmt(missing)}, unexpected {_fmt(extra)})")
            X = X.set_axis(cols, axis=1)[list(feature_names)]
    arr, _, _ = _as_matrix(X, name)
    check_finite(arr, name, feature_names)
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features but the model was fitted on {n_features}; pass "
            f"the same columns as in the fit (got shape={arr.shape})")
    return arr


def check_y(y: Any, n: int) -> Labels:
    """Validate binary labels: 0/1, bool, or any two distinct values.

    The case (coded 1) is the second level in sorted order, as R's ``factor()`` and glmnet
    choose it; for a pandas Categorical it is the second category.
    """
    if isinstance(y, (pd.Series, pd.Index)):
        series = pd.Series(y)
    else:
        arr = np.asarray(y)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(f"y must be a 1-D vector of labels (got shape={arr.shape})")
        series = pd.Series(arr)
    if len(series) != n:
        raise ValueError(
            f"X and y have different numbers of samples; pass one label per row of X "
            f"(got n_rows(X)={n}, len(y)={len(series)})")
    missing = series.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"y has {int(missing.sum())} missing label(s); drop those samples first "
            f"(got missing at rows {_fmt(np.nonzero(missing)[0].tolist())})")
    if isinstance(series.dtype, pd.CategoricalDtype):
        levels = [c for c in series.cat.categories if (series == c).any()]
    else:
        values = series.to_numpy()
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ValueError("y contains Inf; labels must be two finite values (got Inf in y)")
        try:
            levels = sorted(pd.unique(values).tolist())
        except TypeError:
            raise TypeError(
                f"y mixes label types that cannot be ordered; use one type "
                f"(got levels {_fmt(pd.unique(values).tolist())})") from None
    if len(levels) == 1:
        raise ValueError(
            f"y has only one class; binary classification needs both cases and controls "
            f"(got the single level {_plain(levels[0])!r} for all {n} samples)")
    if len(levels) > 2:
        raise ValueError(
            f"y has more than two classes; jaxlasso fits binary outcomes only: merge or drop "
            f"levels (got {len(levels)} levels {_fmt([_plain(v) for v in levels])})")
    y01 = (series.to_numpy() == levels[1]).astype(np.float64)
    return Labels(y01, (_plain(levels[0]), _plain(levels[1])))


def _plain(level):
    """Labels as plain Python values; integer-valued floats (0.0/1.0 labels) become ints."""
    if isinstance(level, np.generic):
        level = level.item()
    if isinstance(level, float) and level.is_integer():
        return int(level)
    return level


def check_class_counts(y01: np.ndarray, w: np.ndarray, classes: tuple) -> None:
    """glmnet: < 2 observations in a class is an error, < 8 a warning."""
    present = w > 0
    n_case = int(np.sum(y01[present] == 1))
    n_ctrl = int(np.sum(y01[present] == 0))
    small = min(n_case, n_ctrl)
    which = classes[1] if n_case < n_ctrl else classes[0]
    if small < 2:
        raise ValueError(
            f"one class has fewer than 2 observations with positive weight, which is not enough "
            f"to fit a binary model; collect more samples or merge classes "
            f"(got {small} observation(s) of class {which!r})")
    if small < PATH.few_per_class:
        warnings.warn(
            f"one binomial class has fewer than {PATH.few_per_class} observations; dangerous ground "
            f"(glmnet's warning): estimates are unstable and cross-validation is noisy "
            f"(got {small} observations of class {which!r})",
            FewObservationsWarning, stacklevel=3)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"sample_weight must have one weight per sample (got shape={w.shape}, n_samples={n})")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"sample_weight contains NaN or Inf (got {_fmt(w[~np.isfinite(w)].tolist())})")
    if np.any(w < 0):
        raise ValueError(
            f"sample_weight must be non-negative; use 0 to drop a sample "
            f"(got negative weights at rows {_fmt(np.nonzero(w < 0)[0].tolist())})")
    if not np.any(w > 0):
        raise ValueError("sample_weight is zero for every sample; at least two samples per class "
                         "need positive weight (got all weights = 0)")
    return w


def check_penalty_factor(penalty_factor: Any, p: int) -> np.ndarray:
    """Validate penalty factors and rescale them to sum to p as glmnet does.

    ``inf`` excludes a feature (glmnet's ``exclude``); for the rescaling it counts as 1, like an
    excluded variable in glmnet. ``0`` leaves a feature unpenalised.
    """
    if penalty_factor is None:
        return np.ones(p)
    pf = np.asarray(penalty_factor, dtype=np.float64)
    if pf.ndim != 1 or pf.shape[0] != p:
        raise ValueError(
            f"penalty_factor must have one value per feature (got shape={pf.shape}, n_features={p})")
    if np.any(np.isnan(pf)) or np.any(pf < 0):
        raise ValueError(
            f"penalty_factor must be >= 0 (0 = unpenalised, inf = excluded) "
            f"(got {_fmt(pf[np.isnan(pf) | (pf < 0)].tolist())})")
    excluded = np.isinf(pf)
    if excluded.all():
        raise ValueError("every feature is excluded by penalty_factor=inf; keep at least one "
                         f"(got n_features={p}, n_excluded={p})")
    finite = np.where(excluded, 1.0, pf)
    total = finite.sum()
    if total <= 0:
        raise ValueError(
            "penalty_factor is 0 for every feature: nothing is penalised, so the lasso path is "
            "undefined; give at least one feature a positive factor (got sum(penalty_factor)=0)")
    scaled = finite * p / total
    return np.where(excluded, np.inf, scaled)


def check_l1_ratio(l1_ratio: Any) -> float:
    if isinstance(l1_ratio, bool) or not isinstance(l1_ratio, numbers.Real):
        raise TypeError(f"l1_ratio must be a number in [0, 1] (got l1_ratio={l1_ratio!r})")
    if not (0.0 <= float(l1_ratio) <= 1.0):
        raise ValueError(
            f"l1_ratio (glmnet's alpha) must lie in [0, 1]: 1 = lasso, 0 = ridge "
            f"(got l1_ratio={l1_ratio})")
    return float(l1_ratio)


def check_lambdas(lambdas: Any) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=np.float64).ravel()
    if lam.size == 0:
        raise ValueError("lambdas is empty; pass at least one value or None for glmnet's grid (got lambdas=[])")
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        bad = lam[~np.isfinite(lam) | (lam <= 0)]
        raise ValueError(
            f"lambdas must be positive and finite; use a small positive value instead of 0 "
            f"(got {_fmt(bad.tolist())})")
    if np.any(np.diff(lam) > 0):
        # glmnet sorts user lambdas decreasingly; so do we, since warm starts run downhill.
        lam = np.sort(lam)[::-1]
    return lam


def check_foldid_labels(foldid: Any) -> None:
    """Fold labels must be fold numbers: integers >= 0 (glmnet's 1..nfolds or 0..nfolds-1).

    A negative label is a sentinel in other tools (scikit-learn's ``PredefinedSplit`` uses -1
    for "in no test fold"); taken as a label it would become one more fold, so it is refused.
    """
    arr = np.asarray(foldid)
    if arr.dtype.kind in "iuf" and arr.size:
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        neg = np.unique(finite[finite < 0])
        if neg.size:
            raise ValueError(
                f"foldid must hold fold numbers (1..nfolds as in glmnet, or 0..nfolds-1); "
                f"{int(np.sum(arr < 0))} label(s) are negative, which is not a fold (a -1 "
                f"meaning 'in no test fold' is not supported: drop those samples or give them "
                f"sample_weight=0) (got foldid values {_fmt(neg.tolist())})")


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum} (got {name}={value!r})")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {name}={value})")
    return int(value)


def check_positive_float(value: Any, name: str, *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number (got {name}={value!r})")
    v = float(value)
    if not np.isfinite(v) or v <= 0 or (upper is not None and v >= upper):
        bound = f" and < {upper}" if upper is not None else ""
        raise ValueError(f"{name} must be > 0{bound} (got {name}={value})")
    return v


def check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64 (got dtype={dt})")
    return dt
