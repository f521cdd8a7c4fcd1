"""Regenerate the Cox golden files of the parity tests by running R glmnet(family = "cox").

    python tests/golden/make_golden_cox.py            # all Cox cases (and the CoxExample data)
    python tests/golden/make_golden_cox.py cox_coxexample_path

Needs Rscript with glmnet and survival. The R side is ``jaxlasso/r/coxnet_bridge.R``. glmnet's
own ``data(CoxExample)`` is stored once as ``cox_coxexample_data.npz`` (the tests then run
without R); the synthetic cases are rebuilt from their seeds (tests/helpers.py). Paths: glmnet
with thresh=1e-12 and glmnet.control(fdev=0, devmax=1) on its own lambda grid, plus the length
and lambdas of its default (early-stopped) path; CV: cv.glmnet on that grid with a fixed 1-based
foldid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from helpers import (COX_CV_CASES, COX_DATA, COX_PATH_CASES, case_foldid, cox_case_data,  # noqa: E402
                     cox_case_inputs, cox_data_summary, cox_glmnet_args)

from jaxlasso import rglmnet  # noqa: E402

THRESH = 1e-12


def sparse(coef: np.ndarray) -> list:
    li, j = np.nonzero(coef)
    return [[int(a), int(b), float(coef[a, b])] for a, b in zip(li, j)]


def write_coxexample() -> None:
    d = rglmnet.run_coxnet(task="coxexample").extra
    np.savez_compressed(COX_DATA, X=d["X"], time=d["time"], event=d["event"])
    print(f"wrote {COX_DATA.name}")


def make_path(name: str, case: dict) -> dict:
    X, time, event = cox_case_data(case["data"])
    kw = cox_case_inputs(case, *X.shape)
    exact = rglmnet.run_coxnet(X, time, event, task="path", thresh=THRESH, exact_path=True, **cox_glmnet_args(kw))
    default = rglmnet.run_coxnet(X, time, event, task="path", **cox_glmnet_args(kw))
    return {
        "case": name, "glmnet_version": exact.version, "thresh": THRESH,
        "data_summary": cox_data_summary(X, time, event),
        "lambdas": exact.lambdas.tolist(), "coef": sparse(exact.coef), "dev_ratio": exact.dev_ratio.tolist(),
        "nulldev": exact.extra["nulldev"],
        "default_path_length": int(len(default.lambdas)), "default_lambdas": default.lambdas.tolist(),
    }


def make_cv(name: str, case: dict) -> dict:
    X, time, event = cox_case_data(case["data"])
    kw = cox_case_inputs(case, *X.shape)
    grid = rglmnet.run_coxnet(X, time, event, task="path", thresh=THRESH, exact_path=True, **cox_glmnet_args(kw))
    foldid = case_foldid(case, len(time))
    grouped = case.get("grouped", True)
    cv = rglmnet.run_coxnet(X, time, event, task="cv", lambdas=grid.lambdas, thresh=THRESH, foldid=foldid,
                            type_measure=case["measure"], grouped=grouped, **cox_glmnet_args(kw))
    return {
        "case": name, "glmnet_version": cv.version, "thresh": THRESH,
        "data_summary": cox_data_summary(X, time, event), "grouped": grouped,
        "foldid": foldid.tolist(), "lambdas": cv.lambdas.tolist(), "cvm": cv.cvm.tolist(),
        "cvsd": cv.cvsd.tolist(), "nzero": cv.nzero.tolist(), "index_min": cv.index_min,
        "index_1se": cv.index_1se, "r_warnings": cv.extra["stderr"].strip().splitlines()[-3:],
    }


def main(names: list[str]) -> None:
    if not names or not COX_DATA.exists():
        write_coxexample()
    todo = names or list(COX_PATH_CASES) + list(COX_CV_CASES)
    for name in todo:
        if name in COX_PATH_CASES:
            out = make_path(name, COX_PATH_CASES[name])
        elif name in COX_CV_CASES:
            out = make_cv(name, COX_CV_CASES[name])
        else:
            raise SystemExit(f"unknown case {name!r}")
        (HERE / f"{name}.json").write_text(json.dumps(out, indent=0) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main(sys.argv[1:])
