"""Parity of cv_logistic_path with R cv.glmnet: same data, lambdas and foldid (golden files).

cv_mean and cv_sd within 1e-3 relative of glmnet's cvm / cvsd at every lambda, and the same
index_min / index_1se.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jaxlasso
from helpers import CV_CASES, case_data, case_inputs, case_params, check_case_data, load_golden

RTOL = 1e-3


def run_case(name):
    case = CV_CASES[name]
    gold = load_golden(name)
    X, y = case_data(case["data"])
    check_case_data(X, y, gold)
    kw = case_inputs(case, X)
    with warnings.catch_warnings():
        # Small-sample warnings (< 8 per class, ungrouped SE) are expected on the seed-like set;
        # tests/test_cv.py checks that they fire.
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        cv = jaxlasso.cv_logistic_path(X, y, foldid=np.asarray(gold["foldid"]), lambdas=gold["lambdas"],
                                       measure=case["measure"], tol=1e-9, **kw)
    return cv, gold


@pytest.mark.parametrize("name", case_params(CV_CASES))
def test_cv_matches_cv_glmnet_golden(name):
    cv, gold = run_case(name)
    np.testing.assert_allclose(cv.lambdas, gold["lambdas"], rtol=0)
    np.testing.assert_allclose(cv.cv_mean, gold["cvm"], rtol=RTOL)
    np.testing.assert_allclose(cv.cv_sd, gold["cvsd"], rtol=RTOL, atol=1e-12)
    assert cv.index_min == gold["index_min"]
    assert cv.index_1se == gold["index_1se"]
    # glmnet's first lambda is extrapolated from the next two (fix.lam) and can land a hair below
    # the exact lambda_max, where a ~1e-16 coefficient counts as nonzero: skip that boundary.
    np.testing.assert_array_equal(cv.n_nonzero[1:], np.asarray(gold["nzero"])[1:])
