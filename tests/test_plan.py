"""``plan_power`` / ``jaxlasso plan``: the plasmode power simulation, checked against truth.

The main check: a plan computed from a small pilot of a population must predict the detection
rate that ``select_features`` itself reaches on fresh, independent studies of that population
with the same planted effect. Both sides are binomial estimates; they must agree within three
standard errors of their difference.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from jaxlasso.cli import main
from jaxlasso.plan import default_sizes, draw_rows, plant
from jaxlasso.selection.filters import preprocess
from jaxlasso.simulate import simulate_rnaseq

B = 19          # p can reach 0.05: the smallest B with which a test at 0.05 can reject


def test_draw_rows_without_then_with_replacement():
    rng = np.random.default_rng(0)
    rows, again = draw_rows(rng, 10, 6)
    assert not again and len(set(rows.tolist())) == 6
    rows, again = draw_rows(rng, 10, 25)
    counts = np.bincount(rows, minlength=10)
    # Copies spread evenly: each pool row 2 or 3 times.
    assert again and len(rows) == 25 and counts.min() == 2 and counts.max() == 3


def test_plant_shifts_only_the_case_rows_of_the_chosen_genes():
    Z = np.zeros((4, 3))
    case = np.array([True, False, True, False])
    out = plant(Z, case, np.array([2]), np.array([1.5]))
    assert out[:, 2].tolist() == [1.5, 0, 1.5, 0] and not out[:, :2].any() and not Z.any()


def test_default_sizes_run_from_the_current_n_to_ten_times_it():
    assert default_sizes(7) == (7, 15, 32, 70)
    assert default_sizes(1)[0] == 3


def _population(n_genes: int = 40, size: int = 400, seed: int = 11):
    """A large null RNA-seq population on the analysis scale (log2-CPM), and its gene SDs."""
    sim = simulate_rnaseq(size // 2, size // 2, n_genes, null=True, seed=seed)
    Z, _ = preprocess(sim.counts)
    return sim.counts, Z, Z.to_numpy().std(axis=0)


def _fresh_detection_rate(Z: pd.DataFrame, sd: np.ndarray, *, m: int, k: int, d: float, studies: int,
                          seed: int) -> float:
    """Share of fresh studies (2 m samples drawn from the population Z, half called case) in which
    ``select_features`` detects signal after k genes got an effect of d SD in the case group."""
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(studies):
        rows = rng.choice(Z.shape[0], size=2 * m, replace=False)
        X = Z.iloc[rows].to_numpy().copy()
        case = np.zeros(2 * m, bool)
        case[rng.permutation(2 * m)[:m]] = True
        genes = rng.choice(Z.shape[1], size=k, replace=False)
        X[np.ix_(case, genes)] += d * sd[genes] * rng.choice([-1.0, 1.0], size=k)
        rep = jaxlasso.select_features(pd.DataFrame(X, columns=Z.columns), case.astype(int), strategy="lasso",
                                       log="no", n_permutations=B, seed=r, plan="off")
        hits += bool(rep.signal_detected)
    return hits / studies


@pytest.mark.slow
def test_predicted_detection_matches_fresh_studies():
    counts, Z, sd = _population()
    pilot_rows = np.arange(40)                      # a 20 + 20 pilot (labels irrelevant: null data)
    pilot = counts.iloc[pilot_rows]
    y_pilot = np.repeat([0, 1], 20)
    fresh = Z.drop(index=Z.index[pilot_rows])       # fresh studies never reuse a pilot sample
    m, k, d, R = 12, 3, 1.5, 24
    plan = jaxlasso.plan_power(pilot, y_pilot, n_per_class=m, k=k, effect_sd=d, replicates=R, n_permutations=B,
                               seed=3)
    predicted = float(plan.to_frame()["detection_probability"].iloc[0])
    empirical = _fresh_detection_rate(fresh, sd, m=m, k=k, d=d, studies=R, seed=5)
    # Binomial noise of both estimates: SE of the difference under a common rate.
    pooled = (predicted + empirical) / 2
    tolerance = 3 * math.sqrt(max(pooled * (1 - pooled), 0.05) * 2 / R)
    assert 0.3 <= empirical <= 0.95, f"the check needs a rate away from 0 and 1 (got {empirical})"
    assert abs(predicted - empirical) <= tolerance, (predicted, empirical, tolerance)


@pytest.mark.slow
def test_null_rows_on_the_demo_data_are_at_most_0_1():
    sim = simulate_rnaseq(n_genes=300, seed=0)
    plan = jaxlasso.plan_power(sim.counts, sim.y, n_per_class=7, k=5, effect_sd=(0.0,), replicates=20,
                               n_permutations=B, seed=1)
    table = plan.to_frame()
    assert table["replicates"].tolist() == [20] and not table["resampled"].any()
    assert plan.false_signal_rate() <= 0.1
    assert table["mean_true_selected"].iloc[0] == 0


@pytest.mark.slow
def test_null_rows_on_real_data_are_at_most_0_1_and_a_strong_effect_is_found():
    from helpers import load_real

    X, y, genes = load_real("all_bcrabl")
    # A gene subset for speed; BCR/ABL vs NEG holds real signal, which the label shuffle must remove.
    cols = np.argsort(-X.var(axis=0))[:150]
    plan = jaxlasso.plan_power(X[:, cols], y, n_per_class=10, k=5, effect_sd=(0.0, 3.0), replicates=20,
                               n_permutations=B, seed=2)
    table = plan.to_frame().set_index("effect_sd")
    assert table.loc[0.0, "detection_probability"] <= 0.1
    assert table.loc[3.0, "detection_probability"] >= 0.8
    assert table.loc[3.0, "mean_true_selected"] > table.loc[3.0, "mean_false_selected"]
    assert plan.n_for_power(5, 3.0) == 10 and plan.n_for_power(5, 0.0) is None
    with pytest.raises(ValueError, match="not in the grid"):
        plan.n_for_power(7, 3.0)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"k": 0}, r"^k must be"),
    ({"effect_sd": -1.0}, r"^effect_sd must be"),
    ({"n_per_class": (8, 8)}, r"^n_per_class must be"),
    ({"n_permutations": 10}, r"^n_permutations must be at least 19"),
    ({"replicates": 0}, r"^replicates must be"),
    ({"k": 10_000}, r"k must be at most the 29\d genes"),
])
def test_bad_options_name_the_keyword(kwargs, pattern):
    sim = simulate_rnaseq(n_genes=300, seed=0)
    with pytest.raises(ValueError, match=pattern):
        jaxlasso.plan_power(sim.counts, sim.y, **kwargs)


@pytest.mark.slow
def test_cli_plan_demo_writes_the_files(tmp_path, capsys):
    out = tmp_path / "plan"
    code = main(["plan", "--demo", "--genes", "200", "--out", str(out), "--n-per-class", "5,9", "--k", "3",
                 "--effect-sd", "0,2", "--replicates", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert {"power.tsv", "power.png", "power.svg", "summary.json"} <= names
    table = pd.read_csv(out / "power.tsv", sep="\t")
    assert list(table.columns[:7]) == ["n_per_class", "k", "effect_sd", "replicates", "detection_probability",
                                       "mean_true_selected", "mean_false_selected"]
    assert table[["n_per_class", "effect_sd"]].values.tolist() == [[5, 0], [5, 2], [9, 0], [9, 2]]
    # 2 x 9 = 18 samples from the demo's 16: resampled, and the TSV says so in words.
    assert table["resampled"].tolist() == [False, False, True, True]
    assert table["estimate"].tolist() == ["subsampled"] * 2 + ["resampled: optimistic"] * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "jaxlasso.plan/1" and len(summary["power"]) == 4
    assert summary["n_per_class_for_power"][0]["effect_sd"] == 2.0


def test_cli_plan_real_npz(tmp_path, capsys):
    from helpers import real_data_path

    out = tmp_path / "plan"
    code = main(["plan", str(real_data_path("tissue_cerebellum_vs_hippocampus")), "--outcome", "y", "--out",
                 str(out), "--n-per-class", "5", "--k", "2", "--effect-sd", "0", "--replicates", "2",
                 "--no-plots", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["input"]["n_samples"] == 69 and summary["pool"]["n_features"] == 500
    assert (out / "power.tsv").is_file() and not (out / "power.png").exists()


@pytest.mark.parametrize("argv, flag", [
    (["--demo", "--k", "0"], "--k"),
    (["--demo", "--effect-sd", "1,x"], "--effect-sd"),
    (["--demo", "--n-per-class", "2"], "--n-per-class"),
    (["--demo", "--permutations", "5"], "--permutations"),
    (["--demo", "--replicates", "-1"], "--replicates"),
    (["--demo", "--genes", "zero"], "--genes"),
    (["--demo", "--signal-level", "2"], "--signal-level"),
    (["m.tsv"], "--outcome"),
    ([], "--demo"),
])
def test_cli_plan_bad_options_give_one_error_line(tmp_path, capsys, argv, flag):
    out = tmp_path / "plan"
    code = main(["plan", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and flag in err[0], err
    assert not out.exists()


def _handmade_plan():
    from jaxlasso.plan import ESTIMATE_WORDS, POWER_COLUMNS, PowerPlan

    rows = [(5, 10, 0.0, 10, 0.1, 0.0, 0.5, False), (5, 10, 1.0, 10, 0.3, 1.0, 0.5, False),
            (10, 10, 0.0, 10, 0.0, 0.0, 0.2, True), (10, 10, 1.0, 10, 0.8, 5.0, 0.5, True),
            (20, 10, 0.0, 20, 0.05, 0.0, 0.1, True), (20, 10, 1.0, 10, 0.9, 7.0, 0.5, True)]
    table = pd.DataFrame([(*r, ESTIMATE_WORDS[r[-1]]) for r in rows], columns=list(POWER_COLUMNS))
    return PowerPlan(table=table, pool_n_per_class=(5, 6), pool_size=11, n_features=100, n_permutations=19,
                     alpha=0.05, rule="lambda_1se", seed=0)


def test_n_for_power_is_the_smallest_size_that_reaches_the_level():
    plan = _handmade_plan()
    assert plan.n_for_power(10, 1.0) == 10            # 0.8 counts as reached
    assert plan.n_for_power(10, 1.0, power=0.85) == 20
    assert plan.n_for_power(10, 1.0, power=0.95) is None
    assert plan.current_n_per_class == 5
    # Pooled over the effect-0 rows, weighted by their replicates: (1 + 0 + 1) / 40.
    assert plan.false_signal_rate() == pytest.approx(2 / 40)


def test_plan_options_round_trip_and_export():
    from jaxlasso.options import CLI, PlanOptions

    opts = PlanOptions.from_mapping({"n_per_class": "20,8", "effect_sd": "1,0.5,0", "k": "3"}, source=CLI)
    assert opts.n_per_class == (8, 20) and opts.effect_sd == (0.0, 0.5, 1.0) and opts.k == (3,)
    assert PlanOptions.from_mapping(opts.to_mapping()) == opts
    assert jaxlasso.plan_power is jaxlasso.plan.plan_power and "plan_power" in jaxlasso.__all__


def test_plan_summary_marks_an_answer_beyond_the_pool():
    from jaxlasso.cli.plan import plan_summary

    summary = plan_summary(_handmade_plan(), inputs={}, classes={}, argv=[], options={})
    assert summary["n_per_class_for_power"] == [{"k": 10, "effect_sd": 1.0, "power": 0.8, "n_per_class": 10,
                                                 "resampled": True}]
    assert summary["false_signal_rate"] == pytest.approx(0.05)
