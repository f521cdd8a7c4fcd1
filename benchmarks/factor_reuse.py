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

``--model`` goes one step further and solves the whole path that way (:func:`newton_path`): a
proximal Newton method whose L1 model is solved by an active-set loop -- PCG on the free set with
the signs fixed, then the first sign change dropped or the model's KKT violators added, until
neither happens -- each PCG preconditioned by the reused factor. It checks the objective against
``logistic_path``'s at every lambda and counts Newton steps, model solves, PCG iterations and
refreshes. Slow (numpy forms each preconditioner anew; the flops count what bordering would
cost): ~1,000 s on 1000 x 2,000.
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


def pcg(matvec, b: np.ndarray, pre, x0: np.ndarray | None = None, tol: float = TOL,
        max_iter: int = 500) -> tuple[np.ndarray, int]:
    """PCG on ``matvec(x) = b`` from ``x0`` (default 0) with the preconditioner ``pre(r)``, to a
    residual of ``tol`` relative to ``b``: (solution, iterations)."""
    x = np.zeros_like(b) if x0 is None else x0.copy()
    r = b - matvec(x) if x0 is not None else b.copy()
    nb = np.linalg.norm(b) or 1.0
    if np.linalg.norm(r) <= tol * nb:
        return x, 0
    z = pre(r)
    d, rz = z.copy(), r @ z
    for it in range(1, max_iter + 1):
        Hd = matvec(d)
        step = rz / (d @ Hd)
        x += step * d
        r -= step * Hd
        if np.linalg.norm(r) <= tol * nb:
            return x, it
        z = pre(r)
        rz, rz_old = r @ z, rz
        d = z + (rz / rz_old) * d
    return x, max_iter


def cholesky_preconditioner(M: np.ndarray):
    """``r -> M^-1 r`` through the Cholesky factor of ``M``."""
    factor = sla.cho_factor(M, lower=True)
    return lambda r: sla.cho_solve(factor, r)


# Flops of the steps both solvers count, for k columns (the intercept's included) and n rows.
def _refresh_flops(k: int, n: int) -> float:
    """A Gram X_A^T diag(v) X_A and its Cholesky."""
    return 2.0 * k * k * n + k ** 3 / 3


def _border_flops(k: int, n: int) -> float:
    """One column bordered into a factor: its Gram column and a triangular solve."""
    return 2.0 * k * n + k * k


def _pcg_flops(k: int, n: int) -> float:
    """One PCG iteration: X_A^T (v * (X_A d)) and two triangular solves."""
    return 4.0 * k * n + 2.0 * k * k


def _fitted_path(X: np.ndarray, y: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``logistic_path`` on glmnet's grid ``lam`` without early stop: dense (L, p) coefficients
    and (L,) intercepts, on X's scale."""
    import jaxlasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = jaxlasso.logistic_path(X, y, lambdas=lam, early_stop=False)
    coef = np.asarray(fit.coef.toarray() if hasattr(fit.coef, "toarray") else fit.coef)
    return coef, np.asarray(fit.intercept)


def path_states(X: np.ndarray, y: np.ndarray, lam: np.ndarray):
    """(supports, weights) along the path: the nonzero columns and mu (1 - mu) / n per lambda."""
    coef, intercept = _fitted_path(X, y, lam)
    mu = 1.0 / (1.0 + np.exp(-(coef @ X.T + intercept[:, None])))
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
            exact += _refresh_flops(k, n)
            H = XA.T @ (v[:, None] * XA)
            b = rng.standard_normal(k)
            if ref_w is None:
                ref_w, ref_cols = v, cols
                refreshes += 1
                reuse += _refresh_flops(k, n)
            else:
                reuse += np.setdiff1d(cols, ref_cols).size * _border_flops(k, n)
            ref_cols = cols
            it = pcg(lambda u: H @ u, b, cholesky_preconditioner(XA.T @ (ref_w[:, None] * XA)))[1]
            reuse += it * _pcg_flops(k, n)
            if it > threshold:
                refreshes += 1
                ref_w = v
                reuse += _refresh_flops(k, n)
                it2 = pcg(lambda u: H @ u, b, cholesky_preconditioner(H))[1]
                reuse += it2 * _pcg_flops(k, n)
                it += it2
            iters.append(it)
        prev_w = w
    return {"threshold": threshold, "systems": systems, "refreshes": refreshes,
            "lambdas_per_refresh": len(supports) / refreshes, "pcg_median": float(np.median(iters)),
            "pcg_max": int(max(iters)), "exact_gflop": exact / 1e9, "reuse_gflop": reuse / 1e9,
            "ratio": reuse / exact}


class Counts:
    """What :func:`newton_path` did, and the flops it stands for (as in :func:`replay`)."""

    def __init__(self):
        self.newton = self.model_solves = self.pcg_iters = self.refreshes = 0
        self.exact = self.reuse = 0.0


def _objective(Xs, y, beta, a, lam):
    eta = a + Xs @ beta
    return float(np.mean(np.logaddexp(0.0, eta) - y * eta) + lam * np.abs(beta).sum())


def _model_step(Xs, beta, g, g0, v, lam, S, ref, threshold, c: Counts) -> np.ndarray:
    """The Newton model's minimiser over the intercept and the columns ``S``, as a step d
    (d[0] the intercept's): an active-set loop of PCG solves with the reference weights'
    factor; ``ref`` = [weights] is refreshed in place when PCG needs more than ``threshold``."""
    n = Xs.shape[0]
    XS, bS, gS = Xs[:, S], beta[S], g[S]
    free = (bS != 0) | (np.abs(gS) > lam)
    s = np.where(bS != 0, np.sign(bS), -np.sign(gS))
    prev = np.zeros(len(S) + 1)
    for _ in range(10 * len(S) + 10):
        F = np.flatnonzero(free)
        A = np.hstack([np.ones((n, 1)), XS[:, F]])
        fixed = np.where(free, 0.0, -bS)  # columns outside F go to zero
        rhs = -(np.concatenate([[g0], gS[F] + lam * s[F]]) + A.T @ (v * (XS @ fixed)))
        k = A.shape[1]
        z, it = pcg(lambda u: A.T @ (v * (A @ u)), rhs, cholesky_preconditioner(A.T @ (ref[0][:, None] * A)),
                    np.concatenate([[prev[0]], prev[1:][F]]), tol=1e-12, max_iter=300)
        c.model_solves += 1
        c.pcg_iters += it
        c.reuse += it * _pcg_flops(k, n)
        if it > threshold:
            ref[0] = v
            c.refreshes += 1
            c.reuse += _refresh_flops(k, n)
        d = np.concatenate([[z[0]], fixed])
        d[1:][F] = z[1:]
        new = bS + d[1:]
        crossed = free & (new * s <= 0)
        if crossed.any():  # back to the first sign change, and that column leaves F
            old = bS + prev[1:]
            t = np.ones(len(S))
            t[crossed] = old[crossed] / np.where(old[crossed] != new[crossed], old[crossed] - new[crossed], 1.0)
            j = np.flatnonzero(crossed)[np.argmin(t[crossed])]
            prev = prev + np.clip(t[j], 0.0, 1.0) * (d - prev)
            prev[1 + j] = -bS[j]
            free[j] = False
            continue
        grad = gS + XS.T @ (v * (d[0] + XS @ d[1:]))
        enter = ~free & (np.abs(grad) > lam * (1 + 1e-12))
        if not enter.any():
            return d
        free |= enter
        s[enter] = -np.sign(grad[enter])
        prev = d
    return d


def newton_path(Xs, y, lams, threshold: int = 20, tol: float = 1e-10) -> tuple[list, Counts]:
    """The binomial lasso path on the standardised ``Xs`` by proximal Newton steps whose model is
    solved by :func:`_model_step`; a Newton loop ends when the objective falls by less than
    ``tol`` (relative), a lambda when no zero coefficient violates the KKT conditions.
    Returns [(beta, intercept) per lambda] and the :class:`Counts`."""
    n, p = Xs.shape
    c = Counts()
    beta, a = np.zeros(p), float(np.log(y.mean() / (1.0 - y.mean())))
    ref: list = [None]
    out = []

    def state(beta, a):
        mu = 1.0 / (1.0 + np.exp(-(a + Xs @ beta)))
        return mu, Xs.T @ (mu - y) / n

    for lam in lams:
        for _ in range(50):  # KKT rounds over all p
            mu, g = state(beta, a)
            S = np.flatnonzero((beta != 0) | (np.abs(g) > lam))
            for _ in range(100):  # Newton steps on S
                mu, g = state(beta, a)
                v = mu * (1.0 - mu) / n
                if ref[0] is None:
                    ref[0] = v
                    c.refreshes += 1
                k = len(S) + 1
                c.newton += 1
                c.exact += _refresh_flops(k, n)
                d = _model_step(Xs, beta, g, float(np.mean(mu - y)), v, lam, S, ref, threshold, c)
                f0, t = _objective(Xs, y, beta, a, lam), 1.0
                while True:
                    nb = beta.copy()
                    nb[S] += t * d[1:]
                    f1 = _objective(Xs, y, nb, a + t * d[0], lam)
                    if f1 <= f0 or t < 1e-6:
                        break
                    t /= 2
                beta, a = nb, a + t * d[0]
                if f0 - f1 <= tol * abs(f0):
                    break
            mu, g = state(beta, a)
            if not np.any((beta == 0) & (np.abs(g) > lam * (1 + 1e-9))):
                break
        out.append((beta.copy(), a))
    return out, c


def check_newton_path(X, y, lam, threshold: int) -> dict:
    """:func:`newton_path` on ``X``'s standardised columns against ``logistic_path``: counts and
    the largest relative objective excess over jaxlasso's at any lambda."""
    mean, sd = X.mean(axis=0), X.std(axis=0)
    Xs = (X - mean) / sd
    coef, intercept = _fitted_path(X, y, lam)
    path, c = newton_path(Xs, y, lam, threshold)
    worst = -np.inf
    for i, (b, a) in enumerate(path):
        # jaxlasso's solution on the standardised scale: beta * sd, intercept + beta . mean.
        ref = _objective(Xs, y, coef[i] * sd, intercept[i] + coef[i] @ mean, lam[i])
        worst = max(worst, (_objective(Xs, y, b, a, lam[i]) - ref) / abs(ref))
    return {"newton": c.newton, "model_solves": c.model_solves, "pcg_iters": c.pcg_iters,
            "refreshes": c.refreshes, "exact_gflop": c.exact / 1e9, "reuse_gflop": c.reuse / 1e9,
            "worst_objective_excess": worst}


def main(argv=None) -> int:
    from datasets import WORKLOADS
    from run import glmnet_grid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="+", choices=sorted(WORKLOADS))
    ap.add_argument("--threshold", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--model", action="store_true",
                    help="solve the whole path with the active-set PCG model (newton_path) and count it")
    args = ap.parse_args(argv)
    for name in args.workloads:
        wl = WORKLOADS[name]()
        X, y = np.asarray(wl.X, float), np.asarray(wl.y, float)
        lam = glmnet_grid(X, y)
        if args.model:
            for t in args.threshold:
                r = check_newton_path(X, y, lam, t)
                print(f"{name} threshold {t}: {r['newton']} Newton steps, {r['model_solves']} model solves "
                      f"({r['model_solves'] / r['newton']:.1f} per step), {r['pcg_iters']} PCG iterations "
                      f"({r['pcg_iters'] / r['model_solves']:.1f} per solve), {r['refreshes']} refreshes; flops "
                      f"Gram + Cholesky per step {r['exact_gflop']:.1f} GF vs {r['reuse_gflop']:.1f} GF; "
                      f"objective vs jaxlasso's at worst {r['worst_objective_excess']:+.1e}", flush=True)
            continue
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
