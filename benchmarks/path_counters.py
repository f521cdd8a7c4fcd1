"""Counters of one path and the cost model they feed: where the n >= p time goes.

    python benchmarks/path_counters.py gauss1000x2k gauss2000x2k

For each workload, on glmnet's 100-lambda grid (as in run.py): jaxlasso's Newton steps, KKT
passes, working-set slots needed (k) and the capacity K the Gram is formed over, per lambda;
glmnet's total coordinate-descent passes (``fit$npasses``) and active-set sizes on the same grid;
then flop counts of the model in NOTES.md, turned into seconds by this machine's measured rates
(one-thread GEMM for the Gram, LAPACK Cholesky, and a row-axpy for a CD coordinate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def jaxlasso_counters(X, y, lam) -> dict:
    """Per-lambda counters of one full-data path (the solver's own outputs) and its time."""
    from jaxlasso._engine import solve_lanes
    from jaxlasso.path import PreparedProblem

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob = PreparedProblem(X, y, l1_ratio=1.0, lambdas=lam, n_lambdas=len(lam), lambda_min_ratio=None,
                               standardize=True, fit_intercept=True, sample_weight=None, penalty_factor=None,
                               early_stop=False, tol=None, max_iter=200, dtype=np.float64)

        def run():
            return solve_lanes(prob, prob.lanes())

        run()  # compile
        t = time.perf_counter()
        out = run()
        secs = time.perf_counter() - t
    needed = out.ws_needed[0].astype(int)
    caps = sorted(out.capacities)
    reach = np.maximum.accumulate(needed)
    K = np.array([next((c for c in caps if c >= r), caps[-1]) for r in reach])
    nnz = np.count_nonzero(out.coef[0], axis=1)
    return {"seconds": secs, "newton": out.n_iter[0].astype(int).tolist(),
            "kkt": out.n_kkt_rounds[0].astype(int).tolist(), "needed": needed.tolist(), "K": K.tolist(),
            "nnz": nnz.tolist(), "capacities": list(out.capacities)}


R_COUNTERS = r"""
suppressMessages(library(glmnet))
a <- commandArgs(TRUE); d <- a[1]
dims <- scan(file.path(d, "dims.txt"), quiet = TRUE)
x <- matrix(readBin(file.path(d, "x.bin"), "double", dims[1] * dims[2]), dims[1], dims[2])
y <- readBin(file.path(d, "y.bin"), "double", dims[1])
lam <- readBin(file.path(d, "lambda.bin"), "double", 1000)
t <- system.time(fit <- glmnet(x, y, family = "binomial", lambda = lam))[["elapsed"]]
cat(t, fit$npasses, length(fit$lambda), "\n")
cat(fit$df, "\n")
"""


def glmnet_counters(X, y, lam) -> dict:
    """glmnet on the same grid: its time, total CD passes over the data and active-set sizes."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        np.asarray(X, "<f8").ravel(order="F").tofile(d / "x.bin")
        np.asarray(y, "<f8").tofile(d / "y.bin")
        np.asarray(lam, "<f8").tofile(d / "lambda.bin")
        (d / "dims.txt").write_text(f"{X.shape[0]} {X.shape[1]}\n")
        (d / "c.R").write_text(R_COUNTERS)
        res = subprocess.run(["Rscript", str(d / "c.R"), str(d)], capture_output=True, text=True, check=True)
    first, second = res.stdout.strip().splitlines()
    t, passes, length = first.split()
    return {"seconds": float(t), "npasses": int(passes), "length": int(length),
            "df": [int(v) for v in second.split()]}


def rates() -> dict:
    """This machine's seconds per flop for the model's three kernels, one thread (numpy / LAPACK)."""
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(1):
        A = rng.standard_normal((512, 2000))
        t = time.perf_counter()
        for _ in range(3):
            A @ A.T
        out["gemm64"] = (time.perf_counter() - t) / 3 / (2 * 512 * 512 * 2000)
        A32 = A.astype(np.float32)
        t = time.perf_counter()
        for _ in range(3):
            A32 @ A32.T
        out["gemm32"] = (time.perf_counter() - t) / 3 / (2 * 512 * 512 * 2000)
        M = A @ A.T + 512 * np.eye(512)
        t = time.perf_counter()
        for _ in range(5):
            scipy.linalg.cholesky(M, lower=True)
        out["chol"] = (time.perf_counter() - t) / 5 / (512 ** 3 / 3)
        # A CD coordinate is a dot product and an axpy of length n (Fortran loops in glmnet);
        # matrix-vector products over the same data are their per-flop rate without Python's
        # per-call overhead.
        r_ = rng.standard_normal(2000)
        t = time.perf_counter()
        for _ in range(20):
            g = A @ r_
            A.T @ g
        out["cd"] = (time.perf_counter() - t) / 20 / (4 * 512 * 2000)
    return out


def model(X, jx: dict, gl: dict, r: dict) -> dict:
    """Predicted seconds of each part (flop counts x measured rates); see NOTES.md for the model."""
    n, p = X.shape
    steps = np.array(jx["newton"])
    K = np.array(jx["K"])
    needed = np.array(jx["needed"])
    gram_rate = np.where(K >= 256, r["gemm32"], r["gemm64"])
    gram = float(np.sum(steps * 2.0 * K ** 2 * n * gram_rate))  # K x K Gram over all K slots
    # One Cholesky per Newton step at least (more when the active set is corrected), on the
    # smallest level (K/4, K/2, 3K/4, K) that holds the support.
    level = np.array([min(c for c in (-(-k * q // 8) for q in (2, 4, 6, 8)) if c >= s) if k >= 64 else k
                      for k, s in zip(K, needed)])
    chol = float(np.sum(steps * level.astype(float) ** 3 / 3 * r["chol"]))
    kkt = float(np.sum(np.array(jx["kkt"]) * 2.0 * n * p * r["gemm64"]))
    k_gl = np.array(gl["df"], float)
    avg_k = float(np.mean(np.maximum(k_gl, 1)))
    glmnet_cd = gl["npasses"] * 4.0 * n * avg_k * r["cd"]  # a pass: each active coordinate, dot + axpy
    return {"gram_s": gram, "chol_min_s": chol, "kkt_s": kkt, "glmnet_cd_s": glmnet_cd,
            "newton_steps": int(steps.sum()), "kkt_passes": int(np.sum(jx["kkt"])),
            "K_max": int(K.max()), "k_max": int(needed.max()), "glmnet_passes": gl["npasses"],
            "glmnet_avg_k": avg_k, "glmnet_passes_per_lambda": gl["npasses"] / gl["length"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from datasets import WORKLOADS, expand_workloads
    from run import glmnet_grid

    r = rates()
    print("rates (ns/flop, one thread): " + ", ".join(f"{k} {v * 1e9:.3f}" for k, v in r.items()))
    results = []
    for name in expand_workloads(args.workloads):
        wl = WORKLOADS[name]()
        lam = glmnet_grid(wl.X, wl.y)
        jx = jaxlasso_counters(wl.X, wl.y, lam)
        gl = glmnet_counters(wl.X, wl.y, lam)
        m = model(wl.X, jx, gl, r)
        results.append({"workload": wl.name, "jaxlasso": jx, "glmnet": gl, "model": m, "rates": r})
        steps = np.array(jx["newton"])
        print(f"{wl.name}: jaxlasso {jx['seconds']:.2f} s, glmnet {gl['seconds']:.2f} s; capacities "
              f"{jx['capacities']}; Newton steps {m['newton_steps']} ({steps.mean():.2f}/lambda), KKT passes "
              f"{m['kkt_passes']}, k max {m['k_max']} (K {m['K_max']}); glmnet {gl['npasses']} CD passes "
              f"({m['glmnet_passes_per_lambda']:.1f}/lambda) at mean active set {m['glmnet_avg_k']:.0f}, "
              f"path length {gl['length']}")
        print(f"  model: Gram {m['gram_s']:.2f} s + Cholesky >= {m['chol_min_s']:.2f} s + KKT {m['kkt_s']:.2f} s "
              f"(jaxlasso); glmnet CD {m['glmnet_cd_s']:.2f} s")
        every = max(1, len(steps) // 10)
        print("  lambda index: " + " ".join(f"{i:>4d}" for i in range(0, len(steps), every)))
        for key in ("needed", "K", "newton", "kkt"):
            print(f"  {key:>12}: " + " ".join(f"{jx[key][i]:>4d}" for i in range(0, len(steps), every)))
        shown = range(0, min(len(steps), len(gl["df"])), every)
        print(f"  {'glmnet df':>12}: " + " ".join(f"{gl['df'][i]:>4d}" for i in shown))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
