"""Parity cases of the Gaussian family: shared by tests/golden/make_golden_gaussian.py (which ran
R glmnet 4.1.6 on them) and tests/test_family_gaussian.py.

Data: a synthetic high-dimensional regression (n = 100, p = 5,000, correlated columns, a sparse
signal, ``y`` on a scale and offset far from 0/1 so that glmnet's standardisation of ``y`` is
exercised) and glmnet's own ``QuickStartExample`` (100 x 20), stored in
``tests/golden/gaussian_quickstart_data.json`` by the make script (``data(QuickStartExample)``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "golden"


def synthetic_regression(n: int = 100, p: int = 5000, *, seed: int = 0, n_signal: int = 8,
                         rho: float = 0.3):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    X = np.sqrt(1 - rho) * rng.normal(size=(n, p)) + np.sqrt(rho) * z
    beta = np.zeros(p)
    beta[:n_signal] = rng.choice([-1.0, 1.0], n_signal) * rng.uniform(0.5, 1.5, n_signal)
    y = 250.0 + 40.0 * (X @ beta + rng.normal(size=n))
    return X, y


def quickstart():
    d = json.loads((GOLDEN / "gaussian_quickstart_data.json").read_text())
    return np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.float64)


def case_data(spec):
    if spec == "quickstart":
        return quickstart()
    _, n, p, seed = spec
    return synthetic_regression(n, p, seed=seed)


PATH_CASES = {
    "gaussian_wide_lasso": dict(data=("synthetic", 100, 5000, 0)),
    "gaussian_quickstart_lasso": dict(data="quickstart"),
    "gaussian_quickstart_enet_weights_pf": dict(data="quickstart", l1_ratio=0.5, weights=True,
                                                penalty_factor=True),
    "gaussian_quickstart_no_intercept": dict(data="quickstart", fit_intercept=False),
}

CV_CASES = {
    "gaussian_wide_cv_mse": dict(data=("synthetic", 100, 5000, 0), measure="mse", nfolds=10),
    "gaussian_quickstart_cv_mse": dict(data="quickstart", measure="mse", nfolds=10),
    "gaussian_quickstart_cv_mae": dict(data="quickstart", measure="mae", nfolds=7),
}


def case_inputs(case: dict, X: np.ndarray) -> dict:
    n, p = X.shape
    rng = np.random.default_rng(321)
    kw = {k: case[k] for k in ("l1_ratio", "standardize", "fit_intercept") if k in case}
    if case.get("weights"):
        w = rng.uniform(0.2, 3.0, n)
        w[:3] = 0.0
        kw["sample_weight"] = w
    if case.get("penalty_factor"):
        pf = rng.uniform(0.5, 2.0, p)
        pf[:2] = 0.0
        pf[5:7] = np.inf
        kw["penalty_factor"] = pf
    return kw


def case_foldid(case: dict, n: int) -> np.ndarray:
    """glmnet-style 1-based fold ids, deterministic per case."""
    rng = np.random.default_rng(17)
    return rng.permutation(np.resize(np.arange(1, case["nfolds"] + 1), n))
