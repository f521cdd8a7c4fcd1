"""Test configuration: shared fixtures and the R-availability marker.

Warnings are errors (pyproject's filterwarnings): a test that expects a jaxlasso warning says so
with ``pytest.warns``. JAX's global x64 flag is deliberately *not* set: the library must give
float64 results through its own scoped ``jax.enable_x64``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from helpers import SHARED_DATA, load_shared

# One compilation cache per test session: executables compiled by one test are reused by the
# next process (and CI re-runs), and nothing is written to the user's home.
os.environ.setdefault("JAXLASSO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "jaxlasso-test-xla-cache"))


def pytest_collection_modifyitems(config, items):
    from jaxlasso import rglmnet

    if rglmnet.available():
        return
    skip = pytest.mark.skip(reason="Rscript with the glmnet package is not installed "
                                   "(apt-get install -y r-base-core r-cran-glmnet)")
    for item in items:
        if "r" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (expected ../shared/data beside the repo)")
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_shared(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tissue(shared_data):
    X, y, genes = shared_data("tissue_cerebellum_vs_hippocampus")
    return X, y, genes


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)
