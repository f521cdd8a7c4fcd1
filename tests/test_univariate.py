"""Univariate ranking (Welch t / AUC) and the Benjamini-Hochberg adjustment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

scipy_stats = pytest.importorskip("scipy.stats")

from helpers import real_data_path
from jaxlasso.exceptions import DataWarning
from jaxlasso.selection.univariate import UnivariateResult, benjamini_hochberg, univariate_ranking


def planted(n=60, p=200, n_signal=5, shift=1.5, seed=0, null=False):
    """Unbalanced classes (35 cases / 25 controls); the first n_signal features shift in cases."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n - n // 2 - 5), np.ones(n // 2 + 5)]
    X = rng.normal(size=(n, p))
    if not null:
        X[:, :n_signal] += shift * y[:, None]
    return X, y


# --- Benjamini-Hochberg ---------------------------------------------------------------------------
def test_bh_hand_computed():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.2 -> m p / k: 0.025, 0.025, 0.05, 0.05, 0.2 (already monotone)
    np.testing.assert_allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, 0.2])


def test_bh_monotone_step_down_and_cap():
    # m p / k = 0.03, 0.03, 0.025: the running minimum from the top pulls the first two down
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.02, 0.025]), [0.025] * 3)
    np.testing.assert_allclose(benjamini_hochberg([0.02, 0.01, 0.025]), [0.025] * 3)
    np.testing.assert_allclose(benjamini_hochberg([0.5, 0.9, 1.0]), [1.0, 1.0, 1.0])
    assert benjamini_hochberg([]).shape == (0,)
    np.testing.assert_allclose(benjamini_hochberg([[0.01, 0.02], [0.03, 0.04]]),
                               [[0.04, 0.04], [0.04, 0.04]])


def test_bh_matches_scipy():
    if not hasattr(scipy_stats, "false_discovery_control"):
        pytest.skip("scipy.stats.false_discovery_control needs SciPy >= 1.11")
    rng = np.random.default_rng(1)
    p = np.r_[rng.uniform(size=300), rng.uniform(0, 1e-3, size=20), [0.0, 1.0, 0.5, 0.5]]
    np.testing.assert_allclose(benjamini_hochberg(p), scipy_stats.false_discovery_control(p),
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("bad", [[0.1, np.nan], [-0.1, 0.5], [1.2]])
def test_bh_rejects_invalid(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\].*got p_value="):
        benjamini_hochberg(bad)


# --- Welch / AUC agree with scipy and sklearn ------------------------------------------------------
def test_welch_matches_scipy_ttest():
    X, y = planted(p=50)
    res = univariate_ranking(X, y)
    ref = scipy_stats.ttest_ind(X[y == 1], X[y == 0], equal_var=False, axis=0)
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=1e-10)
    np.testing.assert_allclose(res.p_value, ref.pvalue, rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(res.effect, X[y == 1].mean(0) - X[y == 0].mean(0), atol=1e-12)
    assert isinstance(res, UnivariateResult) and res.method == "welch"
    assert (res.n_control, res.n_case) == (25, 35)


def test_auc_matches_sklearn_and_mannwhitney():
    from sklearn.metrics import roc_auc_score

    X, y = planted(n=20, p=30, seed=3)
    X[:, 7] = np.round(X[:, 7])                      # a feature with ties: asymptotic p-value
    res = univariate_ranking(X, y, method="auc")
    auc = [roc_auc_score(y, X[:, j]) for j in range(X.shape[1])]
    np.testing.assert_allclose(res.statistic, auc, rtol=1e-12)
    np.testing.assert_allclose(res.effect, np.asarray(auc) - 0.5, rtol=1e-12, atol=1e-15)
    for j in (0, 7, 20):
        ref = scipy_stats.mannwhitneyu(X[y == 1, j], X[y == 0, j], alternative="two-sided")
        np.testing.assert_allclose(res.p_value[j], ref.pvalue, rtol=1e-10)


def test_rank_orders_by_p_then_abs_statistic():
    X, y = planted(p=40)
    res = univariate_ranking(X, y)
    order = np.argsort(res.rank)
    assert np.all(np.diff(res.p_value[order]) >= 0)
    assert sorted(res.rank) == list(range(1, 41))
    # p-values that underflow to 0 are ordered by |t|
    Xs = np.c_[np.r_[np.zeros(25), np.ones(35)] * 1e6 + np.random.default_rng(0).normal(size=60),
               np.r_[np.zeros(25), np.ones(35)] * 1e7 + np.random.default_rng(1).normal(size=60)]
    res = univariate_ranking(Xs, y)
    assert np.all(res.p_value == 0.0)
    assert list(res.rank) == [2, 1]


# --- planted signal and null -----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["welch", "auc"])
def test_planted_signal_ranked_first(method):
    X, y = planted()
    res = univariate_ranking(X, y, method=method)
    assert set(np.argsort(res.rank)[:5]) == set(range(5))
    assert np.all(res.q_value[:5] < 0.01)
    assert np.sum(res.q_value[:5] < 1e-3) >= 3
    assert np.all(res.effect[:5] > 0)
    frame = res.to_frame()
    assert list(frame.columns) == ["feature", "statistic", "effect", "p_value", "q_value", "rank"]
    assert set(frame.feature[:5]) == {f"x{j}" for j in range(5)}
    assert list(frame["rank"]) == list(range(1, 201))


def test_null_q_values_near_one():
    X, y = planted(null=True, seed=4)
    res = univariate_ranking(X, y)
    assert np.mean(res.q_value > 0.5) > 0.9
    assert res.q_value.min() > 0.05
    assert np.all(res.q_value >= res.p_value)


# --- special features, names and labels -----------------------------------------------------------
def test_constant_features_give_p_one_without_warnings():
    X, y = planted(p=6)
    X[:, 1] = 0.1                                     # a mean of 0.1s is not exactly 0.1 in floats
    X[:, 2] = 7.0
    for method in ("welch", "auc"):
        res = univariate_ranking(X, y, method=method)  # any RuntimeWarning would fail the test
        assert np.all(np.isfinite(res.statistic))
        assert res.p_value[1] == res.p_value[2] == 1.0
        assert res.q_value[1] == 1.0
        assert res.effect[1] == res.effect[2] == 0.0
        assert res.statistic[1] == (0.0 if method == "welch" else 0.5)
        assert set(res.rank[[1, 2]]) == {5, 6}


def test_perfect_separation_constant_within_class():
    X, y = planted(p=3)
    X[:, 0] = 2.0 * y
    res = univariate_ranking(X, y)
    assert res.statistic[0] == np.inf and res.p_value[0] == 0.0 and res.rank[0] == 1


def test_dataframe_names_and_string_labels():
    X, y = planted(p=8)
    df = pd.DataFrame(X, columns=[f"gene{j}" for j in range(8)])
    labels = np.where(y == 1, "tumour", "normal")      # case = "tumour" (second in sorted order)
    res = univariate_ranking(df, labels)
    assert res.feature_names == tuple(df.columns)
    assert res.classes == ("normal", "tumour")
    assert res.to_frame().feature.iloc[0] == "gene" + str(int(np.argmin(res.rank)))
    flipped = univariate_ranking(df, np.where(y == 1, "a_case", "b_control"))
    np.testing.assert_allclose(flipped.statistic, -res.statistic)


def test_sample_weights():
    X, y = planted(p=10)
    base = univariate_ranking(X, y)
    same = univariate_ranking(X, y, sample_weight=np.full(60, 3.0))
    np.testing.assert_allclose(same.statistic, base.statistic, rtol=1e-12)
    np.testing.assert_allclose(same.p_value, base.p_value, rtol=1e-10)
    w = np.ones(60)
    w[[0, 1, 40]] = 0.0                               # zero weight = sample dropped
    keep = w > 0
    for method in ("welch", "auc"):
        dropped = univariate_ranking(X, y, sample_weight=w, method=method)
        subset = univariate_ranking(X[keep], y[keep], method=method)
        np.testing.assert_allclose(dropped.statistic, subset.statistic, rtol=1e-12)
        np.testing.assert_allclose(dropped.p_value, subset.p_value, rtol=1e-10)
    uneven = univariate_ranking(X, y, sample_weight=np.linspace(0.5, 2, 60))
    assert np.all(np.isfinite(uneven.statistic)) and not np.allclose(uneven.statistic, base.statistic)
    with pytest.raises(ValueError, match=r"method='auc' supports only equal.*got sample_weight"):
        univariate_ranking(X, y, method="auc", sample_weight=np.linspace(0.5, 2, 60))


def test_raw_counts_warn():
    rng = np.random.default_rng(0)
    counts = rng.poisson(2000, size=(12, 5)).astype(float)
    y = np.r_[np.zeros(6), np.ones(6)]
    with pytest.warns(DataWarning, match="raw counts"):
        univariate_ranking(counts, y)
    univariate_ranking(counts, y, method="auc")         # rank-based: no warning
    univariate_ranking(np.log2(counts + 1), y)


# --- bad input -------------------------------------------------------------------------------------
def _nan(X):
    X = X.copy()
    X[3, 2] = np.nan
    return X


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda X, y: (X, np.zeros(60)), ValueError, r"only one class.*single level 0 "),
    (lambda X, y: (X, y[:-1]), ValueError, r"different numbers of samples.*n_rows\(X\)=60, len\(y\)=59"),
    (lambda X, y: (_nan(X), y), ValueError, r"non-finite.*row 3, column 2"),
    (lambda X, y: (X, np.r_[y[:-1], 2]), ValueError, r"more than two classes.*3 levels \[0, 1, 2\]"),
    (lambda X, y: (X[:, 0], y), ValueError, r"2-D.*got shape=\(60,\)"),
    (lambda X, y: (X.astype(str), y), TypeError, r"numeric.*got dtype="),
    (lambda X, y: (X, np.r_[1.0, np.zeros(59)]), ValueError, r"at least 2 samples.*(n_1=1|1 samples of class 1)"),
    (lambda X, y: (X, np.r_[np.nan, y[1:]]), ValueError, r"missing label.*rows \[0\]"),
])
def test_bad_inputs(make, exc, pattern):
    X, y = planted(p=5)
    Xb, yb = make(X, y)
    with pytest.raises(exc, match=pattern):
        univariate_ranking(Xb, yb)


def test_bad_options():
    X, y = planted(p=5)
    with pytest.raises(ValueError, match=r"method must be one of.*got method='ttest'"):
        univariate_ranking(X, y, method="ttest")
    with pytest.raises(ValueError, match=r"one weight per sample.*got sample_weight.shape=\(3,\)"):
        univariate_ranking(X, y, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match=r"non-negative.*got min\(sample_weight\)=-1"):
        univariate_ranking(X, y, sample_weight=np.r_[-1.0, np.ones(59)])


# --- real data ------------------------------------------------------------------------------------
def test_all_bt_top_genes_have_tiny_q_values():
    path = real_data_path("all_bt")
    d = np.load(path, allow_pickle=False)
    X, y, genes = d["X"][:, :2000].astype(np.float64), d["y"], d["genes"][:2000]
    df = pd.DataFrame(X, columns=[str(g) for g in genes])
    for method in ("welch", "auc"):
        res = univariate_ranking(df, y, method=method)
        top = res.to_frame().head(10)
        assert np.all(top.q_value < 1e-8), top
        assert set(top.feature) <= set(df.columns)
    welch = univariate_ranking(df, y)
    assert np.sum(welch.q_value < 0.01) > 50        # T vs B cells: a strong, broad signal


def test_rank_order_is_the_stable_argsort_head_without_the_full_sort():
    """``rank_order(rank, top)`` = ``argsort(rank, kind="stable")[:top]`` for every ``top``,
    with ties (kept in position order) and NaN ranks; ``to_frame(top=k)`` is the first ``k``
    rows of the whole table."""
    from jaxlasso.selection.univariate import rank_order

    rng = np.random.default_rng(3)
    rank = rng.integers(0, 12, size=40).astype(float)
    rank[[5, 17, 33]] = np.nan
    for top in (None, 0, 1, 2, 5, 12, 36, 37, 38, 40, 99):
        want = np.argsort(rank, kind="stable")[:top]
        np.testing.assert_array_equal(rank_order(rank, top), want)
    with pytest.raises(ValueError, match="top must be None or >= 0"):
        rank_order(rank, -1)
    X = rng.normal(size=(20, 300))
    y = np.repeat([0, 1], 10)
    X[y == 1, :4] += 2.0
    res = univariate_ranking(X, y)
    whole = res.to_frame()
    for k in (1, 20, 299, 300, 1000):
        pd.testing.assert_frame_equal(res.to_frame(top=k), whole.head(k))


def test_welch_ranking_does_not_import_scipy_stats():
    """The default ranking (Welch) takes its p-values from ``scipy.special``: importing
    ``scipy.stats`` adds about 60 MB to a process, more than the rest of the ranking needs at
    16 x 200,000. A fresh process, so that no other test has imported it."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from jaxlasso.selection.univariate import univariate_ranking\n"
            "X = np.random.default_rng(0).normal(size=(12, 30))\n"
            "r = univariate_ranking(X, np.repeat([0, 1], 6))\n"
            "assert np.all((r.p_value > 0) & (r.p_value <= 1)), r.p_value\n"
            "print(sorted(m for m in sys.modules if m.startswith('scipy.stats')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
