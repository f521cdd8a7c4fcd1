"""Shared helpers for the tests: datasets, R glmnet comparisons, objective checks."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "golden"

DATA_DIR = Path(os.environ.get("JAXLASSO_TEST_DATA") or Path(__file__).resolve().parent / "data")
"""The real datasets: the copies shipped in ``tests/data`` (see its README), or the folder that
``$JAXLASSO_TEST_DATA`` names. They travel with the tests so that a plain clone runs every
real-data and parity test; a missing file fails the test that needs it instead of skipping it."""

REAL_DATASETS = ("tissue_cerebellum_vs_hippocampus", "all_bcrabl", "all_bt")


def real_data_path(name: str) -> Path:
    """Path of one of the real datasets; fails, naming the folder and the variable, when absent."""
    path = DATA_DIR / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"real dataset {path} not found: tests/data ships it; "
                                f"$JAXLASSO_TEST_DATA, when set, must name a folder that holds it")
    return path


def load_real(name: str):
    """(X float64, y 0/1, genes) of one of the real datasets."""
    d = np.load(real_data_path(name), allow_pickle=False)
    return d["X"].astype(np.float64), d["y"].astype(np.float64), d["genes"]


def synthetic(n: int, p: int, *, n_signal: int = 5, rho: float = 0.3, seed: int = 0,
              effect: float = 1.0, scale_spread: bool = False):
    """Correlated Gaussian design with a sparse logistic signal (deterministic)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    X = np.sqrt(1 - rho) * rng.normal(size=(n, p)) + np.sqrt(rho) * z
    if scale_spread:
        X = X * np.exp(rng.uniform(-2, 2, size=p)) + rng.uniform(-5, 5, size=p)
    beta = np.zeros(p)
    beta[:n_signal] = effect * rng.choice([-1.0, 1.0], n_signal)
    eta = X @ beta / (np.std(X @ beta) + 1e-12) * 1.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    if y.min() == y.max():
        y[:2] = [0.0, 1.0]
    return X, y


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]


def data_summary(X, y) -> dict:
    """What a parity test checks its case data against (stored by ``golden/make_golden.py``).

    ``y`` exactly; ``X`` through its shape and a few sums that any real change of the data moves
    but the last-bit differences of numpy's vectorised ``exp`` / ``log2`` between releases do not
    (a byte digest of ``X`` failed on a fresh machine with numpy 2.4.6 for the two cases built
    with them, though R would fit the same problem).
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    rng = np.random.default_rng(2026)
    u, v = rng.standard_normal(p), rng.standard_normal(n)
    X2 = X * X
    return {"shape": [n, p], "y_digest": digest(y), "sum": float(X.sum()), "sum_sq": float(X2.sum()),
            "vXu": float(v @ X @ u), "v2X2u2": float((v * v) @ X2 @ (u * u))}


def check_case_data(X, y, gold: dict) -> None:
    """Fail with "regenerate the golden files" unless (X, y) is the data R was given."""
    got, want = data_summary(X, y), gold["data_summary"]
    assert got["shape"] == want["shape"] and got["y_digest"] == want["y_digest"], \
        "case data changed: regenerate the golden files"
    for key in ("sum", "sum_sq", "vXu", "v2X2u2"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9,
                                   err_msg=f"case data changed ({key}): regenerate the golden files")


def load_golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def dense_from_sparse(entries, L: int, p: int) -> np.ndarray:
    out = np.zeros((L, p))
    for li, j, v in entries:
        out[int(li), int(j)] = v
    return out


def support_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of lambdas at which two (L, p) coefficient arrays have the same nonzero set."""
    return float(np.mean(np.all((a != 0) == (b != 0), axis=1)))


# --- parity cases: shared by tests/golden/make_golden.py and the tests -----------------------
# Each case: data source + jaxlasso keyword arguments (glmnet gets the translated ones).
PATH_CASES = {
    "tissue_lasso": dict(data="tissue_cerebellum_vs_hippocampus"),
    "all_bcrabl_lasso": dict(data="all_bcrabl"),
    "all_bt_lasso": dict(data="all_bt"),
    "synthetic_wide_lasso": dict(data=("synthetic", 40, 1500, 0)),
    "synthetic_enet_weights_pf": dict(data=("synthetic", 80, 200, 1), l1_ratio=0.5, weights=True,
                                      penalty_factor=True),
    "synthetic_unstandardized": dict(data=("synthetic_scaled", 60, 120, 2), standardize=False),
    "synthetic_no_intercept": dict(data=("synthetic", 60, 120, 3), fit_intercept=False),
    "tissue_ridge_like": dict(data="tissue_cerebellum_vs_hippocampus", l1_ratio=0.05, n_lambdas=30),
}

CV_CASES = {
    "tissue_cv_deviance": dict(data="tissue_cerebellum_vs_hippocampus", measure="deviance", nfolds=10),
    "all_bcrabl_cv_deviance": dict(data="all_bcrabl", measure="deviance", nfolds=10),
    "all_bcrabl_cv_auc": dict(data="all_bcrabl", measure="auc", nfolds=10),
    "all_bt_cv_class": dict(data="all_bt", measure="class", nfolds=5),
    "synthetic_cv_mse_enet": dict(data=("synthetic", 80, 200, 4), measure="mse", nfolds=8, l1_ratio=0.7),
    "seedlike_cv_ungrouped": dict(data="seedlike_log", measure="deviance", nfolds=7),
}


FAST_CASES = ("tissue_lasso", "tissue_cv_deviance")
"""The parity cases of the fast subset (``-m "not slow"``): the small real dataset's path and CV.
The rest are marked ``slow``: each compiles programs of its own (12,625-gene designs, weights and
penalty factors, ridge-like and unstandardised working sets), which dominates the suite's time."""


def case_params(cases) -> list:
    """``pytest.param`` per case name, ``slow`` unless it is one of :data:`FAST_CASES`."""
    import pytest

    return [pytest.param(name, id=name, marks=() if name in FAST_CASES else pytest.mark.slow)
            for name in cases]


def case_data(spec):
    """(X, y) of a case's data spec."""
    if spec == "seedlike_log":
        from jaxlasso.simulate import simulate_rnaseq

        sim = simulate_rnaseq(seed=0)
        X = np.log2(sim.counts.to_numpy(dtype=np.float64) + 1.0)
        X = X[:, X.std(axis=0) > 0]
        return X, (sim.y.to_numpy() == "case").astype(np.float64)
    if isinstance(spec, str):
        X, y, _ = load_real(spec)
        return X, y
    kind, n, p, seed = spec
    return synthetic(n, p, seed=seed, scale_spread=(kind == "synthetic_scaled"))


def case_inputs(case: dict, X: np.ndarray):
    """(jaxlasso kwargs without lambdas, extra arrays) for a case."""
    n, p = X.shape
    rng = np.random.default_rng(123)
    kw = {k: case[k] for k in ("l1_ratio", "standardize", "fit_intercept", "n_lambdas") if k in case}
    if case.get("weights"):
        w = rng.uniform(0.2, 3.0, n)
        w[:3] = 0.0
        kw["sample_weight"] = w
    if case.get("penalty_factor"):
        pf = rng.uniform(0.5, 2.0, p)
        pf[:2] = 0.0
        pf[5:8] = np.inf
        kw["penalty_factor"] = pf
    return kw


def case_foldid(case: dict, n: int) -> np.ndarray:
    """glmnet-style 1-based fold ids, deterministic per case."""
    rng = np.random.default_rng(7)
    return rng.permutation(np.resize(np.arange(1, case["nfolds"] + 1), n))



# --- comparing with R glmnet: the golden files and the live tests ----------------------------
OBJ_RTOL = 1e-6
"""jaxlasso's objective must be <= glmnet's (thresh=1e-12) x (1 + OBJ_RTOL) at every lambda."""
SUPPORT_MIN = 0.90
"""The nonzero sets must agree at >= this fraction of the lambdas (coefficients of nearly
degenerate p >> n problems are not unique enough to compare directly)."""


def glmnet_args(kw: dict) -> dict:
    """``jaxlasso.rglmnet.run_glmnet`` arguments for a case's jaxlasso keyword arguments."""
    return dict(
        alpha=kw.get("l1_ratio", 1.0),
        standardize=kw.get("standardize", True),
        intercept=kw.get("fit_intercept", True),
        weights=kw.get("sample_weight"),
        penalty_factor=kw.get("penalty_factor"),
        nlambda=kw.get("n_lambdas", 100),
    )


def check_path_against_glmnet(X, y, kw: dict, lambdas, r_coef, r_intercept):
    """Fit jaxlasso on glmnet's lambdas and assert the objective and support bars; returns
    ``(fit, worst relative objective excess, support agreement)``."""
    import jaxlasso

    fit = jaxlasso.logistic_path(X, y, lambdas=lambdas, tol=1e-9, **kw)
    assert len(fit.lambdas) == len(lambdas), "explicit lambdas must never be cut short"
    obj_kw = {k: kw[k] for k in ("l1_ratio", "sample_weight", "penalty_factor", "standardize")
              if k in kw}
    ours = jaxlasso.logistic_objective(X, y, fit.coef, fit.intercept, fit.lambdas, **obj_kw)
    theirs = jaxlasso.logistic_objective(X, y, r_coef, r_intercept, lambdas, **obj_kw)
    worst = np.max((ours - theirs) / np.abs(theirs))
    assert worst <= OBJ_RTOL, f"objective above glmnet's by {worst:.3g} (relative)"
    agree = support_agreement(fit.coef, r_coef)
    assert agree >= SUPPORT_MIN, f"supports agree at only {agree:.0%} of lambdas"
    assert np.all(fit.kkt_gap <= fit.tol)
    return fit, worst, agree


def spy_solver_memory(name: str, records: list):
    """The engine settings that wrap the kernels' vmapped solver factory ``name`` (for
    ``jaxlasso._engine.configure(**...)``) so that its solvers append ``(temporary bytes of the
    compiled program, bytes of the design XT, lanes)`` to ``records`` before they run."""
    import kernels

    real = getattr(kernels, name)

    def factory(**kw):
        fn = real(**kw)

        def call(problem, lambdas, state, *rest):
            compiled = fn.lower(problem, lambdas, state, *rest).compile()
            records.append((compiled.memory_analysis().temp_size_in_bytes, problem.XT.nbytes,
                            state.beta.shape[-2]))
            return fn(problem, lambdas, state, *rest)

        return call

    return {name: factory}


# --- Cox (survival) parity cases: shared by tests/golden/make_golden_cox.py and test_family_cox --
def survival_data(n: int, p: int, *, seed: int = 0, grid: float = 4.0, n_signal: int = 3,
                  censor_scale: float = 1.5):
    """(X, time, event): exponential survival times with a sparse signal, independent exponential
    censoring, and times rounded up to multiples of ``1 / grid`` -- ties between events and
    between events and censored rows (deterministic)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[:n_signal] = rng.choice([-1.0, 1.0], n_signal) * np.linspace(1.0, 0.5, n_signal)
    t = rng.exponential(1.0 / np.exp(X @ beta))
    c = rng.exponential(censor_scale, n)
    time = np.ceil(np.minimum(t, c) * grid) / grid
    event = (t <= c).astype(np.float64)
    return X, time, event


COX_DATA = GOLDEN / "cox_coxexample_data.npz"
"""glmnet's ``data(CoxExample)`` (1000 x 30, no tied times), written by make_golden_cox.py."""

COX_PATH_CASES = {
    "cox_coxexample_path": dict(data="coxexample"),
    # lambda_min_ratio 0.05 (CV 0.07): below ~0.035 lambda_max glmnet (thresh 1e-12) stops
    # converging within maxit on this nearly saturated p >> n problem (its folds a little
    # earlier) and truncates its path and folds.
    "cox_synthetic_wide_path": dict(data=("survival", 100, 5000, 11, 2.0), lambda_min_ratio=0.05),
    "cox_synthetic_enet_weights_pf_path": dict(data=("survival", 80, 200, 12, 4.0), l1_ratio=0.5,
                                               weights=True, penalty_factor=True),
}
COX_CV_CASES = {
    "cox_coxexample_cv_deviance": dict(data="coxexample", measure="deviance", nfolds=10),
    "cox_coxexample_cv_C": dict(data="coxexample", measure="C", nfolds=10),
    "cox_coxexample_cv_ungrouped": dict(data="coxexample", measure="deviance", nfolds=10, grouped=False),
    "cox_synthetic_wide_cv_deviance": dict(data=("survival", 100, 5000, 11, 2.0), measure="deviance",
                                           nfolds=10, lambda_min_ratio=0.07),
    "cox_synthetic_wide_cv_C": dict(data=("survival", 100, 5000, 11, 2.0), measure="C", nfolds=5,
                                    lambda_min_ratio=0.07),
}


def cox_case_data(spec):
    """(X, time, event) of a Cox case's data spec."""
    if spec == "coxexample":
        d = np.load(COX_DATA, allow_pickle=False)
        return d["X"], d["time"], d["event"]
    _, n, p, seed, grid = spec
    return survival_data(n, p, seed=seed, grid=grid)


def cox_case_inputs(case: dict, n: int, p: int) -> dict:
    """jaxlasso keyword arguments (without lambdas) of a Cox case."""
    rng = np.random.default_rng(321)
    kw = {k: case[k] for k in ("l1_ratio", "n_lambdas", "lambda_min_ratio") if k in case}
    if case.get("weights"):
        w = rng.uniform(0.2, 3.0, n)
        w[:3] = 0.0
        kw["sample_weight"] = w
    if case.get("penalty_factor"):
        pf = rng.uniform(0.5, 2.0, p)
        pf[:2] = 0.0
        pf[5:8] = np.inf
        kw["penalty_factor"] = pf
    return kw


def cox_glmnet_args(kw: dict) -> dict:
    """``jaxlasso.rglmnet.run_coxnet`` arguments for a Cox case's jaxlasso keyword arguments."""
    return dict(alpha=kw.get("l1_ratio", 1.0), weights=kw.get("sample_weight"),
                penalty_factor=kw.get("penalty_factor"), nlambda=kw.get("n_lambdas", 100),
                lambda_min_ratio=kw.get("lambda_min_ratio"))


def cox_data_summary(X, time, event) -> dict:
    """What a Cox parity test checks its case data against (see :func:`data_summary`)."""
    out = data_summary(X, time)
    out["event_digest"] = digest(event)
    return out
