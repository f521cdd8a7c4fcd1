"""Stability selection for a Gaussian or Cox outcome: the subsamples and the error control of
:mod:`jaxlasso.selection.stability` (complementary pairs, Meinshausen-Bühlmann bound), each half
fitted with the family's own path (:meth:`jaxlasso.outcomes.Outcome.path`) on the full data's
lambda grid. Survival halves are stratified by the event indicator, so each holds half the
events."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..results import SparseRows
from .stability import StabilityResult, error_control, subsample_weights


def stability_selection_family(X: pd.DataFrame, outcome, *, lambdas: Any, n_resamples: int = 100,
                               l1_ratio: float = 1.0, seed: int = 0, dtype: Any = np.float64) -> StabilityResult:
    """Stability selection (complementary pairs of half-samples) for ``outcome``'s family."""
    t0 = time.perf_counter()
    if n_resamples < 2 or n_resamples % 2:
        raise ValueError(f"n_resamples must be an even number >= 2 (got n_resamples={n_resamples})")
    lam = np.asarray(lambdas, dtype=np.float64)
    L, p = len(lam), X.shape[1]
    cutoff, q_target, _ = error_control(p)
    W = subsample_weights(outcome.strata(), np.ones(outcome.n), n_resamples=n_resamples, fraction=0.5,
                          complementary_pairs=True, stratified=outcome.family == "cox", seed=seed)
    entry = np.full((n_resamples, p), L, dtype=np.int64)
    counts = np.zeros((L, p))
    for r, row in enumerate(W):
        rows = np.nonzero(row > 0)[0]
        sub = outcome.take(rows)
        if sub.family == "cox" and sub.n_events == 0:
            continue  # a half without events selects nothing (it cannot: no partial likelihood)
        res = sub.path(X.iloc[rows], lambdas=lam, l1_ratio=l1_ratio, early_stop=False, dtype=dtype)
        nz = np.asarray(res.coef) != 0  # (L', p)
        nz = nz[:L]
        li, feat = np.nonzero(nz)
        np.minimum.at(entry[r], feat, li)
        counts[: nz.shape[0]] += nz
    probabilities = counts / n_resamples
    sizes = np.stack([np.bincount(np.minimum(entry[r], L), minlength=L + 1)[:L].cumsum()
                      for r in range(n_resamples)])
    mean_size = sizes.mean(axis=0)
    ok = np.nonzero(mean_size <= q_target)[0]
    m = int(ok[-1]) if ok.size else 0
    running_max = np.maximum.accumulate(probabilities, axis=0)
    max_prob = running_max[m].copy()
    q_real = float(mean_size[m])
    names = tuple(str(c) for c in X.columns)
    order = np.argsort(-max_prob, kind="stable")
    return StabilityResult(
        lambdas=lam, probabilities_sparse=SparseRows.from_dense(probabilities), max_probability=max_prob,
        max_probability_path_sparse=SparseRows.from_dense(running_max),
        selected=tuple(names[j] for j in order if max_prob[j] >= cutoff), cutoff=cutoff, q=q_real,
        q_target=q_target, pfer_bound=q_real ** 2 / ((2 * cutoff - 1) * p), region_index=m,
        n_resamples=n_resamples, sample_fraction=0.5, complementary_pairs=True, randomized_weakness=None,
        seed=seed, feature_names=names, n_selected_per_resample=(entry <= m).sum(axis=1),
        info={"seconds": time.perf_counter() - t0, "lanes": n_resamples})
