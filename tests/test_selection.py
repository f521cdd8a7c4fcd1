"""The selection layer: preprocessing, stability selection, diagnosis and honest rank-then-lasso."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from jaxlasso.diagnose import diagnose
from jaxlasso.selection.filters import detect_counts, preprocess, t_filter, variance_filter
from jaxlasso.selection.pipeline import rank_then_lasso
from jaxlasso.selection.stability import error_control, stability_selection, subsample_weights
from jaxlasso.simulate import simulate_rnaseq

pytestmark = pytest.mark.filterwarnings("ignore::jaxlasso.FewObservationsWarning")


def planted(n=40, p=200, k=6, shift=1.6, seed=0):
    """Gaussian expression with k informative genes (mean shift between classes)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)]
    X = rng.normal(size=(n, p))
    X[:, :k] += shift * (y[:, None] - 0.5) * 2
    cols = [f"g{j:03d}" for j in range(p)]
    return pd.DataFrame(X, columns=cols), y, set(cols[:k])


# --- preprocessing ---------------------------------------------------------------------------
def test_count_detection_on_counts_and_logged_data(shared_data):
    sim = simulate_rnaseq(n_genes=500, seed=1)
    assert detect_counts(sim.counts.to_numpy()).looks_like_counts
    assert not detect_counts(np.log2(sim.counts.to_numpy() + 1)).looks_like_counts
    X, _, _ = shared_data("tissue_cerebellum_vs_hippocampus")  # log2 expression
    check = detect_counts(X)
    assert not check.looks_like_counts and "not raw counts" in check.reason


def test_preprocess_auto_logs_counts_and_drops_constant():
    sim = simulate_rnaseq(n_genes=500, seed=2)
    counts = sim.counts.copy()
    counts["ZERO"] = 0
    X, rep = preprocess(counts)
    # The default for counts is edgeR's log2-CPM (prior count 2 scaled by library size).
    assert rep.log_applied and rep.cpm_applied
    assert rep.n_constant_dropped >= 1 and "ZERO" in rep.dropped_constant
    lib = counts.sum(axis=1)
    prior = 2.0 * lib / lib.mean()
    np.testing.assert_allclose(X["GENE001"], np.log2((counts["GENE001"] + prior) / (lib + 2 * prior) * 1e6))
    assert any("log2-CPM" in s for s in rep.steps)


def test_preprocess_no_log_warns_on_unlogged_counts():
    sim = simulate_rnaseq(n_genes=300, seed=3)
    with pytest.warns(jaxlasso.DataWarning, match="look unlogged"):
        _, rep = preprocess(sim.counts, log="no")
    assert not rep.log_applied


def test_preprocess_cpm_and_errors():
    sim = simulate_rnaseq(n_genes=300, seed=4)
    X, rep = preprocess(sim.counts, cpm_normalize=True)
    assert rep.cpm_applied and rep.log_applied
    # Dropped constant genes are all-zero here, so the kept CPMs still sum to a million.
    np.testing.assert_allclose((2 ** X - 1).sum(axis=1), 1e6, rtol=1e-9)
    with pytest.raises(ValueError, match="negative values"):
        preprocess(pd.DataFrame(np.random.default_rng(0).normal(size=(5, 4))), log="yes")
    with pytest.raises(ValueError, match="log must be one of"):
        preprocess(sim.counts, log="maybe")
    with pytest.raises(ValueError, match="every feature is constant"):
        preprocess(pd.DataFrame(np.ones((5, 3))), log="no")


def test_variance_filter_fraction_and_count():
    X, _, _ = planted()
    X = (X - X.mean()) / X.std(ddof=0) * np.geomspace(0.01, 100, X.shape[1])  # SD increases with j
    top = variance_filter(X, 0.25)
    assert top.shape[1] == 50 and set(top.columns) == set(X.columns[-50:])
    assert variance_filter(X, 10).shape[1] == 10
    with pytest.raises(ValueError, match="fraction"):
        variance_filter(X, -1.0)


def test_t_filter_finds_planted_genes():
    X, y, truth = planted()
    keep = t_filter(X.to_numpy(), y, 6)
    assert {X.columns[j] for j in keep} == truth


# --- stability selection ---------------------------------------------------------------------
def test_error_control_two_of_three():
    c, q, e = error_control(1000, cutoff=0.75, pfer=1.0)
    assert q == np.floor(np.sqrt(1.0 * 0.5 * 1000))
    c2, q2, e2 = error_control(1000, q=10, pfer=1.0)
    assert e2 == 1.0 and c2 == pytest.approx(0.5 * (100 / 1000 + 1))
    c3, q3, e3 = error_control(1000, cutoff=0.9, q=10)
    assert e3 == pytest.approx(100 / (0.8 * 1000))
    with pytest.raises(ValueError, match="at most two"):
        error_control(100, cutoff=0.8, q=5, pfer=1)
    with pytest.raises(ValueError, match=r"\(0.5, 1\]"):
        error_control(100, cutoff=0.4)


def test_complementary_pairs_are_disjoint_and_stratified():
    y = np.r_[np.ones(7), np.zeros(9)]
    W = subsample_weights(y, np.ones(16), n_resamples=10, fraction=0.5, complementary_pairs=True,
                          stratified=True, seed=0)
    for i in range(0, 10, 2):
        a, b = W[i] > 0, W[i + 1] > 0
        assert not np.any(a & b)
        assert y[a].sum() == 3 and y[b].sum() == 3 and (~y.astype(bool) & a).sum() == 4


def test_stability_recovers_planted_genes_and_beats_lambda_min():
    X, y, truth = planted(n=40, p=200, k=6, shift=1.2, seed=5)
    st = stability_selection(X, y, n_resamples=40, seed=1, cutoff=0.6, pfer=2.0)
    sel = set(st.selected)
    tp = len(sel & truth)
    assert tp >= 4, f"stability selection found only {tp} of 6 planted genes"
    assert len(sel - truth) <= 2
    assert st.probabilities.shape == (len(st.lambdas), 200)
    assert 0 <= st.max_probability.min() and st.max_probability.max() <= 1
    frame = st.to_frame()
    assert list(frame.columns) == ["feature", "selection_probability", "selected", "rank"]
    cv = jaxlasso.cv_logistic_path(X, y, seed=1)
    lasso_min = set(cv.selected("lambda_min"))
    fdp_lasso = len(lasso_min - truth) / max(len(lasso_min), 1)
    fdp_stab = len(sel - truth) / max(len(sel), 1)
    assert fdp_stab <= fdp_lasso + 1e-12


@pytest.mark.slow
def test_stability_false_selections_within_bound_on_null():
    rng = np.random.default_rng(11)
    false, bounds = [], []
    for rep in range(20):
        X = rng.normal(size=(30, 150))
        y = np.r_[np.ones(15), np.zeros(15)]
        st = stability_selection(X, y, n_resamples=20, seed=rep, cutoff=0.75, q=6)
        false.append(len(st.selected))
        bounds.append(st.pfer_bound)
    assert np.mean(false) <= np.mean(bounds), (np.mean(false), np.mean(bounds))


@pytest.mark.slow
def test_vmapped_resamples_equal_loop():
    X, y, _ = planted(n=30, p=60, seed=8)
    a = stability_selection(X, y, n_resamples=8, seed=3, mode="vmap", tol=1e-10)
    b = stability_selection(X, y, n_resamples=8, seed=3, mode="loop", tol=1e-10)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    np.testing.assert_array_equal(a.max_probability, b.max_probability)


def test_randomized_lasso_runs_and_is_seeded():
    X, y, _ = planted(n=30, p=60, seed=9)
    a = stability_selection(X, y, n_resamples=8, seed=3, randomized_weakness=0.5)
    b = stability_selection(X, y, n_resamples=8, seed=3, randomized_weakness=0.5)
    np.testing.assert_array_equal(a.max_probability, b.max_probability)
    assert a.randomized_weakness == 0.5


# --- diagnosis -------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_signal_reported_on_permuted_labels():
    rng = np.random.default_rng(2026)
    X, y, _ = planted(n=30, p=80, shift=0.0, seed=12)
    flags = []
    for rep in range(20):
        yp = rng.permutation(y)
        cv = jaxlasso.cv_logistic_path(X, yp, nfolds=3, seed=rep, n_lambdas=16)
        d = diagnose(X, yp, cv, n_permutations=19, seed=rep)
        flags.append(d.no_signal)
        assert ("NO_SIGNAL" in d.codes()) == d.no_signal
    assert np.mean(flags) >= 0.9, f"NO_SIGNAL in only {np.mean(flags):.0%} of null replicates"


def test_signal_is_not_called_no_signal():
    X, y, _ = planted(n=40, p=100, shift=1.5, seed=13)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=3, seed=0, n_lambdas=16)
    d = diagnose(X, y, cv, n_permutations=19, seed=0)
    assert not d.no_signal and "SIGNAL" in d.codes()
    assert d.permutation.p_value <= 0.05
    frame = d.to_frame()
    assert list(frame.columns) == ["code", "severity", "message", "evidence", "action"]


def test_diagnosis_codes_on_seedlike_raw_counts():
    sim = simulate_rnaseq(n_genes=2000, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.DataWarning)
        X, rep = preprocess(sim.counts, log="no")
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]))
    cv = jaxlasso.cv_logistic_path(X, y, seed=0, n_lambdas=40)
    d = diagnose(X, y, cv, preprocess_report=rep, n_permutations=0)
    codes = d.codes()
    for code in ("SMALL_N", "FEW_PER_CLASS", "UNLOGGED_COUNTS"):
        assert code in codes
    small_n = d.get("SMALL_N")
    assert small_n.evidence["n"] == 16 and small_n.evidence["n_minority"] == 7
    assert d.get("UNLOGGED_COUNTS").severity == "critical"


def test_family_diagnosis_names_unlogged_counts_and_constant_genes():
    """The Gaussian diagnosis reads the same preprocessing report as the binomial one."""
    from jaxlasso.diagnose import diagnose_family
    from jaxlasso.outcomes import Outcome

    sim = simulate_rnaseq(n_genes=400, seed=1)
    counts = sim.counts.copy()
    counts.iloc[:, :3] = 0  # three all-zero genes, dropped as constant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.DataWarning)
        X, rep = preprocess(counts, log="no")
    outcome = Outcome.build("gaussian", np.log1p(sim.counts.iloc[:, 10].to_numpy(float)))
    cv = jaxlasso.cv_path(X, outcome.y, family="gaussian", nfolds=4, seed=0, n_lambdas=12)
    d = diagnose_family(X, outcome, cv, preprocess_report=rep, n_permutations=0)
    assert d.get("UNLOGGED_COUNTS").severity == "critical"
    assert d.get("CONSTANT_GENES").evidence["n_constant"] == rep.n_constant_dropped >= 3


# --- rank then lasso: leakage ----------------------------------------------------------------
def test_leaky_rank_then_lasso_is_optimistic_on_null_data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 2000))
    y = np.r_[np.ones(15), np.zeros(15)]
    res = rank_then_lasso(X, y, ranker="univariate", top_k=30, nfolds=5, seed=0)
    # Honest: no better than the intercept-only model (within noise); leaky: clearly "better".
    assert res.honest_cv > res.null_cv - 0.15
    assert res.leaky_cv < res.null_cv - 0.3
    assert res.optimism > 0.3
    assert len(res.fold_selected) == 5
    assert list(res.to_frame()["estimate"])[0].startswith("leaky")


# --- stability selection only where it can work ------------------------------------------------
def test_selection_probability_is_the_max_over_the_region_and_q_is_realised():
    X, y, _ = planted(n=40, p=120, k=6, shift=1.2, seed=22)
    # Correlated partners of the planted genes make features enter and leave the paths, where
    # "selected somewhere in the region" and "max over the region" differ.
    rng = np.random.default_rng(22)
    X.iloc[:, 6:12] = np.sqrt(0.8) * X.iloc[:, :6].to_numpy() + np.sqrt(0.2) * rng.normal(size=(40, 6))
    st = stability_selection(X, y, n_resamples=10, seed=2, cutoff=0.6, q=8)
    m = st.region_index
    # Meinshausen-Buehlmann: max over lambdas[0..m] of the per-lambda selection probability.
    np.testing.assert_array_equal(st.max_probability, st.probabilities[: m + 1].max(axis=0))
    np.testing.assert_array_equal(st.max_probability_path[m], st.max_probability)
    assert np.all(np.diff(st.max_probability_path, axis=0) >= 0)
    # Realised q: the subsamples' average number of features selected over the region.
    assert st.q == pytest.approx(st.n_selected_per_resample.mean())
    assert st.q <= st.q_target == 8
    # The union probabilities would sum to q; the maxima sum to less when a feature left a path.
    assert st.max_probability.sum() < st.q - 0.05
    assert st.pfer_bound == pytest.approx(st.q ** 2 / ((2 * st.cutoff - 1) * 120))
    frame = st.to_frame().set_index("feature")
    assert np.all(frame["selection_probability"].to_numpy()
                  == np.sort(st.max_probability[st.max_probability > 0])[::-1])


def test_stability_reachability_prediction():
    from jaxlasso.selection.stability import stability_reachable

    ok, q_target, capacity = stability_reachable(7, 9, 16293)          # the demo's design
    assert not ok and q_target == 90 and capacity == 3 + 4 - 1
    ok, q_target, capacity = stability_reachable(37, 74, 12625)        # ALL BCR/ABL
    assert ok and q_target == 79 and capacity == 18 + 37 - 1


@pytest.fixture(scope="module")
def demo_small_n():
    """`jaxlasso demo`'s data (7 vs 9, 16,293 genes, default preprocessing) with its CV lasso."""
    sim = simulate_rnaseq(seed=0)
    X, rep = preprocess(sim.counts)
    y = pd.Series(pd.Categorical(sim.y.loc[X.index], categories=["control", "case"]))
    cv = jaxlasso.cv_logistic_path(X, y, seed=0, n_lambdas=40)
    return X, y, rep, cv


def test_stability_not_recommended_at_n16(demo_small_n):
    X, y, rep, cv = demo_small_n
    d = diagnose(X, y, cv, preprocess_report=rep, n_permutations=0)
    f = d.get("STABILITY_UNREACHABLE")
    assert f is not None and f.severity == "warning"
    assert f.evidence["samples_per_half"] == 7 and f.evidence["q_target"] == 90
    assert "cannot work" in f.message and "no evidence" in f.message
    for other in d.findings:
        if other.code != "STABILITY_UNREACHABLE":
            assert "prefer stability" not in other.action and "with stability" not in other.action
    # What the run then realises: a q far below the target, flagged on the result.
    st = stability_selection(X, y, n_resamples=10, seed=0)
    assert st.q < 0.25 * st.q_target and not st.target_reachable
    assert st.region_index == len(st.lambdas) - 1      # the whole path stays below the target
    # The report's stability line gives the realised q next to the target and says why.
    from types import SimpleNamespace

    from jaxlasso.report import _methods_glance

    line = _methods_glance(SimpleNamespace(stability=st))[0]
    assert f"realised q = {st.q:.3g}" in line and "target q = 90" in line
    assert "cannot work" in line


def test_stability_recommended_where_it_can_work():
    X, y, _ = planted(n=40, p=200, shift=1.0, seed=22)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=0, n_lambdas=16)
    d = diagnose(X, y, cv, n_permutations=0)
    assert d.get("STABILITY_UNREACHABLE") is None
    assert "stability selection" in d.get("SMALL_N").action


def test_auto_strategy_skips_stability_selection_where_it_cannot_work():
    # 7 vs 9 samples: half-samples of 7 cannot reach the target q, so `auto` does not spend a
    # stability run whose empty result would be no evidence; an explicit count still runs it.
    from jaxlasso.simulate import simulate_rnaseq

    sim = simulate_rnaseq(n_genes=3000, seed=3)  # target q ~ 39: a quarter of it is out of reach
    auto = jaxlasso.select_features(sim.counts, sim.y, strategy="auto", n_permutations=0, n_repeats=1)
    assert auto.diagnosis.get("STABILITY_UNREACHABLE") is not None
    assert auto.stability is None and auto.univariate is not None
    asked = jaxlasso.select_features(sim.counts, sim.y, strategy="auto", n_permutations=0, n_repeats=1,
                                     stability=10)
    assert asked.stability is not None and asked.stability.n_resamples == 10
