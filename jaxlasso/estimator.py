r"""scikit-learn estimators on top of the functional API.

:class:`LassoLogistic` fits glmnet's penalised logistic regression at one ``lambda``;
:class:`LassoLogisticCV` chooses ``lambda`` by cross-validation with glmnet's ``lambda.min`` /
``lambda.1se`` rule. :class:`LassoRegression` and :class:`LassoRegressionCV` are the same for
glmnet's ``family = "gaussian"`` (least squares; :func:`jaxlasso.gaussian_path`,
:func:`jaxlasso.cv_gaussian_path`), scikit-learn regressors like ``Lasso`` / ``LassoCV``. Both are thin facades: inputs are checked with scikit-learn's utilities,
the numerics are :func:`jaxlasso.logistic_path` and :func:`jaxlasso.cv_logistic_path`, and the
answers are presented as scikit-learn attributes (``coef_``, ``intercept_``, ``classes_``, ...).
They work inside :class:`~sklearn.pipeline.Pipeline`, :class:`~sklearn.model_selection.GridSearchCV`,
``cross_val_score`` and friends.

Relation to scikit-learn's ``C``
--------------------------------
jaxlasso (glmnet) minimises, over the intercept ``b0`` and coefficients ``b``,

.. math::

    \frac{1}{n} \sum_i \mathrm{logloss}_i + \lambda \left(\rho \|b\|_1
    + \frac{1 - \rho}{2} \|b\|_2^2\right),

whereas :class:`sklearn.linear_model.LogisticRegression` minimises
``C * sum_i logloss_i + rho * ||b||_1 + (1 - rho) / 2 * ||b||^2``. Dividing by ``n * lambda``
shows the two are the same problem when ``C = 1 / (n * lambda)`` (``n`` = the sum of the sample
weights), provided the penalty acts on the same scale: jaxlasso penalises the coefficients of
the *standardised* columns (weighted population SD) unless ``standardize=False``, and never
penalises the intercept.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as V
from ._config import CV, PATH
from .cv import cv_gaussian_path, cv_logistic_path
from .metrics import sigmoid
from .options import Rule
from .path import PreparedProblem, fit_prepared

__all__ = ["LassoCox", "LassoCoxCV", "LassoLogistic", "LassoLogisticCV", "LassoRegression", "LassoRegressionCV"]

_SPARSE_FORMATS = ("csr", "csc", "coo")


def _warm_start_grid(lam_max: float, lam: float) -> np.ndarray:
    """Warm-start lambdas from ``lam_max`` down to ``lam`` (included), glmnet's grid spacing.

    The steps are those of glmnet's default grid for n < p (100 values over two decades, 4.5%
    apart), continued below it when needed, whatever the shape of the data: the grid depends
    only on lambda_max, so integer sample weights and repeated rows give the same path.
    """
    if lam >= lam_max:
        return np.array([lam])
    step = np.log(PATH.lambda_min_ratio_wide) / (PATH.n_lambdas - 1)
    k = int(np.floor(np.log(lam / lam_max) / step))
    grid = lam_max * np.exp(step * np.arange(k + 1))
    return np.append(grid[grid > lam * (1.0 + 1e-10)], lam)


def _selected_names(est, coef: np.ndarray) -> np.ndarray:
    """The names of the features with a nonzero coefficient (``feature_names_in_``, else x0, x1,
    ...), as object array: every estimator reports its selection the same way."""
    names = (list(est.feature_names_in_) if hasattr(est, "feature_names_in_")
             else [f"x{j}" for j in range(est.n_features_in_)])
    return np.asarray([names[j] for j in np.flatnonzero(coef)], dtype=object)


class _LogisticFacade(ClassifierMixin, BaseEstimator):
    """Shared validation, attributes and prediction of the two estimators (not public)."""

    # --- scikit-learn protocol ------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.sparse = True  # accepted and densified: the kernels are dense
        return tags

    # --- fitting helpers ------------------------------------------------------------------
    def _validate_fit_data(self, X, y):
        """Validate ``X`` / ``y`` with scikit-learn's utilities.

        Returns the design for the functional API (a DataFrame when feature names are known, so
        that ``path_.feature_names`` carries them) and ``y`` as a Categorical whose categories
        are ``classes_``: the functional API then codes exactly ``classes_[1]`` as the case.
        """
        V.check_rectangular_real(X)
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, dtype=np.float64,
                             ensure_min_samples=2)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            levels = np.unique(y)
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type} "
                f"(got {len(levels)} classes); jaxlasso fits binary outcomes only: merge or drop "
                f"classes, or fit one-vs-rest with sklearn.multiclass.OneVsRestClassifier")
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class; binary classification needs both cases and controls "
                f"(got the single class {classes[0]!r} for all {len(y)} samples)")
        self.classes_ = classes
        if hasattr(X, "toarray"):
            X = X.toarray()
        if hasattr(self, "feature_names_in_"):
            X = pd.DataFrame(X, columns=list(self.feature_names_in_), copy=False)
        y_cat = pd.Series(pd.Categorical(y, categories=classes))
        return X, y_cat

    def _set_solution(self, path, lam: float, intercept: float, coef: np.ndarray) -> None:
        self.path_ = path
        self.lambda_ = float(lam)
        self.coef_ = np.asarray(coef, dtype=np.float64).reshape(1, -1)
        self.intercept_ = np.array([float(intercept)])
        self.n_iter_ = int(np.sum(path.n_iter))
        self.selected_features_ = _selected_names(self, self.coef_[0])

    # --- prediction -----------------------------------------------------------------------
    def decision_function(self, X):
        """Linear predictor (log-odds of ``classes_[1]``), shape (n_samples,)."""
        check_is_fitted(self)
        V.check_rectangular_real(X)
        X = validate_data(self, X, accept_sparse=_SPARSE_FORMATS, dtype=np.float64, reset=False)
        return np.asarray(safe_sparse_dot(X, self.coef_[0])).ravel() + self.intercept_[0]

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, 2), columns in the order of ``classes_``."""
        eta = self.decision_function(X)
        return np.column_stack([sigmoid(-eta), sigmoid(eta)])

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably."""
        eta = self.decision_function(X)
        return np.column_stack([-np.logaddexp(0.0, eta), -np.logaddexp(0.0, -eta)])

    def predict(self, X):
        """Predicted labels: ``classes_[1]`` (the case) when its probability exceeds 0.5."""
        proba = self.predict_proba(X)[:, 1]
        return self.classes_[(proba > 0.5).astype(int)]


class LassoLogistic(_LogisticFacade):
    r"""L1 / elastic-net penalised logistic regression at one ``lambda`` (glmnet ``binomial``).

    Minimises glmnet's objective

    ``(1 / sum w) * sum_i w_i * logloss_i + lambda * sum_j pf_j * (l1_ratio * |b_j|
    + (1 - l1_ratio) / 2 * b_j^2)``

    on standardised columns (coefficients are reported on the original scale). As glmnet
    recommends, ``lambda_value`` is reached by warm starts from ``lambda_max`` with the spacing of
    glmnet's default grid (4.5% steps), the way ``coef(fit, s = lambda_value, exact = TRUE)``
    refits in R; a cold start at a small lambda is far slower on wide data (the active set is
    unknown). The grid depends only on ``lambda_max``, so integer sample weights are exactly
    equivalent to repeated rows.

    scikit-learn's ``C`` corresponds to ``C = 1 / (n * lambda_value)`` (``n`` = sum of sample
    weights), with the penalty on the standardised scale unless ``standardize=False``; see
    :mod:`jaxlasso.estimator`.

    Parameters
    ----------
    lambda_value : float, default=0.01
        Penalty strength (glmnet ``lambda``, ``s``). At or above ``lambda_max`` every penalised
        coefficient is zero.
    l1_ratio : float in [0, 1], default=1.0
        Elastic-net mixing (glmnet ``alpha``): 1 is the lasso, 0 ridge.
    standardize : bool, default=True
        Penalise the coefficients of the standardised columns (glmnet ``standardize``).
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (glmnet ``intercept``).
    penalty_factor : array-like of shape (n_features,), default=None
        Per-feature penalty multipliers (glmnet ``penalty.factor``), rescaled to sum to
        n_features; 0 = never penalised, ``inf`` = excluded.
    tol : float, default=None
        KKT-gap tolerance per lambda (default 1e-5; in float64 the solver goes on to tol / 10
        unless its estimate of the objective left is below 1e-8 of the loss).
    max_iter : int, default=200
        Newton iterations per lambda.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the computation (results are float64 either way).

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        Coefficients on the original scale of X.
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
        ``[control, case]``: sorted labels; ``classes_[1]`` is the modelled class (glmnet's rule:
        the second level in sorted order).
    lambda_ : float
        The lambda of the solution (``lambda_value``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when fitted on a DataFrame with string column names.
    selected_features_ : ndarray of str
        Names of the features with a nonzero coefficient (``"x0"``, ``"x1"``, ... without names).
    path_ : PathResult
        The warm-start path that was solved; its last lambda is ``lambda_``.
    n_iter_ : int
        Newton iterations over the whole warm-start path.

    Warns
    -----
    FewObservationsWarning
        A class has fewer than 8 observations (glmnet's "dangerous ground").
    ConvergenceWarning
        Some lambda stopped at ``max_iter`` before reaching ``tol``.
    """

    def __init__(self, lambda_value=0.01, *, l1_ratio=PATH.l1_ratio, standardize=PATH.standardize,
                 fit_intercept=PATH.fit_intercept, penalty_factor=None, tol=None,
                 max_iter=PATH.max_iter, dtype="float64"):
        self.lambda_value = lambda_value
        self.l1_ratio = l1_ratio
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        """Fit at ``lambda_value``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two distinct labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Observation weights (glmnet ``weights``); 0 drops a sample.

        Returns
        -------
        self
        """
        lam = self.lambda_value
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not (0 < float(lam) < np.inf):
            raise ValueError(
                f"lambda_value must be a positive, finite number (glmnet's lambda) "
                f"(got lambda_value={lam!r})")
        lam = float(lam)
        t0 = time.perf_counter()
        X, y = self._validate_fit_data(X, y)
        prob = PreparedProblem(
            X, y, l1_ratio=self.l1_ratio, lambdas=None, n_lambdas=1, lambda_min_ratio=None,
            standardize=self.standardize, fit_intercept=self.fit_intercept,
            sample_weight=sample_weight, penalty_factor=self.penalty_factor, early_stop=False,
            tol=self.tol, max_iter=self.max_iter, dtype=self.dtype)
        path = fit_prepared(prob.use_lambdas(_warm_start_grid(prob.lambda_max, lam)), t0=t0)
        intercept, coef = path.coef_at(lam)
        self._set_solution(path, lam, intercept, coef)
        return self


class LassoLogisticCV(_LogisticFacade):
    """Penalised logistic regression with lambda chosen by cross-validation (glmnet ``cv.glmnet``).

    Runs :func:`jaxlasso.cv_logistic_path` (the full-data path and every fold in one compiled
    call) and keeps the full-data solution at ``lambda_1se`` (largest lambda whose CV error is
    within one standard error of the minimum; default, as glmnet's ``coef(cvfit)``) or
    ``lambda_min``.

    Parameters
    ----------
    rule : {"lambda_1se", "lambda_min"}, default="lambda_1se"
        Which lambda to keep (glmnet's ``s``; ``"lambda.1se"`` / ``"lambda.min"`` also accepted).
    nfolds : int, default=None
        Number of folds; default 10, capped at the size of the smaller class.
    foldid : array-like, default=None
        Fold label per sample, or (n_repeats, n_samples); overrides ``nfolds``, ``stratified``
        and ``seed``. Refers to the rows passed to ``fit`` (so it does not survive resampling
        by an outer CV).
    stratified : bool, default=True
        Stratify folds by class (glmnet: random folds; ``False`` reproduces that).
    n_repeats : int, default=1
        Repeat CV with independent fold assignments and average the curves.
    measure : {"deviance", "class", "auc", "mse", "auc_pooled"}, default="deviance"
        glmnet's ``type.measure``.
    seed : int, default=0
        Seed of the fold assignment.
    l1_ratio, standardize, fit_intercept, penalty_factor, tol, max_iter, dtype
        As :class:`LassoLogistic`.
    n_lambdas : int, default=100
        Length of glmnet's lambda grid (``nlambda``).
    lambda_min_ratio : float, default=None
        Smallest lambda as a fraction of lambda_max; default 0.01 if n < p else 1e-4.

    Attributes
    ----------
    coef_, intercept_, classes_, n_features_in_, feature_names_in_, selected_features_, n_iter_
        As :class:`LassoLogistic`, for the full-data fit at ``lambda_``.
    lambda_ : float
        The chosen lambda (``lambda_1se_`` or ``lambda_min_`` by ``rule``).
    lambda_min_, lambda_1se_ : float
        glmnet's ``lambda.min`` and ``lambda.1se``.
    cv_result_ : CVResult
        Everything cross-validation computed (curves, folds, the full-data path).
    path_ : PathResult
        The full-data path (``cv_result_.path``).

    Warns
    -----
    FewObservationsWarning, ConvergenceWarning
        As :func:`jaxlasso.cv_logistic_path`.
    """

    def __init__(self, rule="lambda_1se", *, nfolds=None, foldid=None, stratified=CV.stratified,
                 n_repeats=CV.n_repeats, measure=CV.measure, seed=CV.seed, l1_ratio=PATH.l1_ratio,
                 n_lambdas=PATH.n_lambdas, lambda_min_ratio=None, standardize=PATH.standardize,
                 fit_intercept=PATH.fit_intercept, penalty_factor=None, tol=None,
                 max_iter=PATH.max_iter, dtype="float64"):
        self.rule = rule
        self.nfolds = nfolds
        self.foldid = foldid
        self.stratified = stratified
        self.n_repeats = n_repeats
        self.measure = measure
        self.seed = seed
        self.l1_ratio = l1_ratio
        self.n_lambdas = n_lambdas
        self.lambda_min_ratio = lambda_min_ratio
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        """Cross-validate the path and keep the full-data fit at the chosen lambda.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two distinct labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Observation weights (glmnet ``weights``); 0 drops a sample.

        Returns
        -------
        self
        """
        rule = Rule.parse(self.rule)
        X, y = self._validate_fit_data(X, y)
        cv = cv_logistic_path(
            X, y, nfolds=self.nfolds, foldid=self.foldid, stratified=self.stratified,
            n_repeats=self.n_repeats, measure=self.measure, seed=self.seed, keep=False,
            l1_ratio=self.l1_ratio, n_lambdas=self.n_lambdas,
            lambda_min_ratio=self.lambda_min_ratio, standardize=self.standardize,
            fit_intercept=self.fit_intercept, sample_weight=sample_weight,
            penalty_factor=self.penalty_factor, tol=self.tol, max_iter=self.max_iter,
            dtype=self.dtype)
        self.cv_result_ = cv
        self.lambda_min_ = cv.lambda_min
        self.lambda_1se_ = cv.lambda_1se
        lam = cv.lambda_1se if rule is Rule.LAMBDA_1SE else cv.lambda_min
        intercept, coef = cv.coef(rule)
        self._set_solution(cv.path, lam, intercept, coef)
        return self


class _RegressionFacade(RegressorMixin, BaseEstimator):
    """Shared validation, attributes and prediction of the Gaussian estimators (not public)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # accepted and densified: the kernels are dense
        return tags

    def _validate_fit_data(self, X, y):
        V.check_rectangular_real(X)
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, dtype=np.float64,
                             ensure_min_samples=2, y_numeric=True)
        if hasattr(X, "toarray"):
            X = X.toarray()
        if hasattr(self, "feature_names_in_"):
            X = pd.DataFrame(X, columns=list(self.feature_names_in_), copy=False)
        return X, np.asarray(y, dtype=np.float64)

    def _set_solution(self, path, lam: float, intercept: float, coef: np.ndarray) -> None:
        self.path_ = path
        self.lambda_ = float(lam)
        self.coef_ = np.asarray(coef, dtype=np.float64).ravel()
        self.intercept_ = float(intercept)
        self.n_iter_ = int(np.sum(path.n_iter))
        self.selected_features_ = _selected_names(self, self.coef_)

    def predict(self, X):
        """Fitted values ``X @ coef_ + intercept_``, shape (n_samples,)."""
        check_is_fitted(self)
        V.check_rectangular_real(X)
        X = validate_data(self, X, accept_sparse=_SPARSE_FORMATS, dtype=np.float64, reset=False)
        return np.asarray(safe_sparse_dot(X, self.coef_)).ravel() + self.intercept_


class LassoRegression(_RegressionFacade):
    """Elastic-net least squares at one lambda (glmnet ``glmnet(x, y, family = "gaussian")``
    with ``s = lambda_value``).

    glmnet's objective ``1/(2 sum w) sum w_i (y_i - b0 - x_i b)^2 + lambda * (l1_ratio ||b~||_1
    + (1 - l1_ratio)/2 ||b~||^2)`` on the standardised coefficients ``b~`` (unless
    ``standardize=False``); without standardisation and weights it is scikit-learn's ``Lasso``
    objective with ``alpha = lambda_value``. ``lambda_value`` is reached by warm starts from
    lambda_max along glmnet's grid spacing, as :class:`LassoLogistic` does.

    Parameters
    ----------
    lambda_value : float, default=0.01
        Penalty strength on the scale of ``y`` (glmnet ``lambda``, ``s``).
    l1_ratio, standardize, fit_intercept, penalty_factor, tol, max_iter, dtype
        As :func:`jaxlasso.gaussian_path`.

    Attributes
    ----------
    coef_ : ndarray (n_features,)
    intercept_ : float
    lambda_ : float
    path_ : PathResult
        The warm-start path (``family="gaussian"``).
    n_features_in_, feature_names_in_, selected_features_, n_iter_
        As :class:`LassoLogistic`.
    """

    def __init__(self, lambda_value=0.01, *, l1_ratio=PATH.l1_ratio, standardize=PATH.standardize,
                 fit_intercept=PATH.fit_intercept, penalty_factor=None, tol=None,
                 max_iter=PATH.max_iter, dtype="float64"):
        self.lambda_value = lambda_value
        self.l1_ratio = l1_ratio
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        """Fit at ``lambda_value``; ``y`` a numeric outcome, ``sample_weight`` glmnet's ``weights``."""
        lam = self.lambda_value
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not (0 < float(lam) < np.inf):
            raise ValueError(
                f"lambda_value must be a positive, finite number (glmnet's lambda) "
                f"(got lambda_value={lam!r})")
        lam = float(lam)
        t0 = time.perf_counter()
        X, y = self._validate_fit_data(X, y)
        prob = PreparedProblem(
            X, y, l1_ratio=self.l1_ratio, lambdas=None, n_lambdas=1, lambda_min_ratio=None,
            standardize=self.standardize, fit_intercept=self.fit_intercept,
            sample_weight=sample_weight, penalty_factor=self.penalty_factor, early_stop=False,
            tol=self.tol, max_iter=self.max_iter, dtype=self.dtype, family="gaussian")
        path = fit_prepared(prob.use_lambdas(_warm_start_grid(prob.lambda_max, lam)), t0=t0)
        intercept, coef = path.coef_at(lam)
        self._set_solution(path, lam, intercept, coef)
        return self


class LassoRegressionCV(_RegressionFacade):
    """Elastic-net least squares with lambda chosen by cross-validation (glmnet
    ``cv.glmnet(x, y, family = "gaussian")``), keeping the full-data fit at ``lambda_1se``
    (default) or ``lambda_min``.

    Parameters
    ----------
    rule : {"lambda_1se", "lambda_min"}, default="lambda_1se"
    nfolds : int, default=None
        Number of glmnet's random folds (default 10, at most the number of samples).
    foldid : array-like, default=None
        Fold label per sample, or (n_repeats, n_samples).
    n_repeats, seed, l1_ratio, n_lambdas, lambda_min_ratio, standardize, fit_intercept,
    penalty_factor, tol, max_iter, dtype
        As :class:`LassoLogisticCV`.
    measure : {"mse", "mae", "deviance"}, default="mse"
        cv.glmnet's ``type.measure`` (``"deviance"`` is the mean squared error).

    Attributes
    ----------
    coef_, intercept_, lambda_, lambda_min_, lambda_1se_, cv_result_, path_, ...
        As :class:`LassoLogisticCV` (``coef_`` of shape (n_features,), ``intercept_`` a float).
    """

    def __init__(self, rule="lambda_1se", *, nfolds=None, foldid=None, n_repeats=CV.n_repeats,
                 measure="mse", seed=CV.seed, l1_ratio=PATH.l1_ratio, n_lambdas=PATH.n_lambdas,
                 lambda_min_ratio=None, standardize=PATH.standardize, fit_intercept=PATH.fit_intercept,
                 penalty_factor=None, tol=None, max_iter=PATH.max_iter, dtype="float64"):
        self.rule = rule
        self.nfolds = nfolds
        self.foldid = foldid
        self.n_repeats = n_repeats
        self.measure = measure
        self.seed = seed
        self.l1_ratio = l1_ratio
        self.n_lambdas = n_lambdas
        self.lambda_min_ratio = lambda_min_ratio
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        """Cross-validate the Gaussian path and keep the full-data fit at the chosen lambda."""
        rule = Rule.parse(self.rule)
        X, y = self._validate_fit_data(X, y)
        cv = cv_gaussian_path(
            X, y, nfolds=self.nfolds, foldid=self.foldid, n_repeats=self.n_repeats,
            measure=self.measure, seed=self.seed, keep=False, l1_ratio=self.l1_ratio,
            n_lambdas=self.n_lambdas, lambda_min_ratio=self.lambda_min_ratio,
            standardize=self.standardize, fit_intercept=self.fit_intercept,
            sample_weight=sample_weight, penalty_factor=self.penalty_factor, tol=self.tol,
            max_iter=self.max_iter, dtype=self.dtype)
        self.cv_result_ = cv
        self.lambda_min_ = cv.lambda_min
        self.lambda_1se_ = cv.lambda_1se
        lam = cv.lambda_1se if rule is Rule.LAMBDA_1SE else cv.lambda_min
        intercept, coef = cv.coef(rule)
        self._set_solution(cv.path, lam, intercept, coef)
        return self


# --- Cox (survival): scikit-survival conventions ---------------------------------------------
def _survival_target(y, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(time, event)`` from scikit-survival's ``y``: a structured array of two fields, the event
    indicator first and the time second (``sksurv.util.Surv.from_arrays(event, time)``)."""
    from .survival import check_survival

    arr = np.asarray(y)
    names = arr.dtype.names
    if names is None or len(names) != 2:
        raise ValueError(
            "y must be a structured array with two fields, the event indicator first and the time "
            "second, as sksurv.util.Surv.from_arrays(event, time) builds it "
            f"(got dtype={arr.dtype}, shape={arr.shape})")
    surv = check_survival(arr[names[1]], arr[names[0]], n, time_name=f"y[{names[1]!r}]",
                          event_name=f"y[{names[0]!r}]")
    return surv.time, surv.event


class _CoxFacade(BaseEstimator):
    """Shared prediction and scoring of the Cox estimators (not public)."""

    def _set_solution(self, path, lam: float, coef: np.ndarray, X) -> None:
        self.path_ = path
        self.lambda_ = float(lam)
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.n_features_in_ = self.coef_.shape[0]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.selected_features_ = _selected_names(self, self.coef_)

    def predict(self, X):
        """Risk scores ``X @ coef_`` (higher = shorter expected survival), as scikit-survival."""
        check_is_fitted(self, "coef_")
        names = getattr(self, "feature_names_in_", None)
        X = V.check_predict_X(X, self.n_features_in_, None if names is None else list(names))
        return X @ self.coef_

    def score(self, X, y):
        """Harrell's concordance index of :meth:`predict` on ``(X, y)`` (glmnet's ``Cindex``)."""
        from .survival import concordance

        time_, event = _survival_target(y, np.shape(X)[0])
        return float(concordance(self.predict(X), time_, event))


class LassoCox(_CoxFacade):
    """Penalised Cox proportional-hazards regression at one ``lambda`` (glmnet ``family = "cox"``).

    ``y`` follows scikit-survival: a structured array ``(event, time)``
    (``sksurv.util.Surv.from_arrays``); ``predict`` gives risk scores and ``score`` Harrell's C.

    Parameters
    ----------
    lambda_value : float, default=0.01
        The penalty strength (glmnet's ``s``); the path is solved from lambda_max down to it.
    l1_ratio, standardize, penalty_factor, tol, max_iter, dtype
        As :class:`LassoLogistic`.
    ties : {"breslow", "efron"}, default="breslow"
        Tied event times: Breslow (glmnet's) or Efron.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    lambda_ : float
    path_ : PathResult
    n_features_in_, feature_names_in_, selected_features_
    """

    def __init__(self, lambda_value=0.01, *, l1_ratio=PATH.l1_ratio, ties="breslow", standardize=PATH.standardize,
                 penalty_factor=None, tol=None, max_iter=PATH.max_iter, dtype="float64"):
        self.lambda_value = lambda_value
        self.l1_ratio = l1_ratio
        self.ties = ties
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        from .survival import CoxProblem, cox_path

        lam = V.check_positive_float(self.lambda_value, "lambda_value")
        time_, event = _survival_target(y, np.shape(X)[0])
        prob = CoxProblem(X, time_, event, ties=self.ties, l1_ratio=self.l1_ratio, lambdas=None, n_lambdas=1,
                          lambda_min_ratio=None, standardize=self.standardize, sample_weight=sample_weight,
                          penalty_factor=self.penalty_factor, early_stop=False, tol=self.tol,
                          max_iter=self.max_iter, dtype=self.dtype)
        path = cox_path(X, time_, event, ties=self.ties, l1_ratio=self.l1_ratio,
                        lambdas=_warm_start_grid(prob.lambda_max, lam), standardize=self.standardize,
                        sample_weight=sample_weight, penalty_factor=self.penalty_factor, tol=self.tol,
                        max_iter=self.max_iter, dtype=self.dtype)
        self.n_iter_ = int(path.n_iter.sum())
        self._set_solution(path, lam, path.coef[-1], X)
        return self


class LassoCoxCV(_CoxFacade):
    """Penalised Cox regression with lambda chosen by cross-validation (glmnet's
    ``cv.glmnet(family = "cox")``): :func:`jaxlasso.cv_cox_path`, then the full-data solution at
    ``lambda_1se`` (default) or ``lambda_min``. ``y`` as :class:`LassoCox`.

    Parameters
    ----------
    rule : {"lambda_1se", "lambda_min"}, default="lambda_1se"
    nfolds, foldid, stratified, n_repeats, seed
        As :func:`jaxlasso.cv_cox_path` (stratified: events and censored samples dealt apart).
    measure : {"deviance", "C"}, default="deviance"
        glmnet's ``type.measure``.
    grouped : bool, default=True
        glmnet's grouped partial-likelihood deviance.
    l1_ratio, ties, standardize, penalty_factor, tol, max_iter, dtype, n_lambdas, lambda_min_ratio
        As :class:`LassoCox` and :func:`jaxlasso.cox_path`.

    Attributes
    ----------
    coef_, lambda_, path_, n_features_in_, feature_names_in_, selected_features_
        As :class:`LassoCox`, for the full-data fit at ``lambda_``.
    lambda_min_, lambda_1se_ : float
    cv_result_ : CVResult
    """

    def __init__(self, rule="lambda_1se", *, nfolds=None, foldid=None, stratified=CV.stratified,
                 n_repeats=CV.n_repeats, measure="deviance", grouped=True, seed=CV.seed, l1_ratio=PATH.l1_ratio,
                 ties="breslow", n_lambdas=PATH.n_lambdas, lambda_min_ratio=None, standardize=PATH.standardize,
                 penalty_factor=None, tol=None, max_iter=PATH.max_iter, dtype="float64"):
        self.rule = rule
        self.nfolds = nfolds
        self.foldid = foldid
        self.stratified = stratified
        self.n_repeats = n_repeats
        self.measure = measure
        self.grouped = grouped
        self.seed = seed
        self.l1_ratio = l1_ratio
        self.ties = ties
        self.n_lambdas = n_lambdas
        self.lambda_min_ratio = lambda_min_ratio
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(self, X, y, sample_weight=None):
        from .survival import cv_cox_path

        rule = Rule.parse(self.rule)
        time_, event = _survival_target(y, np.shape(X)[0])
        cv = cv_cox_path(X, time_, event, nfolds=self.nfolds, foldid=self.foldid, stratified=self.stratified,
                         n_repeats=self.n_repeats, measure=self.measure, grouped=self.grouped, seed=self.seed,
                         ties=self.ties, l1_ratio=self.l1_ratio, n_lambdas=self.n_lambdas,
                         lambda_min_ratio=self.lambda_min_ratio, standardize=self.standardize,
                         sample_weight=sample_weight, penalty_factor=self.penalty_factor, tol=self.tol,
                         max_iter=self.max_iter, dtype=self.dtype)
        self.cv_result_ = cv
        self.lambda_min_ = cv.lambda_min
        self.lambda_1se_ = cv.lambda_1se
        idx = cv.index_1se if rule is Rule.LAMBDA_1SE else cv.index_min
        self._set_solution(cv.path, cv.lambdas[idx], cv.path.coef[idx], X)
        return self
