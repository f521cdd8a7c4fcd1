""""Rank then lasso", done honestly.

The folk procedure ranks genes with a random forest / Boruta / t-tests on *all* samples, keeps
the top ``k``, and runs ``cv.glmnet`` on those. The ranking has seen every held-out sample's
label, so the reported CV error is optimistic -- on pure noise it can look like a real
classifier. :func:`rank_then_lasso` reports that *leaky* number next to an *honest* one, where
the ranking is redone inside every outer CV fold on the training rows only:

for each outer fold f:
    rank on the training rows -> keep the top k -> cv_logistic_path on the training rows
    (inner CV chooses lambda) -> predict the held-out rows of fold f

and the held-out predictions of all folds give the honest CV deviance.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import _validation as V
from ..cv import cv_logistic_path
from ..exceptions import FewObservationsWarning
from ..folds import check_folds, default_nfolds, make_foldid
from ..metrics import cv_statistics, sigmoid
from ..options import Rule

Ranker = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
"""``ranker(X, y01, seed) -> scores (p,)``, larger = more important."""


def _rank_univariate(X, y, seed):
    from .univariate import univariate_ranking

    res = univariate_ranking(X, y)
    return -np.log10(np.maximum(res.p_value, 1e-300)) + 1e-9 * np.abs(res.statistic)


def _rank_forest(X, y, seed):
    from .forest import forest_importance

    # The rank, not the importance: at n = 16 many importances are exactly 0 and the rank
    # breaks those ties.
    return -np.asarray(forest_importance(X, y, seed=seed).rank, dtype=float)


def _rank_boruta(X, y, seed):
    from .forest import boruta

    # Fewer iterations than a stand-alone Boruta: it runs once per outer fold here.
    return -np.asarray(boruta(X, y, seed=seed, max_iter=30).rank, dtype=float)


RANKERS: dict[str, Ranker] = {
    "univariate": _rank_univariate,
    "forest": _rank_forest,
    "boruta": _rank_boruta,
}


@dataclass(frozen=True)
class RankThenLassoResult:
    """Leaky and honest CV errors of "rank the genes, keep the top k, run the lasso"."""

    ranker: str
    top_k: int
    measure: str
    rule: str
    leaky_cv: float
    """CV error of the lasso on the top-k genes ranked on all samples (optimistic)."""
    leaky_cv_sd: float
    honest_cv: float
    """CV error with the ranking and the lambda choice redone inside every outer fold."""
    honest_cv_sd: float
    null_cv: float
    """CV error of the intercept-only model on the same folds (the no-signal reference)."""
    leaky_selected: tuple[str, ...]
    """Genes the leaky pipeline reports (lasso on the all-sample top k at the rule's lambda)."""
    fold_selected: tuple[tuple[str, ...], ...]
    """Genes chosen in each outer fold of the honest pipeline."""
    foldid: np.ndarray
    info: dict = field(default_factory=dict, compare=False)

    @property
    def optimism(self) -> float:
        """How much better the leaky estimate looks than the honest one."""
        return self.honest_cv - self.leaky_cv

    def selection_frequency(self) -> pd.Series:
        """Fraction of outer folds in which each gene was selected (instability shows here)."""
        counts: dict[str, int] = {}
        for genes in self.fold_selected:
            for g in genes:
                counts[g] = counts.get(g, 0) + 1
        k = max(len(self.fold_selected), 1)
        return pd.Series({g: c / k for g, c in counts.items()}, dtype=float).sort_values(ascending=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "estimate": ["leaky (ranked on all samples)", "honest (ranked within folds)", "intercept only"],
            "cv_mean": [self.leaky_cv, self.honest_cv, self.null_cv],
            "cv_sd": [self.leaky_cv_sd, self.honest_cv_sd, np.nan],
        })


def rank_then_lasso(X: Any, y: Any, *, ranker: str | Ranker = "univariate", top_k: int = 30,
                    nfolds: int | None = None, foldid: Any = None, rule: str = "lambda_min",
                    measure: str = "deviance", seed: int = 0, l1_ratio: float = 1.0,
                    n_lambdas: int = 50) -> RankThenLassoResult:
    """Compare the leaky and the honest CV error of "rank, keep the top k, lasso".

    Parameters
    ----------
    X, y
        As :func:`jaxlasso.logistic_path` (after any unsupervised preprocessing).
    ranker : {"univariate", "forest", "boruta"} or callable
        How genes are ranked; a callable gets ``(X, y01, seed)`` and returns one score per
        feature (larger = more important).
    top_k : int
        Genes kept after ranking (the folk procedure's "top 30").
    nfolds, foldid
        Outer folds (stratified, seeded; default as :func:`cv_logistic_path`).
    rule : {"lambda_min", "lambda_1se"} (``lambda.min`` / ``lambda.1se`` also accepted)
        How the inner CV chooses lambda (the folk procedure reports lambda.min).
    """
    t0 = time.perf_counter()
    design = V.check_X(X)
    labels = V.check_y(y, design.X.shape[0])
    Xa, y01 = design.X, labels.y
    names = list(design.feature_names) if design.feature_names else [f"x{j}" for j in range(Xa.shape[1])]
    n, p = Xa.shape
    top_k = min(V.check_positive_int(top_k, "top_k"), p)
    rule = Rule.parse(rule)
    rank_fn = RANKERS.get(ranker) if isinstance(ranker, str) else ranker
    if rank_fn is None:
        raise ValueError(f"ranker must be one of {sorted(RANKERS)} or a callable (got ranker={ranker!r})")
    w = np.ones(n)
    if foldid is None:
        k = default_nfolds(y01, w, nfolds, True)
        fid = make_foldid(y01, w, nfolds=k, stratified=True, n_repeats=1, seed=seed)
    else:
        from ..folds import normalize_foldid

        fid = normalize_foldid(foldid, n)[:1]
    check_folds(fid, y01, w, labels.classes)
    K = int(fid.max()) + 1

    def top_of(Xs, ys):
        scores = np.asarray(rank_fn(Xs, ys, seed), dtype=float)
        return np.sort(np.argsort(-scores, kind="stable")[:top_k])

    with warnings.catch_warnings():
        # Small folds are the point of this comparison; their warnings are not news here.
        warnings.simplefilter("ignore", FewObservationsWarning)
        # Leaky: rank on every sample, then CV on the same folds.
        top_all = top_of(Xa, y01)
        leaky = cv_logistic_path(Xa[:, top_all], y01, foldid=fid, measure=measure, l1_ratio=l1_ratio,
                                 n_lambdas=n_lambdas)
        idx = leaky.index_min if rule is Rule.LAMBDA_MIN else leaky.index_1se
        _, coef = leaky.coef(rule)
        leaky_selected = tuple(names[top_all[j]] for j in np.nonzero(coef)[0])
        # Honest: rank and choose lambda inside each outer fold.
        prob = np.empty((1, n, 1))
        fold_sel = []
        for f in range(K):
            train = fid[0] != f
            top = top_of(Xa[train], y01[train])
            inner = cv_logistic_path(Xa[train][:, top], y01[train], measure=measure, seed=seed + 1 + f,
                                     l1_ratio=l1_ratio, n_lambdas=n_lambdas)
            b0, c = inner.coef(rule)
            eta = Xa[~train][:, top] @ c + b0
            prob[0, ~train, 0] = sigmoid(eta)
            fold_sel.append(tuple(names[top[j]] for j in np.nonzero(c)[0]))
        honest = cv_statistics(leaky.measure, leaky.grouped, y01, w, fid, prob)
    return RankThenLassoResult(
        ranker=ranker if isinstance(ranker, str) else getattr(ranker, "__name__", "custom"),
        top_k=top_k, measure=leaky.measure, rule=rule.value,
        leaky_cv=float(leaky.cv_mean[idx]), leaky_cv_sd=float(leaky.cv_sd[idx]),
        honest_cv=float(honest.cv_mean[0]), honest_cv_sd=float(honest.cv_sd[0]),
        null_cv=float(leaky.cv_mean[0]), leaky_selected=leaky_selected, fold_selected=tuple(fold_sel),
        foldid=fid, info={"seconds": time.perf_counter() - t0},
    )
