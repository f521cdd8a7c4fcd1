"""The selection layer: preprocessing and filters, stability selection, random-forest / Boruta
and univariate rankings, and the honest rank-then-lasso pipeline.

scikit-learn and scipy (the ``forest`` extra) are imported only by the functions that need them.
"""

from .filters import PreprocessReport, detect_counts, preprocess, t_filter, variance_filter
from .pipeline import RankThenLassoResult, rank_then_lasso
from .stability import StabilityResult, error_control, stability_selection

__all__ = [
    "BorutaResult",
    "ForestResult",
    "PreprocessReport",
    "RankThenLassoResult",
    "StabilityResult",
    "UnivariateResult",
    "benjamini_hochberg",
    "boruta",
    "detect_counts",
    "error_control",
    "forest_importance",
    "preprocess",
    "rank_then_lasso",
    "stability_selection",
    "t_filter",
    "univariate_ranking",
    "variance_filter",
]

_LAZY = {
    "univariate_ranking": "univariate", "UnivariateResult": "univariate", "benjamini_hochberg": "univariate",
    "forest_importance": "forest", "ForestResult": "forest", "boruta": "forest", "BorutaResult": "forest",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
