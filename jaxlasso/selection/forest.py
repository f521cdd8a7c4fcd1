"""Random-forest feature importance (out-of-bag permutation importance) and Boruta.

Both wrap scikit-learn's :class:`~sklearn.ensemble.RandomForestClassifier` (an optional
dependency: ``pip install jaxlasso[forest]``; scikit-learn >= 1.4) with
``class_weight="balanced"``, because case and control groups are rarely the same size.
:func:`boruta` is implemented here (not the ``boruta`` package); by default it follows the original
scheme of R's Boruta and BorutaPy, and ``shadows="all"`` offers a stricter variant (see its Notes).

Why permutation importance, and why out of bag
-----------------------------------------------
The impurity ("Gini", mean decrease in impurity) importance that forests report for free is
computed on the very samples each tree was grown on, and it is biased towards features that
offer many candidate split points -- continuous, high-variance or high-cardinality features --
even when they carry no signal (Strobl et al. 2007). Permutation importance asks instead how much
the predictions get *worse* when a feature's values are shuffled. Computed on the training
data, as :func:`sklearn.inspection.permutation_importance` would be used here, it would mostly
measure memorisation: with 16 samples and ``min_samples_leaf=1`` every tree fits its bootstrap
sample perfectly. :func:`forest_importance` therefore computes Breiman's original
*out-of-bag* permutation importance (randomForest's ``MeanDecreaseAccuracy``, unscaled): each
tree is scored only on the samples left out of its bootstrap sample.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataWarning
from .univariate import (_FOREST_EXTRA, _check_int, _check_Xy, _ranks_from_order, rank_order,
                         _require_scipy, benjamini_hochberg)

__all__ = ["BorutaResult", "ForestResult", "boruta", "forest_importance"]

_DECISIONS = ("confirmed", "tentative", "rejected")
_CORRECTIONS = ("bonferroni", "bh")
_SHADOWS = ("all", "in_play")


def _require_sklearn():
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError as err:  # pragma: no cover - scikit-learn is installed for the tests
        raise ImportError(
            "random-forest importance and Boruta need scikit-learn; install the optional "
            f"dependencies with `{_FOREST_EXTRA}`") from err
    return RandomForestClassifier


def _make_forest(n_estimators: int, max_features: Any, seed: int, n_jobs: int | None):
    RandomForestClassifier = _require_sklearn()
    return RandomForestClassifier(
        n_estimators=n_estimators, max_features=max_features, min_samples_leaf=1,
        class_weight="balanced", bootstrap=True, random_state=seed, n_jobs=n_jobs)


def _impurity_importance(forest, n_features: int) -> np.ndarray:
    """``forest.feature_importances_`` (normalised mean decrease in impurity), computed from the
    internal nodes only: scikit-learn allocates a length-p array per tree, which dominates the
    cost when p is tens of thousands and trees have a handful of nodes."""
    feats, decs, n_trees = [], [], 0
    for est in forest.estimators_:
        tree = est.tree_
        if tree.node_count <= 1:
            continue                     # scikit-learn leaves single-leaf trees out of the mean
        n_trees += 1
        left, right = tree.children_left, tree.children_right
        internal = np.flatnonzero(left >= 0)
        w, imp = tree.weighted_n_node_samples, tree.impurity
        dec = (w[internal] * imp[internal] - w[left[internal]] * imp[left[internal]]
               - w[right[internal]] * imp[right[internal]])
        total = dec.sum()
        if total > 0:
            feats.append(tree.feature[internal])
            decs.append(dec / total)
    out = np.zeros(n_features)
    if feats:
        out = np.bincount(np.concatenate(feats), weights=np.concatenate(decs),
                          minlength=n_features) / n_trees
    s = out.sum()
    return out / s if s > 0 else out


def _apply(left, right, feature, threshold, Z: np.ndarray, depth: int) -> np.ndarray:
    """Leaf index of every row of ``Z`` (float32, columns = the tree's local features); the same
    comparison as scikit-learn (``x <= threshold`` with float32 x promoted to float64)."""
    node = np.zeros(Z.shape[0], dtype=np.intp)
    rows = np.arange(Z.shape[0])
    for _ in range(depth):
        f = feature[node]
        internal = f >= 0
        if not internal.any():
            break
        x = Z[rows, np.maximum(f, 0)]
        nxt = np.where(x <= threshold[node], left[node], right[node])
        node = np.where(internal, nxt, node)
    return node


def _check_max_features(max_features: Any) -> Any:
    if max_features in ("sqrt", "log2") or max_features is None:
        return max_features
    if isinstance(max_features, (bool, np.bool_)):
        pass
    elif isinstance(max_features, (int, np.integer)) and max_features >= 1:
        return int(max_features)
    elif isinstance(max_features, (float, np.floating)) and 0 < max_features <= 1:
        return float(max_features)
    raise ValueError(
        "max_features must be 'sqrt', 'log2', None, an int >= 1 or a float in (0, 1] "
        f"(got max_features={max_features!r})")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32) (got seed={seed!r})")
    return int(seed)


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1)]))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    n1, n0 = int(np.sum(y == 1)), int(np.sum(y == 0))
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --- forest_importance -------------------------------------------------------------------------
@dataclass(frozen=True)
class ForestResult:
    """Random-forest feature importance (the answer of :func:`forest_importance`).

    ``p`` = number of features, ``n`` = number of samples.
    """

    feature_names: tuple[str, ...]
    """(p,) feature names."""
    importance_mean: np.ndarray
    """(p,) out-of-bag permutation importance: the increase of a tree's OOB error rate (each
    class weighted equally) when the feature is shuffled among that tree's OOB samples, averaged
    over all trees (a tree that does not split on the feature contributes 0) and repeats.
    Exactly 0 for features no tree splits on and for features not evaluated; negative values are
    noise (shuffling happened to help)."""
    importance_std: np.ndarray
    """(p,) standard deviation of the importance over the ``n_repeats`` shuffles (permutation
    noise only; refitting the forest with another seed varies it too)."""
    impurity_importance: np.ndarray
    """(p,) scikit-learn's ``feature_importances_`` (normalised mean decrease in impurity, sums to
    1), for comparison only: it is biased towards high-variance / many-valued features."""
    evaluated: np.ndarray
    """(p,) bool: the permutation importance was computed (all features when
    ``n_candidates=None``, else the top ``n_candidates`` by impurity importance)."""
    rank: np.ndarray
    """(p,) int, 1 = most important: evaluated features by decreasing ``importance_mean`` (ties:
    larger impurity importance, then column order), then the others by impurity importance."""
    oob_score: float
    """Balanced accuracy (mean of the per-class recalls) of the forest's out-of-bag predictions.
    Not optimistic, but at small n biased *below* 0.5 when there is no signal (see Notes of
    :func:`forest_importance`): compare it with the same score on permuted labels, not with 0.5."""
    oob_auc: float
    """AUC of the out-of-bag predicted case probabilities (same small-n caveat)."""
    oob_proba: np.ndarray
    """(n,) out-of-bag predicted probability of the case class (NaN for a sample that was in
    every tree's bootstrap sample); equals scikit-learn's ``oob_decision_function_[:, 1]``."""
    n_estimators: int
    n_repeats: int
    seed: int
    classes: tuple[Any, Any]
    """(control, case)."""
    info: dict = field(default_factory=dict, compare=False)
    """Bookkeeping: timings, number of features evaluated."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_frame(self, top: int | None = None) -> pd.DataFrame:
        """One row per feature sorted by rank: feature, importance_mean, importance_std,
        impurity_importance, evaluated, rank; only the ``top`` best rows if given."""
        order = rank_order(self.rank, top)
        return pd.DataFrame({
            "feature": np.asarray(self.feature_names, dtype=object)[order],
            "importance_mean": self.importance_mean[order],
            "importance_std": self.importance_std[order],
            "impurity_importance": self.impurity_importance[order],
            "evaluated": self.evaluated[order],
            "rank": self.rank[order],
        })


def forest_importance(X: Any, y: Any, *, n_estimators: int = 500, n_repeats: int = 10,
                      max_features: Any = "sqrt", n_candidates: int | None = None, seed: int = 0,
                      n_jobs: int | None = 1) -> ForestResult:
    """Out-of-bag permutation importance of a class-balanced random forest.

    A :class:`~sklearn.ensemble.RandomForestClassifier` (``class_weight="balanced"``,
    ``min_samples_leaf=1``, bootstrap) is grown on all samples. For every tree and every feature
    the tree splits on, the feature is shuffled among that tree's out-of-bag (OOB) samples
    ``n_repeats`` times and the increase of the tree's class-balanced OOB error rate is recorded;
    averaging over trees gives Breiman's permutation importance (randomForest's unscaled
    ``MeanDecreaseAccuracy``, with class weights).

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        Expression matrix (samples in rows). Forests are invariant to monotone transforms, so
        the scale (counts or log) does not matter.
    y : array-like, shape (n_samples,)
        Binary outcome: 0/1, bool or any two labels; the case is the second level in sorted order.
    n_estimators : int
        Number of trees.
    n_repeats : int
        Shuffles per (tree, feature).
    max_features : {"sqrt", "log2"}, int, float or None
        Features considered at each split (scikit-learn's meaning).
    n_candidates : int, optional
        Compute the permutation importance only for the ``n_candidates`` features with the largest
        impurity importance; the others get importance 0 and rank after them (by impurity
        importance). Default ``None``: every feature. This is exact and cheap -- shuffling a
        feature that a tree never splits on cannot change that tree's predictions, so only the
        features a tree uses are shuffled (a tree on 16 samples uses a handful of the 16,000
        genes) -- so a cap only matters for large ``n``.
    seed : int
        Seeds the forest (``random_state=seed``) and the shuffles
        (``numpy.random.default_rng(seed)``): same seed, same result, whatever ``n_jobs``.
    n_jobs : int, optional
        Parallel jobs for growing the trees (scikit-learn's meaning; -1 = all cores).

    Returns
    -------
    ForestResult
        Permutation importance mean/std, impurity importance, rank and OOB performance.

    Notes
    -----
    *Why not the impurity importance.* The mean decrease in impurity is measured on the samples
    each tree was trained on and is biased towards features with many candidate split points
    (continuous, high-variance, high-cardinality features) even when they are pure noise; it is
    returned for comparison only.

    *Why out of bag.* With ``n = 16`` and ``min_samples_leaf=1`` every tree classifies its own
    bootstrap sample perfectly, so a permutation importance on the training data (e.g.
    ``sklearn.inspection.permutation_importance(forest, X, y)``) mostly measures memorisation.
    Each tree's OOB samples (about ``n / e``: 6 of 16) were not used to grow it, so the OOB
    error change is an honest, if noisy, held-out measure of each feature's importance. The
    ranking as a whole has still seen every label, so it must not be used to *pick genes and
    then* estimate accuracy on the same samples: redo the ranking inside each cross-validation
    fold.

    *Small n.* With 16 samples the OOB error of a tree moves in steps of about 1/6, so many
    importances tie or are exactly 0; ``oob_score`` is the balanced accuracy of 16 predictions
    (its standard error is about 0.12). ``importance_std`` reflects only the shuffles.

    *OOB scores are biased below chance at small n.* A sample is predicted only by trees grown
    without it, in which its own class is under-represented, so with no signal its prediction
    leans towards the *other* class (the anti-learning bias of leave-one-out). On pure-noise
    16 x 16,293 data (``simulate_rnaseq(null=True)``, four seeds) the OOB AUC was 0.0-0.4 and the
    balanced accuracy 0.1-0.55, with ``class_weight="balanced"``, ``"balanced_subsample"`` or
    none. The same bias makes shuffling a noise feature *reduce* the OOB error, so features a
    tree used by chance tend to get negative permutation importance; real signal is positive.

    *Cost.* Growing the forest dominates (scikit-learn spends about 2 ms of CPU per tree): 16 x
    16,293 with the defaults takes about 2 s, 128 x 12,625 (``all_bt``) about 5 s.
    """
    t0 = time.perf_counter()
    n_estimators = _check_int(n_estimators, "n_estimators", 1)
    n_repeats = _check_int(n_repeats, "n_repeats", 1)
    if n_candidates is not None:
        n_candidates = _check_int(n_candidates, "n_candidates", 1)
    max_features = _check_max_features(max_features)
    seed = _check_seed(seed)
    _require_scipy("stats")
    data = _check_Xy(X, y)
    X32 = np.ascontiguousarray(data.X, dtype=np.float32)   # scikit-learn's trees work in float32
    y01 = data.y
    n, p = X32.shape

    forest = _make_forest(n_estimators, max_features, seed, n_jobs).fit(X32, y01)
    t_fit = time.perf_counter() - t0
    if not hasattr(forest, "estimators_samples_"):  # pragma: no cover - scikit-learn < 1.4
        raise ImportError(
            "forest_importance needs scikit-learn >= 1.4 (for the trees' bootstrap samples, "
            f"RandomForestClassifier.estimators_samples_); upgrade with `{_FOREST_EXTRA}` "
            "or `pip install -U scikit-learn`")
    impurity = _impurity_importance(forest, p)

    if n_candidates is None or n_candidates >= p:
        evaluated = np.ones(p, dtype=bool)
    else:
        evaluated = np.zeros(p, dtype=bool)
        evaluated[np.lexsort((np.arange(p), -impurity))[:n_candidates]] = True

    # class-balanced sample weights for the per-tree OOB error
    w_class = np.array([1.0 / np.sum(y01 == 0), 1.0 / np.sum(y01 == 1)])
    w = w_class[y01]
    rng = np.random.default_rng(seed)
    delta = np.zeros((n_repeats, p))
    proba_sum = np.zeros(n)
    proba_count = np.zeros(n, dtype=np.int64)
    n_scored_trees = 0
    for est, inbag in zip(forest.estimators_, forest.estimators_samples_):
        oob_mask = np.ones(n, dtype=bool)
        oob_mask[inbag] = False
        oob = np.flatnonzero(oob_mask)
        if oob.size == 0:
            continue
        n_scored_trees += 1
        tree = est.tree_
        left, right, thr = tree.children_left, tree.children_right, tree.threshold
        value = tree.value[:, 0, :]
        value = value / np.maximum(value.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        pred_of_leaf = np.argmax(value, axis=1)
        used = np.unique(tree.feature[left >= 0])
        local = np.where(left >= 0, np.searchsorted(used, tree.feature), -1)
        Xl = X32[np.ix_(oob, used)]                           # (m, k)
        y_oob, w_oob = y01[oob], w[oob]
        leaf = _apply(left, right, local, thr, Xl, tree.max_depth)
        proba_sum[oob] += value[leaf, 1]
        proba_count[oob] += 1
        err0 = np.dot(w_oob, pred_of_leaf[leaf] != y_oob) / w_oob.sum()
        m, k = oob.size, used.size
        if k == 0 or m < 2:
            continue
        # shuffles are drawn for every feature the tree uses, evaluated or not, so that a
        # feature's importance does not depend on n_candidates
        perms = rng.permuted(np.broadcast_to(np.arange(m), (k, n_repeats, m)), axis=-1)
        shuffled = np.flatnonzero(evaluated[used])             # local indices to shuffle
        F = shuffled.size
        if F == 0:
            continue
        perms = perms[shuffled]
        Z = np.broadcast_to(Xl, (F, n_repeats, m, k)).copy()
        fi = shuffled[:, None, None]
        Z[np.arange(F)[:, None, None], np.arange(n_repeats)[None, :, None],
          np.arange(m)[None, None, :], fi] = Xl[perms, fi]
        leaf = _apply(left, right, local, thr, Z.reshape(-1, k), tree.max_depth)
        wrong = pred_of_leaf[leaf].reshape(F, n_repeats, m) != y_oob
        err = wrong @ w_oob / w_oob.sum()                     # (F, n_repeats)
        delta[:, used[shuffled]] += (err - err0).T
    if n_scored_trees:
        delta /= n_scored_trees
    importance_mean = delta.mean(axis=0)
    importance_std = delta.std(axis=0)
    importance_mean[~evaluated] = 0.0
    importance_std[~evaluated] = 0.0

    scored = proba_count > 0
    oob_proba = np.full(n, np.nan)
    oob_proba[scored] = proba_sum[scored] / proba_count[scored]
    if not scored.all():
        warnings.warn(
            f"{int((~scored).sum())} sample(s) were in the bootstrap sample of every tree and have "
            f"no out-of-bag prediction; increase n_estimators (got n_estimators={n_estimators})",
            DataWarning, stacklevel=2)
    ys, ps = y01[scored], oob_proba[scored]
    oob_score = _balanced_accuracy(ys, (ps > 0.5).astype(np.int8)) if len(set(ys)) == 2 else float("nan")
    oob_auc = _auc(ys, ps)

    # evaluated first (by permutation importance), then the rest (by impurity importance)
    primary = np.where(evaluated, -importance_mean, np.inf)
    rank = _ranks_from_order(np.lexsort((np.arange(p), -impurity, primary)))
    return ForestResult(
        feature_names=data.feature_names,
        importance_mean=importance_mean,
        importance_std=importance_std,
        impurity_importance=impurity,
        evaluated=evaluated,
        rank=rank,
        oob_score=oob_score,
        oob_auc=oob_auc,
        oob_proba=oob_proba,
        n_estimators=n_estimators,
        n_repeats=n_repeats,
        seed=seed,
        classes=data.classes,
        info={"fit_seconds": t_fit, "seconds": time.perf_counter() - t0,
              "n_evaluated": int(evaluated.sum()),
              "n_features_used_by_trees": int(np.count_nonzero(impurity))},
    )


# --- Boruta ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BorutaResult:
    """Boruta all-relevant feature selection (the answer of :func:`boruta`).

    ``p`` = number of features, ``T`` = ``n_iterations``.
    """

    feature_names: tuple[str, ...]
    """(p,) feature names."""
    decision: np.ndarray
    """(p,) str: "confirmed" (significantly more important than the best shadow),
    "rejected" (significantly less) or "tentative" (undecided after ``n_iterations``)."""
    hits: np.ndarray
    """(p,) int: iterations in which the feature's importance exceeded the shadow threshold."""
    n_tested: np.ndarray
    """(p,) int: iterations the feature took part in (up to its rejection)."""
    median_importance: np.ndarray
    """(p,) median impurity importance over the iterations the feature took part in."""
    rank: np.ndarray
    """(p,) int, 1 = best: confirmed, then tentative, then rejected; within a decision by
    decreasing hit fraction ``hits / n_tested``, then median importance, then column order."""
    n_iterations: int
    """Forests grown (stops early once every feature is decided)."""
    importance_history: np.ndarray
    """(T, p) float32 impurity importance per iteration; NaN once a feature is rejected."""
    shadow_threshold: np.ndarray
    """(T,) the shadow importance a feature had to beat in each iteration (the ``perc``
    percentile of the shadow importances; the maximum by default)."""
    alpha: float
    correction: str
    two_step: bool
    perc: float
    seed: int
    classes: tuple[Any, Any]
    """(control, case)."""
    info: dict = field(default_factory=dict, compare=False)
    """Bookkeeping: timings, features in play per iteration."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _names(self, which: str) -> list[str]:
        order = np.argsort(self.rank, kind="stable")
        return [self.feature_names[j] for j in order if self.decision[j] == which]

    @property
    def confirmed(self) -> list[str]:
        """Confirmed features, best first."""
        return self._names("confirmed")

    @property
    def tentative(self) -> list[str]:
        """Tentative features, best first."""
        return self._names("tentative")

    @property
    def rejected(self) -> list[str]:
        """Rejected features, best first."""
        return self._names("rejected")

    def to_frame(self, top: int | None = None) -> pd.DataFrame:
        """One row per feature sorted by rank: feature, decision, hits, n_tested,
        median_importance, rank; only the ``top`` best rows if given."""
        order = rank_order(self.rank, top)
        return pd.DataFrame({
            "feature": np.asarray(self.feature_names, dtype=object)[order],
            "decision": self.decision[order],
            "hits": self.hits[order],
            "n_tested": self.n_tested[order],
            "median_importance": self.median_importance[order],
            "rank": self.rank[order],
        })


def boruta(X: Any, y: Any, *, n_estimators: int = 200, max_iter: int = 100, alpha: float = 0.05,
           correction: str = "bonferroni", two_step: bool = False, perc: float = 100,
           shadows: str = "in_play", max_features: Any = "sqrt", seed: int = 0,
           n_jobs: int | None = 1) -> BorutaResult:
    """Boruta all-relevant feature selection (Kursa & Rudnicki 2010) on a balanced random forest.

    Each iteration grows a forest on the features still in play (not rejected) plus *shadow*
    features -- copies of the features in play with each column shuffled independently, so that
    they keep their distribution but lose any relation to ``y`` (at least 5 shadows, as in the
    original) -- and records a *hit* for every real feature whose impurity importance exceeds
    the ``perc`` percentile of the shadow importances (the best shadow by default). After each
    iteration a feature with ``h`` hits in ``k`` iterations is tested against
    ``Binomial(k, 1/2)`` on both sides: *confirmed* when it has significantly more hits than half
    (``P(H >= h)``), *rejected* when significantly fewer (``P(H <= h)``), each at ``alpha`` with
    a Bonferroni correction over all p features. Rejected features leave the forest; confirmed
    ones stay. The loop stops when no feature is tentative or after ``max_iter`` forests.

    The defaults are the original scheme as R's ``Boruta`` (``maxRuns``, Bonferroni) and
    BorutaPy with ``two_step=False`` run it; ``tests/test_forest.py`` compares the confirmed sets
    with BorutaPy's on real data.

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        Expression matrix (samples in rows); forests ignore monotone transforms.
    y : array-like, shape (n_samples,)
        Binary outcome: 0/1, bool or any two labels; the case is the second level in sorted order.
    n_estimators : int
        Trees per forest. Default 200 rather than R Boruta's 500: scikit-learn spends about 2 ms
        of CPU per tree whatever the width, so the run costs about
        ``n_estimators * n_iterations * 2 ms``, and 500 trees x 100 iterations would take minutes.
    max_iter : int
        Maximum number of forests (R's ``maxRuns``; R's Boruta and BorutaPy grow one forest
        fewer than their ``maxRuns`` / ``max_iter``).
    alpha : float
        Significance level of the two one-sided binomial tests.
    correction : {"bonferroni", "bh"}
        Correction across features, applied every iteration with all p features as the family:
        Bonferroni (``alpha / p``; the original, R Boruta's and BorutaPy's with
        ``two_step=False``) or Benjamini-Hochberg (FDR; BorutaPy's default). With p = 16,000
        Bonferroni cannot decide anything before iteration 19 (``0.5**k <= 0.05 / 16000``), so
        ``max_iter`` must exceed that for any decision; BH rejects the bulk of never-hit
        features at iteration 8.
    two_step : bool
        Also require ``p_value <= alpha / k`` at iteration ``k`` (BorutaPy's second step:
        Bonferroni over the repeated testing of the same feature; use with ``correction="bh"``).
    perc : float
        Percentile of the shadow importances to beat, in (0, 100]; 100 = the best shadow
        (original Boruta). Lower values are more permissive; with p >> n most shadows have
        importance 0, so a low percentile makes any feature used by one tree a hit.
    shadows : {"in_play", "all"}
        Which features get shadows each iteration. ``"in_play"`` (default): the non-rejected
        ones, as R's Boruta and BorutaPy do. ``"all"`` (opt-in): every one of the p features,
        always, so the best shadow stays the best of p null features. See Notes.
    max_features : {"sqrt", "log2"}, int, float or None
        Features per split (of the real + shadow width of the current forest).
    seed : int
        Seeds the shadows and every forest (``numpy.random.default_rng(seed)``).
    n_jobs : int, optional
        Parallel jobs for growing the trees.

    Returns
    -------
    BorutaResult
        Decision, hits, median importance and rank per feature.

    Notes
    -----
    *Importance.* Each forest's impurity (mean decrease in Gini) importance is used, as in the
    original Boruta and BorutaPy. It is biased towards high-variance / many-valued features, but
    every shadow has exactly the distribution of its real feature, so reals and shadows share the
    bias and the comparison with the best shadow calibrates it -- that is the point of the
    shadows. Permutation importance on 32,000 columns per iteration would be far too slow.

    *Shadows of the features in play, or of all.* A feature that survives the first iterations while
    thousands are rejected is, under the null, one of the few with the largest *chance* association
    with ``y`` in this sample. The original algorithm then compares it with shadows of the survivors
    only -- the best of a handful of null features instead of the best of p -- which makes it easier
    to confirm: that is both the original's power on real signal and its chance confirmations on
    noise (with BH and the two-step test, on pure noise with n = 60, p = 200, ``"in_play"``
    confirmed 4-6 features per run and ``"all"`` 0-1). ``shadows="all"`` keeps the threshold the
    best of p nulls: a stricter, less powerful variant, offered as an option; it costs nothing extra
    (the cost is per tree, not per column).

    *p >> n.* With 16 samples a tree is usually a single split; thousands of genes (and shadows)
    separate a bootstrap sample of ~10 distinct samples perfectly, and redundant genes share the
    importance, so a gene rarely beats the best shadow in more than half the forests, and the few
    that survive the mass rejection face only the shadows of the survivors. At this sample size the
    original scheme's confirmations are mostly chance: on ``jaxlasso demo``'s data (7 vs 9 samples,
    16,229 genes after log2-CPM, 300 truly DE; 200 trees, 100 forests) it confirmed 17 genes, 6 of
    them DE, BorutaPy with the same scheme 5 (1 DE), and ``shadows="all"`` none (T vs B cells at n =
    16 with ``shadows="all"``: every gene rejected, while 52 genes have BH q < 0.05 in a t-test).
    Boruta is a poor tool at this sample size, and saying so is the honest answer. Like any
    selection on all samples, its list must not be followed by an accuracy estimate on the same
    samples.

    *Speed.* The cost is about ``n_iterations * n_estimators`` trees at about 2 ms of CPU each:
    with the defaults at most 20,000 trees (about 40 s); with p = 16,000 Bonferroni decides
    nothing before iteration 19, so a run grows at least 19 forests unless ``max_iter`` is
    smaller.
    """
    t0 = time.perf_counter()
    n_estimators = _check_int(n_estimators, "n_estimators", 1)
    max_iter = _check_int(max_iter, "max_iter", 1)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05 (got alpha={alpha!r})")
    if correction not in _CORRECTIONS:
        raise ValueError(
            f"correction must be one of {', '.join(map(repr, _CORRECTIONS))} "
            f"(got correction={correction!r})")
    if isinstance(perc, bool) or not isinstance(perc, (int, float, np.integer, np.floating)) \
            or not 0 < perc <= 100:
        raise ValueError(f"perc must be a percentile in (0, 100]; 100 = the best shadow (got perc={perc!r})")
    if shadows not in _SHADOWS:
        raise ValueError(
            f"shadows must be one of {', '.join(map(repr, _SHADOWS))} (got shadows={shadows!r})")
    max_features = _check_max_features(max_features)
    seed = _check_seed(seed)
    stats = _require_scipy("stats")
    data = _check_Xy(X, y)
    X32 = np.ascontiguousarray(data.X, dtype=np.float32)
    y01 = data.y
    n, p = X32.shape

    rng = np.random.default_rng(seed)
    state = np.zeros(p, dtype=np.int8)            # 0 tentative, 1 confirmed, -1 rejected
    hits = np.zeros(p, dtype=np.int64)
    n_tested = np.zeros(p, dtype=np.int64)
    history: list[np.ndarray] = []
    thresholds: list[float] = []
    width: list[int] = []
    n_shadows: list[int] = []
    it = 0
    for it in range(1, max_iter + 1):
        play = np.flatnonzero(state >= 0)
        real = X32[:, play]
        source = X32 if shadows == "all" else real
        reps = math.ceil(5 / source.shape[1]) if source.shape[1] < 5 else 1
        shadow = rng.permuted(np.tile(source, (1, reps)), axis=0)  # each column shuffled
        forest_seed = int(rng.integers(0, 2**31 - 1))
        forest = _make_forest(n_estimators, max_features, forest_seed, n_jobs)
        forest.fit(np.hstack([real, shadow]), y01)
        imp = _impurity_importance(forest, play.size + shadow.shape[1])
        imp_real, imp_shadow = imp[:play.size], imp[play.size:]
        threshold = float(np.max(imp_shadow) if perc == 100 else np.percentile(imp_shadow, perc))
        hits[play] += imp_real > threshold
        n_tested[play] += 1
        row = np.full(p, np.nan, dtype=np.float32)
        row[play] = imp_real
        history.append(row)
        thresholds.append(threshold)
        width.append(int(play.size))
        n_shadows.append(int(shadow.shape[1]))

        # two one-sided binomial tests per feature, family = all p features
        p_accept = stats.binom.sf(hits - 1, n_tested, 0.5)
        p_reject = stats.binom.cdf(hits, n_tested, 0.5)
        if correction == "bh":
            accept = benjamini_hochberg(p_accept) <= alpha
            reject = benjamini_hochberg(p_reject) <= alpha
        else:
            accept = p_accept <= alpha / p
            reject = p_reject <= alpha / p
        if two_step:
            accept &= p_accept <= alpha / it
            reject &= p_reject <= alpha / it
        tentative = state == 0
        state[tentative & accept] = 1
        state[tentative & reject & ~accept] = -1
        if not np.any(state == 0):
            break

    hist = np.vstack(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # every column has >= 1 value
        median = np.nanmedian(hist.astype(np.float64), axis=0)
    decision = np.array(_DECISIONS, dtype=object)[np.select([state == 1, state == 0], [0, 1], 2)]
    group = np.select([state == 1, state == 0], [0, 1], 2)
    frac = hits / np.maximum(n_tested, 1)
    rank = _ranks_from_order(np.lexsort((np.arange(p), -median, -frac, group)))
    return BorutaResult(
        feature_names=data.feature_names,
        decision=decision,
        hits=hits,
        n_tested=n_tested,
        median_importance=median,
        rank=rank,
        n_iterations=it,
        importance_history=hist,
        shadow_threshold=np.asarray(thresholds),
        alpha=float(alpha),
        correction=correction,
        two_step=bool(two_step),
        perc=float(perc),
        seed=seed,
        classes=data.classes,
        info={"seconds": time.perf_counter() - t0, "n_in_play": width, "n_shadows": n_shadows},
    )
