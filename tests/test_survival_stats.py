"""jaxlasso.survival_stats against R: survival::survfit (Kaplan-Meier), survdiff (log-rank),
coxph(ties = "breslow")'s score test per gene, and cor.test per gene.

The golden pair (tests/golden/survival_stats_input.tsv -> survival_stats_r.tsv) was made by
tests/golden/survival_stats.R; the live test (marker r) runs that script on fresh data with ties,
censoring and three groups."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxlasso.survival_stats import (check_survival, cox_score_test, kaplan_meier, logrank_test,
                                     pearson_test)

GOLDEN = Path(__file__).parent / "golden"


def _read_r(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        name, *vals = line.split("\t")
        out[name] = np.array([np.nan if v == "NA" else float(v) for v in vals])
    return out


def _compare(d: pd.DataFrame, ref: dict[str, np.ndarray]) -> None:
    genes = [c for c in d.columns if c not in ("time", "event", "group")]
    km = kaplan_meier(d.time, d.event)
    np.testing.assert_array_equal(km.time, ref["km_time"])
    np.testing.assert_array_equal(km.n_risk, ref["km_n_risk"])
    np.testing.assert_array_equal(km.n_event, ref["km_n_event"])
    np.testing.assert_allclose(km.survival, ref["km_surv"], rtol=1e-12)
    np.testing.assert_allclose(km.std_err, ref["km_std_err"], rtol=1e-10)
    assert km.median() == ref["km_median"][0]
    lr = logrank_test(d.time, d.event, d.group)
    np.testing.assert_allclose(lr.chisq, ref["logrank_chisq"][0], rtol=1e-10)
    np.testing.assert_allclose(lr.observed, ref["logrank_obs"], rtol=1e-12)
    np.testing.assert_allclose(lr.expected, ref["logrank_exp"], rtol=1e-10)
    z, p, info = cox_score_test(d[genes].to_numpy(), d.time, d.event)
    np.testing.assert_allclose(z ** 2, ref["cox_score"], rtol=1e-9, atol=1e-12)
    r, pp = pearson_test(d[genes].to_numpy(), d.time)
    defined = np.isfinite(ref["pearson_p"])  # R gives NA for a constant gene; jaxlasso r = 0, p = 1
    np.testing.assert_allclose(pp[defined], ref["pearson_p"][defined], rtol=1e-9)
    np.testing.assert_allclose(r[defined], ref["pearson_r"][defined], rtol=1e-10)
    assert np.all(pp[~defined] == 1.0) and np.all(r[~defined] == 0.0)


def test_against_r_golden():
    d = pd.read_csv(GOLDEN / "survival_stats_input.tsv", sep="\t")
    _compare(d, _read_r(GOLDEN / "survival_stats_r.tsv"))


def _has_survival() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(survival)"], capture_output=True).returncode == 0


@pytest.mark.r
@pytest.mark.skipif(not _has_survival(), reason="needs Rscript with the survival package")
def test_against_r_live(tmp_path):
    rng = np.random.default_rng(7)
    n = 90
    X = rng.normal(size=(n, 5))
    X[:, 3] = rng.integers(0, 3, n)
    t = np.ceil(rng.exponential(np.exp(-0.7 * X[:, 0])) * 8)       # coarse times: many ties
    c = np.ceil(rng.uniform(1, 25, n))
    d = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int),
                      "group": rng.choice(["a", "b", "c"], n)})
    for j in range(X.shape[1]):
        d[f"gene{j}"] = np.round(X[:, j], 8)
    d.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    subprocess.run(["Rscript", str(GOLDEN / "survival_stats.R"), str(tmp_path / "in.tsv"),
                    str(tmp_path / "out.tsv")], check=True, capture_output=True)
    _compare(d, _read_r(tmp_path / "out.tsv"))


def test_two_group_logrank_is_symmetric_and_score_sign():
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    t = rng.exponential(np.exp(-1.5 * x))
    e = np.ones(80)
    z, p, _ = cox_score_test(x[:, None], t, e)
    assert z[0] > 3 and p[0] < 1e-3            # higher x, higher hazard: positive z
    g = x > np.median(x)
    a, b = logrank_test(t, e, g), logrank_test(t, e, ~g)
    assert a.chisq == pytest.approx(b.chisq) and a.p_value < 1e-3


@pytest.mark.parametrize("time, event, message", [
    ([1.0, -2.0, 3.0], [1, 0, 1], "time must be finite and >= 0"),
    ([1.0, np.nan, 3.0], [1, 0, 1], "time must be finite and >= 0"),
    ([1.0, 2.0, 3.0], [1, 2, 1], "event must be 0 .censored. or 1"),
    ([1.0, 2.0, 3.0], [0, 0, 0], "no events"),
    ([1.0, 2.0], [0, 1, 1], "one value per sample"),
])
def test_survival_input_errors(time, event, message):
    with pytest.raises(ValueError, match=message):
        check_survival(time, event)


def test_boolean_events_accepted():
    t, e = check_survival([3, 1, 2], [True, False, True])
    assert e.tolist() == [1.0, 0.0, 1.0]


def test_risk_groups_split_at_median_with_logrank():
    from jaxlasso.survival_stats import prediction_r2, risk_groups

    rng = np.random.default_rng(11)
    risk = rng.normal(size=60)
    t = rng.exponential(np.exp(-risk))
    e = (rng.random(60) < 0.8).astype(float)
    g = risk_groups(t, e, risk)
    assert g.high.sum() == 30 and g.threshold == np.median(risk)
    assert g.logrank.p_value == pytest.approx(logrank_test(t, e, risk > np.median(risk)).p_value)
    assert g.high_km.n_risk[0] == 30 and g.low_km.n_risk[0] == 30
    with pytest.raises(ValueError, match="pre-validated risk is constant"):
        risk_groups(t, e, np.zeros(60))
    assert prediction_r2([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == (0.0, pytest.approx(2 / 3))


def test_risk_groups_figure_says_prevalidated():
    pytest.importorskip("matplotlib")
    from jaxlasso import plots

    rng = np.random.default_rng(2)
    risk = rng.normal(size=40)
    fig = plots.risk_groups_figure(rng.exponential(np.exp(-risk)), np.ones(40), risk, "lambda_min")
    title = fig.axes[0].get_title()
    assert title.startswith("Cross-validated risk groups at lambda.min: log-rank p = ")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["low pre-validated risk (n = 20)", "high pre-validated risk (n = 20)"]
    plots._close(fig)
