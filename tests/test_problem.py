"""A problem is prepared once and passed whole: immutable, and reused by the permutation test and
stability selection when they are handed the CV's data."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest

import jaxlasso
import jaxlasso.path as path_mod
from jaxlasso.diagnose import permutation_test
from jaxlasso.path import PreparedProblem
from jaxlasso.selection.stability import stability_selection
from tests.helpers import synthetic


def _prepare(X, y, **kw):
    args = dict(l1_ratio=1.0, lambdas=None, n_lambdas=20, lambda_min_ratio=None, standardize=True,
                fit_intercept=True, sample_weight=None, penalty_factor=None, early_stop=True, tol=None,
                max_iter=200, dtype=np.float64)
    return PreparedProblem(X, y, **{**args, **kw})


@pytest.fixture
def count_preparations(monkeypatch):
    """Counts the validations-and-shifts of a design (one per PreparedProblem built from data)."""
    calls = []
    real = path_mod.column_shift

    def spy(X, fit_intercept):
        calls.append(X.shape)
        return real(X, fit_intercept)

    monkeypatch.setattr(path_mod, "column_shift", spy)
    return calls


def test_prepared_problem_is_immutable_and_leaves_the_callers_arrays_alone():
    X, y = synthetic(30, 12, seed=1)
    prob = _prepare(X, y)
    with pytest.raises(AttributeError, match="immutable"):
        prob.tol = 1.0
    with pytest.raises(AttributeError, match="immutable"):
        del prob.lambdas
    for name in ("X", "y", "w", "pf", "shift", "scores", "lambdas"):
        arr = getattr(prob, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[...] = 0
    # Read-only views: the caller's arrays stay writable.
    assert X.flags.writeable and y.flags.writeable
    X[0, 0] += 0.0
    # Other settings give a new problem; this one is unchanged.
    lam = prob.lambdas.copy()
    other = prob.use_lambdas(lam[:5])
    assert other is not prob and len(other.lambdas) == 5 and not other.early_stop
    np.testing.assert_array_equal(prob.lambdas, lam)
    assert prob.early_stop
    # A derived grid is exactly a fresh preparation's.
    fresh = _prepare(X, y, l1_ratio=0.5, n_lambdas=7, lambda_min_ratio=0.05)
    derived = prob.derive(l1_ratio=0.5, lambdas=None, n_lambdas=7, lambda_min_ratio=0.05, early_stop=True,
                          tol=None, max_iter=200, dtype=np.float64)
    np.testing.assert_array_equal(derived.lambdas, fresh.lambdas)
    assert derived.lambda_max == fresh.lambda_max and derived.l1_ratio == 0.5 and prob.l1_ratio == 1.0
    # Identity decides reuse; a pickled copy has no identity to match and stays read-only.
    assert prob.reusable_for(X, y) and not prob.reusable_for(X.copy(), y)
    assert not prob.reusable_for(X, y, fit_intercept=False)
    back = pickle.loads(pickle.dumps(prob))
    assert not back.reusable_for(X, y) and not back.X.flags.writeable
    np.testing.assert_array_equal(back.X, prob.X)


def test_cv_result_keeps_its_problem_out_of_repr_and_equality():
    X, y = synthetic(40, 15, seed=2)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=4, n_lambdas=15, seed=0)
    assert isinstance(cv.problem, PreparedProblem) and cv.problem.reusable_for(X, y)
    assert "problem" not in repr(cv)
    assert dataclasses.replace(cv, problem=None) == cv
    # (glmnet's early stop may end the path before the grid's end: the path is its prefix.)
    np.testing.assert_array_equal(cv.problem.lambdas[:len(cv.path.lambdas)], cv.path.lambdas)


def test_permutation_test_and_stability_reuse_the_cvs_problem_with_identical_results(count_preparations):
    X, y = synthetic(40, 25, seed=3)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=4, n_lambdas=20, seed=0)
    assert len(count_preparations) == 1
    reused = permutation_test(X, y, cv, n_permutations=7, seed=1)
    assert len(count_preparations) == 1, "the permutation test must reuse the CV's prepared X"
    # Another object with the same values is prepared again: identity decides, and the test's
    # answer is the same bit for bit.
    fresh = permutation_test(X.copy(), y, cv, n_permutations=7, seed=1)
    assert len(count_preparations) == 2
    assert reused.statistic == fresh.statistic and reused.p_value == fresh.p_value
    np.testing.assert_array_equal(reused.null_statistics, fresh.null_statistics)

    kw = dict(n_resamples=6, n_lambdas=15, seed=2, l1_ratio=0.9)
    stab_reused = stability_selection(X, y, problem=cv, **kw)
    assert len(count_preparations) == 2, "stability selection must reuse the CV's prepared X"
    stab_fresh = stability_selection(X, y, **kw)
    assert len(count_preparations) == 3
    np.testing.assert_array_equal(stab_reused.probabilities, stab_fresh.probabilities)
    np.testing.assert_array_equal(stab_reused.lambdas, stab_fresh.lambdas)
    assert stab_reused.selected == stab_fresh.selected
    # Other data options than the CV's: the problem is not reused.
    w = np.linspace(0.5, 1.5, len(y))
    stability_selection(X, y, problem=cv, sample_weight=w, **kw)
    assert len(count_preparations) == 4
    stability_selection(X, y, problem=cv.problem, standardize=False, **kw)
    assert len(count_preparations) == 5


def test_select_features_prepares_its_matrix_once(count_preparations):
    X, y = synthetic(40, 30, seed=5)
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(X.shape[1])])
    rep = jaxlasso.select_features(frame, y, strategy="lasso", log="no", n_permutations=5, stability=4,
                                   n_repeats=1, seed=0)
    assert rep.diagnosis.permutation is not None and rep.stability is not None
    # One preparation: the CV's; the permutation test and stability selection reuse it.
    assert len(count_preparations) == 1


def test_stacked_datasets_must_share_their_solve_settings():
    from jaxlasso._engine import Lanes, solve_datasets

    X, y = synthetic(30, 12, seed=6)
    a, b = _prepare(X, y), _prepare(X, y, tol=1e-9)
    lanes = [Lanes(W=np.ones((2, 30))), Lanes(W=np.ones((2, 30)))]
    with pytest.raises(ValueError, match="must share.*got different tol"):
        solve_datasets([a, b], lanes)
    with pytest.raises(ValueError, match="one Lanes per problem"):
        solve_datasets([a, a], lanes[:1])
    with pytest.raises(ValueError, match="labels, penalty factors"):
        solve_datasets([a, a], [lanes[0], Lanes(W=np.ones((2, 30)), Y=np.ones((2, 30)))])
