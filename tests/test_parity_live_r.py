"""Live parity with the R glmnet installed here (skipped cleanly where Rscript or glmnet is absent).

The golden files pin what glmnet said when they were made; these tests ask the installed glmnet
again, through ``jaxlasso.rglmnet`` (``jaxlasso/r/glmnet_bridge.R``), on cases that are not among
the goldens: a synthetic elastic net with sample weights, and a real dataset.
glmnet runs with thresh=1e-12 and ``glmnet.control(fdev=0, devmax=1)`` on its own lambda grid, then
``cv.glmnet`` on that grid with a fixed, class-stratified 1-based foldid. (Without explicit lambdas
cv.glmnet fits each fold on the fold's own grid and interpolates, a different computation.) Bars,
as for the goldens: jaxlasso's objective <= glmnet's x (1 + 1e-6) at every lambda, nonzero sets
equal at >= 90% of the lambdas, cvm / cvsd within 1e-3 relative, the same lambda.min / lambda.1se.
"""

from __future__ import annotations

import numpy as np
import pytest

import jaxlasso
from helpers import case_data, case_inputs, check_path_against_glmnet, glmnet_args
from jaxlasso import rglmnet

pytestmark = pytest.mark.r

THRESH = 1e-12
CV_RTOL = 1e-3

LIVE_CASES = {
    # Penalised signal (no penalty factors): the CV curve has its minimum inside the path.
    "synthetic_enet_weights": dict(data=("synthetic", 80, 200, 15), l1_ratio=0.6, weights=True,
                                   measure="deviance", nfolds=7),
    "tissue_lasso": dict(data="tissue_cerebellum_vs_hippocampus", measure="deviance", nfolds=10),
}


def stratified_foldid(y: np.ndarray, nfolds: int, seed: int = 7) -> np.ndarray:
    """1-based fold ids dealt class by class, so that every held-out fold holds both classes."""
    rng = np.random.default_rng(seed)
    foldid = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in (0.0, 1.0):
        idx = np.flatnonzero(y == c)
        foldid[idx] = rng.permutation(np.resize(np.roll(np.arange(1, nfolds + 1), -start), len(idx)))
        start += len(idx)
    return foldid


@pytest.fixture(scope="module", params=[pytest.param("synthetic_enet_weights", marks=pytest.mark.slow),
                                        "tissue_lasso"])
def live(request):
    """(case, X, y, jaxlasso kwargs, foldid, glmnet's path, cv.glmnet's output) of one live case."""
    case = LIVE_CASES[request.param]
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    foldid = stratified_foldid(y, case["nfolds"])
    r_path = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, exact_path=True, **glmnet_args(kw))
    r_cv = rglmnet.run_glmnet(X, y, task="cv", lambdas=r_path.lambdas, thresh=THRESH, exact_path=True,
                              foldid=foldid, type_measure=case["measure"], **glmnet_args(kw))
    return case, X, y, kw, foldid, r_path, r_cv


def test_path_objective_and_support_match_live_glmnet(live):
    _, X, y, kw, _, r, _ = live
    assert len(r.lambdas) > 10 and np.all(np.diff(r.lambdas) < 0)
    check_path_against_glmnet(X, y, kw, r.lambdas, r.coef, r.intercept)


def test_cv_indices_match_live_cv_glmnet(live):
    case, X, y, kw, foldid, _, r = live
    assert len(np.unique(foldid)) == case["nfolds"]
    cv = jaxlasso.cv_logistic_path(X, y, foldid=foldid, lambdas=r.lambdas, measure=case["measure"],
                                   tol=1e-9, **kw)
    np.testing.assert_allclose(cv.cv_mean, r.cvm, rtol=CV_RTOL)
    np.testing.assert_allclose(cv.cv_sd, r.cvsd, rtol=CV_RTOL, atol=1e-12)
    assert (cv.index_min, cv.index_1se) == (r.index_min, r.index_1se)
