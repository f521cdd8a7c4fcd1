"""The Gaussian and Cox permutation tests solved as one batch of lanes equal the refit definition.

:func:`jaxlasso.diagnose.permutation_test_family` solves the observed and permuted outcomes x folds
as lanes of one engine call. Its definition is "the CV pipeline redone on each relabelling":
:func:`refit_reference` below runs exactly that, one ``Outcome.cv`` per relabelling, and the batched
statistics and p-value must equal it to rounding. Data: real tissue expression (a slice of genes)
with outcomes planted as tests/test_family_cli.py plants them.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxlasso.diagnose import _larger_is_better, nominal_grid, permutation_test_family
from jaxlasso.lambdas import lambda_grid
from jaxlasso.outcomes import Outcome, standardize

PLANTED = (475, 311, 348)


def refit_reference(X, outcome, cv, *, n_permutations, seed, n_grid):
    """The permutation test by definition: the whole CV refitted on each relabelling (survival
    permutes (time, event) pairs jointly), each with its own folds, on one grid from the largest
    lambda_max over the B + 1 outcomes; returns (statistics of the B + 1 outcomes, p-value)."""
    rng = np.random.default_rng([seed, 17])
    outcomes = [outcome] + [outcome.permuted(rng) for _ in range(n_permutations)]
    l1 = float(cv.path.l1_ratio)
    Xs = standardize(X)
    top = max(o.lambda_max(Xs) for o in outcomes) / max(l1, 1e-3)
    nominal = nominal_grid(cv, outcome.n, X.shape[1])
    lam = lambda_grid(top, min(n_grid, len(nominal)), float(nominal[-1] / nominal[0]))
    stats = []
    for b, o in enumerate(outcomes):
        res = o.cv(X, measure=cv.measure, foldid=o.folds(cv.nfolds, 1, seed + 1000 + b), lambdas=lam,
                   l1_ratio=l1, keep=False, dtype=np.float64)
        curve = np.asarray(res.cv_mean, float)
        stats.append(np.nanmax(curve) - curve[0] if _larger_is_better(cv.measure) else curve[0] - np.nanmin(curve))
    stats = np.asarray(stats)
    return stats, (1 + np.sum(stats[1:] >= stats[0] - 1e-12)) / (n_permutations + 1)


@pytest.fixture(scope="module")
def outcomes(shared_data):
    X, _, _ = shared_data("tissue_cerebellum_vs_hippocampus")
    rng = np.random.default_rng(24)
    Z = (X[:, PLANTED] - X[:, PLANTED].mean(0)) / X[:, PLANTED].std(0)
    signature = Z @ np.array([1.0, -1.0, 0.8])
    signature /= signature.std()
    age = 50 + 4 * signature + rng.normal(scale=2.0, size=X.shape[0])
    t = rng.exponential(np.exp(-1.6 * signature)) * 10
    c = rng.uniform(2, 25, X.shape[0])
    # The planted genes and 37 others: small enough for a refit per labelling.
    cols = list(PLANTED) + list(range(0, 74, 2))
    return (np.ascontiguousarray(X[:, cols]), Outcome.build("gaussian", age),
            Outcome.build("cox", time=np.round(np.minimum(t, c), 4), event=(t <= c).astype(float)))


# The elastic net (l1_ratio 0.5) checks the ridge part too: each Gaussian fold standardises its own y.
CASES = [("gaussian", "mse", 1.0), ("gaussian", "mae", 1.0), ("gaussian", "mse", 0.5), ("cox", "deviance", 1.0),
         ("cox", "C", 1.0), ("cox", "deviance", 0.5)]


@pytest.mark.parametrize("family, measure, l1_ratio", CASES)
def test_batched_permutation_test_equals_refit(outcomes, family, measure, l1_ratio):
    X, gauss, cox = outcomes
    outcome = gauss if family == "gaussian" else cox
    B, seed, n_grid = 7, 3, 8
    # The grid stops at 5% of lambda_max: further down, n > p Cox fits of 55 samples diverge.
    cv = outcome.cv(X, measure=measure, nfolds=5, seed=0, keep=False, n_lambdas=20, lambda_min_ratio=0.05,
                    l1_ratio=l1_ratio)
    # A permuted copy too, so that the observed statistic is not simply the largest.
    for o in (outcome, outcome.permuted(np.random.default_rng(9))):
        ref_stats, ref_p = refit_reference(X, o, cv, n_permutations=B, seed=seed, n_grid=n_grid)
        res = permutation_test_family(X, o, cv, n_permutations=B, seed=seed, n_grid=n_grid)
        got = np.concatenate([[res.statistic], res.null_statistics])
        assert np.all(np.isfinite(got)) and np.ptp(got) > 0
        np.testing.assert_allclose(got, ref_stats, rtol=1e-7, atol=1e-9 * np.abs(ref_stats).max())
        assert res.p_value == pytest.approx(ref_p)
        assert res.n_permutations == B and res.nfolds == 5
    if (family, measure, l1_ratio) == ("cox", "deviance", 1.0):
        # Lockstep lanes (the accelerators' default at this n) solve the same fits.
        vm = permutation_test_family(X, o, cv, n_permutations=B, seed=seed, n_grid=n_grid, mode="vmap")
        np.testing.assert_allclose(np.concatenate([[vm.statistic], vm.null_statistics]), ref_stats, rtol=1e-7,
                                   atol=1e-9 * np.abs(ref_stats).max())


def test_batched_permutation_test_detects_signal_not_noise(outcomes):
    """The planted Gaussian signal gives the smallest p; a permuted copy of the outcome does not."""
    X, gauss, _ = outcomes
    B = 19
    cv = gauss.cv(X, measure="mse", seed=0, keep=False, n_lambdas=20)
    res = permutation_test_family(X, gauss, cv, n_permutations=B, seed=1, n_grid=10)
    assert res.p_value == pytest.approx(1 / (B + 1)) and res.statistic > res.null_statistics.max()
    shuffled = gauss.permuted(np.random.default_rng(5))
    cv0 = shuffled.cv(X, measure="mse", seed=0, keep=False, n_lambdas=20)
    assert permutation_test_family(X, shuffled, cv0, n_permutations=B, seed=1, n_grid=10).p_value > 0.05


def test_binary_outcome_is_refused(outcomes):
    X, gauss, _ = outcomes
    cv = gauss.cv(X, measure="mse", nfolds=5, seed=0, keep=False, n_lambdas=5)
    with pytest.raises(ValueError, match="a binary outcome has permutation_test"):
        permutation_test_family(X, Outcome("binomial", np.arange(X.shape[0]) % 2), cv, n_permutations=3)


def test_stacked_cox_datasets_equal_their_own_solves(outcomes):
    """``screen``'s stacked call (one vmap over datasets) takes a pytree response: two Cox problems
    of different sizes, each with its full-data and fold lanes, solve as each does alone (the
    response's int32 index leaves stay integers and are padded as solve_lanes pads them)."""
    from jaxlasso._engine import Lanes, solve_datasets, solve_lanes
    from jaxlasso.folds import fold_weights
    from jaxlasso.survival import CoxProblem

    X, _, cox = outcomes
    problems, lanes, alone = [], [], []
    for rows in (np.arange(X.shape[0]), np.arange(0, X.shape[0], 2)):
        prob = CoxProblem(X[rows][:, :20], cox.time[rows], cox.event[rows], ties="breslow", l1_ratio=1.0,
                          lambdas=None, n_lambdas=12, lambda_min_ratio=0.05, standardize=True, sample_weight=None,
                          penalty_factor=None, early_stop=False, tol=None, max_iter=1000, dtype=np.float64)
        fid = (np.arange(len(rows)) % 3)[None, :]
        W = np.vstack([prob.w[None, :], fold_weights(fid, prob.w)])
        problems.append(prob)
        lanes.append(Lanes(W=W, is_master=np.arange(len(W)) == 0, keep_eta=True))
        alone.append(solve_lanes(prob, lanes[-1], mode="vmap"))
    outs, stats = solve_datasets(problems, lanes)
    assert stats["datasets"] == 2
    for prob, out, ref in zip(problems, outs, alone):
        L = len(prob.lambdas)
        assert np.all(out.path_length() == L)
        np.testing.assert_allclose(out.deviance[:, :L], ref.deviance[:, :L], rtol=1e-9)
        for lane in range(len(out.path_length())):
            np.testing.assert_allclose(out.dense_coef(lane, prob.p), ref.dense_coef(lane, prob.p), atol=1e-8)
        np.testing.assert_allclose(out.eta[:, :L], ref.eta[:, :L], atol=1e-8)
