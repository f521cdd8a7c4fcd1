"""Benchmark adapters with one signature: jaxlasso, R glmnet, scikit-learn (+ optional peers).

Every adapter answers ``path(X, y, lambdas, repeats)`` and, where it can, ``cv(X, y, lambdas,
foldid, repeats)`` with a :class:`Timing`: the fitted values plus the per-repeat seconds. An
adapter whose package is missing reports ``available() == False`` and is skipped.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Timing:
    seconds: list[float]
    """Per-repeat wall seconds of the fit itself (after warm-up)."""
    first: float | None = None
    """The first call (compile + run for JAX; None where there is no separate first call)."""
    coef: np.ndarray | None = None  # (L, p)
    intercept: np.ndarray | None = None  # (L,)
    cvm: np.ndarray | None = None
    cvsd: np.ndarray | None = None
    index_min: int | None = None
    index_1se: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    @property
    def compile(self) -> float | None:
        return None if self.first is None else max(0.0, self.first - self.median)


class Adapter:
    name = "base"

    def available(self) -> bool:
        return True

    def path(self, X, y, lambdas, repeats: int) -> Timing:
        raise NotImplementedError

    def cv(self, X, y, lambdas, foldid, repeats: int) -> Timing:
        raise NotImplementedError


class Jaxlasso(Adapter):
    """jaxlasso on float64 (the default), timed around the public API call."""

    name = "jaxlasso"

    def __init__(self, dtype=np.float64, tol: float | None = None, family: str = "binomial",
                 l1_ratio: float = 1.0):
        self.dtype = dtype
        self.tol = tol
        self.family = family
        self.l1_ratio = l1_ratio
        if dtype == np.float32:
            self.name = "jaxlasso-f32"

    def _timed(self, fn, repeats):
        t = time.perf_counter()
        res = fn()
        first = time.perf_counter() - t
        secs = []
        for _ in range(repeats):
            t = time.perf_counter()
            res = fn()
            secs.append(time.perf_counter() - t)
        return res, first, secs

    def path(self, X, y, lambdas, repeats):
        import jaxlasso

        res, first, secs = self._timed(
            lambda: jaxlasso.fit_path(X, y, family=self.family, lambdas=lambdas, dtype=self.dtype, tol=self.tol,
                                      l1_ratio=self.l1_ratio), repeats)
        return Timing(secs, first, coef=res.coef, intercept=res.intercept,
                      extra={"capacities": res.info["working_set_capacities"]})

    def cv(self, X, y, lambdas, foldid, repeats):
        import jaxlasso

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, first, secs = self._timed(
                lambda: jaxlasso.cv_path(X, y, family=self.family, lambdas=lambdas, foldid=foldid,
                                         dtype=self.dtype, tol=self.tol, l1_ratio=self.l1_ratio), repeats)
        return Timing(secs, first, cvm=res.cv_mean, cvsd=res.cv_sd, index_min=res.index_min,
                      index_1se=res.index_1se)

    def bootstrap(self, X, y, lambdas, weights, repeats):
        """Many paths on resampling weights (the stability-selection workload)."""
        from jaxlasso._engine import Lanes, solve_lanes
        from jaxlasso.path import PreparedProblem

        prob = PreparedProblem(X, y, l1_ratio=self.l1_ratio, lambdas=lambdas, n_lambdas=len(lambdas),
                               lambda_min_ratio=None, standardize=True, fit_intercept=True,
                               sample_weight=None, penalty_factor=None, early_stop=False, tol=self.tol,
                               max_iter=200, dtype=self.dtype)

        def run():
            return solve_lanes(prob, Lanes(W=weights))

        _, first, secs = self._timed(run, repeats)
        return Timing(secs, first)


class Glmnet(Adapter):
    """R glmnet in an Rscript subprocess; the timing is taken inside R around the call."""

    name = "glmnet"

    def __init__(self, thresh: float = 1e-7, family: str = "binomial", l1_ratio: float = 1.0):
        self.thresh = thresh
        self.family = family
        self.l1_ratio = l1_ratio

    def available(self):
        from jaxlasso import rglmnet

        return rglmnet.available()

    def path(self, X, y, lambdas, repeats):
        from jaxlasso import rglmnet

        out = rglmnet.run_glmnet(X, y, lambdas=lambdas, thresh=self.thresh, repeats=repeats, family=self.family,
                                 alpha=self.l1_ratio)
        return Timing(list(out.times), None, coef=out.coef, intercept=out.intercept,
                      extra={"wall": out.wall, "version": out.version})

    def cv(self, X, y, lambdas, foldid, repeats):
        from jaxlasso import rglmnet

        out = rglmnet.run_glmnet(X, y, task="cv", lambdas=lambdas, foldid=foldid, thresh=self.thresh,
                                 repeats=repeats, family=self.family, alpha=self.l1_ratio,
                                 type_measure="deviance" if self.family == "binomial" else "mse")
        return Timing(list(out.times), None, cvm=out.cvm, cvsd=out.cvsd, index_min=out.index_min,
                      index_1se=out.index_1se, extra={"wall": out.wall})

    def bootstrap(self, X, y, lambdas, weights, repeats):
        """A loop of glmnet fits, one per bootstrap weight vector, timed inside one R process."""
        from jaxlasso import rglmnet

        out = rglmnet.run_glmnet(X, y, task="bootstrap", lambdas=lambdas, thresh=self.thresh,
                                 weight_sets=weights, repeats=repeats)
        return Timing(list(out.times), None)


class GlmnetDirect(Adapter):
    """R glmnet called literally in a plain Rscript (``benchmarks/glmnet_direct.R``): the reference.

    The script is what a user writes -- ``glmnet(x, y, family = "binomial", lambda = lam)`` and
    ``cv.glmnet(x, y, family = "binomial", lambda = lam, foldid = foldid)`` on data already in the
    session -- and shares no code with the bridge (``jaxlasso/r/glmnet_bridge.R``) that the table
    uses. Only times come back; the test of the benchmark tool holds the bridge's times to these.
    """

    name = "glmnet-direct"
    SCRIPT = Path(__file__).resolve().parent / "glmnet_direct.R"

    def available(self):
        from jaxlasso import rglmnet

        return rglmnet.available()

    def _run(self, X, y, lambdas, foldid, task: str, repeats: int) -> Timing:
        import subprocess
        import tempfile

        X = np.asarray(X, dtype="<f8")
        with tempfile.TemporaryDirectory(prefix="jaxlasso-direct-") as tmp:
            d = Path(tmp)
            X.ravel(order="F").tofile(d / "x.bin")
            np.asarray(y, dtype="<f8").tofile(d / "y.bin")
            np.asarray(lambdas, dtype="<f8").tofile(d / "lambda.bin")
            if foldid is not None:
                np.asarray(foldid, dtype="<f8").tofile(d / "foldid.bin")
            (d / "dims.txt").write_text(f"{X.shape[0]} {X.shape[1]}\n")
            res = subprocess.run(["Rscript", str(self.SCRIPT), str(d), task, str(repeats)],
                                 capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"glmnet_direct.R failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
        return Timing([float(s) for s in res.stdout.split()], None)

    def path(self, X, y, lambdas, repeats):
        return self._run(X, y, lambdas, None, "path", repeats)

    def cv(self, X, y, lambdas, foldid, repeats):
        return self._run(X, y, lambdas, foldid, "cv", repeats)


def warm_started_path(X, y, lambdas, repeats: int, make_model, lambda_params, *, ignore=Warning,
                      warm_up: bool = False) -> Timing:
    """Time a scikit-learn-style estimator fitted along ``lambdas`` with warm starts.

    Each run starts from a fresh ``make_model()``, which sees X standardised by its population
    SD (glmnet's scale); ``lambda_params(lam)`` gives the ``set_params`` arguments for one
    lambda, and the coefficients are mapped back to the original scale. ``warm_up`` runs the
    path once untimed (JIT-compiled peers).
    """
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Xs = (X - mu) / sd

    def run():
        model = make_model()
        coefs, b0s = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ignore)
            for lam in lambdas:
                model.set_params(**lambda_params(lam))
                model.fit(Xs, y)
                coef = np.ravel(model.coef_) / sd
                coefs.append(coef)
                b0s.append(float(np.ravel(model.intercept_)[0]) - coef @ mu)
        return np.array(coefs), np.array(b0s)

    if warm_up:
        run()
    secs = []
    for _ in range(repeats):
        t = time.perf_counter()
        coef, b0 = run()
        secs.append(time.perf_counter() - t)
    return Timing(secs, None, coef=coef, intercept=b0)


class SklearnSaga(Adapter):
    """scikit-learn LogisticRegression(l1, saga) warm-started along the path on standardised X.

    ``C = 1 / (n * lambda)``; saga leaves the intercept unpenalised (liblinear would penalise
    it, which changes the problem). Coefficients are mapped back to the original scale.
    """

    name = "sklearn-saga"

    def available(self):
        return importlib.util.find_spec("sklearn") is not None

    def path(self, X, y, lambdas, repeats):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        n = len(y)

        def make_model():
            return LogisticRegression(penalty="l1", solver="saga", warm_start=True, tol=1e-6, max_iter=2000)

        return warm_started_path(X, y, lambdas, repeats, make_model, lambda lam: {"C": 1.0 / (n * lam)},
                                 ignore=ConvergenceWarning)


class Skglm(Adapter):
    """skglm's SparseLogisticRegression (working sets + prox-Newton) warm-started along the path.

    Its objective, ``(1/n) sum log(1 + exp(-y x^T w)) + alpha ||w||_1`` with an unpenalised
    intercept, is glmnet's on standardised X with ``alpha = lambda``; coefficients are mapped
    back to the original scale.
    """

    name = "skglm"

    def available(self):
        return importlib.util.find_spec("skglm") is not None

    def path(self, X, y, lambdas, repeats):
        from skglm import SparseLogisticRegression

        def make_model():
            return SparseLogisticRegression(alpha=float(lambdas[0]), tol=1e-7, max_iter=50, warm_start=True)

        # warm-up: numba compiles skglm's kernels on the first fit
        return warm_started_path(X, y, lambdas, repeats, make_model, lambda lam: {"alpha": float(lam)},
                                 warm_up=True)


def all_adapters() -> list[Adapter]:
    return [a for a in (Jaxlasso(), Glmnet(), SklearnSaga(), Skglm()) if a.available()]


def write_expression_tsv(X, y, folder) -> tuple[str, str]:
    """Write X as a genes-in-rows TSV and a sample sheet: the input a biologist hands both tools."""
    import pandas as pd
    from pathlib import Path

    folder = Path(folder)
    samples = [f"S{i + 1}" for i in range(X.shape[0])]
    genes = [f"g{j + 1}" for j in range(X.shape[1])]
    expr = folder / "expr.tsv"
    pd.DataFrame(X.T, index=pd.Index(genes, name="gene"), columns=samples).to_csv(expr, sep="\t")
    sheet = folder / "samples.tsv"
    pd.DataFrame({"sample": samples, "group": np.where(y > 0, "case", "control")}).to_csv(
        sheet, sep="\t", index=False)
    return str(expr), str(sheet)


R_ONE_SHOT = r"""
suppressMessages(library(glmnet))
args <- commandArgs(TRUE)
e <- read.delim(args[1], row.names = 1, check.names = FALSE)
s <- read.delim(args[2])
x <- t(as.matrix(e))[as.character(s$sample), ]
y <- factor(s$group, levels = c("control", "case"))
set.seed(0)
fit <- suppressWarnings(cv.glmnet(x, y, family = "binomial", nfolds = 10))
cf <- coef(fit, s = "lambda.1se")
sel <- rownames(cf)[which(cf[, 1] != 0)][-1]
write.table(data.frame(feature = sel), args[3], sep = "\t", quote = FALSE, row.names = FALSE)
"""


def one_shot(X, y, repeats: int, workdir) -> tuple["Timing", "Timing"]:
    """Whole-process wall time: ``jaxlasso select`` (lasso only) vs ``Rscript`` + cv.glmnet.

    Both read the same genes-in-rows TSV and sample sheet, run 10-fold CV and write the genes
    at lambda.1se. jaxlasso's first run compiles into an empty persistent cache (a user's very
    first run, reported as compile); the repeats reuse it, as every later run on a machine does.
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    workdir = Path(workdir)
    expr, sheet = write_expression_tsv(X, y, workdir)
    script = workdir / "one_shot.R"
    script.write_text(R_ONE_SHOT)
    env = dict(os.environ, JAXLASSO_CACHE_DIR=str(workdir / "xla-cache"))
    shutil.rmtree(workdir / "xla-cache", ignore_errors=True)

    def run_jax(i):
        out = workdir / f"jx{i}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jaxlasso", "select", expr, "--samples", sheet, "--outcome", "group",
                        "--case", "case", "--strategy", "lasso", "--permutations", "0", "--no-plots", "--quiet",
                        "--out", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    def run_r():
        t = time.perf_counter()
        subprocess.run(["Rscript", str(script), expr, sheet, str(workdir / "r_selected.tsv")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    first = run_jax(0)
    ours = Timing([run_jax(i + 1) for i in range(repeats)], first)
    run_r()  # warm the file cache as jaxlasso's first run did
    ref = Timing([run_r() for _ in range(repeats)], None)
    return ours, ref


class CoxTimings:
    """jaxlasso's Cox path / CV and R glmnet(family = "cox") on the same lambdas and foldid."""

    from jaxlasso import rglmnet as _rglmnet

    def __init__(self, thresh: float = 1e-7):
        self.thresh = thresh

    def jax_path(self, X, time_, event, lambdas, repeats: int) -> Timing:
        from jaxlasso.survival import cox_path

        runs = [cox_path(X, time_, event, lambdas=lambdas) for _ in range(repeats + 1)]
        secs = [r.info["seconds"] for r in runs]
        self.last_path = runs[-1]
        return Timing(secs[1:], secs[0])

    def jax_cv(self, X, time_, event, lambdas, foldid, repeats: int) -> Timing:
        from jaxlasso.survival import cv_cox_path

        runs = [cv_cox_path(X, time_, event, lambdas=lambdas, foldid=foldid) for _ in range(repeats + 1)]
        self.last_cv = runs[-1]
        secs = [r.info["seconds_total"] for r in runs]
        return Timing(secs[1:], secs[0])

    def glmnet_path(self, X, time_, event, lambdas, repeats: int) -> Timing:
        out = self._rglmnet.run_coxnet(X, time_, event, task="path", lambdas=lambdas, thresh=self.thresh, repeats=repeats)
        self.last_glmnet_coef = out.coef
        return Timing(list(out.times), None)

    def glmnet_cv(self, X, time_, event, lambdas, foldid, repeats: int) -> Timing:
        out = self._rglmnet.run_coxnet(X, time_, event, task="cv", lambdas=lambdas, foldid=foldid, thresh=self.thresh,
                                 repeats=repeats)
        self.last_glmnet_cv = out
        return Timing(list(out.times), None)
