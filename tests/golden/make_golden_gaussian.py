"""Regenerate the Gaussian golden files by running R glmnet (family = "gaussian").

    python tests/golden/make_golden_gaussian.py            # all cases (and the QuickStart data)
    python tests/golden/make_golden_gaussian.py gaussian_quickstart_lasso

Needs Rscript with glmnet 4.1.6 (Debian: r-cran-glmnet). The cases are tests/gaussian_cases.py;
glmnet runs through jaxlasso/r/glmnet_bridge.R with thresh=1e-12 and glmnet.control(fdev=0,
devmax=1) on its own lambda grid (CV: that grid, a fixed 1-based foldid and thresh=1e-15); the default path
(thresh 1e-7, glmnet's early stop) is stored too for the grid and path-length checks. First it
writes glmnet's ``data(QuickStartExample)`` to gaussian_quickstart_data.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from gaussian_cases import CV_CASES, PATH_CASES, case_data, case_foldid, case_inputs  # noqa: E402
from helpers import data_summary, digest  # noqa: E402

from jaxlasso import rglmnet  # noqa: E402

THRESH = 1e-12
# cv.glmnet's folds at thresh 1e-12 leave its cvsd 1.1e-3 (relative) from the converged value at
# the smallest lambdas of the 100 x 5,000 case (near interpolation, where its coordinate-descent
# criterion stops early); at 1e-15 it agrees with jaxlasso to 6e-5. The CV goldens use 1e-15.
CV_THRESH = 1e-15
QUICKSTART_R = """
suppressMessages(library(glmnet)); data(QuickStartExample)
x <- QuickStartExample$x; y <- as.numeric(QuickStartExample$y)
cat(as.character(packageVersion("glmnet")), nrow(x), ncol(x), sprintf("%.17g", c(y, as.vector(t(x)))), sep = "\\n")
"""


def write_quickstart() -> None:
    out = subprocess.run(["Rscript", "-e", QUICKSTART_R], capture_output=True, text=True, check=True).stdout
    lines = out.split()
    version, n, p = lines[0], int(lines[1]), int(lines[2])
    vals = np.array([float(v) for v in lines[3:]])
    y, x = vals[:n], vals[n:].reshape(n, p)
    d = {"source": "R glmnet data(QuickStartExample): x (rows) 100 x 20, y (100,)",
         "glmnet_version": version, "x": x.tolist(), "y": y.tolist()}
    (HERE / "gaussian_quickstart_data.json").write_text(json.dumps(d) + "\n")
    print("wrote gaussian_quickstart_data.json")


def glmnet_args(kw: dict) -> dict:
    return dict(family="gaussian", alpha=kw.get("l1_ratio", 1.0), standardize=kw.get("standardize", True),
                intercept=kw.get("fit_intercept", True), weights=kw.get("sample_weight"),
                penalty_factor=kw.get("penalty_factor"))


def sparse(coef: np.ndarray) -> list:
    li, j = np.nonzero(coef)
    return [[int(a), int(b), float(coef[a, b])] for a, b in zip(li, j)]


def make_path(name: str, case: dict) -> dict:
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    exact = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, exact_path=True, **glmnet_args(kw))
    default = rglmnet.run_glmnet(X, y, task="path", **glmnet_args(kw))
    default_exact = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, **glmnet_args(kw))
    return {
        "case": name, "glmnet_version": exact.version, "thresh": THRESH, "data_digest": digest(X, y),
        "data_summary": data_summary(X, y), "nulldev": exact.extra["nulldev"],
        "lambdas": exact.lambdas.tolist(), "intercept": exact.intercept.tolist(),
        "coef": sparse(exact.coef), "dev_ratio": exact.dev_ratio.tolist(),
        "default_path_length": int(len(default.lambdas)), "default_lambdas": default.lambdas.tolist(),
        "default_path_length_thresh_1e-12": int(len(default_exact.lambdas)),
    }


def make_cv(name: str, case: dict) -> dict:
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    grid = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, exact_path=True, **glmnet_args(kw))
    foldid = case_foldid(case, len(y))
    cv = rglmnet.run_glmnet(X, y, task="cv", lambdas=grid.lambdas, thresh=CV_THRESH, foldid=foldid,
                            type_measure=case["measure"], **glmnet_args(kw))
    return {
        "case": name, "glmnet_version": cv.version, "thresh": CV_THRESH, "data_digest": digest(X, y),
        "data_summary": data_summary(X, y),
        "foldid": foldid.tolist(), "lambdas": cv.lambdas.tolist(), "cvm": cv.cvm.tolist(),
        "cvsd": cv.cvsd.tolist(), "nzero": cv.nzero.tolist(), "index_min": cv.index_min,
        "index_1se": cv.index_1se,
    }


def main(names: list[str]) -> None:
    if not names or not (HERE / "gaussian_quickstart_data.json").exists():
        write_quickstart()
    for name in names or list(PATH_CASES) + list(CV_CASES):
        if name in PATH_CASES:
            out = make_path(name, PATH_CASES[name])
        elif name in CV_CASES:
            out = make_cv(name, CV_CASES[name])
        else:
            raise SystemExit(f"unknown case {name!r}")
        (HERE / f"{name}.json").write_text(json.dumps(out, indent=0) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main(sys.argv[1:])
