"""Run R glmnet in a subprocess on the same data (parity tests, golden files, benchmarks).

Needs ``Rscript`` with the glmnet package (Debian: ``apt-get install r-base-core r-cran-glmnet``).
Arrays travel as raw little-endian float64 files, so there is no text parsing on either side.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

BRIDGE = "glmnet_bridge.R"


@functools.lru_cache(maxsize=1)
def glmnet_version() -> str | None:
    """The installed R glmnet version, or None when Rscript or glmnet is missing."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    try:
        res = subprocess.run([rscript, "-e", 'cat(as.character(packageVersion("glmnet")))'],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def available() -> bool:
    return glmnet_version() is not None


@dataclass
class GlmnetOutput:
    lambdas: np.ndarray
    """(L,) lambdas returned by glmnet."""
    coef: np.ndarray
    """(L, p) original-scale coefficients."""
    intercept: np.ndarray
    """(L,)."""
    times: np.ndarray
    """Elapsed seconds of each timed repeat of the glmnet / cv.glmnet call (inside R)."""
    wall: float
    """Wall time of the whole Rscript process (start-up and library load included)."""
    dev_ratio: np.ndarray | None = None
    cvm: np.ndarray | None = None
    cvsd: np.ndarray | None = None
    nzero: np.ndarray | None = None
    index_min: int | None = None
    """0-based."""
    index_1se: int | None = None
    version: str = ""
    extra: dict = field(default_factory=dict)


def _write(path: Path, a) -> None:
    np.asarray(a, dtype="<f8").tofile(path)


def _write_optional(d: Path, job: dict, lambdas, weights, penalty_factor, foldid) -> None:
    """Write the optional inputs both bridges read (a file each) and flag them in ``job``."""
    if lambdas is not None:
        lam = np.asarray(lambdas, dtype=np.float64)
        _write(d / "lambda.bin", lam)
        job["has_lambda"] = True
        job["n_lambda"] = len(lam)
    if weights is not None:
        _write(d / "weights.bin", weights)
        job["has_weights"] = True
    if penalty_factor is not None:
        _write(d / "pf.bin", penalty_factor)
        job["has_penalty_factor"] = True
    if foldid is not None:
        _write(d / "foldid.bin", np.asarray(foldid, dtype=np.float64))
        job["has_foldid"] = True


def _read(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<f8")


def run_glmnet(X, y, *, task: str = "path", lambdas=None, nlambda: int = 100,
               lambda_min_ratio: float | None = None, alpha: float = 1.0, thresh: float = 1e-7,
               maxit: int = 100000, standardize: bool = True, intercept: bool = True,
               weights=None, penalty_factor=None, foldid=None, nfolds: int = 10,
               type_measure: str = "deviance", exact_path: bool = False, repeats: int = 1,
               weight_sets=None, timeout: float = 3600, family: str = "binomial") -> GlmnetOutput:
    """Fit ``glmnet`` (task="path"), ``cv.glmnet`` (task="cv") or one path per row of
    ``weight_sets`` (task="bootstrap", timed as one loop inside R) in R.

    ``exact_path=True`` sets ``glmnet.control(fdev=0, devmax=1)`` so that glmnet never stops the
    path early (the setting used for parity). ``foldid`` is passed as given (1-based in R).
    ``family``: glmnet's ``family`` string (``"binomial"``, ``"gaussian"``).
    """
    if not available():
        raise RuntimeError("Rscript with the glmnet package is not available "
                           "(Debian: apt-get install -y r-base-core r-cran-glmnet)")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = X.shape
    job = {"task": task, "n": n, "p": p, "alpha": alpha, "thresh": thresh, "maxit": maxit,
           "standardize": standardize, "intercept": intercept, "repeats": repeats,
           "type_measure": type_measure, "nlambda": nlambda, "nfolds": nfolds, "family": family}
    if lambda_min_ratio is not None:
        job["lambda_min_ratio"] = lambda_min_ratio
    if exact_path:
        job["fdev"] = 0
        job["devmax"] = 1
    with tempfile.TemporaryDirectory(prefix="jaxlasso-glmnet-") as tmp:
        d = Path(tmp)
        _write(d / "x.bin", X.ravel(order="F"))
        _write(d / "y.bin", y)
        _write_optional(d, job, lambdas, weights, penalty_factor, foldid)
        if weight_sets is not None:
            ws = np.asarray(weight_sets, dtype=np.float64)
            _write(d / "weight_sets.bin", ws.ravel(order="C"))
            job["n_sets"] = ws.shape[0]
        lines = [f"{k}: {'TRUE' if v is True else 'FALSE' if v is False else v}" for k, v in job.items()]
        (d / "job.dcf").write_text("\n".join(lines) + "\n")
        script = resources.files("jaxlasso") / "r" / BRIDGE
        with resources.as_file(script) as script_path:
            t0 = time.perf_counter()
            res = subprocess.run(["Rscript", str(script_path), str(d)], capture_output=True, text=True,
                                 timeout=timeout)
            wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"R glmnet failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
        lam = _read(d / "lambda_out.bin")
        B = _read(d / "coef.bin").reshape(-1, p + 1)  # R wrote (p+1) x L column-major
        out = GlmnetOutput(lambdas=lam, coef=B[:, 1:], intercept=B[:, 0], times=_read(d / "times.bin"),
                           wall=wall, version=(d / "version.txt").read_text().strip())
        out.extra["stderr"] = res.stderr
        if task == "bootstrap":
            out.extra["total_df"] = _read(d / "nnz.bin")
        elif task == "path":
            out.dev_ratio = _read(d / "dev_ratio.bin")
            out.extra["nulldev"] = float(_read(d / "nulldev.bin")[0])
        else:
            out.cvm = _read(d / "cvm.bin")
            out.cvsd = _read(d / "cvsd.bin")
            out.nzero = _read(d / "nzero.bin")
            idx = _read(d / "index.bin").astype(int) - 1
            out.index_min, out.index_1se = int(idx[0]), int(idx[1])
        return out


COX_BRIDGE = "coxnet_bridge.R"


def run_coxnet(X=None, time_=None, event=None, *, task: str = "path", lambdas=None, nlambda: int = 100,
               lambda_min_ratio: float | None = None, alpha: float = 1.0, thresh: float = 1e-7,
               maxit: int = 100000, standardize: bool = True, weights=None, penalty_factor=None,
               foldid=None, type_measure: str = "deviance", grouped: bool = True,
               exact_path: bool = False, ties: str = "breslow", fold_coef: bool = False,
               repeats: int = 1, timeout: float = 3600) -> GlmnetOutput:
    """R's Cox fits on ``(X, time_, event)``: ``glmnet(family = "cox")`` (task="path"),
    ``cv.glmnet`` (task="cv", ``foldid`` 1-based as given) or the unpenalised
    ``survival::coxph(ties = ties)`` (task="coxph": ``coef`` (1, p), ``extra["loglik"]`` the null and
    final log partial likelihoods). task="coxexample" returns glmnet's ``data(CoxExample)`` as
    ``extra["X"]``, ``extra["time"]``, ``extra["event"]``. ``fold_coef`` (task="cv"): also each
    fold's coefficients, refitted as cv.glmnet fits them, as ``extra["fold_coef"]`` (F, L, p).
    ``times``: the elapsed seconds of each of ``repeats`` glmnet / cv.glmnet calls, timed in R.
    """
    if not available():
        raise RuntimeError("Rscript with the glmnet package is not available "
                           "(Debian: apt-get install -y r-base-core r-cran-glmnet r-cran-survival)")
    job: dict = {"task": task}
    with tempfile.TemporaryDirectory(prefix="jaxlasso-coxnet-") as tmp:
        d = Path(tmp)
        if task != "coxexample":
            X = np.asarray(X, dtype=np.float64)
            n, p = X.shape
            job.update({"n": n, "p": p, "alpha": alpha, "thresh": thresh, "maxit": maxit,
                        "standardize": standardize, "type_measure": type_measure, "grouped": grouped,
                        "nlambda": nlambda, "ties": ties, "fold_coef": fold_coef, "repeats": repeats})
            _write(d / "x.bin", X.ravel(order="F"))
            _write(d / "time.bin", time_)
            _write(d / "status.bin", event)
            if lambda_min_ratio is not None:
                job["lambda_min_ratio"] = lambda_min_ratio
            if exact_path:
                job["fdev"] = 0
                job["devmax"] = 1
            _write_optional(d, job, lambdas, weights, penalty_factor, foldid)
        lines = [f"{k}: {'TRUE' if v is True else 'FALSE' if v is False else v}" for k, v in job.items()]
        (d / "job.dcf").write_text("\n".join(lines) + "\n")
        script = resources.files("jaxlasso") / "r" / COX_BRIDGE
        with resources.as_file(script) as script_path:
            t0 = time.perf_counter()
            res = subprocess.run(["Rscript", str(script_path), str(d)], capture_output=True, text=True,
                                 timeout=timeout)
            wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"R {task} failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
        version = (d / "version.txt").read_text().strip()
        empty = np.zeros(0)
        if task == "coxexample":
            n, p = _read(d / "dim.bin").astype(int)
            out = GlmnetOutput(lambdas=empty, coef=empty, intercept=empty, times=empty, wall=wall, version=version)
            out.extra.update(X=_read(d / "x.bin").reshape(p, n).T.copy(), time=_read(d / "time.bin"),
                             event=_read(d / "status.bin"))
            return out
        times = _read(d / "times.bin")
        if task == "coxph":
            out = GlmnetOutput(lambdas=np.zeros(1), coef=_read(d / "coef.bin")[None, :], intercept=np.zeros(1),
                               times=times, wall=wall, version=version)
            out.extra["loglik"] = _read(d / "loglik.bin")
            return out
        lam = _read(d / "lambda_out.bin")
        B = _read(d / "coef.bin").reshape(-1, p)  # R wrote p x L column-major
        out = GlmnetOutput(lambdas=lam, coef=B, intercept=np.zeros(len(lam)), times=times, wall=wall,
                           version=version)
        out.extra["stderr"] = res.stderr
        if task == "path":
            out.dev_ratio = _read(d / "dev_ratio.bin")
            out.extra["nulldev"] = float(_read(d / "nulldev.bin")[0])
        else:
            out.cvm = _read(d / "cvm.bin")
            out.cvsd = _read(d / "cvsd.bin")
            out.nzero = _read(d / "nzero.bin")
            idx = _read(d / "index.bin").astype(int) - 1
            out.index_min, out.index_1se = int(idx[0]), int(idx[1])
            if fold_coef:
                out.extra["fold_coef"] = _read(d / "fold_coef.bin").reshape(-1, len(lam), p)
        return out
