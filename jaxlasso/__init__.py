"""jaxlasso: glmnet-exact L1 / elastic-net logistic regression in JAX, with CV, stability
selection and an honest diagnosis for the p >> n gene-selection problem."""

from __future__ import annotations

from ._version import __version__
from .cv import cv_gaussian_path, cv_logistic_path, cv_path
from .diagnose import Diagnosis, Finding, diagnose, permutation_test
from .exceptions import ConvergenceWarning, DataWarning, FewObservationsWarning, JaxlassoWarning
from .path import fit_path, gaussian_objective, gaussian_path, logistic_objective, logistic_path
from .plan import PowerPlan, plan_power
from .results import CVResult, PathResult
from .screen import ScreenDataset, ScreenResult, screen
from .selection.filters import preprocess
from .selection.pipeline import rank_then_lasso
from .selection.stability import StabilityResult, stability_selection
from .survival import cox_objective, cox_path, cv_cox_path
from .workflow import SelectionReport, select_features

__all__ = [
    "CVResult",
    "LassoCox",
    "LassoCoxCV",
    "LassoLogistic",
    "LassoLogisticCV",
    "LassoRegression",
    "LassoRegressionCV",
    "ConvergenceWarning",
    "DataWarning",
    "Diagnosis",
    "FewObservationsWarning",
    "Finding",
    "JaxlassoWarning",
    "PathResult",
    "PowerPlan",
    "ScreenDataset",
    "ScreenResult",
    "SelectionReport",
    "StabilityResult",
    "__version__",
    "cox_objective",
    "cox_path",
    "cv_cox_path",
    "cv_gaussian_path",
    "cv_logistic_path",
    "cv_path",
    "diagnose",
    "fit_path",
    "gaussian_objective",
    "gaussian_path",
    "logistic_objective",
    "logistic_path",
    "permutation_test",
    "plan_power",
    "preprocess",
    "rank_then_lasso",
    "screen",
    "select_features",
    "stability_selection",
]


def __getattr__(name):
    # The scikit-learn facade needs scikit-learn (an optional dependency): imported on demand.
    if name in ("LassoLogistic", "LassoLogisticCV", "LassoRegression", "LassoRegressionCV", "LassoCox",
                "LassoCoxCV"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
