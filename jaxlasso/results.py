"""Result dataclasses. Every array field documents its shape; every class has ``to_frame()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kernels import Status

from ._validation import check_predict_X
from .metrics import sigmoid


def interpolate_lambda(lambdas: np.ndarray, s: float) -> tuple[int, int, float]:
    """glmnet's ``lambda.interp``: neighbours of ``s`` on the grid and the weight of the left one.

    Interpolation is linear in lambda; ``s`` outside the grid is clamped to its ends.
    """
    lambdas = np.asarray(lambdas, dtype=float)
    L = len(lambdas)
    if L == 1:
        return 0, 0, 1.0
    s = float(np.clip(s, lambdas[-1], lambdas[0]))
    # lambdas are decreasing; position of s
    right = int(np.searchsorted(-lambdas, -s, side="left"))
    right = min(max(right, 0), L - 1)
    if lambdas[right] == s:
        return right, right, 1.0
    left = right - 1
    frac = (s - lambdas[right]) / (lambdas[left] - lambdas[right])
    return left, right, float(frac)


@dataclass(frozen=True)
class SparseRows:
    """An (L, p) matrix stored by rows, nonzero entries only (compressed sparse rows).

    A path's coefficients and stability selection's probabilities are (lambdas x features) and
    almost all zero when p >> n: 100 x 200,000 float64 is 160 MB dense, several times the data
    matrix, for a few thousand nonzeros. Results keep this form and give the dense array only
    on request (``toarray``), a fresh array each time, never kept.
    """

    indptr: np.ndarray
    """(L + 1,) int64: row ``i``'s entries are ``[indptr[i], indptr[i + 1])``."""
    indices: np.ndarray
    """(nnz,) int64 column of each entry, increasing within a row."""
    values: np.ndarray
    """(nnz,) the entries (float64, nonzero)."""
    shape: tuple[int, int]
    """(L, p)."""

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> "SparseRows":
        """The nonzero entries of a 2-D array (its zeros, -0.0 included, are not stored)."""
        dense = np.asarray(dense)
        li, fj = np.nonzero(dense)
        return cls.from_entries(li, fj, dense[li, fj], dense.shape)

    @classmethod
    def from_entries(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                     shape: tuple[int, int]) -> "SparseRows":
        """From entries sorted by (row, column), each (row, column) at most once; zero values
        are dropped."""
        keep = np.asarray(values) != 0
        rows = np.asarray(rows, np.int64)[keep]
        indptr = np.zeros(shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
        return cls(indptr, np.asarray(cols, np.int64)[keep], np.asarray(values)[keep],
                   (int(shape[0]), int(shape[1])))

    @property
    def nnz(self) -> int:
        return len(self.values)

    def row_index(self) -> np.ndarray:
        """(nnz,) the row of each entry."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the nonzero entries, in the order of ``np.nonzero`` on the dense array."""
        return self.row_index(), self.indices

    def toarray(self) -> np.ndarray:
        """The dense (L, p) array (a new one on every call)."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.row_index(), self.indices] = self.values
        return out

    def row(self, i: int) -> np.ndarray:
        """Dense row ``i`` (p,)."""
        a, b = self.indptr[i], self.indptr[i + 1]
        out = np.zeros(self.shape[1], dtype=self.values.dtype)
        out[self.indices[a:b]] = self.values[a:b]
        return out

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Dense rows ``start:stop`` (stop - start, p)."""
        a, b = self.indptr[start], self.indptr[stop]
        out = np.zeros((stop - start, self.shape[1]), dtype=self.values.dtype)
        li = np.repeat(np.arange(stop - start), np.diff(self.indptr[start:stop + 1]))
        out[li, self.indices[a:b]] = self.values[a:b]
        return out

    def columns(self, cols: np.ndarray) -> np.ndarray:
        """Dense (L, len(cols)) of the given columns (sorted, unique)."""
        cols = np.asarray(cols, np.int64)
        pos = np.searchsorted(cols, self.indices)
        pos = np.minimum(pos, max(len(cols) - 1, 0))
        hit = (cols[pos] == self.indices) if len(cols) else np.zeros(self.nnz, bool)
        out = np.zeros((self.shape[0], len(cols)), dtype=self.values.dtype)
        out[self.row_index()[hit], pos[hit]] = self.values[hit]
        return out

    def active(self) -> np.ndarray:
        """Sorted columns with a nonzero entry in any row."""
        return np.unique(self.indices)

    def count_nonzero(self) -> np.ndarray:
        """(L,) nonzero entries per row."""
        return np.diff(self.indptr)


@dataclass(frozen=True)
class PathResult:
    """An elastic-net regularisation path (the answer of :func:`jaxlasso.logistic_path`,
    :func:`jaxlasso.gaussian_path`, :func:`jaxlasso.path.fit_path`).

    Coefficients are on the original scale of ``X``; the penalty acted on the standardised scale
    (``coef * x_scale``).
    """

    lambdas: np.ndarray
    """(L,) decreasing penalty strengths actually solved (glmnet's early stop may shorten the grid)."""
    coef_sparse: SparseRows
    """(L, p) coefficients on the original scale of X, nonzeros only (``coef`` is the dense
    array, made on each access)."""
    intercept: np.ndarray
    """(L,) intercepts on the original scale."""
    n_nonzero: np.ndarray
    """(L,) number of nonzero coefficients (glmnet's ``df``)."""
    deviance_ratio: np.ndarray
    """(L,) fraction of null deviance explained (glmnet's ``dev.ratio``)."""
    null_deviance: float
    """Deviance of the intercept-only model (weights as given): ``2 * sum_i w_i * logloss_i`` for
    binomial, ``sum_i w_i (y_i - ybar)^2`` for Gaussian (glmnet's ``nulldev``)."""
    n_iter: np.ndarray
    """(L,) Newton iterations per lambda."""
    kkt_gap: np.ndarray
    """(L,) max KKT violation (subgradient distance) on the standardised scale."""
    converged: np.ndarray
    """(L,) bool: ``kkt_gap <= tol``."""
    status: np.ndarray
    """(L,) int :class:`kernels.Status` codes."""
    x_mean: np.ndarray
    """(p,) weighted column means used for standardisation (0 without intercept)."""
    x_scale: np.ndarray
    """(p,) weighted population SDs used for standardisation (1 when ``standardize=False``)."""
    excluded: np.ndarray
    """(p,) bool: excluded features (penalty_factor = inf or zero variance); their coef is 0."""
    penalty_factor: np.ndarray
    """(p,) penalty factors after glmnet's rescaling to sum to p."""
    l1_ratio: float
    tol: float
    fit_intercept: bool
    standardize: bool
    early_stopped: bool
    """True when glmnet's rule ended the path before the last lambda of the grid."""
    stop_reason: str = ""
    """Why the path ended early: the fit saturated (deviance ratio > 0.999, i.e. the training
    data are (nearly) separable) or stopped improving (change < 1e-5: absolute for binomial, relative
    for Gaussian, as glmnet); empty if not."""
    classes: tuple[Any, Any] | None = ("0", "1")
    """(control, case): the label coded 0 and the label coded 1 (the modelled probability);
    None for a family without classes (Gaussian)."""
    family: str = "binomial"
    """glmnet's ``family``: ``"binomial"``, ``"gaussian"`` (or a registered family's name)."""
    feature_names: tuple[str, ...] | None = None
    """Feature names (the columns of a DataFrame X), else None."""
    info: dict = field(default_factory=dict, compare=False)
    """Solver bookkeeping: working-set capacities, KKT passes, dtype, timings."""

    # --- convenience -----------------------------------------------------------------------
    @property
    def coef(self) -> np.ndarray:
        """(L, p) coefficients on the original scale of X: a dense array made from
        ``coef_sparse`` on every access and not kept (100 x 200,000 is 160 MB); index
        ``coef_sparse`` or use :meth:`coef_at` for a row."""
        return self.coef_sparse.toarray()

    @property
    def n_features(self) -> int:
        return self.coef_sparse.shape[1]

    def names(self) -> list[str]:
        if self.feature_names is not None:
            return list(self.feature_names)
        return [f"x{j}" for j in range(self.n_features)]

    def coef_at(self, s: float) -> tuple[float, np.ndarray]:
        """(intercept, coef (p,)) at ``s``, interpolating linearly in lambda as glmnet does."""
        left, right, frac = interpolate_lambda(self.lambdas, s)
        coef = frac * self.coef_sparse.row(left) + (1.0 - frac) * self.coef_sparse.row(right)
        b0 = frac * self.intercept[left] + (1.0 - frac) * self.intercept[right]
        return float(b0), coef

    def decision_function(self, X, s: float | None = None) -> np.ndarray:
        """Linear predictor: (n, L) for the whole path, or (n,) at ``s``.

        ``X`` is checked as the fits check theirs (2-D, numeric, no NaN/Inf, the fitted number
        of features; a DataFrame with the fitted feature names is put in the fitted order), so
        a bad row is an error instead of a silent NaN prediction.
        """
        X = check_predict_X(X, self.n_features, self.feature_names)
        if s is None:
            return X @ self.coef.T + self.intercept[None, :]
        b0, coef = self.coef_at(s)
        return X @ coef + b0

    def predict_proba(self, X, s: float | None = None) -> np.ndarray:
        """Probability of the case class (``classes[1]``): (n, L), or (n,) at ``s``."""
        if self.family != "binomial":
            raise AttributeError(f"predict_proba is for binomial fits (got family={self.family!r}); "
                                 f"use predict")
        return sigmoid(self.decision_function(X, s))

    def predict(self, X, s: float | None = None) -> np.ndarray:
        """Predictions on the response scale (glmnet's ``type = "response"``): the probability
        of the case for binomial, the fitted outcome for Gaussian, the relative risk
        ``exp(eta)`` for Cox; (n, L), or (n,) at ``s``."""
        if self.family == "binomial":
            return self.predict_proba(X, s)
        if self.family == "cox":
            return np.exp(self.decision_function(X, s))
        return self.decision_function(X, s)

    def to_frame(self) -> pd.DataFrame:
        """One row per lambda: glmnet's print (Df, %Dev, Lambda) plus solver diagnostics."""
        return pd.DataFrame({
            "lambda": self.lambdas,
            "n_nonzero": self.n_nonzero,
            "deviance_ratio": self.deviance_ratio,
            "intercept": self.intercept,
            "kkt_gap": self.kkt_gap,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "status": [Status(int(s)).name for s in self.status],
        })

    def coef_frame(self, nonzero_only: bool = True) -> pd.DataFrame:
        """Coefficients in long format: lambda_index, lambda, feature, coefficient."""
        L, p = self.coef_sparse.shape
        if nonzero_only:
            (li, fj), values = self.coef_sparse.nonzero(), self.coef_sparse.values
        else:
            li, fj = np.indices((L, p)).reshape(2, -1)
            values = self.coef.ravel()
        names = np.asarray(self.names(), dtype=object)
        return pd.DataFrame({
            "lambda_index": li,
            "lambda": self.lambdas[li],
            "feature": names[fj],
            "coefficient": values,
        })


@dataclass(frozen=True)
class CVResult:
    """Cross-validated path (the answer of :func:`jaxlasso.cv_logistic_path`), glmnet's ``cv.glmnet``."""

    lambdas: np.ndarray
    """(L,) the full-data path's lambdas (shared by every fold)."""
    cv_mean: np.ndarray
    """(L,) mean held-out measure (glmnet ``cvm``; averaged over repeats)."""
    cv_sd: np.ndarray
    """(L,) its standard error (glmnet ``cvsd``; averaged over repeats)."""
    fold_scores: np.ndarray
    """(n_repeats * nfolds, L) per-fold measure (``(n_repeats, L)`` for ``auc_pooled``;
    per-observation losses ``(n_repeats * n, L)`` when the SE is ungrouped)."""
    n_nonzero: np.ndarray
    """(L,) nonzero coefficients of the full-data fit."""
    index_min: int
    """Index of lambda_min in ``lambdas``."""
    index_1se: int
    """Index of lambda_1se in ``lambdas``."""
    foldid: np.ndarray
    """(n_repeats, n) fold label of each sample (0-based)."""
    measure: str
    """The measure used (glmnet may fall back from ``auc`` to ``deviance``)."""
    grouped: bool
    """Whether the SE is computed over folds (True) or observations (glmnet's ``grouped``)."""
    path: PathResult
    """The full-data fit."""
    prevalidated: np.ndarray | None = None
    """(n, L) held-out predictions on the response scale -- probabilities of the case class, the
    fitted outcome for Gaussian -- (mean over repeats), when ``keep=True``."""
    prevalidated_repeats: np.ndarray | None = None
    """(n_repeats, n, L) held-out probabilities per repeat, when ``keep=True``."""
    info: dict = field(default_factory=dict, compare=False)
    problem: Any = field(default=None, repr=False, compare=False)
    """The :class:`jaxlasso.path.PreparedProblem` the CV solved (None when not kept): the
    permutation test and stability selection reuse it instead of preparing ``X`` again."""

    @property
    def lambda_min(self) -> float:
        return float(self.lambdas[self.index_min])

    @property
    def lambda_1se(self) -> float:
        return float(self.lambdas[self.index_1se])

    @property
    def cv_up(self) -> np.ndarray:
        return self.cv_mean + self.cv_sd

    @property
    def cv_lo(self) -> np.ndarray:
        return self.cv_mean - self.cv_sd

    @property
    def n_repeats(self) -> int:
        return self.foldid.shape[0]

    @property
    def nfolds(self) -> int:
        return int(self.foldid.max()) + 1

    def _s(self, s) -> float:
        if isinstance(s, str):
            from .options import OptionError, Rule

            try:
                rule = Rule.parse(s)
            except OptionError:
                raise ValueError(f"s must be lambda.1se, lambda.min or a number (got s={s!r})") from None
            return self.lambda_1se if rule is Rule.LAMBDA_1SE else self.lambda_min
        return float(s)

    def coef(self, s: str | float = "lambda_1se") -> tuple[float, np.ndarray]:
        """(intercept, coef (p,)) of the full-data fit at ``s`` (glmnet's ``coef(cvfit, s=)``)."""
        return self.path.coef_at(self._s(s))

    def selected(self, s: str | float = "lambda_1se") -> list[str]:
        """Names of the features with a nonzero coefficient at ``s``."""
        _, coef = self.coef(s)
        names = self.path.names()
        return [names[j] for j in np.nonzero(coef)[0]]

    def decision_function(self, X, s: str | float = "lambda_1se") -> np.ndarray:
        return self.path.decision_function(X, self._s(s))

    def predict_proba(self, X, s: str | float = "lambda_1se") -> np.ndarray:
        """(n,) probability of the case class ``path.classes[1]`` at ``s``."""
        return self.path.predict_proba(X, self._s(s))

    def predict(self, X, s: str | float = "lambda_1se") -> np.ndarray:
        """(n,) predicted labels (the case when its probability exceeds 0.5); for Gaussian the
        fitted outcome."""
        if self.path.family != "binomial":
            return self.path.predict(X, self._s(s))
        prob = self.predict_proba(X, s)
        classes = np.asarray(self.path.classes, dtype=object)
        return classes[(prob > 0.5).astype(int)]

    def to_frame(self) -> pd.DataFrame:
        """glmnet's ``cv.glmnet`` table: lambda, cv_mean, cv_sd, cv_up, cv_lo, n_nonzero."""
        return pd.DataFrame({
            "lambda": self.lambdas,
            "cv_mean": self.cv_mean,
            "cv_sd": self.cv_sd,
            "cv_up": self.cv_up,
            "cv_lo": self.cv_lo,
            "n_nonzero": self.n_nonzero,
            "is_lambda_min": np.arange(len(self.lambdas)) == self.index_min,
            "is_lambda_1se": np.arange(len(self.lambdas)) == self.index_1se,
        })
