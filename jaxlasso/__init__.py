"""jaxlasso: glmnet-exact L1 / elastic-net logistic regression in JAX, with CV, stability
selection and an honest diagnosis for the p >> n gene-selection problem."""

from __future__ import annotations

from ._version import __version__
from .exceptions import ConvergenceWarning, DataWarning, FewObservationsWarning, JaxlassoWarning
from .cv import cv_logistic_path
from .path import logistic_objective, logistic_path
from .results import CVResult, PathResult

__all__ = [
    "CVResult",
    "ConvergenceWarning",
    "DataWarning",
    "FewObservationsWarning",
    "JaxlassoWarning",
    "PathResult",
    "__version__",
    "cv_logistic_path",
    "logistic_objective",
    "logistic_path",
]
