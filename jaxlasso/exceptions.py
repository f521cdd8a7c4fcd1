"""Warning categories raised by jaxlasso (filter them with the ``warnings`` module)."""

from __future__ import annotations


class JaxlassoWarning(UserWarning):
    """Base class of every jaxlasso warning."""


class FewObservationsWarning(JaxlassoWarning):
    """A class has fewer than 8 observations (glmnet: "one binomial class has fewer than 8
    observations; dangerous ground"), or CV folds are too small for the requested measure."""


class ConvergenceWarning(JaxlassoWarning):
    """The solver stopped at its iteration cap before reaching the KKT tolerance."""


class DataWarning(JaxlassoWarning):
    """Something about the data deserves attention (e.g. it looks like unlogged counts)."""
