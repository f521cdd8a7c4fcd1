"""Test configuration: shared fixtures and the R-availability marker.

Warnings are errors (pyproject's filterwarnings): a test that expects a jaxlasso warning says so
with ``pytest.warns``. JAX's global x64 flag is deliberately *not* set: the library must give
float64 results through its own scoped ``jax.enable_x64``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

from helpers import load_real

# One persistent compilation cache for the whole test session, in a temporary folder the first
# process makes (the xdist workers and the CLI subprocesses inherit it through the environment):
# tests in different workers and files solve the same shapes, and compiling them again in each
# is most of the suite's time. Nothing is written to the user's home; the folder goes when the
# process that made it exits. JAXLASSO_TEST_CACHE_DIR names another folder (kept as it is
# after the run, so later sessions reuse it), or "off" (every process compiles for itself).
if not os.environ.get("JAXLASSO_TEST_CACHE_DIR", "").strip():  # unset or empty: the session's own
    _session_cache = tempfile.mkdtemp(prefix="jaxlasso-test-xla-")
    atexit.register(shutil.rmtree, _session_cache, ignore_errors=True)
    os.environ["JAXLASSO_TEST_CACHE_DIR"] = _session_cache
os.environ["JAXLASSO_CACHE_DIR"] = os.environ["JAXLASSO_TEST_CACHE_DIR"]


def pytest_collection_modifyitems(config, items):
    needs_r = [item for item in items if item.get_closest_marker("r") is not None]
    if not needs_r:
        return
    from jaxlasso import rglmnet

    if rglmnet.available():
        return
    skip = pytest.mark.skip(reason="Rscript with the glmnet package is not installed "
                                   "(apt-get install -y r-base-core r-cran-glmnet)")
    for item in needs_r:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data():
    """``get(name) -> (X, y, genes)`` of the real datasets shared by the tests (``tests/data``, or
    ``$JAXLASSO_TEST_DATA``), each loaded once per session."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_real(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tissue(shared_data):
    X, y, genes = shared_data("tissue_cerebellum_vs_hippocampus")
    return X, y, genes


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture
def kernel_settings(monkeypatch):
    """``kernel_settings(**{"solver._F32_GRAM_MIN": 1, ...})`` sets module-level settings of
    ``kernels`` for one test, with the solver factories and JAX's in-memory caches cleared on
    both sides (a setting is read while a program is traced)."""
    import importlib

    import jax
    from kernels import batched

    def clear():
        for f in (batched.single_solver, batched.lanes_solver, batched.datasets_solver):
            f.cache_clear()
        jax.clear_caches()

    def set_(**values):
        clear()
        for name, value in values.items():
            module, attr = name.rsplit(".", 1)
            mod = importlib.import_module(f"kernels.{module}")
            assert hasattr(mod, attr), name
            monkeypatch.setattr(mod, attr, value)

    yield set_
    monkeypatch.undo()
    clear()
