"""The verdict's contract: one calibrated decision, words that match the evidence, results that do
not depend on which class is called the case."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from jaxlasso.diagnose import diagnose
from jaxlasso.diagnose import permutation_test as _perm_test
from jaxlasso.folds import make_foldid
from jaxlasso.workflow import default_repeats, describe_gene_list, select_features

pytestmark = pytest.mark.filterwarnings("ignore::jaxlasso.FewObservationsWarning")

DESCRIPTION = ("selected by the lasso at lambda.1se; prediction tested by cross-validation; "
               "gene identities not validated")


def _subset(X, y, n, seed, genes=None):
    """A class-proportional subsample of a real dataset (>= 3 per class), optionally fewer genes."""
    rng = np.random.default_rng(seed)
    cases, controls = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    n_case = min(max(int(round(n * len(cases) / len(y))), 3), n - 3)
    idx = np.sort(np.r_[rng.choice(cases, n_case, replace=False), rng.choice(controls, n - n_case, replace=False)])
    frame = pd.DataFrame(np.asarray(X, float)[idx])
    if genes is not None:
        top = np.argsort(-frame.var(axis=0).to_numpy(), kind="stable")[:genes]
        frame = frame.iloc[:, np.sort(top)]
    frame.columns = [f"g{j}" for j in frame.columns]
    return frame, np.asarray(y)[idx], rng


# --- folds and permutations do not depend on the coding --------------------------------------
@pytest.mark.parametrize("n, n_case, nfolds", [(16, 7, 7), (16, 9, 7), (111, 37, 10), (30, 15, 5)])
def test_stratified_folds_depend_only_on_the_partition(n, n_case, nfolds):
    rng = np.random.default_rng(n + n_case)
    y = np.zeros(n)
    y[rng.choice(n, n_case, replace=False)] = 1.0
    w = np.ones(n)
    a = make_foldid(y, w, nfolds=nfolds, stratified=True, n_repeats=3, seed=5)
    b = make_foldid(1.0 - y, w, nfolds=nfolds, stratified=True, n_repeats=3, seed=5)
    np.testing.assert_array_equal(a, b)
    for r in range(3):  # still stratified: each class spread over the folds as evenly as possible
        for cls in (0.0, 1.0):
            counts = np.bincount(a[r][y == cls], minlength=nfolds)
            assert counts.max() - counts.min() <= 1


@pytest.mark.slow
def test_case_swap_on_real_data_gives_the_same_genes_negated(shared_data):
    """ALL BCR/ABL (a subset, to stay fast): either class as the case, same seed -> identical folds,
    the same genes with negated coefficients, the same permutation p (the draws are invariant)."""
    X, y, _ = shared_data("all_bcrabl")
    frame, yy, _ = _subset(X, y, 60, seed=3, genes=1500)
    labels = np.where(yy == 1, "BCR/ABL", "NEG")
    reps = []
    for levels in (["NEG", "BCR/ABL"], ["BCR/ABL", "NEG"]):
        lab = pd.Series(pd.Categorical(labels, categories=levels))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reps.append(select_features(frame, lab, strategy="lasso", n_permutations=9, seed=0))
    a, b = reps
    assert a.classes == ("NEG", "BCR/ABL") and b.classes == ("BCR/ABL", "NEG")
    assert a.cv.n_repeats == 10  # n = 60 < 100: repeated CV by default
    np.testing.assert_array_equal(a.cv.foldid, b.cv.foldid)
    assert len(a.selected) > 0 and a.selected == b.selected
    np.testing.assert_allclose(a.coefficients.to_numpy(), -b.coefficients.to_numpy(), rtol=1e-6, atol=1e-9)
    assert list(a.lambda_min_coefficients.index) == list(b.lambda_min_coefficients.index)
    np.testing.assert_allclose(a.cv.cv_mean, b.cv.cv_mean, rtol=1e-8)
    assert a.permutation_p == b.permutation_p
    np.testing.assert_allclose(a.diagnosis.permutation.null_statistics, b.diagnosis.permutation.null_statistics,
                               rtol=1e-6, atol=1e-10)


# --- repeated CV by default below 100 samples ------------------------------------------------
def test_default_repeats_rule():
    assert default_repeats(16) == 10 and default_repeats(99) == 10
    assert default_repeats(100) == 1 and default_repeats(111) == 1


# --- one decision: the permutation test --------------------------------------------------------
def _planted(n=40, p=120, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)]
    X = rng.normal(size=(n, p))
    X[:, :5] += shift * (y[:, None] - 0.5) * 2
    return pd.DataFrame(X, columns=[f"g{j:03d}" for j in range(p)]), y


def test_signal_detected_is_the_permutation_test_and_nothing_else():
    X, y = _planted(shift=1.5, seed=13)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=4, seed=0, n_lambdas=20, keep=True)
    d = diagnose(X, y, cv, n_permutations=19, seed=0)
    p = d.permutation.p_value
    assert d.signal_detected is (p <= 0.05) and d.alpha == 0.05
    assert d.permutation.resolution == pytest.approx(1 / 20)
    # The level moves the decision, the 1-SE comparison never does.
    strict = diagnose(X, y, cv, n_permutations=19, seed=0, alpha=0.01)
    assert strict.permutation.p_value == p and strict.signal_detected is (p <= 0.01)
    assert (strict.signal_detected is False) == ("NO_SIGNAL" in strict.codes())
    with pytest.raises(ValueError, match="alpha"):
        diagnose(X, y, cv, n_permutations=19, alpha=1.5)
    with pytest.raises(ValueError, match="n_permutations"):
        diagnose(X, y, cv, n_permutations=-1)


def test_a_test_stopped_once_p_cannot_reach_alpha_gives_the_full_tests_decision(shared_data):
    """``stop_at=alpha`` (what the power plan uses) runs the full test's first permutations in
    its order and stops once their exceedances put p above alpha: the same decision, the same
    statistics as far as it went, and a p-value that bounds the full one from below."""
    from jaxlasso.diagnose import permutation_test

    X, y, _ = shared_data("tissue_cerebellum_vs_hippocampus")
    X = X[:, :200]
    cases = [y] + [np.random.default_rng(s).permutation(y) for s in range(4)]
    stopped_early = 0
    for k, labels in enumerate(cases):
        cv = jaxlasso.cv_logistic_path(X, labels, nfolds=5, seed=k, n_lambdas=20)
        full = permutation_test(X, labels, cv, n_permutations=19, seed=k)
        fast = permutation_test(X, labels, cv, n_permutations=19, seed=k, stop_at=0.05)
        assert (fast.p_value <= 0.05) == (full.p_value <= 0.05)
        assert fast.statistic == full.statistic and fast.n_permutations == 19
        run = len(fast.null_statistics)
        np.testing.assert_array_equal(fast.null_statistics, full.null_statistics[:run])
        assert fast.completed is (run == 19)
        if fast.completed:
            assert fast.p_value == full.p_value
        else:
            stopped_early += 1
            assert 0.05 < fast.p_value <= full.p_value
        if k == 0:  # the real labels: detected, so every permutation had to run
            assert full.p_value <= 0.05 and fast.completed
    assert stopped_early >= 2  # permuted labels rarely need all 19 to be ruled out


def test_later_labellings_start_at_the_capacity_the_first_ones_needed(shared_data, monkeypatch):
    """The permutation test's engine calls after the first start their lanes at the working-set
    capacity the previous call's median lane ended with (no regrowth through the small levels),
    one the first call's lanes grew through (no program of its own), and that changes no
    statistic."""
    import importlib

    D = importlib.import_module("jaxlasso.diagnose")  # the module (jaxlasso.diagnose is also a function)
    X, y, _g = shared_data("tissue_cerebellum_vs_hippocampus")
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=0, n_lambdas=30)
    starts, grown = [], []
    solve = D.solve_lanes

    def spy(prob, lanes, **kw):
        out = solve(prob, lanes, **kw)
        starts.append(lanes.k0)
        grown.append(out.capacities)
        return out

    monkeypatch.setattr(D, "solve_lanes", spy)
    hinted = D.permutation_test(X, y, cv, n_permutations=39, seed=3)
    assert starts[0] is None and len(starts) > 2
    assert all(k is not None and k > 32 for k in starts[1:])  # these lanes do outgrow 32 slots
    assert max(grown[0]) > 32 and all(len(c) < len(grown[0]) for c in grown[1:])
    # ... at a capacity the first call grew through: its program is compiled already.
    assert all(k in grown[0] for k in starts[1:]), (starts, grown)
    monkeypatch.setattr(D, "_typical_capacity", lambda *args: None)
    plain = D.permutation_test(X, y, cv, n_permutations=39, seed=3)
    np.testing.assert_allclose(hinted.null_statistics, plain.null_statistics, rtol=0, atol=1e-9)
    assert hinted.statistic == pytest.approx(plain.statistic, abs=1e-9) and hinted.p_value == plain.p_value


@pytest.mark.parametrize("data", ["tissue", "stops_early"])
@pytest.mark.parametrize("lane_mode", ["loop", "vmap"])
def test_looped_permutation_lanes_run_the_programs_of_the_cvs_grid(shared_data, monkeypatch, lane_mode, data):
    """The test's short grid is padded to the bucket of the CV's nominal grid (70 lambdas:
    128, also where the CV's path stopped early) where lanes are looped -- the padding is never
    stepped through -- so the test runs the CV's compiled programs; under vmap it keeps its own
    bucket. The statistics are those of the unpadded grid."""
    import importlib

    from jaxlasso._engine import configure
    from jaxlasso._engine import lanes as engine_lanes

    D = importlib.import_module("jaxlasso.diagnose")
    if data == "tissue":
        X, y, _g = shared_data("tissue_cerebellum_vs_hippocampus")
    else:  # three genes almost separate the classes: glmnet's stopping rule ends the path early
        rng = np.random.default_rng(5)
        y = np.repeat([0.0, 1.0], 20)
        X = rng.normal(size=(40, 10))
        X[:, :3] += 4 * (y - 0.5)[:, None]
    with configure(lane_mode=lane_mode):
        calls = []
        first_call = engine_lanes._first_call_alone

        def spy(fn, args, *rest):
            calls.append((fn, args[1].shape[0]))
            return first_call(fn, args, *rest)

        monkeypatch.setattr(engine_lanes, "_first_call_alone", spy)
        vmapped = engine_lanes.solve_vmapped

        def spy_vmapped(batch, *rest):
            calls.append((None, batch.Lp))
            return vmapped(batch, *rest)

        monkeypatch.setattr(engine_lanes, "solve_vmapped", spy_vmapped)
        cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=0, n_lambdas=70)  # bucket 128
        calls[:] = []
        padded = D.permutation_test(X, y, cv, n_permutations=19, seed=3)
        test_calls, calls[:] = set(calls), []
        solve = D._solve_labellings
        monkeypatch.setattr(D, "_solve_labellings", lambda *a, **kw: solve(*a, **{**kw, "lambda_bucket": None}))
        plain = D.permutation_test(X, y, cv, n_permutations=19, seed=3)
    if data == "stops_early":
        assert len(cv.lambdas) <= 64, "this CV's path must stop early, below its grid's bucket"
    own = {L for _, L in calls}  # the unpadded test's grid bucket (~35 lambdas)
    assert len(own) == 1 and max(own) < 128
    assert {L for _, L in test_calls} == ({128} if lane_mode == "loop" else own)
    np.testing.assert_allclose(padded.null_statistics, plain.null_statistics, rtol=0, atol=1e-9)
    assert padded.statistic == pytest.approx(plain.statistic, abs=1e-9) and padded.p_value == plain.p_value


def test_later_engine_calls_take_more_labellings_and_change_no_statistic(shared_data, monkeypatch):
    import importlib

    D = importlib.import_module("jaxlasso.diagnose")
    X, y, _g = shared_data("tissue_cerebellum_vs_hippocampus")
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=0, n_lambdas=30)
    lanes_per_call = []
    solve = D.solve_lanes

    def spy(prob, lanes, **kw):
        lanes_per_call.append(len(lanes.W))
        return solve(prob, lanes, **kw)

    monkeypatch.setattr(D, "solve_lanes", spy)
    grouped = D.permutation_test(X, y, cv, n_permutations=59, seed=4)
    first, later = lanes_per_call[0], lanes_per_call[1:]
    assert later and max(later) == D._LATER_CALL_FACTOR * first > first and sum(lanes_per_call) == 60 * 5
    lanes_per_call.clear()
    monkeypatch.setattr(D, "_LATER_CALL_FACTOR", 1)
    even = D.permutation_test(X, y, cv, n_permutations=59, seed=4)
    assert max(lanes_per_call) == first
    np.testing.assert_allclose(grouped.null_statistics, even.null_statistics, rtol=0, atol=1e-9)
    assert grouped.statistic == pytest.approx(even.statistic, abs=1e-9) and grouped.p_value == even.p_value


def test_the_test_uses_the_cvs_folds_unless_asked_for_fewer(shared_data):
    """By default every labelling's CV has the CV's number of folds; ``n_folds`` gives all of them
    fewer (the observed labels' folds then dealt as a permutation's), within 2 .. the CV's."""
    X, y, _g = shared_data("tissue_cerebellum_vs_hippocampus")
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=10, seed=0, n_lambdas=20)
    default = _perm_test(X, y, cv, n_permutations=9, seed=1)
    five = _perm_test(X, y, cv, n_permutations=9, seed=1, n_folds=5)
    assert default.nfolds == 10 and five.nfolds == 5
    assert five.statistic != default.statistic  # another CV of the observed labels
    assert default.p_value <= 0.1 and five.p_value <= 0.1  # the tissue contrast is strong
    with pytest.raises(ValueError, match="n_folds must be >= 2 .got n_folds=1."):
        _perm_test(X, y, cv, n_permutations=4, seed=1, n_folds=1)
    with pytest.raises(ValueError, match="n_folds must be between 2 and the CV's 10 folds .got n_folds=11."):
        _perm_test(X, y, cv, n_permutations=4, seed=1, n_folds=11)
    with pytest.raises(TypeError, match="n_folds must be an integer"):
        _perm_test(X, y, cv, n_permutations=4, seed=1, n_folds=2.9)


def test_no_permutations_means_not_tested():
    X, y = _planted(shift=1.5, seed=13)
    rep = select_features(X, y, strategy="lasso", n_permutations=0, seed=0)
    assert rep.signal_detected is None and rep.permutation_p is None and rep.p_resolution is None
    codes = rep.diagnosis.codes()
    assert "NOT_TESTED" in codes and "SIGNAL" not in codes and "NO_SIGNAL" not in codes
    assert rep.verdict.startswith("Signal not tested")
    assert rep.gene_list_description == DESCRIPTION


def test_no_signal_words_match_the_evidence(shared_data):
    """n = 16 of the tissue set with permuted labels: 'not detectable with n = 16 by this test',
    never 'the data show no signal'; lambda.min's genes are listed as exploratory, never noise."""
    X, y, _ = shared_data("tissue_cerebellum_vs_hippocampus")
    for seed in range(6):
        frame, yy, rng = _subset(X, y, 16, seed=seed)
        rep = select_features(frame, rng.permutation(yy), strategy="lasso", n_permutations=19, seed=seed,
                              plan="off")
        if rep.signal_detected is False and len(rep.lambda_min_coefficients) and not rep.selected:
            break
    else:
        pytest.fail("no null subsample with lambda.min genes and none at lambda.1se")
    finding = rep.diagnosis.get("NO_SIGNAL")
    text = (finding.message + " " + finding.action + " " + rep.verdict).lower()
    assert "no predictive signal detectable with n = 16 by this test" in text
    for banned in ("data show no", "noise", "validated selection"):
        assert banned not in text
    assert "exploratory" in (finding.action + rep.verdict).lower()
    assert "b = 19" in rep.verdict.lower() and "resolution 0.05" in rep.verdict
    table = rep.table()
    assert "lambda_min" in table.columns
    listed = table.dropna(subset=["lambda_min"]).set_index("feature")["lambda_min"]
    pd.testing.assert_series_equal(listed, rep.lambda_min_coefficients, check_names=False)
    assert not table["lasso_selected"].any()


def test_lambda_min_at_the_end_of_the_grid_is_a_finding():
    X, y = _planted(n=30, p=40, shift=3.0, seed=4)  # separable: the CV curve falls to the grid's end
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=3, seed=0, n_lambdas=12, lambda_min_ratio=0.2)
    d = diagnose(X, y, cv, n_permutations=0)
    assert cv.index_min == len(cv.lambdas) - 1
    f = d.get("LAMBDA_MIN_AT_EDGE")
    assert f is not None and f.evidence["index_min"] == len(cv.lambdas) - 1
    cv_wide = jaxlasso.cv_logistic_path(X, y, nfolds=3, seed=0, n_lambdas=40)
    if cv_wide.index_min < len(cv_wide.lambdas) - 1:
        assert diagnose(X, y, cv_wide, n_permutations=0).get("LAMBDA_MIN_AT_EDGE") is None


def test_pooled_auc_beside_deviance():
    X, y = _planted(shift=1.5, seed=13)
    rep = select_features(X, y, strategy="lasso", n_permutations=0, seed=0, n_repeats=2)
    from jaxlasso.metrics import weighted_auc

    expected = np.mean([weighted_auc(y, rep.cv.prevalidated_repeats[r]) for r in range(2)], axis=0)
    np.testing.assert_allclose(rep.cv_auc, expected)
    auc, se = rep.auc_at(rep.cv.index_min)
    assert auc > 0.8 and 0 <= se < 0.2  # five genes shifted by 1.5 SD: well separated
    assert f"pooled CV AUC {auc:.2f} ± {se:.2f}" in rep.verdict


def test_description_names_the_rule():
    assert describe_gene_list("lambda_min").startswith("selected by the lasso at lambda.min;")


# --- calibration: the false-signal rate on permuted real data ---------------------------------
RUNS = 60
B = 19


def _null_decisions(shared_data):
    """RUNS null runs of the whole decision on permuted tissue subsamples (n = 16, 24, 32)."""
    X, y, _ = shared_data("tissue_cerebellum_vs_hippocampus")
    out = []
    for i in range(RUNS):
        frame, yy, rng = _subset(X, y, (16, 24, 32)[i % 3], seed=i)
        rep = select_features(frame, rng.permutation(yy), strategy="lasso", n_permutations=B, seed=i,
                              n_repeats=1, plan="off")
        best, se, null = rep.cv_error
        out.append((rep.signal_detected, null - best > se, rep.permutation_p))
    return out


@pytest.mark.slow
def test_false_signal_rate_is_calibrated(shared_data):
    """At most alpha + 2 binomial SEs of the runs announce signal on permuted labels; the old rule
    (1-SE gain OR p < 0.05) announced it far more often on the same runs."""
    runs = _null_decisions(shared_data)
    detected = np.array([r[0] for r in runs])
    bound = 0.05 + 2 * math.sqrt(0.05 * 0.95 / RUNS)
    assert detected.mean() <= bound, f"false-signal rate {detected.mean():.3f} > {bound:.3f}"
    old = np.array([r[1] or r[2] < 0.05 for r in runs])
    assert old.mean() > bound  # the contrast that makes this test able to fail


# --- the report: a critical finding stays next to the verdict ---------------------------------
def test_critical_finding_is_named_next_to_the_verdict():
    from jaxlasso import report as jreport
    from jaxlasso.simulate import simulate_rnaseq

    sim = simulate_rnaseq(n_genes=300, seed=0)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = select_features(sim.counts, y, strategy="lasso", log="no", n_permutations=0, seed=0, n_repeats=1)
    finding = rep.diagnosis.get("UNLOGGED_COUNTS")
    assert finding is not None and finding.severity == "critical"
    page = jreport.render_html(rep)
    box = page[page.index('id="verdict"'):page.index('id="diagnosis"')]
    assert "Signal not tested" in box and "<code>UNLOGGED_COUNTS</code>" in box
    assert finding.message not in box  # named, not repeated: the diagnosis below holds the text
    assert finding.message in page
    from jaxlasso.cli import build_summary

    summary = build_summary(rep, inputs={}, argv=[], classes_info={})
    assert summary["critical_findings"] == ["UNLOGGED_COUNTS"] and summary["signal_detected"] is None


# --- the quick plan a "no signal" verdict quotes ---------------------------------------------
def _small_study(null: bool, seed: int):
    from jaxlasso.simulate import simulate_rnaseq

    sim = simulate_rnaseq(n_genes=300, seed=seed, null=null, lfc_mean=1.5)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index, name="group")
    return sim, y


def test_no_signal_verdict_quotes_a_quick_plan_that_plan_power_reproduces():
    """No signal (a null study, n = 16): the verdict, the NO_SIGNAL finding (a warning) and
    summary.json quote the detection probability at the current n and the n per class for 80%;
    the numbers are plan_power's on the raw data with the quick plan's settings and seed."""
    from jaxlasso.cli import build_summary
    from jaxlasso.plan import plan_power

    sim, y = _small_study(null=True, seed=1)
    rep = select_features(sim.counts, y, strategy="lasso", n_permutations=19, seed=4)
    assert rep.signal_detected is False
    quick = rep.quick_plan
    assert quick is not None and quick.current_n_per_class == 7 and (quick.k, quick.effect_sd) == (10, 1.0)
    table = quick.plan.to_frame()
    assert list(table["n_per_class"]) == list(quick.sizes[:len(table)])
    # Sizes run smallest first and stop at the first that reaches 80%.
    reached = table["detection_probability"] >= 0.8
    assert (not reached.iloc[:-1].any()) and (reached.iloc[-1] or len(table) == len(quick.sizes))
    direct = plan_power(sim.counts, y, n_per_class=list(table["n_per_class"]), k=10, effect_sd=1.0, replicates=5,
                        n_permutations=19, n_repeats=1, seed=4)
    pd.testing.assert_frame_equal(direct.to_frame(), table)
    sentence = quick.sentence()
    p0 = f"detection probability {table['detection_probability'].iloc[0]:.1f} at the current 7 per class"
    assert p0 in sentence and "5 simulated studies per size" in sentence and "10 genes shifted by 1 SD" in sentence
    if quick.n_for_power is not None:
        assert f"80% reached at {quick.n_for_power} per class" in sentence
        if 2 * quick.n_for_power > 16:
            assert "optimistic" in sentence
    assert rep.verdict.endswith(sentence)
    finding = rep.diagnosis.get("NO_SIGNAL")
    assert finding.severity == "warning" and sentence in finding.message
    summary = build_summary(rep, inputs={}, argv=[], classes_info={})
    assert summary["quick_plan"]["detection_at_current_n"] == table["detection_probability"].iloc[0]
    assert summary["quick_plan"]["n_per_class_for_power"] == quick.n_for_power
    assert "NO_SIGNAL" not in summary["critical_findings"]


def test_quick_plan_stops_at_the_first_size_over_the_memory_budget(monkeypatch):
    """A study of a larger size that would not fit the memory budget is not simulated: the plan
    keeps the sizes that ran, lists the rest in ``over_budget``, and its sentence and summary
    quote what the first of them needs against the budget (instead of the run failing after its
    analysis). The first size is not pre-checked. The engine's own refusal of a size
    (``MemoryBudgetError``) stops it the same way, quoting the engine's numbers; at the first
    size it is an error of ``quick_plan``, and ``select`` keeps its analysis without the quote."""
    import jaxlasso.plan as plan_mod
    from jaxlasso._engine import MemoryBudgetError, configure
    from jaxlasso._config import PLAN
    from jaxlasso.plan import default_sizes, quick_plan, study_bytes

    sim, y = _small_study(null=True, seed=1)
    X = np.log2(sim.counts.to_numpy(float) + 1)
    p = X.shape[1]
    y01 = (y == "case").to_numpy(float)
    # No effect planted: the detection probability stays below 80%, so only the budget stops it.
    # The estimate is that of looped lanes (the CPU's strategy): pinned, so that it holds on any
    # backend. A grid of 40 lambdas: the budget is checked for the run's grid, not the default.
    common = dict(effect_sd=0.0, replicates=2, seed=4, n_lambdas=40)
    sizes = default_sizes(int(min(y01.sum(), (1 - y01).sum())), points=PLAN.quick_size_points)
    with configure(lane_mode="loop"):
        assert len(sizes) == 4 and study_bytes(2 * sizes[1], p, 40) > study_bytes(2 * sizes[0], p, 40)
        assert study_bytes(2 * sizes[1], p, 40) != study_bytes(2 * sizes[1], p)
        # Below even the first size's estimate: the first still runs, the second does not.
        budget = study_bytes(2 * sizes[0], p, 40) - 1
        with configure(max_memory=str(budget)):
            quick = quick_plan(X, y01, **common)
        assert quick.over_budget == sizes[1:] and list(quick.plan.table["n_per_class"]) == [sizes[0]]
        need = study_bytes(2 * sizes[1], p, 40)
        assert (quick.memory_needed, quick.memory_budget) == (need, budget)
        assert (f"not reached up to {sizes[0]} per class; {sizes[1]} per class and more not simulated: a study "
                f"of {sizes[1]} per class needs about {need / 2**20:.3g} MiB, more than the "
                f"{budget / 2**20:.3g} MiB memory budget (JAXLASSO_MAX_MEMORY)") in quick.sentence()
        record = quick.as_dict()
        assert record["sizes_over_memory_budget"] == list(sizes[1:])
        assert (record["memory_needed_bytes"], record["memory_budget_bytes"]) == (need, budget)

        # A budget that fits every size: all four run (none reaches 80% without an effect).
        with configure(max_memory=str(study_bytes(2 * sizes[-1], p, 40))):
            whole = quick_plan(X, y01, **common)
        assert whole.sizes == sizes and whole.over_budget == ()
        assert list(whole.plan.table["n_per_class"]) == list(sizes)
        assert "not simulated" not in whole.sentence()
        assert [whole.as_dict()[key] for key in ("sizes_over_memory_budget", "memory_needed_bytes",
                                                 "memory_budget_bytes")] == [[], None, None]
        pd.testing.assert_frame_equal(whole.plan.table.iloc[:1], quick.plan.table)

    # The engine refusing the third size: its own estimate and budget are quoted.
    real = plan_mod.plan_power

    def refusing(*a, n_per_class, **k):
        if n_per_class >= sizes[2]:
            raise MemoryBudgetError("this fit needs about 9 GiB", need=9 * 2**30, budget=3 * 2**30)
        return real(*a, n_per_class=n_per_class, **k)

    monkeypatch.setattr(plan_mod, "plan_power", refusing)
    stopped = quick_plan(X, y01, **common)
    assert stopped.over_budget == sizes[2:] and list(stopped.plan.table["n_per_class"]) == list(sizes[:2])
    assert (f"; {sizes[2]} per class and more not simulated: a study of {sizes[2]} per class needs about 9 GiB, "
            "more than the 3 GiB memory budget") in stopped.sentence()

    def refusing_all(*a, **k):
        raise MemoryBudgetError("this fit needs about 9 GiB", need=9 * 2**30, budget=3 * 2**30)

    monkeypatch.setattr(plan_mod, "plan_power", refusing_all)
    with pytest.raises(MemoryBudgetError):
        quick_plan(X, y01, **common)
    # select: the analysis and its verdict stand, without the quote.
    rep = select_features(sim.counts, y, strategy="lasso", n_permutations=19, seed=4)
    assert rep.signal_detected is False and rep.quick_plan is None
    assert rep.verdict.endswith("(The quick plan did not run: this fit needs about 9 GiB)")


def test_no_quick_plan_when_signal_is_detected(monkeypatch):
    import jaxlasso.plan

    def spy(*a, **k):
        raise AssertionError("the quick plan ran although signal was detected")

    monkeypatch.setattr(jaxlasso.plan, "quick_plan", spy)
    sim, y = _small_study(null=False, seed=3)
    rep = select_features(sim.counts, y, strategy="lasso", n_permutations=19, seed=0)
    assert rep.signal_detected is True and rep.quick_plan is None
    assert "quick plan" not in rep.verdict


@pytest.mark.slow
def test_cli_plan_off_skips_the_quick_plan_and_default_quotes_it_last(tmp_path, capsys, monkeypatch):
    import json

    import jaxlasso.plan
    from jaxlasso.cli import main

    sim, _ = _small_study(null=True, seed=1)
    sim.counts.T.rename_axis("gene_id").to_csv(tmp_path / "counts.tsv", sep="\t")
    sim.samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    calls = []
    real = jaxlasso.plan.quick_plan

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(jaxlasso.plan, "quick_plan", spy)
    base = ["select", tmp_path / "counts.tsv", "--samples", tmp_path / "samples.tsv", "--outcome", "group",
            "--case", "case", "--strategy", "lasso", "--permutations", "19", "--seed", "4", "--no-plots"]
    assert main([str(a) for a in base + ["--out", tmp_path / "off", "--plan", "off"]]) == 0
    off = capsys.readouterr().out.strip().splitlines()
    assert calls == [] and "quick plan" not in off[-1]
    assert json.loads((tmp_path / "off" / "summary.json").read_text())["quick_plan"] is None
    assert main([str(a) for a in base + ["--out", tmp_path / "auto"]]) == 0
    auto = capsys.readouterr().out.strip().splitlines()
    assert len(calls) == 1 and auto[-1].startswith("What this test could detect (quick plan")
    summary = json.loads((tmp_path / "auto" / "summary.json").read_text())
    assert summary["quick_plan"]["k"] == 10 and summary["signal_detected"] is False
    assert auto[-1] in summary["verdict"]
    code = main([str(a) for a in base + ["--out", tmp_path / "bad", "--plan", "maybe"]])
    assert code == 2 and "--plan must be one of auto, on, off (got --plan maybe)" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_headline_differs_from_null(tmp_path, capsys):
    """The demo finds its planted signal, --null does not, and each report says how many planted
    genes each list recovered."""
    import json

    from jaxlasso.cli import main

    # The demo itself (16,293 genes, seed 0): with fewer genes its 300 planted genes are a much
    # denser signal, which the test finds even at simulate_rnaseq's default effect.
    common = ["--strategy", "lasso", "--no-plots", "--plan", "off"]
    heads = {}
    for name, extra in (("planted", []), ("null", ["--null"])):
        assert main(["demo", "--out", str(tmp_path / name), *common, *extra]) == 0
        stdout = capsys.readouterr().out
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        heads[name] = summary["signal_detected"]
        words = "planted genes recovered (300 planted)" if name == "planted" else "nothing was planted"
        html = (tmp_path / name / "report.html").read_text()
        assert words in stdout and words in html and "lasso at lambda.1se: " in html
    assert heads == {"planted": True, "null": False}


def test_plan_option_is_declared_once_for_select_screen_and_manifest():
    from jaxlasso.options import MANIFEST_COLUMNS, OptionError, ScreenOptions, SelectOptions, Source

    assert SelectOptions().plan == "auto" and ScreenOptions().select.plan == "off"  # a screen runs no test
    assert "plan" in MANIFEST_COLUMNS
    row = ScreenOptions().dataset({"plan": "on", "n_permutations": "19"}, source=Source.manifest("m.tsv", 3))
    assert row.plan == "on" and row.n_permutations == 19
    with pytest.raises(OptionError, match=r"manifest 'm.tsv' line 3, column 'plan' must be one of auto, on, off"):
        ScreenOptions().dataset({"plan": "maybe"}, source=Source.manifest("m.tsv", 3))
    with pytest.raises(OptionError, match=r"plan must be one of auto, on, off \(got plan='sometimes'\)"):
        select_features(np.zeros((6, 3)), [0, 1] * 3, plan="sometimes")
