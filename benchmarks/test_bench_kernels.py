"""pytest-benchmark suite for the kernels (not part of the default test run).

    python -m pytest benchmarks/test_bench_kernels.py -n 0 --benchmark-enable --benchmark-only

Compilation happens in the fixtures (warm-up), so the timings are run time only.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jaxlasso  # noqa: E402
from datasets import WORKLOADS, foldid_for  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module", params=["seedlike", "all_bcrabl"])
def workload(request):
    wl = WORKLOADS[request.param]()
    fit = jaxlasso.logistic_path(wl.X, wl.y)  # warm-up: compiles
    return wl, fit.lambdas


def test_path(benchmark, workload):
    wl, lam = workload
    res = benchmark(lambda: jaxlasso.logistic_path(wl.X, wl.y, lambdas=lam))
    assert np.all(res.converged)


def test_cv(benchmark, workload):
    wl, lam = workload
    foldid = foldid_for(wl.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jaxlasso.cv_logistic_path(wl.X, wl.y, lambdas=lam, foldid=foldid)
        res = benchmark(lambda: jaxlasso.cv_logistic_path(wl.X, wl.y, lambdas=lam, foldid=foldid))
    assert res.index_min >= res.index_1se
