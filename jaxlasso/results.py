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
class PathResult:
    """An elastic-net regularisation path (the answer of :func:`jaxlasso.logistic_path`,
    :func:`jaxlasso.gaussian_path`, :func:`jaxlasso.path.fit_path`).

    Coefficients are on the original scale of ``X``; the penalty acted on the standardised scale
    (``coef * x_scale``).
    """

    lambdas: np.ndarray
    """(L,) decreasing penalty strengths actually solved (glmnet's early stop may shorten the grid)."""
    coef: np.ndarray
    """(L, p) coefficients on the original scale of X."""
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
    def n_features(self) -> int:
        return self.coef.shape[1]

    def names(self) -> list[str]:
        if self.feature_names is not None:
            return list(self.feature_names)
        return [f"x{j}" for j in range(self.n_features)]

    def coef_at(self, s: float) -> tuple[float, np.ndarray]:
        """(intercept, coef (p,)) at ``s``, interpolating linearly in lambda as glmnet does."""
        left, right, frac = interpolate_lambda(self.lambdas, s)
        coef = frac * self.coef[left] + (1.0 - frac) * self.coef[right]
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
        L, p = self.coef.shape
        li, fj = np.nonzero(self.coef) if nonzero_only else np.indices((L, p)).reshape(2, -1)
        names = np.asarray(self.names(), dtype=object)
        return pd.DataFrame({
            "lambda_index": li,
            "lambda": self.lambdas[li],
            "feature": names[fj],
            "coefficient": self.coef[li, fj],
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
