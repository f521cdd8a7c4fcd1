"""Would a reused Cholesky factor pay on the n >= p rows? A numpy replay of a binomial path.

    python benchmarks/factor_reuse.py gauss1000x2k gauss2000x2k [--threshold 10 20 40]

The cost model in ``benchmarks/NOTES.md`` ("Where the n >= p time goes") ranks, as its large
change, solving each Newton model by preconditioned conjugate gradients (PCG) with the factor of
an *older* Hessian, refreshed only when PCG needs too many iterations, instead of forming the
Gram and factorising it at every Newton step. Its unknown is how often the refresh is needed:
how fast the IRLS weights and the support drift along the path. This script measures that on
the real path, before any kernel is touched.

For one workload, on glmnet's 100-lambda grid: the path is solved once (``logistic_path``); at
each lambda l the support A_l (with the intercept) and the IRLS weights v_l = mu (1 - mu) at the
solution are read off. Each lambda is then replayed as the two linear systems a warm-started
Newton step meets there -- the Hessian X_A^T diag(v) X_A on the new support at the previous
lambda's weights (the first step) and at its own (the last) -- each solved to a relative residual
of 1e-10 by PCG preconditioned by the factor of X_A^T diag(v_r) X_A, where r is the lambda of the
last refresh (features that entered since are bordered in at v_r: exactly that factor). When PCG
needs more than ``threshold`` iterations the factor is refreshed at the current weights (and the
system solved again with it). Counted, in flops:

* exact (today's rule, on the support only -- a lower bound of what the solver does, which forms
  the Gram over the capacity level): per system 2 k^2 n (Gram) + k^3 / 3 (Cholesky);
* reuse: per refresh 2 k^2 n + k^3 / 3; per bordered feature 2 k n + k^2; per PCG iteration
  4 k n (a Hessian-vector product through X_A) + 2 k^2 (two triangular solves).

The preconditioned spectrum does not depend on how the columns are scaled or centred (a change
of basis of the same column space), so the raw columns and an intercept column of ones are used.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg as sla

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

TOL = 1e-10


def pcg(H: np.ndarray, b: np.ndarray, factor, tol: float = TOL, max_iter: int = 500) -> int:
    """Iterations of PCG on H x = b from x = 0 with the Cholesky ``factor`` as preconditioner."""
    x = np.zeros_like(b)
    r = b.copy()
    z = sla.cho_solve(factor, r)
    d = z.copy()
    rz = r @ z
    nb = np.linalg.norm(b)
    for it in range(1, max_iter + 1):
        Hd = H @ d
        step = rz / (d @ Hd)
        x += step * d
        r -= step * Hd
        if np.linalg.norm(r) <= tol * nb:
            return it
        z = sla.cho_solve(factor, r)
        rz, rz_old = r @ z, rz
        d = z + (rz / rz_old) * d
    return max_iter


def path_states(X: np.ndarray, y: np.ndarray, lam: np.ndarray):
    """(supports, weights) along the path: the nonzero columns and mu (1 - mu) / n per lambda."""
    import jaxlasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = jaxlasso.logistic_path(X, y, lambdas=lam, early_stop=False)
    coef = np.asarray(fit.coef.toarray() if hasattr(fit.coef, "toarray") else fit.coef)
    eta = coef @ X.T + np.asarray(fit.intercept)[:, None]
    mu = 1.0 / (1.0 + np.exp(-eta))
    return [np.flatnonzero(c) for c in coef], mu * (1.0 - mu) / X.shape[0]


def replay(X: np.ndarray, supports, weights, threshold: int, seed: int = 0) -> dict:
    n = X.shape[0]
    X1 = np.hstack([np.ones((n, 1)), X])
    rng = np.random.default_rng(seed)
    exact = reuse = 0.0
    refreshes, iters, systems, prev_w = 0, [], 0, weights[0]
    ref_w, ref_cols = None, None
    for A, w in zip(supports, weights):
        cols = np.concatenate([[0], A + 1])
        k = len(cols)
        XA = X1[:, cols]
        for v in (prev_w, w):
            systems += 1
            exact += 2.0 * k * k * n + k ** 3 / 3
            H = XA.T @ (v[:, None] * XA)
            b = rng.standard_normal(k)
            if ref_w is None:
                ref_w, ref_cols = v, cols
                refreshes += 1
                reuse += 2.0 * k * k * n + k ** 3 / 3
            else:
                new = np.setdiff1d(cols, ref_cols).size
                reuse += new * (2.0 * k * n + k * k)
            ref_cols = cols
            factor = sla.cho_factor(XA.T @ (ref_w[:, None] * XA), lower=True)
            it = pcg(H, b, factor)
            reuse += it * (4.0 * k * n + 2.0 * k * k)
            if it > threshold:
                refreshes += 1
                ref_w = v
                reuse += 2.0 * k * k * n + k ** 3 / 3
                it2 = pcg(H, b, sla.cho_factor(H, lower=True))
                reuse += it2 * (4.0 * k * n + 2.0 * k * k)
                it += it2
            iters.append(it)
        prev_w = w
    return {"threshold": threshold, "systems": systems, "refreshes": refreshes,
            "lambdas_per_refresh": len(supports) / refreshes, "pcg_median": float(np.median(iters)),
            "pcg_max": int(max(iters)), "exact_gflop": exact / 1e9, "reuse_gflop": reuse / 1e9,
            "ratio": reuse / exact}


def main(argv=None) -> int:
    from datasets import WORKLOADS
    from run import glmnet_grid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="+", choices=sorted(WORKLOADS))
    ap.add_argument("--threshold", type=int, nargs="+", default=[10, 20, 40])
    args = ap.parse_args(argv)
    for name in args.workloads:
        wl = WORKLOADS[name]()
        X, y = np.asarray(wl.X, float), np.asarray(wl.y, float)
        lam = glmnet_grid(X, y)
        supports, weights = path_states(X, y, lam)
        k = [len(s) for s in supports]
        print(f"{name}: n = {X.shape[0]}, p = {X.shape[1]}, support at lambda 30 / 50 / 90 / 100: "
              f"{k[29]} / {k[49]} / {k[89]} / {k[-1]}")
        for t in args.threshold:
            r = replay(X, supports, weights, t)
            print(f"  threshold {t:3d}: {r['refreshes']:3d} refreshes (one per {r['lambdas_per_refresh']:.1f} "
                  f"lambdas), PCG iterations median {r['pcg_median']:.0f} max {r['pcg_max']}, "
                  f"flops exact {r['exact_gflop']:.1f} GF vs reuse {r['reuse_gflop']:.1f} GF "
                  f"= {r['ratio']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
