"""Regenerate the golden files of the parity tests by running R glmnet.

    python tests/golden/make_golden.py            # all cases
    python tests/golden/make_golden.py tissue_lasso all_bcrabl_cv_auc

Needs Rscript with glmnet (Debian: apt-get install -y r-base-core r-cran-glmnet). The R side is
``jaxlasso/r/glmnet_bridge.R``; this driver builds each case's data (tests/helpers.py), runs
glmnet / cv.glmnet with thresh=1e-12 and glmnet.control(fdev=0, devmax=1) on glmnet's own lambda
grid (CV: that grid and a fixed 1-based foldid), and stores glmnet's raw output as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from helpers import (CV_CASES, PATH_CASES, case_data, case_foldid, case_inputs, data_summary, digest,  # noqa: E402
                     glmnet_args)

from jaxlasso import rglmnet  # noqa: E402

THRESH = 1e-12


def sparse(coef: np.ndarray) -> list:
    li, j = np.nonzero(coef)
    return [[int(a), int(b), float(coef[a, b])] for a, b in zip(li, j)]


def make_path(name: str, case: dict) -> dict:
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    exact = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, exact_path=True, **glmnet_args(kw))
    default = rglmnet.run_glmnet(X, y, task="path", **glmnet_args(kw))
    return {
        "case": name, "glmnet_version": exact.version, "thresh": THRESH, "data_digest": digest(X, y),
        "data_summary": data_summary(X, y),
        "lambdas": exact.lambdas.tolist(), "intercept": exact.intercept.tolist(),
        "coef": sparse(exact.coef), "dev_ratio": exact.dev_ratio.tolist(),
        "default_path_length": int(len(default.lambdas)),
        "default_lambdas": default.lambdas.tolist(),
    }


def make_cv(name: str, case: dict) -> dict:
    X, y = case_data(case["data"])
    kw = case_inputs(case, X)
    grid = rglmnet.run_glmnet(X, y, task="path", thresh=THRESH, exact_path=True, **glmnet_args(kw))
    foldid = case_foldid(case, len(y))
    cv = rglmnet.run_glmnet(X, y, task="cv", lambdas=grid.lambdas, thresh=THRESH, foldid=foldid,
                            type_measure=case["measure"], **glmnet_args(kw))
    return {
        "case": name, "glmnet_version": cv.version, "thresh": THRESH, "data_digest": digest(X, y),
        "data_summary": data_summary(X, y),
        "foldid": foldid.tolist(), "lambdas": cv.lambdas.tolist(), "cvm": cv.cvm.tolist(),
        "cvsd": cv.cvsd.tolist(), "nzero": cv.nzero.tolist(), "index_min": cv.index_min,
        "index_1se": cv.index_1se, "r_warnings": cv.extra["stderr"].strip().splitlines()[-3:],
    }


def main(names: list[str]) -> None:
    todo = names or list(PATH_CASES) + list(CV_CASES)
    for name in todo:
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
